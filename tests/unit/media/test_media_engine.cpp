// MediaEngine over real UDP sockets on loopback: pacing, playback, DTMF, latching, hold,
// ports. Every wait is bounded; nothing asserts on speed.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <spandsp.h>
}

#include "media/g711.h"
#include "media/media_engine.h"
#include "media/prompt.h"
#include "media_loopback.h"

using namespace ivr::media;
using namespace std::chrono_literals;

using namespace ivr::media::testing;

TEST_CASE("media engine: create rejects bad options") {
  MediaEngine::Options o;
  o.port_min = 30001;
  o.port_max = 30000;
  auto r = MediaEngine::create(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ivr::Errc::invalid_argument);

  o.port_min = 30001;
  o.port_max = 30001;  // no even port with RTCP above it
  r = MediaEngine::create(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ivr::Errc::invalid_argument);

  o.port_min = 30000;
  o.port_max = 30010;
  o.rtp_address = "media.example.com";  // names are never resolved
  r = MediaEngine::create(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ivr::Errc::invalid_argument);
  CHECK(r.error().message.find("media.example.com") != std::string::npos);

  o.rtp_address = "127.0.0.1";
  o.threads = 0;
  r = MediaEngine::create(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ivr::Errc::invalid_argument);
}

TEST_CASE("media engine: two sessions play to each other with contiguous RTP") {
  Fixture f(1);  // one thread: B's set_remote runs before A can send its first frame
  const SessionId a = 1, b = 2;
  const uint16_t port_a = f.open(a);
  const uint16_t port_b = f.open(b);
  CHECK(port_a % 2 == 0);
  CHECK(port_b % 2 == 0);
  CHECK(port_a != port_b);
  CHECK(f.engine->session_count() == 2);

  const size_t n = 25;
  auto prompt = tone_prompt(n);
  f.engine->set_remote(b, remote_at(port_a));
  f.engine->set_remote(a, remote_at(port_b));
  f.engine->play(a, prompt, 7);

  REQUIRE(f.events.has_playback(a, 7));
  REQUIRE(f.events.wait_count(b, MediaEvent::Kind::remote_latched, 1));
  CHECK(f.events.of(b, MediaEvent::Kind::remote_latched)[0].detail ==
        "127.0.0.1:" + std::to_string(port_a));
  REQUIRE(f.events.wait_count(a, MediaEvent::Kind::remote_latched, 1));
  CHECK(f.events.of(a, MediaEvent::Kind::remote_latched)[0].detail ==
        "127.0.0.1:" + std::to_string(port_b));

  // B's view of A's stream: silence*, the N prompt frames in order, then silence again.
  std::vector<Captured> got;
  size_t first = 0;
  REQUIRE(eventually([&] {
    got = f.packets.of(b);
    for (first = 0; first < got.size(); ++first)
      if (!is_silence(got[first].payload, 0xFF)) break;
    return first < got.size() && got.size() >= first + n + 5;
  }));
  CHECK(got[0].marker);
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].payload_type == 0);
    CHECK(got[i].ssrc == got[0].ssrc);
    if (i > 0) {
      CHECK_FALSE(got[i].marker);
      CHECK(got[i].seq == static_cast<uint16_t>(got[i - 1].seq + 1));
      CHECK(got[i].ts == got[i - 1].ts + 160);
    }
    if (i < first || i >= first + n)
      CHECK(is_silence(got[i].payload, 0xFF));
    else
      CHECK(got[i].payload == prompt_frame(*prompt, i - first));
  }

  // Exactly one completion, even after more frames went out.
  REQUIRE(f.packets.wait_count(b, got.size() + 5));
  auto done = f.events.of(a, MediaEvent::Kind::playback_finished);
  REQUIRE(done.size() == 1);
  CHECK(done[0].playback_id == 7);
  CHECK(done[0].playback_end == PlaybackEnd::completed);
  CHECK(f.events.count(b, MediaEvent::Kind::playback_finished) == 0);

  const MediaStats st = f.engine->stats();
  CHECK(st.packets_sent >= 2 * got.size());
  CHECK(st.bad_packets == 0);
  CHECK(st.foreign_packets == 0);

  f.engine->close_session(a);
  f.engine->close_session(b);
  CHECK(f.engine->session_count() == 0);
}

TEST_CASE("media engine: PCMA sends A-law silence and prompt frames") {
  Fixture f(1);
  UdpPeer peer;
  const SessionId s = 3;
  f.open(s);
  auto prompt = tone_prompt(3);
  f.engine->set_remote(s, remote_at(peer.port(), Direction::sendrecv, -1, Codec::pcma));
  Captured c = next_rtp(peer);
  CHECK(c.payload_type == 8);
  CHECK(is_silence(c.payload, 0xD5));
  f.engine->play(s, prompt, 1);
  // The first non-silence frame is the prompt's first A-law frame.
  for (int i = 0; i < 50; ++i) {
    c = next_rtp(peer);
    if (!is_silence(c.payload, 0xD5)) break;
  }
  CHECK(c.payload == prompt_frame(*prompt, 0, Codec::pcma));
}

TEST_CASE("media engine: replacing, stopping and failing playbacks") {
  Fixture f(1);
  UdpPeer peer;
  const SessionId s = 5;
  f.open(s);
  f.engine->set_remote(s, remote_at(peer.port()));
  f.engine->play(s, tone_prompt(500), 1);
  f.engine->play(s, tone_prompt(5), 2);
  REQUIRE(f.events.has_playback(s, 2));
  auto evs = f.events.of(s, MediaEvent::Kind::playback_finished);
  REQUIRE(evs.size() == 2);
  CHECK(evs[0].playback_id == 1);
  CHECK(evs[0].playback_end == PlaybackEnd::stopped);
  CHECK(evs[1].playback_id == 2);
  CHECK(evs[1].playback_end == PlaybackEnd::completed);

  f.engine->play(s, tone_prompt(500), 3);
  f.engine->stop_playback(s);
  f.engine->stop_playback(s);  // nothing plays: no event
  f.engine->play(s, nullptr, 4);
  REQUIRE(f.events.has_playback(s, 4));
  evs = f.events.of(s, MediaEvent::Kind::playback_finished);
  REQUIRE(evs.size() == 4);
  CHECK(evs[2].playback_id == 3);
  CHECK(evs[2].playback_end == PlaybackEnd::stopped);
  CHECK(evs[3].playback_id == 4);
  CHECK(evs[3].playback_end == PlaybackEnd::failed);
}

TEST_CASE("media engine: close_session ends a playback silently") {
  Fixture f(1);
  UdpPeer peer;
  const SessionId s = 6, other = 8;
  f.open(s);
  f.open(other);
  f.engine->set_remote(s, remote_at(peer.port()));
  f.engine->play(s, tone_prompt(500), 1);
  f.engine->close_session(s);
  f.engine->close_session(12345);  // unknown: ignored
  CHECK(f.engine->session_count() == 1);
  f.barrier(other);  // same thread: the close has run
  CHECK(f.events.count(s, MediaEvent::Kind::playback_finished) == 0);
  // Its sockets are closed: a new session may get the ports again, and ids can be reused.
  f.open(s);
  CHECK(f.engine->session_count() == 2);
}

TEST_CASE("media engine: RFC 4733 events give one digit each") {
  Fixture f(1);
  UdpPeer phone;
  const SessionId s = 9;
  const uint16_t port = f.open(s);
  f.engine->set_remote(s, remote_at(phone.port(), Direction::sendrecv, 101));
  f.barrier(s);

  auto send_event = [&](uint8_t event, uint32_t ts, uint16_t &seq) {
    auto payload = [&](bool end, uint16_t dur) {
      return std::vector<uint8_t>{event, static_cast<uint8_t>((end ? 0x80 : 0) | 10),
                                  static_cast<uint8_t>(dur >> 8), static_cast<uint8_t>(dur)};
    };
    phone.send_to(port, make_rtp(101, true, seq++, ts, 0x1234, payload(false, 160)));
    phone.send_to(port, make_rtp(101, false, seq++, ts, 0x1234, payload(false, 320)));
    phone.send_to(port, make_rtp(101, false, seq++, ts, 0x1234, payload(false, 480)));
    for (int i = 0; i < 3; ++i)
      phone.send_to(port, make_rtp(101, false, seq++, ts, 0x1234, payload(true, 800)));
  };
  uint16_t seq = 100;
  send_event(5, 8000, seq);
  REQUIRE(f.events.wait_count(s, MediaEvent::Kind::dtmf, 1));
  auto d = f.events.of(s, MediaEvent::Kind::dtmf);
  CHECK(d[0].dtmf.digit == '5');
  CHECK(d[0].dtmf.duration_ms == 100);
  CHECK(d[0].dtmf.source == DtmfSource::rfc4733);
  CHECK(f.events.of(s, MediaEvent::Kind::remote_latched)[0].detail == phone.address());

  send_event(11, 16000, seq);
  REQUIRE(f.events.wait_count(s, MediaEvent::Kind::dtmf, 2));
  // Longer than the decoder's silence timeout: a repeated report would show up by now.
  CHECK_FALSE(f.events.wait_count(s, MediaEvent::Kind::dtmf, 3, 800ms));
  d = f.events.of(s, MediaEvent::Kind::dtmf);
  REQUIRE(d.size() == 2);
  CHECK(d[1].dtmf.digit == '#');

  // A telephone-event packet too short to parse is counted as bad, not reported.
  phone.send_to(port, make_rtp(101, false, seq++, 24000, 0x1234, {1, 2}));
  CHECK(eventually([&] { return f.engine->stats().bad_packets == 1; }));
}

TEST_CASE("media engine: inband DTMF through PCMU when enabled") {
  Fixture f(1);
  UdpPeer phone;
  const SessionId on = 10, off = 12;
  const uint16_t port_on = f.open(on);
  const uint16_t port_off = f.open(off);
  f.engine->set_remote(on, remote_at(phone.port()));
  f.engine->set_remote(off, remote_at(phone.port()));
  f.engine->set_inband_dtmf(on, true);
  f.barrier(on);
  f.barrier(off);

  // spandsp renders the tones; 0.0.6's dtmf_tx_put returns the count NOT queued.
  std::unique_ptr<dtmf_tx_state_t, int (*)(dtmf_tx_state_t *)> tx(dtmf_tx_init(nullptr),
                                                                  &dtmf_tx_free);
  REQUIRE(tx);
  REQUIRE(dtmf_tx_put(tx.get(), "1234#", -1) == 0);
  std::vector<int16_t> audio(1600, 0);
  int16_t block[160];
  for (int n; (n = dtmf_tx(tx.get(), block, 160)) > 0;) audio.insert(audio.end(), block, block + n);
  audio.resize((audio.size() / 160 + 10) * 160, 0);  // trailing silence ends the last tone

  uint16_t seq = 1;
  uint32_t ts = 0;
  for (size_t i = 0; i < audio.size(); i += 160) {
    std::vector<uint8_t> frame(160);
    encode(Codec::pcmu, std::span<const int16_t>(audio.data() + i, 160), frame);
    phone.send_to(port_on, make_rtp(0, i == 0, seq, ts, 0x42, frame));
    phone.send_to(port_off, make_rtp(0, i == 0, seq, ts, 0x42, frame));
    ++seq;
    ts += 160;
    if (i % 1600 == 0) std::this_thread::sleep_for(2ms);  // stay far below socket buffers
  }
  REQUIRE(f.events.wait_count(on, MediaEvent::Kind::dtmf, 5));
  std::string digits;
  for (const auto &e : f.events.of(on, MediaEvent::Kind::dtmf)) {
    digits += e.dtmf.digit;
    CHECK(e.dtmf.source == DtmfSource::inband);
    CHECK(e.dtmf.duration_ms >= 20);
  }
  CHECK(digits == "1234#");
  // Same audio, detection off: both sessions read everything, only one reports digits.
  REQUIRE(f.packets.wait_count(off, audio.size() / 160));
  f.barrier(off);
  CHECK(f.events.count(off, MediaEvent::Kind::dtmf) == 0);
}

TEST_CASE("media engine: symmetric RTP latching and re-INVITE") {
  Fixture f(1);
  UdpPeer x, y, z, w;
  const SessionId s = 14;
  const uint16_t port = f.open(s);
  f.engine->set_remote(s, remote_at(z.port()));  // what SDP says
  (void)next_rtp(z);                             // sends to the SDP address before latching

  for (uint16_t i = 0; i < 3; ++i)
    x.send_to(port, make_rtp(0, i == 0, i, i * 160u, 7, silence_payload()));
  REQUIRE(f.events.wait_count(s, MediaEvent::Kind::remote_latched, 1));
  CHECK(f.events.of(s, MediaEvent::Kind::remote_latched)[0].detail == x.address());
  REQUIRE(f.packets.wait_count(s, 3));

  for (uint16_t i = 0; i < 5; ++i)
    y.send_to(port, make_rtp(0, false, i, i * 160u, 8, silence_payload()));
  REQUIRE(eventually([&] { return f.engine->stats().foreign_packets == 5; }));
  CHECK(f.packets.of(s).size() == 3);  // Y's packets never reached the session
  f.barrier(s);
  z.drain();  // what was sent before the latch
  x.drain();
  for (int i = 0; i < 5; ++i) (void)next_rtp(x);  // replies go to X ...
  CHECK(y.drain() == 0);                          // ... never to Y ...
  CHECK(z.drain() == 0);                          // ... nor to the SDP address any more
  CHECK(f.events.count(s, MediaEvent::Kind::remote_latched) == 1);

  // Same address again (e.g. a direction change): the latch stays.
  f.engine->set_remote(s, remote_at(z.port()));
  f.barrier(s);
  x.drain();
  (void)next_rtp(x);

  // A new media address: the latch resets, SDP's address is used until a packet arrives.
  f.engine->set_remote(s, remote_at(w.port()));
  (void)next_rtp(w);
  y.send_to(port, make_rtp(0, true, 50, 8000, 8, silence_payload()));
  REQUIRE(f.events.wait_count(s, MediaEvent::Kind::remote_latched, 2));
  CHECK(f.events.of(s, MediaEvent::Kind::remote_latched)[1].detail == y.address());
  (void)next_rtp(y);
  CHECK(f.engine->stats().foreign_packets == 5);
}

TEST_CASE("media engine: garbage, RTCP and unexpected payload types are counted") {
  Fixture f(1);
  UdpPeer phone;
  const SessionId s = 16;
  const uint16_t port = f.open(s);
  f.engine->set_remote(s, remote_at(phone.port()));
  f.barrier(s);

  const std::vector<std::vector<uint8_t>> garbage = {
      {0x00},
      {0x80, 0x00, 0x01},
      std::vector<uint8_t>(12, 0x00),                                      // version 0
      {0x8F, 0x00, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1},                          // 15 CSRCs missing
      {0x90, 0x00, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xBE, 0xDE, 0x00, 0x09},  // extension overruns
      {0xA0, 0x00, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xAA, 0x20},              // padding > packet
      std::vector<uint8_t>(3000, 0x80),                                    // oversized
  };
  for (const auto &g : garbage) phone.send_to(port, g);
  // RTCP receiver report, multiplexed on the RTP port and on RTP + 1.
  const std::vector<uint8_t> rr = {0x80, 201, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78};
  phone.send_to(port, rr);
  phone.send_to(static_cast<uint16_t>(port + 1), rr);
  // Valid RTP with a payload type that was not negotiated.
  phone.send_to(port, make_rtp(18, true, 1, 0, 9, silence_payload()));

  REQUIRE(eventually([&] {
    const MediaStats st = f.engine->stats();
    return st.bad_packets == garbage.size() && st.rtcp_packets == 2 && st.packets_dropped == 1;
  }));
  const MediaStats st = f.engine->stats();
  CHECK(st.packets_received == garbage.size() + 2);                 // RTP port only
  CHECK(f.events.count(s, MediaEvent::Kind::remote_latched) == 0);  // none of it latches

  // The session still works.
  phone.send_to(port, make_rtp(0, true, 2, 160, 9, silence_payload()));
  REQUIRE(f.events.wait_count(s, MediaEvent::Kind::remote_latched, 1));
  CHECK(f.engine->session_count() == 1);
}

TEST_CASE("media engine: hold stops sending, resume restarts with a marker") {
  Fixture f(1);
  UdpPeer phone;
  const SessionId s = 18;
  f.open(s);
  f.engine->set_remote(s, remote_at(phone.port()));
  Captured c = next_rtp(phone);
  CHECK(c.marker);
  for (int i = 0; i < 3; ++i) {
    Captured n = next_rtp(phone);
    CHECK_FALSE(n.marker);
    CHECK(n.seq == static_cast<uint16_t>(c.seq + 1));
    CHECK(n.ts == c.ts + 160);
    c = n;
  }

  uint64_t playback = 0;
  auto hold_then_resume = [&](const RemoteMedia &hold) {
    f.engine->set_remote(s, hold);
    f.barrier(s);
    // Whatever was sent before the hold is queued by now (loopback delivers at send time).
    uint16_t last_seq = c.seq;
    uint32_t last_ts = c.ts;
    while (auto d = phone.recv(0ms)) {
      auto r = read_rtp(*d);
      REQUIRE(r);
      last_seq = r->seq;
      last_ts = r->ts;
    }
    // A prompt played on hold still runs on time, sent nowhere.
    const uint64_t pb = ++playback;
    f.engine->play(s, tone_prompt(10), pb);
    REQUIRE(f.events.has_playback(s, pb));
    CHECK(f.events.of(s, MediaEvent::Kind::playback_finished).back().playback_end ==
          PlaybackEnd::completed);
    CHECK_FALSE(phone.recv(100ms).has_value());

    f.engine->set_remote(s, remote_at(phone.port()));
    Captured r = next_rtp(phone);
    CHECK(r.marker);
    CHECK(r.seq == static_cast<uint16_t>(last_seq + 1));
    CHECK(r.ts - last_ts >= 10 * 160u);  // the RTP clock ran through the hold
    Captured n = next_rtp(phone);
    CHECK_FALSE(n.marker);
    c = n;
  };
  hold_then_resume(remote_at(phone.port(), Direction::recvonly));
  hold_then_resume(remote_at(phone.port(), Direction::inactive));
  RemoteMedia old_style = remote_at(phone.port());
  old_style.address = "0.0.0.0";
  hold_then_resume(old_style);
  RemoteMedia no_port = remote_at(0);
  hold_then_resume(no_port);
}

TEST_CASE("media engine: a stalled media thread resyncs instead of bursting") {
  Fixture f(1);
  UdpPeer phone;
  const SessionId s = 20;
  f.open(s);
  f.engine->set_remote(s, remote_at(phone.port()));
  Captured prev = next_rtp(phone);
  f.stall_on = 77;
  f.engine->play(s, std::make_shared<Prompt>("empty", std::vector<int16_t>{}), 77);
  REQUIRE(f.events.has_playback(s, 77));
  CHECK(eventually([&] { return f.engine->stats().late_ticks >= 1; }));
  // Over the stall (>= 300 ms, resync threshold 100 ms) the RTP clock jumped ahead while the
  // sequence stayed contiguous: the missed frames were skipped, not sent in a burst.
  bool jumped = false;
  for (int i = 0; i < 40 && !jumped; ++i) {
    Captured c = next_rtp(phone);
    CHECK(c.seq == static_cast<uint16_t>(prev.seq + 1));
    if (c.ts - prev.ts > 160) {
      CHECK(c.ts - prev.ts >= 5 * 160u);
      jumped = true;
    }
    prev = c;
  }
  CHECK(jumped);
}

TEST_CASE("media engine: port range exhaustion, skipping ports in use") {
  // Two pairs; the first RTP port is taken by someone else.
  EventLog events;
  Range range = probe_free_range(2);
  int squatter = bind_udp("127.0.0.1", range.min);
  REQUIRE(squatter >= 0);
  MediaEngine::Options o;
  o.port_min = range.min;
  o.port_max = range.max;
  o.sink = [&](MediaEvent &&e) { events.push(std::move(e)); };
  auto r = MediaEngine::create(o);
  REQUIRE(r.ok());
  auto &engine = *r.value();

  auto first = engine.open_session(1);
  REQUIRE(first.ok());
  CHECK(*first == range.min + 2);
  auto dup = engine.open_session(1);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().code == ivr::Errc::bad_state);
  auto second = engine.open_session(2);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == ivr::Errc::busy);
  const std::string named =
      "[" + std::to_string(range.min) + ", " + std::to_string(range.max) + "]";
  CHECK_MESSAGE(second.error().message.find(named) != std::string::npos, second.error().message);

  // Released when the media thread closes the sockets (posted), and then reusable.
  engine.close_session(1);
  ::close(squatter);
  std::optional<uint16_t> again;
  CHECK(eventually([&] {
    auto x = engine.open_session(3);
    if (x.ok()) again = *x;
    return x.ok();
  }));
  REQUIRE(again);
  std::optional<uint16_t> fourth;
  CHECK(eventually([&] {
    auto x = engine.open_session(4);
    if (x.ok()) fourth = *x;
    return x.ok();
  }));
  REQUIRE(fourth);
  CHECK(*again != *fourth);

  // The destructor closes every socket.
  r.value().reset();
  int probe = bind_udp("127.0.0.1", *again);
  CHECK(probe >= 0);
  if (probe >= 0) ::close(probe);
  probe = bind_udp("127.0.0.1", static_cast<uint16_t>(*fourth + 1));
  CHECK(probe >= 0);
  if (probe >= 0) ::close(probe);
}

TEST_CASE("media engine: IPv6 loopback") {
  int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool have_v6 = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
  if (fd >= 0) ::close(fd);
  if (!have_v6) {
    MESSAGE("no IPv6 loopback here: skipped");
    return;
  }
  EventLog events;
  PacketLog packets;
  Range range = probe_free_range(8);  // probed on IPv4; the engine skips any v6 port in use
  MediaEngine::Options o;
  o.rtp_address = "::1";
  o.port_min = range.min;
  o.port_max = range.max;
  o.sink = [&](MediaEvent &&e) { events.push(std::move(e)); };
  o.packet_tap = [&](SessionId id, const RtpPacket &p) { packets.push(id, p); };
  auto r = MediaEngine::create(o);
  REQUIRE(r.ok());
  auto &engine = *r.value();
  auto pa = engine.open_session(1);
  auto pb = engine.open_session(2);
  REQUIRE(pa.ok());
  REQUIRE(pb.ok());
  RemoteMedia to_b = remote_at(*pb);
  to_b.address = "::1";
  engine.set_remote(1, to_b);
  RemoteMedia to_a = remote_at(*pa);
  to_a.address = "::1";
  engine.set_remote(2, to_a);
  REQUIRE(packets.wait_count(2, 3));
  REQUIRE(events.wait_count(2, MediaEvent::Kind::remote_latched, 1));
  CHECK(events.of(2, MediaEvent::Kind::remote_latched)[0].detail == "[::1]:" + std::to_string(*pa));
  r.value().reset();
}

TEST_CASE("media engine: 200 sessions over 2 threads all send") {
  const size_t count = 200;
  std::vector<std::atomic<uint32_t>> received(count + 1);
  EventLog events;
  Range range = probe_free_range(count + 20);
  MediaEngine::Options o;
  o.port_min = range.min;
  o.port_max = range.max;
  o.threads = 2;
  o.sink = [&](MediaEvent &&e) { events.push(std::move(e)); };
  o.logger = ivr::make_stderr_logger(ivr::LogLevel::warn);
  o.packet_tap = [&](SessionId id, const RtpPacket &) {
    if (id <= count) received[id].fetch_add(1, std::memory_order_relaxed);
  };
  auto r = MediaEngine::create(o);
  REQUIRE(r.ok());
  auto &engine = *r.value();
  std::vector<uint16_t> ports(count + 1);
  for (SessionId id = 1; id <= count; ++id) {
    auto p = engine.open_session(id);
    REQUIRE(p.ok());
    ports[id] = *p;
  }
  CHECK(engine.session_count() == count);
  // Pairs talking to each other (1<->2, 3<->4...), as calls do: symmetric RTP answers the
  // sender, so a ring would fold into pairs anyway.
  for (SessionId id = 1; id <= count; ++id)
    engine.set_remote(id, remote_at(ports[id % 2 ? id + 1 : id - 1]));
  CHECK(eventually(
      [&] {
        for (SessionId id = 1; id <= count; ++id)
          if (received[id].load() < 10) return false;
        return true;
      },
      10s));
  const MediaStats st = engine.stats();
  CHECK(st.packets_sent >= 10 * count);
  CHECK(st.bad_packets == 0);
  CHECK(st.foreign_packets == 0);
  for (SessionId id = 1; id <= count; ++id) engine.close_session(id);
  CHECK(engine.session_count() == 0);
  r.value().reset();
}

TEST_CASE("media engine: a remote that stops sending is reported once, until RTP flows again") {
  Fixture f;
  UdpPeer peer;
  const uint16_t port = f.open(7);
  f.engine->set_remote(7, remote_at(peer.port()));
  f.engine->set_rtp_timeout(7, 150);
  auto timeouts = [&](size_t n) {
    return f.events.wait([&](const std::vector<MediaEvent> &evs) {
      return std::count_if(evs.begin(), evs.end(), [](const MediaEvent &e) {
               return e.session == 7 && e.kind == MediaEvent::Kind::rtp_timeout;
             }) >= static_cast<long>(n);
    });
  };
  REQUIRE(timeouts(1));
  CHECK(f.events.of(7, MediaEvent::Kind::rtp_timeout)[0].detail.rfind("no RTP for ", 0) == 0);
  // Once reported it stays quiet; a packet re-arms it, and silence is reported again.
  peer.send_to(port, make_rtp(0, true, 1, 160, 0x1234, std::vector<uint8_t>(160, 0xFF)));
  REQUIRE(timeouts(2));
  // Off: no more reports after RTP and silence.
  f.engine->set_rtp_timeout(7, 0);
  peer.send_to(port, make_rtp(0, false, 2, 320, 0x1234, std::vector<uint8_t>(160, 0xFF)));
  f.barrier(7);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  CHECK(f.events.of(7, MediaEvent::Kind::rtp_timeout).size() == 2);
}
