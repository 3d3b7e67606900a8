// The B2BUA media relay (MediaEngine::bridge) over real UDP sockets on loopback: two plain
// sockets stand in for the caller and the dialing system, the engine relays between its two
// sessions. Every wait is bounded; nothing asserts on speed.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "media/g711.h"
#include "media/media_engine.h"
#include "media/prompt.h"
#include "media_loopback.h"

using namespace ivr::media;
using namespace ivr::media::testing;
using namespace std::chrono_literals;

namespace {

// Reads whatever is queued at the peer now; returns the last RTP packet, if any.
std::optional<Captured> drain_last(const UdpPeer &peer) {
  std::optional<Captured> last;
  while (auto d = peer.recv(0ms))
    if (auto c = read_rtp(*d)) last = c;
  return last;
}

std::vector<uint8_t> pattern_payload(size_t n, uint8_t seed) {
  std::vector<uint8_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(seed + i * 7);
  return p;
}

std::vector<uint8_t> converted(const std::vector<uint8_t> &in, Codec from, Codec to) {
  std::vector<uint8_t> out(in.size());
  for (size_t i = 0; i < in.size(); ++i)
    out[i] = to == Codec::pcma ? linear_to_alaw(ulaw_to_linear(in[i]))
                               : linear_to_ulaw(alaw_to_linear(in[i]));
  if (from == to) out = in;
  return out;
}

std::vector<uint8_t> event_payload(uint8_t event, bool end, uint16_t duration) {
  return {event, static_cast<uint8_t>((end ? 0x80 : 0) | 10), static_cast<uint8_t>(duration >> 8),
          static_cast<uint8_t>(duration)};
}

int32_t ts_diff(uint32_t later, uint32_t earlier) {
  return static_cast<int32_t>(later - earlier);
}

// Two media threads; the caller's leg a (id 1, thread 1) and the dialing system's leg b
// (id 4: plain sharding would put it on thread 0) opened next to a.
struct Bridged {
  Fixture f{2};
  UdpPeer caller, dialer;
  SessionId a = 1, b = 4;
  uint16_t port_a = 0, port_b = 0;
  Captured last_a{}, last_b{};  // the last paced frame each peer got before the bridge

  Bridged(Codec codec_a = Codec::pcmu, Codec codec_b = Codec::pcmu, int te_a = -1, int te_b = -1,
          bool bridge_now = true) {
    port_a = f.open(a);
    port_b = f.open(b, a);
    f.engine->set_remote(a, remote_at(caller.port(), Direction::sendrecv, te_a, codec_a));
    f.engine->set_remote(b, remote_at(dialer.port(), Direction::sendrecv, te_b, codec_b));
    // Both legs pace comfort frames until bridged: learn their SSRCs and sequence numbers.
    last_a = next_rtp(caller);
    last_b = next_rtp(dialer);
    if (bridge_now) bridge();
  }

  void bridge() {
    auto st = f.engine->bridge(a, b);
    REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error().message));
    // The barrier's empty prompt runs after the bridge command (same thread, same queue):
    // every paced frame sent before the bridge is then already queued at the peers.
    f.barrier(a);
    if (auto la = drain_last(caller)) last_a = *la;
    if (auto lb = drain_last(dialer)) last_b = *lb;
  }
};

}  // namespace

TEST_CASE("media relay: same codec both ways, re-stamped as the sending leg") {
  Bridged t;
  const uint32_t src_ssrc = 0xCAFE0001;
  const auto p1 = pattern_payload(160, 1), p2 = pattern_payload(160, 2);
  const auto p3 = pattern_payload(240, 3), p4 = pattern_payload(160, 4);

  t.caller.send_to(t.port_a, make_rtp(0, false, 1000, 50'000, src_ssrc, p1));
  const Captured r1 = next_rtp(t.dialer);
  CHECK(r1.ssrc == t.last_b.ssrc);
  CHECK(r1.payload_type == 0);
  CHECK(r1.seq == static_cast<uint16_t>(t.last_b.seq + 1));
  CHECK(r1.marker);  // first relayed packet
  // Continues b's own timeline: not before the frame after its last paced one.
  CHECK(ts_diff(r1.ts, t.last_b.ts) >= 160);
  CHECK(ts_diff(r1.ts, t.last_b.ts) < 8000 * 30);
  CHECK(r1.payload == p1);

  // Next packet, then a gap of three lost packets, then a 30 ms packet: the source's
  // timestamp deltas carry over, sequence numbers stay contiguous on b's side.
  t.caller.send_to(t.port_a, make_rtp(0, false, 1001, 50'160, src_ssrc, p2));
  t.caller.send_to(t.port_a, make_rtp(0, false, 1005, 50'800, src_ssrc, p3));
  t.caller.send_to(t.port_a, make_rtp(0, true, 1006, 51'040, src_ssrc, p4));
  const Captured r2 = next_rtp(t.dialer), r3 = next_rtp(t.dialer), r4 = next_rtp(t.dialer);
  CHECK(r2.seq == static_cast<uint16_t>(r1.seq + 1));
  CHECK(r3.seq == static_cast<uint16_t>(r1.seq + 2));
  CHECK(r4.seq == static_cast<uint16_t>(r1.seq + 3));
  CHECK(ts_diff(r2.ts, r1.ts) == 160);
  CHECK(ts_diff(r3.ts, r1.ts) == 800);
  CHECK(ts_diff(r4.ts, r1.ts) == 1040);
  CHECK_FALSE(r2.marker);
  CHECK_FALSE(r3.marker);
  CHECK(r4.marker);  // the source's marker (start of a talkspurt) is kept
  CHECK(r2.payload == p2);
  CHECK(r3.payload == p3);
  CHECK(r4.payload == p4);
  for (const auto &r : {r2, r3, r4}) {
    CHECK(r.ssrc == t.last_b.ssrc);
    CHECK(r.payload_type == 0);
  }

  // The reverse direction: the dialing system's audio reaches the caller as a's stream.
  const auto q1 = pattern_payload(160, 9);
  t.dialer.send_to(t.port_b, make_rtp(0, false, 7, 123, 0xD1A1, q1));
  const Captured s1 = next_rtp(t.caller);
  CHECK(s1.ssrc == t.last_a.ssrc);
  CHECK(s1.payload_type == 0);
  CHECK(s1.seq == static_cast<uint16_t>(t.last_a.seq + 1));
  CHECK(s1.marker);
  CHECK(ts_diff(s1.ts, t.last_a.ts) >= 160);
  CHECK(s1.payload == q1);

  // The relay still feeds the tap (the path of DTMF detection) for both legs.
  CHECK(t.f.packets.wait_count(t.a, 4));
  CHECK(t.f.packets.wait_count(t.b, 1));
  CHECK(eventually([&] { return t.f.engine->stats().packets_relayed == 5; }));
  // While bridged the legs send nothing of their own (no comfort frames): only the relayed
  // packets arrived above, and nothing more comes.
  CHECK_FALSE(t.dialer.recv(200ms).has_value());
  CHECK_FALSE(t.caller.recv(10ms).has_value());
}

TEST_CASE("media relay: PCMU caller to PCMA dialing system is transcoded both ways") {
  Bridged t(Codec::pcmu, Codec::pcma);
  std::vector<uint8_t> all(256);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint8_t>(i);  // every code

  t.caller.send_to(t.port_a, make_rtp(0, false, 1, 1000, 0x1111, all));
  const Captured r = next_rtp(t.dialer);
  CHECK(r.payload_type == 8);
  CHECK(r.ssrc == t.last_b.ssrc);
  CHECK(r.payload == converted(all, Codec::pcmu, Codec::pcma));

  t.dialer.send_to(t.port_b, make_rtp(8, false, 1, 1000, 0x2222, all));
  const Captured s = next_rtp(t.caller);
  CHECK(s.payload_type == 0);
  CHECK(s.ssrc == t.last_a.ssrc);
  CHECK(s.payload == converted(all, Codec::pcma, Codec::pcmu));

  // Silence stays silence across the laws.
  t.caller.send_to(t.port_a, make_rtp(0, false, 2, 1160, 0x1111, silence_payload()));
  CHECK(is_silence(next_rtp(t.dialer).payload, 0xD5));
}

TEST_CASE("media relay: telephone-events are mapped to the peer's type, DTMF still reported") {
  // Caller offers telephone-event on 101, the dialing system on 96.
  Bridged t(Codec::pcmu, Codec::pcmu, 101, 96);
  const uint32_t src_ssrc = 0xABCD;
  t.caller.send_to(t.port_a, make_rtp(0, false, 10, 8000, src_ssrc, silence_payload()));
  const Captured audio = next_rtp(t.dialer);

  // Digit 5 at source timestamp 8160: start (marked), update, end three times.
  uint16_t seq = 11;
  t.caller.send_to(t.port_a,
                   make_rtp(101, true, seq++, 8160, src_ssrc, event_payload(5, false, 160)));
  t.caller.send_to(t.port_a,
                   make_rtp(101, false, seq++, 8160, src_ssrc, event_payload(5, false, 320)));
  for (int i = 0; i < 3; ++i)
    t.caller.send_to(t.port_a,
                     make_rtp(101, false, seq++, 8160, src_ssrc, event_payload(5, true, 800)));
  std::vector<Captured> ev;
  for (int i = 0; i < 5; ++i) ev.push_back(next_rtp(t.dialer));
  for (size_t i = 0; i < ev.size(); ++i) {
    CAPTURE(i);
    CHECK(ev[i].payload_type == 96);
    CHECK(ev[i].ssrc == t.last_b.ssrc);
    CHECK(ev[i].seq == static_cast<uint16_t>(audio.seq + 1 + i));
    CHECK(ts_diff(ev[i].ts, audio.ts) == 160);  // same mapping as the audio
    CHECK(ev[i].marker == (i == 0));
  }
  CHECK(ev[0].payload == event_payload(5, false, 160));
  CHECK(ev[4].payload == event_payload(5, true, 800));

  REQUIRE(t.f.events.wait_count(t.a, MediaEvent::Kind::dtmf, 1));
  const auto digits = t.f.events.of(t.a, MediaEvent::Kind::dtmf);
  CHECK(digits[0].dtmf.digit == '5');
  CHECK(digits[0].dtmf.source == DtmfSource::rfc4733);

  // The other way, digit 9 on 96, reaches the caller on 101, and b reports it.
  t.dialer.send_to(t.port_b, make_rtp(96, true, 1, 400, 0x77, event_payload(9, true, 800)));
  const Captured back = next_rtp(t.caller);
  CHECK(back.payload_type == 101);
  CHECK(back.ssrc == t.last_a.ssrc);
  CHECK(back.payload == event_payload(9, true, 800));
  REQUIRE(t.f.events.wait_count(t.b, MediaEvent::Kind::dtmf, 1));
  CHECK(t.f.events.of(t.b, MediaEvent::Kind::dtmf)[0].dtmf.digit == '9');
}

TEST_CASE("media relay: telephone-events are dropped when the peer negotiated none") {
  Bridged t(Codec::pcmu, Codec::pcmu, 101, -1);
  const uint64_t dropped = t.f.engine->stats().packets_dropped;
  t.caller.send_to(t.port_a, make_rtp(101, true, 1, 800, 0x5, event_payload(3, true, 800)));
  REQUIRE(t.f.events.wait_count(t.a, MediaEvent::Kind::dtmf, 1));  // still detected on a
  CHECK(eventually([&] { return t.f.engine->stats().packets_dropped == dropped + 1; }));
  CHECK_FALSE(t.dialer.recv(100ms).has_value());
  CHECK(t.f.engine->stats().packets_relayed == 0);
  // Audio still passes.
  t.caller.send_to(t.port_a, make_rtp(0, false, 2, 960, 0x5, silence_payload()));
  CHECK(next_rtp(t.dialer).payload_type == 0);
}

TEST_CASE("media relay: unbridge and close bring pacing back") {
  Bridged t;
  t.caller.send_to(t.port_a, make_rtp(0, false, 1, 100, 0x42, pattern_payload(160, 5)));
  const Captured relayed = next_rtp(t.dialer);

  t.f.engine->unbridge(t.b);  // either side ends it for both
  // Comfort frames again on both legs (only that some arrive: no timing asserted).
  const Captured p1 = next_rtp(t.dialer);
  const Captured p2 = next_rtp(t.dialer);
  CHECK(p1.ssrc == t.last_b.ssrc);
  CHECK(p1.marker);  // first paced frame after the bridge
  CHECK(p1.seq == static_cast<uint16_t>(relayed.seq + 1));
  CHECK(ts_diff(p1.ts, relayed.ts) >= 160);  // the timestamp continues forward
  CHECK(is_silence(p1.payload, 0xFF));
  CHECK(p2.seq == static_cast<uint16_t>(p1.seq + 1));
  CHECK(ts_diff(p2.ts, p1.ts) == 160);
  const uint32_t ssrc_a = t.last_a.ssrc;
  t.last_b = p2;  // bridge() below moves these on to any frame paced meanwhile
  t.last_a = next_rtp(t.caller);
  CHECK(t.last_a.ssrc == ssrc_a);
  // Unbridged: the caller's audio no longer reaches the dialing system.
  const uint64_t relayed_count = t.f.engine->stats().packets_relayed;
  t.caller.send_to(t.port_a, make_rtp(0, false, 2, 260, 0x42, pattern_payload(160, 6)));
  REQUIRE(t.f.packets.wait_count(t.a, 2));
  for (int i = 0; i < 5; ++i) {  // about 100 ms of b's own frames: silence only
    const Captured own = next_rtp(t.dialer);
    CHECK(is_silence(own.payload, 0xFF));
    t.last_b = own;
  }
  CHECK(t.f.engine->stats().packets_relayed == relayed_count);
  // unbridge of an unbridged or unknown session does nothing.
  t.f.engine->unbridge(t.a);
  t.f.engine->unbridge(12345);

  // Bridge again, then close a: b goes back to pacing and can be bridged anew.
  t.bridge();
  CHECK_FALSE(t.dialer.recv(100ms).has_value());
  t.f.engine->close_session(t.a);
  const Captured after_close = next_rtp(t.dialer);
  CHECK(after_close.ssrc == t.last_b.ssrc);
  CHECK(after_close.marker);
  CHECK(after_close.seq == static_cast<uint16_t>(t.last_b.seq + 1));
  const SessionId c = 5;
  t.f.open(c, t.b);
  auto st = t.f.engine->bridge(t.b, c);
  CHECK_MESSAGE(st.ok(), (st.ok() ? "" : st.error().message));
}

TEST_CASE("media relay: bridge and open_session errors") {
  Fixture f(2);
  const SessionId a = 1, b = 4, other = 6, d = 8;
  f.open(a);
  f.open(b, a);
  f.open(other);  // 6 % 2 == 0: the other thread from a's (1)

  auto colocated = f.engine->open_session(10, 77);
  REQUIRE_FALSE(colocated.ok());
  CHECK(colocated.error().code == ivr::Errc::not_found);
  CHECK(colocated.error().message.find("77") != std::string::npos);
  CHECK(f.engine->session_count() == 3);  // nothing opened, no port taken

  auto st = f.engine->bridge(a, a);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == ivr::Errc::invalid_argument);
  st = f.engine->bridge(a, 99);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == ivr::Errc::not_found);
  CHECK(st.error().message.find("99") != std::string::npos);
  st = f.engine->bridge(99, a);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == ivr::Errc::not_found);
  st = f.engine->bridge(a, other);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == ivr::Errc::bad_state);
  CHECK(st.error().message.find("different media threads") != std::string::npos);

  REQUIRE(f.engine->bridge(a, b).ok());
  f.open(d, b);  // 8 % 2 == 0, but colocation follows the chain: d is on a's thread
  st = f.engine->bridge(b, a);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == ivr::Errc::bad_state);
  st = f.engine->bridge(d, a);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == ivr::Errc::bad_state);
  CHECK(st.error().message.find("already bridged") != std::string::npos);

  // Closing a frees b for another bridge; a closed session cannot be colocated with.
  f.engine->close_session(a);
  CHECK(f.engine->bridge(b, d).ok());
  auto reopened = f.engine->open_session(11, a);
  REQUIRE_FALSE(reopened.ok());
  CHECK(reopened.error().code == ivr::Errc::not_found);
}

TEST_CASE("media relay: prompts end stopped when bridged") {
  Bridged t(Codec::pcmu, Codec::pcmu, -1, -1, false);
  t.f.engine->play(t.b, tone_prompt(250), 42);  // 5 s: still playing when the bridge starts
  REQUIRE(t.f.engine->bridge(t.a, t.b).ok());
  REQUIRE(t.f.events.has_playback(t.b, 42));
  auto ends = t.f.events.of(t.b, MediaEvent::Kind::playback_finished);
  REQUIRE(ends.size() == 1);
  CHECK(ends[0].playback_end == PlaybackEnd::stopped);

  // play() on a bridged session ends at once, stopped, and sends nothing.
  t.f.barrier(t.a);
  drain_last(t.caller);
  t.f.engine->play(t.a, tone_prompt(10), 43);
  REQUIRE(t.f.events.has_playback(t.a, 43));
  for (const auto &e : t.f.events.of(t.a, MediaEvent::Kind::playback_finished))
    if (e.playback_id == 43) CHECK(e.playback_end == PlaybackEnd::stopped);
  CHECK_FALSE(t.caller.recv(100ms).has_value());
}

TEST_CASE("media relay: a peer without a usable remote drops the packet") {
  Fixture f(2);
  UdpPeer caller;
  const SessionId a = 3, b = 8;  // different shards without colocation
  const uint16_t port_a = f.open(a);
  f.open(b, a);
  f.engine->set_remote(a, remote_at(caller.port()));
  REQUIRE(f.engine->bridge(a, b).ok());
  f.barrier(a);
  caller.send_to(port_a, make_rtp(0, false, 1, 0, 0x9, silence_payload()));
  REQUIRE(f.packets.wait_count(a, 1));
  CHECK(eventually([&] { return f.engine->stats().packets_dropped >= 1; }));
  CHECK(f.engine->stats().packets_relayed == 0);

  // Once b has a remote, the next packet goes through.
  UdpPeer dialer;
  f.engine->set_remote(b, remote_at(dialer.port()));
  caller.send_to(port_a, make_rtp(0, false, 2, 160, 0x9, silence_payload()));
  const Captured r = next_rtp(dialer);
  CHECK(r.marker);
  CHECK(r.payload_type == 0);
  CHECK(eventually([&] { return f.engine->stats().packets_relayed == 1; }));
}
