// Loopback helpers shared by the MediaEngine suites: an engine fixture collecting events and
// tapped packets, a plain UDP peer standing in for a phone, RTP built and read independently
// of the library's code, free port ranges. Every wait is bounded.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
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

#include "common/log.h"
#include "media/g711.h"
#include "media/media_engine.h"
#include "media/prompt.h"

namespace ivr::media::testing {

using namespace std::chrono_literals;

inline constexpr auto kWait =
    std::chrono::seconds(5);  // upper bound for anything that should happen "soon"

// ---- events and received packets, collected from the media threads ----

struct EventLog {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<MediaEvent> events;

  void push(MediaEvent &&e) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      events.push_back(std::move(e));
    }
    cv.notify_all();
  }
  // Waits (bounded) until pred(events) holds.
  bool wait(const std::function<bool(const std::vector<MediaEvent> &)> &pred,
            std::chrono::milliseconds timeout = kWait) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, timeout, [&] { return pred(events); });
  }
  std::vector<MediaEvent> of(SessionId id, MediaEvent::Kind kind) {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<MediaEvent> out;
    for (const auto &e : events)
      if (e.session == id && e.kind == kind) out.push_back(e);
    return out;
  }
  size_t count(SessionId id, MediaEvent::Kind kind) { return of(id, kind).size(); }
  bool wait_count(SessionId id, MediaEvent::Kind kind, size_t n,
                  std::chrono::milliseconds timeout = kWait) {
    return wait(
        [&](const std::vector<MediaEvent> &evs) {
          size_t c = 0;
          for (const auto &e : evs) c += (e.session == id && e.kind == kind);
          return c >= n;
        },
        timeout);
  }
  bool has_playback(SessionId id, uint64_t playback_id) {
    return wait([&](const std::vector<MediaEvent> &evs) {
      for (const auto &e : evs)
        if (e.session == id && e.kind == MediaEvent::Kind::playback_finished &&
            e.playback_id == playback_id)
          return true;
      return false;
    });
  }
};

struct Captured {
  bool marker;
  uint8_t payload_type;
  uint16_t seq;
  uint32_t ts;
  uint32_t ssrc;
  std::vector<uint8_t> payload;
};

struct PacketLog {
  std::mutex mutex;
  std::condition_variable cv;
  std::map<SessionId, std::vector<Captured>> packets;

  void push(SessionId id, const RtpPacket &p) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      packets[id].push_back(Captured{p.marker,
                                     p.payload_type,
                                     p.sequence,
                                     p.timestamp,
                                     p.ssrc,
                                     {p.payload.begin(), p.payload.end()}});
    }
    cv.notify_all();
  }
  bool wait_count(SessionId id, size_t n) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, kWait, [&] { return packets[id].size() >= n; });
  }
  std::vector<Captured> of(SessionId id) {
    std::lock_guard<std::mutex> lock(mutex);
    return packets[id];
  }
};

// Polls a condition (for counters, which have no notification), bounded.
inline bool eventually(const std::function<bool()> &cond,
                       std::chrono::milliseconds timeout = kWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

// ---- ports ----

struct Range {
  uint16_t min = 0, max = 0;
};

inline int bind_udp(const char *ip, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A range of `pairs` RTP/RTCP pairs (even start) whose every port was free when probed. Below
// the kernel's ephemeral range so test sockets bound to port 0 cannot collide with it.
inline Range probe_free_range(unsigned pairs) {
  std::mt19937 rng(std::random_device{}());
  const unsigned span = 2 * pairs;
  for (int attempt = 0; attempt < 200; ++attempt) {
    const unsigned base = 20000 + 2 * (rng() % ((32000 - 20000 - span) / 2));
    std::vector<int> fds;
    bool ok = true;
    for (unsigned p = base; p < base + span && ok; ++p) {
      int fd = bind_udp("127.0.0.1", static_cast<uint16_t>(p));
      if (fd < 0)
        ok = false;
      else
        fds.push_back(fd);
    }
    for (int fd : fds) ::close(fd);
    if (ok) return {static_cast<uint16_t>(base), static_cast<uint16_t>(base + span - 1)};
  }
  FAIL("no free port range found");
  return {};
}

// ---- a plain UDP peer standing in for a phone ----

class UdpPeer {
 public:
  UdpPeer() {
    fd_ = bind_udp("127.0.0.1", 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~UdpPeer() { ::close(fd_); }
  UdpPeer(const UdpPeer &) = delete;
  UdpPeer &operator=(const UdpPeer &) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  void send_to(uint16_t port, const std::vector<uint8_t> &data) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    REQUIRE(::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr *>(&a),
                     sizeof a) == static_cast<ssize_t>(data.size()));
  }
  std::optional<std::vector<uint8_t>> recv(std::chrono::milliseconds timeout = kWait) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    std::vector<uint8_t> buf(4096);
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    buf.resize(static_cast<size_t>(n));
    return buf;
  }
  // Discards whatever is already queued; returns how many datagrams.
  size_t drain() const {
    size_t n = 0;
    uint8_t buf[4096];
    while (::recv(fd_, buf, sizeof buf, MSG_DONTWAIT) >= 0) ++n;
    return n;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Independent of the library's RTP code, so the engine is checked against the RFC, not
// against itself.
inline std::vector<uint8_t> make_rtp(uint8_t pt, bool marker, uint16_t seq, uint32_t ts,
                                     uint32_t ssrc, const std::vector<uint8_t> &payload) {
  std::vector<uint8_t> d(12 + payload.size());
  d[0] = 0x80;
  d[1] = static_cast<uint8_t>((marker ? 0x80 : 0) | pt);
  d[2] = static_cast<uint8_t>(seq >> 8);
  d[3] = static_cast<uint8_t>(seq);
  for (int i = 0; i < 4; ++i) {
    d[4 + i] = static_cast<uint8_t>(ts >> (24 - 8 * i));
    d[8 + i] = static_cast<uint8_t>(ssrc >> (24 - 8 * i));
  }
  std::copy(payload.begin(), payload.end(), d.begin() + 12);
  return d;
}

inline std::optional<Captured> read_rtp(const std::vector<uint8_t> &d) {
  if (d.size() < 12 || (d[0] >> 6) != 2 || (d[0] & 0x3F) != 0) return std::nullopt;
  Captured c;
  c.marker = (d[1] & 0x80) != 0;
  c.payload_type = d[1] & 0x7F;
  c.seq = static_cast<uint16_t>(d[2] << 8 | d[3]);
  c.ts = static_cast<uint32_t>(d[4]) << 24 | static_cast<uint32_t>(d[5]) << 16 |
         static_cast<uint32_t>(d[6]) << 8 | d[7];
  c.ssrc = static_cast<uint32_t>(d[8]) << 24 | static_cast<uint32_t>(d[9]) << 16 |
           static_cast<uint32_t>(d[10]) << 8 | d[11];
  c.payload.assign(d.begin() + 12, d.end());
  return c;
}

// Next RTP packet the peer receives, bounded.
inline Captured next_rtp(const UdpPeer &peer) {
  auto d = peer.recv();
  REQUIRE(d.has_value());
  auto c = read_rtp(*d);
  REQUIRE(c.has_value());
  return *c;
}

// ---- engine and media helpers ----

struct Fixture {
  EventLog events;
  PacketLog packets;
  std::unique_ptr<MediaEngine> engine;
  Range range;
  // The sink stalls the media thread when this playback ends (simulates a stalled machine).
  std::atomic<uint64_t> stall_on{0};

  explicit Fixture(unsigned threads = 1, unsigned pairs = 64, bool tap = true) {
    range = probe_free_range(pairs);
    MediaEngine::Options o;
    o.rtp_address = "127.0.0.1";
    o.port_min = range.min;
    o.port_max = range.max;
    o.threads = threads;
    o.sink = [this](MediaEvent &&e) {
      if (e.kind == MediaEvent::Kind::playback_finished && e.playback_id == stall_on.load())
        std::this_thread::sleep_for(300ms);
      events.push(std::move(e));
    };
    o.logger = ivr::make_stderr_logger(ivr::LogLevel::error);
    if (tap) o.packet_tap = [this](SessionId id, const RtpPacket &p) { packets.push(id, p); };
    auto r = MediaEngine::create(std::move(o));
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    engine = std::move(r.value());
  }
  ~Fixture() { engine.reset(); }  // before the logs the callbacks write to

  uint16_t open(SessionId id, SessionId colocate_with = 0) {
    auto r = engine->open_session(id, colocate_with);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return *r;
  }
  // Every command posted for `id` before this one has run once this returns: an empty
  // prompt completes as soon as the media thread processes it.
  void barrier(SessionId id) {
    static std::atomic<uint64_t> next{1'000'000};
    const uint64_t pb = next++;
    engine->play(id, std::make_shared<Prompt>("empty", std::vector<int16_t>{}), pb);
    REQUIRE(events.has_playback(id, pb));
  }
};

inline RemoteMedia remote_at(uint16_t port, Direction dir = Direction::sendrecv, int te_pt = -1,
                             Codec codec = Codec::pcmu) {
  RemoteMedia r;
  r.address = "127.0.0.1";
  r.port = port;
  r.codec = codec;
  r.payload_type = static_cast<uint8_t>(codec);
  r.telephone_event_pt = te_pt;
  r.direction = dir;
  return r;
}

inline std::shared_ptr<const Prompt> tone_prompt(size_t frames, double hz = 440.0) {
  std::vector<int16_t> s(frames * kSamplesPerFrame);
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = static_cast<int16_t>(6000 * std::sin(2 * std::numbers::pi * hz * double(i) / 8000));
  return std::make_shared<Prompt>("tone", std::move(s));
}

inline bool is_silence(const std::vector<uint8_t> &payload, uint8_t code) {
  if (payload.size() != kSamplesPerFrame) return false;
  for (uint8_t b : payload)
    if (b != code) return false;
  return true;
}

inline std::vector<uint8_t> prompt_frame(const Prompt &p, size_t i, Codec codec = Codec::pcmu) {
  const uint8_t *f = p.frame(codec, i);
  return {f, f + kSamplesPerFrame};
}

inline std::vector<uint8_t> silence_payload() {
  return std::vector<uint8_t>(kSamplesPerFrame, 0xFF);
}

}  // namespace ivr::media::testing
