// One RTP session (one call leg's audio) as a media thread runs it. Every method runs on
// the session's media thread only; nothing here is thread-safe by itself.
#pragma once

#include <sys/socket.h>
#include <time.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>

#include "media/inband_dtmf.h"
#include "media/media_engine.h"
#include "media/telephone_event.h"
#include "media/udp.h"

struct event;
struct event_base;
struct mmsghdr;

namespace ivr::media {

constexpr uint64_t kFrameNs = 20'000'000;    // one 20 ms frame
constexpr uint64_t kResyncNs = 100'000'000;  // later than this: a stall, resync, no burst
constexpr uint64_t kNsPerSample = 125'000;   // 8 kHz RTP clock (G.711, telephone-event)

inline uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Written only by one media thread, read by stats() from any thread.
struct MediaCounters {
  std::atomic<uint64_t> packets_sent{0}, packets_received{0}, packets_dropped{0};
  std::atomic<uint64_t> bad_packets{0}, foreign_packets{0}, late_ticks{0}, rtcp_packets{0};
  std::atomic<uint64_t> packets_relayed{0};

  static void bump(std::atomic<uint64_t> &c, uint64_t n = 1) {
    // Single writer: a relaxed load + store is enough and avoids a locked add per packet.
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// Receive buffers shared by all sessions of a thread (one read runs at a time).
struct RecvBatch {
  static constexpr int kMessages = 32;
  static constexpr size_t kBufferSize = 2048;  // larger than any sane RTP datagram
  std::array<std::array<uint8_t, kBufferSize>, kMessages> buffers{};
  std::array<sockaddr_storage, kMessages> sources{};
};

// What a media thread lends its sessions.
struct SessionContext {
  event_base *base = nullptr;
  MediaCounters *counters = nullptr;
  const MediaEngine::Options *options = nullptr;  // sink, packet_tap, logger
  RecvBatch *recv = nullptr;
  std::mt19937 *rng = nullptr;
  int family = AF_INET;  // of the RTP sockets
};

class RtpSession {
 public:
  // closed is set by close_session on the caller's thread: once set, no event leaves.
  RtpSession(SessionContext &ctx, SessionId id, uint16_t port, UniqueFd rtp, UniqueFd rtcp,
             std::shared_ptr<const std::atomic<bool>> closed, uint64_t now_ns);
  ~RtpSession();
  RtpSession(const RtpSession &) = delete;
  RtpSession &operator=(const RtpSession &) = delete;

  // Registers the socket read events on the thread's base.
  Status start();

  // sdp is the parsed remote.address/port (empty when it did not parse).
  void set_remote(const RemoteMedia &remote, const SockAddr &sdp);
  void play(std::shared_ptr<const Prompt> prompt, uint64_t playback_id);
  void stop_playback();
  void set_inband_dtmf(bool enabled);
  void set_rtp_timeout(uint32_t ms, uint64_t now_ns);

  // Called by the thread's shared pacing timer: sends every frame that is due.
  void on_tick(uint64_t now_ns);

  // The B2BUA relay. Both sessions live on this thread; MediaThread bridges and ends both
  // sides together (also when one closes), so peer_ never dangles.
  void start_bridge(RtpSession *peer);
  // Back to pacing from now_ns: the timestamp continues by the time elapsed since the last
  // relayed packet, the first paced frame carries the marker bit.
  void end_bridge(uint64_t now_ns);
  RtpSession *peer() const { return peer_; }

 private:
  // Kinds of trouble logged once per session, then only counted.
  enum LogOnce : uint32_t {
    log_malformed = 1u << 0,
    log_oversized = 1u << 1,
    log_foreign = 1u << 2,
    log_payload_type = 1u << 3,
    log_telephone_event = 1u << 4,
    log_send = 1u << 5,
    log_recv = 1u << 6,
    log_no_remote = 1u << 7,
    log_family = 1u << 8,
  };
  bool first_time(LogOnce kind);

  static void on_rtp_readable(int fd, short what, void *self);
  static void on_rtcp_readable(int fd, short what, void *self);
  void read_rtp();
  void read_rtcp();
  void handle_datagram(const uint8_t *data, size_t size, const sockaddr_storage &from,
                       socklen_t from_len, bool truncated, uint64_t now_ns);
  // Sends a packet the peer accepted from its remote, re-stamped as ours (on our socket, to
  // our remote). from is the peer's codec.
  void relay(const RtpPacket &in, bool is_event, Codec from, uint64_t now_ns);
  // This session's RTP timestamp for time now_ns, on the timeline its paced frames follow.
  uint32_t timeline_at(uint64_t now_ns) const;
  bool send_datagram(const uint8_t *data, size_t size);  // false: failed (counted, logged once)
  void send_frame();
  bool may_send() const;
  void finish_playback(PlaybackEnd how);
  void emit(MediaEvent &&event);
  void emit_dtmf(const DtmfDigit &digit);

  SessionContext &ctx_;
  SessionId id_;
  uint16_t port_;
  UniqueFd rtp_fd_, rtcp_fd_;
  event *rtp_event_ = nullptr;
  event *rtcp_event_ = nullptr;
  std::shared_ptr<const std::atomic<bool>> closed_;

  // Negotiated remote.
  bool have_remote_ = false;
  // RTP inactivity: reported once when nothing was accepted for rtp_timeout_ns_.
  uint64_t rtp_timeout_ns_ = 0;
  uint64_t last_rx_ns_ = 0;
  bool timeout_reported_ = false;
  RemoteMedia remote_;
  SockAddr sdp_addr_;        // where the SDP says to send (family matched to our socket)
  bool sdp_usable_ = false;  // parsed, not 0.0.0.0, port != 0, family reachable
  SockAddr latched_;         // empty until the first valid packet
  TelephoneEventDecoder te_decoder_;
  std::unique_ptr<InbandDtmfDetector> inband_;

  // Sending. timestamp_ is the RTP timestamp of the frame due at next_send_ns_.
  uint64_t next_send_ns_;
  uint32_t ssrc_;
  uint16_t seq_;
  uint32_t timestamp_;
  bool sent_last_slot_ = false;  // false -> the next packet sent carries the marker bit

  // Relay (bridged). Packets from the peer's source are re-stamped with
  // source timestamp + relay_offset_; the offset is fixed when the first packet of a source
  // SSRC arrives, so the peer's gaps and packet times carry over unchanged.
  RtpSession *peer_ = nullptr;
  bool relay_anchored_ = false;
  bool relay_marker_ = false;  // the next relayed packet carries the marker bit
  uint32_t relay_src_ssrc_ = 0;
  uint32_t relay_offset_ = 0;

  // Playback.
  std::shared_ptr<const Prompt> prompt_;
  uint64_t playback_id_ = 0;
  size_t next_frame_ = 0;

  uint32_t logged_ = 0;
};

}  // namespace ivr::media
