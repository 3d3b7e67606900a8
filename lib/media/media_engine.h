// The media runtime: RTP sessions sharded over media threads, each thread one libevent
// loop with one shared pacing timer (10 ms tick, 20 ms frames). No thread per call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/log.h"
#include "common/result.h"
#include "media/dtmf.h"
#include "media/g711.h"
#include "media/prompt.h"
#include "media/rtp_packet.h"

namespace ivr::media {

using SessionId = uint64_t;

enum class Direction : uint8_t { sendrecv, sendonly, recvonly, inactive };  // our view

// Where and how to send, as negotiated by SDP.
struct RemoteMedia {
  std::string address;  // IPv4 or IPv6 literal; "0.0.0.0" = hold (RFC 2543 style)
  uint16_t port = 0;
  Codec codec = Codec::pcmu;
  uint8_t payload_type = 0;                   // as negotiated: 0, 8 or a dynamic 96..127
  int telephone_event_pt = -1;                // -1 when not negotiated
  Direction direction = Direction::sendrecv;  // from OUR point of view
};

enum class PlaybackEnd : uint8_t { completed, stopped, failed };

// Events leave the media threads through MediaEngine::Options::sink. The sink is called on
// a media thread and must only hand the event over (queue + wake), never block.
struct MediaEvent {
  enum class Kind : uint8_t { dtmf, playback_finished, remote_latched, rtp_timeout } kind;
  SessionId session = 0;
  DtmfDigit dtmf{};          // kind == dtmf
  uint64_t playback_id = 0;  // kind == playback_finished
  PlaybackEnd playback_end = PlaybackEnd::completed;
  std::string detail;  // latched address "ip:port" ("[v6]:port"), or a reason
};

// packets_received counts every datagram read on an RTP port; of those, bad_packets did not
// parse, foreign_packets came from another source than the latched one, packets_dropped had
// an unexpected payload type or arrived before set_remote (send failures count there too).
// late_ticks counts resyncs after a stall of more than 100 ms. A packet a bridged session
// accepts but cannot relay (the peer has no usable remote, is on hold, has no
// telephone-event type for an event, or the send fails) counts in packets_dropped.
struct MediaStats {
  uint64_t packets_sent = 0, packets_received = 0, packets_dropped = 0;
  uint64_t bad_packets = 0, foreign_packets = 0, late_ticks = 0;
  uint64_t rtcp_packets = 0;  // RTCP read on RTP+1 or multiplexed on the RTP port (not parsed)
  // Of packets_sent, those sent on a bridged session on behalf of its peer.
  uint64_t packets_relayed = 0;
};

class MediaEngine {
 public:
  struct Options {
    std::string rtp_address = "127.0.0.1";
    uint16_t port_min = 20000, port_max = 30000;  // even ports used for RTP, RTP+1 RTCP
    unsigned threads = 1;
    std::function<void(MediaEvent &&)> sink;
    LoggerPtr logger;
    // Optional: sees every RTP packet a session accepts (after latching and payload-type
    // checks), on the media thread; the payload is valid during the call only. For tests and
    // future recording; must not block.
    std::function<void(SessionId, const RtpPacket &)> packet_tap;
  };

  static Result<std::unique_ptr<MediaEngine>> create(Options options);
  // Stops and joins the media threads, then closes every socket. Must not race with calls to
  // the methods below; the sink and packet_tap are not called once it returns.
  virtual ~MediaEngine() = default;

  // All methods below are thread-safe and never block on the media threads (they post).
  // open_session binds the RTP (and RTCP) sockets synchronously so the port is known.
  // colocate_with (a session id, 0 = none) puts the new session on that session's media
  // thread: sessions to be bridged must share one. Without it a session goes to thread
  // id % threads. Errc::bad_state when id is already open, Errc::not_found when
  // colocate_with is not an open session.
  virtual Result<uint16_t> open_session(SessionId id, SessionId colocate_with = 0) = 0;
  // Starts or updates sending/receiving. Symmetric RTP: the session latches to the source
  // address of the first valid RTP packet it receives and sends there from then on;
  // packets from other sources are dropped and counted after latching.
  virtual void set_remote(SessionId id, const RemoteMedia &remote) = 0;
  // Plays prompt frames paced every 20 ms, replacing any current playback (which ends
  // with PlaybackEnd::stopped). Silence (comfort frames) is sent when nothing plays. On a
  // bridged session the playback ends at once with PlaybackEnd::stopped (it is not queued
  // until the bridge ends): the peer's audio owns the stream.
  virtual void play(SessionId id, std::shared_ptr<const Prompt> prompt, uint64_t playback_id) = 0;
  virtual void stop_playback(SessionId id) = 0;
  virtual void set_inband_dtmf(SessionId id, bool enabled) = 0;
  // Reports MediaEvent::rtp_timeout (once, until RTP flows again) when the session has a
  // remote that should send (sendrecv or recvonly from our view) and no RTP was accepted for
  // `ms` (counted from this call or the last packet). 0 turns it off.
  virtual void set_rtp_timeout(SessionId id, uint32_t ms) = 0;
  virtual void close_session(SessionId id) = 0;

  // Relays media between two sessions of one media thread (the B2BUA's two legs): every RTP
  // packet a accepts is sent on b to b's remote and the other way round, re-stamped with the
  // sending session's SSRC, sequence and timestamp, transcoded when the codecs differ (PCMU
  // <-> PCMA), telephone-events carried over to the other side's payload type (dropped when
  // it has none). DTMF is still reported for both. While bridged a session sends no
  // prompt or comfort frames (a playing prompt ends stopped). Errc::invalid_argument when
  // a == b, Errc::not_found for an unknown session, Errc::bad_state when they are on
  // different threads or one is already bridged.
  // Time stamps: the first packet relayed onto b continues b's own timeline (where its
  // paced frames would be now) and carries the marker bit; later ones keep the source's
  // timestamp deltas (gaps and packet times preserved). A new source SSRC re-anchors.
  virtual Status bridge(SessionId a, SessionId b) = 0;
  // Ends the bridge of `id` and of its peer; both go back to pacing their own frames (from
  // now, the timestamp continuing by the time elapsed, the first frame marked). close_session
  // of either side does the same for the other. Unknown or unbridged id: nothing happens.
  virtual void unbridge(SessionId id) = 0;

  virtual MediaStats stats() const = 0;
  virtual size_t session_count() const = 0;
};

}  // namespace ivr::media
