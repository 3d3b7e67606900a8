#include "media/rtp_session.h"

#include <algorithm>

#include <event2/event.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace ivr::media {

namespace {

constexpr int kMaxReadRounds = 4;  // recvmmsg calls per wake-up: bounded, level-triggered
constexpr int kMaxRtcpReads = 16;

const uint8_t *silence_frame(Codec codec) {
  // G.711 codes for a zero sample: 0xFF (mu-law), 0xD5 (A-law).
  static const auto ulaw = [] {
    std::array<uint8_t, kSamplesPerFrame> f;
    f.fill(0xFF);
    return f;
  }();
  static const auto alaw = [] {
    std::array<uint8_t, kSamplesPerFrame> f;
    f.fill(0xD5);
    return f;
  }();
  return codec == Codec::pcma ? alaw.data() : ulaw.data();
}

}  // namespace

RtpSession::RtpSession(SessionContext &ctx, SessionId id, uint16_t port, UniqueFd rtp,
                       UniqueFd rtcp, std::shared_ptr<const std::atomic<bool>> closed,
                       uint64_t now_ns)
    : ctx_(ctx),
      id_(id),
      port_(port),
      rtp_fd_(std::move(rtp)),
      rtcp_fd_(std::move(rtcp)),
      closed_(std::move(closed)),
      next_send_ns_(now_ns),
      ssrc_(static_cast<uint32_t>((*ctx.rng)())),
      seq_(static_cast<uint16_t>((*ctx.rng)())),
      timestamp_(static_cast<uint32_t>((*ctx.rng)())) {}

RtpSession::~RtpSession() {
  // Events go before their sockets (members close the fds after this body).
  if (rtp_event_) event_free(rtp_event_);
  if (rtcp_event_) event_free(rtcp_event_);
}

Status RtpSession::start() {
  rtp_event_ =
      event_new(ctx_.base, rtp_fd_.get(), EV_READ | EV_PERSIST, &RtpSession::on_rtp_readable, this);
  rtcp_event_ = event_new(ctx_.base, rtcp_fd_.get(), EV_READ | EV_PERSIST,
                          &RtpSession::on_rtcp_readable, this);
  if (!rtp_event_ || !rtcp_event_ || event_add(rtp_event_, nullptr) != 0 ||
      event_add(rtcp_event_, nullptr) != 0)
    return Status(Errc::internal,
                  "libevent: cannot register the RTP sockets of session " + std::to_string(id_));
  IVR_LOG(ctx_.options->logger, debug, "media", "session %llu: RTP on port %u, RTCP on %u",
          static_cast<unsigned long long>(id_), static_cast<unsigned>(port_),
          static_cast<unsigned>(port_) + 1);
  return Status::success();
}

bool RtpSession::first_time(LogOnce kind) {
  if (logged_ & kind) return false;
  logged_ |= kind;
  return true;
}

void RtpSession::set_remote(const RemoteMedia &remote, const SockAddr &sdp) {
  const bool address_changed =
      !have_remote_ || remote.address != remote_.address || remote.port != remote_.port;
  if (address_changed) {
    // A new media address (re-INVITE): forget the latch and the old stream's DTMF state;
    // send to the SDP address until a packet arrives from the new peer.
    latched_ = SockAddr{};
    te_decoder_ = TelephoneEventDecoder{};
  } else if (remote.telephone_event_pt != remote_.telephone_event_pt) {
    te_decoder_ = TelephoneEventDecoder{};
  }
  have_remote_ = true;
  remote_ = remote;
  sdp_addr_ = sdp;
  sdp_usable_ = !sdp.empty() && sdp.port() != 0 && !sdp.is_unspecified();
  if (sdp_usable_ && ctx_.family == AF_INET6 && sdp.family() == AF_INET) {
    sdp_addr_ = sdp.to_v4_mapped();  // dual-stack socket reaching an IPv4 peer
  } else if (sdp_usable_ && ctx_.family != sdp.family()) {
    sdp_usable_ = false;
    if (first_time(log_family))
      IVR_LOG(ctx_.options->logger, warn, "media",
              "session %llu: cannot send to %s from an RTP socket of another address family",
              static_cast<unsigned long long>(id_), sdp.to_string().c_str());
  }
}

void RtpSession::play(std::shared_ptr<const Prompt> prompt, uint64_t playback_id) {
  finish_playback(PlaybackEnd::stopped);  // the replaced one, if any
  if (!prompt) {
    MediaEvent ev{MediaEvent::Kind::playback_finished,
                  id_,
                  {},
                  playback_id,
                  PlaybackEnd::failed,
                  "no prompt"};
    emit(std::move(ev));
    return;
  }
  if (peer_) {
    // Bridged: the peer's audio owns the stream. Ended now rather than queued until the
    // bridge ends, so the flow never waits on a prompt nobody hears.
    MediaEvent ev{MediaEvent::Kind::playback_finished,
                  id_,
                  {},
                  playback_id,
                  PlaybackEnd::stopped,
                  "session is bridged"};
    emit(std::move(ev));
    return;
  }
  prompt_ = std::move(prompt);
  playback_id_ = playback_id;
  next_frame_ = 0;
  if (prompt_->frame_count() == 0) finish_playback(PlaybackEnd::completed);
}

void RtpSession::stop_playback() {
  finish_playback(PlaybackEnd::stopped);
}

void RtpSession::set_inband_dtmf(bool enabled) {
  if (enabled && !inband_) inband_ = std::make_unique<InbandDtmfDetector>();
  if (!enabled) inband_.reset();
}

void RtpSession::finish_playback(PlaybackEnd how) {
  if (!prompt_) return;
  prompt_.reset();
  MediaEvent ev{MediaEvent::Kind::playback_finished, id_, {}, playback_id_, how, {}};
  emit(std::move(ev));
}

void RtpSession::emit(MediaEvent &&event) {
  if (closed_->load(std::memory_order_acquire)) return;  // closed: end silently
  if (ctx_.options->sink) ctx_.options->sink(std::move(event));
}

void RtpSession::emit_dtmf(const DtmfDigit &digit) {
  MediaEvent ev{MediaEvent::Kind::dtmf, id_, digit, 0, PlaybackEnd::completed, {}};
  emit(std::move(ev));
}

bool RtpSession::may_send() const {
  return have_remote_ && sdp_usable_ &&
         (remote_.direction == Direction::sendrecv || remote_.direction == Direction::sendonly);
}

void RtpSession::set_rtp_timeout(uint32_t ms, uint64_t now_ns) {
  rtp_timeout_ns_ = uint64_t{ms} * 1'000'000;
  last_rx_ns_ = std::max(last_rx_ns_, now_ns);
  timeout_reported_ = false;
}

void RtpSession::on_tick(uint64_t now_ns) {
  if (have_remote_ && remote_.telephone_event_pt >= 0) {
    if (auto digit = te_decoder_.on_tick(now_ns / 1'000'000)) emit_dtmf(*digit);
  }
  // A peer that should send and has gone quiet (vanished, crashed, unplugged): say so once.
  if (rtp_timeout_ns_ && !timeout_reported_ && have_remote_ &&
      (remote_.direction == Direction::sendrecv || remote_.direction == Direction::recvonly) &&
      now_ns - last_rx_ns_ > rtp_timeout_ns_) {
    timeout_reported_ = true;
    MediaEvent ev{MediaEvent::Kind::rtp_timeout, id_, {}, 0, PlaybackEnd::completed, {}};
    ev.detail = "no RTP for " + std::to_string((now_ns - last_rx_ns_) / 1'000'000) + " ms";
    emit(std::move(ev));
  }
  if (peer_) return;  // bridged: only relayed packets leave, the relay keeps the timeline
  if (now_ns < next_send_ns_) return;
  const uint64_t late = now_ns - next_send_ns_;
  if (late > kResyncNs) {
    // The thread stalled: do not burst the backlog at the peer. Skip the missed slots (the
    // RTP clock still follows real time, so the receiver sees a gap, not compressed audio);
    // the prompt resumes where it was.
    MediaCounters::bump(ctx_.counters->late_ticks);
    const uint64_t skipped = late / kFrameNs;
    next_send_ns_ += skipped * kFrameNs;
    timestamp_ += static_cast<uint32_t>(skipped * kSamplesPerFrame);
  }
  // Advance by exactly one frame per send so pacing never drifts from the monotonic clock.
  while (next_send_ns_ <= now_ns) {
    send_frame();
    next_send_ns_ += kFrameNs;
  }
}

void RtpSession::send_frame() {
  const Codec codec = remote_.codec;
  const uint8_t *payload = silence_frame(codec);
  bool last = false;
  // A prompt advances with time whether or not the frame can be sent (hold, recvonly, no
  // remote yet): the flow's notion of "the prompt has played" stays tied to the clock, so
  // a prompt started before or during hold ends on time instead of resuming mid-way later.
  if (prompt_) {
    if (next_frame_ < prompt_->frame_count()) payload = prompt_->frame(codec, next_frame_++);
    last = next_frame_ >= prompt_->frame_count();
  }
  if (may_send()) {
    RtpPacket packet;
    packet.payload_type = remote_.payload_type;
    packet.marker = !sent_last_slot_;  // first packet, or first after a resume
    packet.sequence = seq_;
    packet.timestamp = timestamp_;
    packet.ssrc = ssrc_;
    packet.payload = std::span<const uint8_t>(payload, kSamplesPerFrame);
    uint8_t buf[12 + kSamplesPerFrame];
    const size_t len = build_rtp(packet, buf);
    if (send_datagram(buf, len)) MediaCounters::bump(ctx_.counters->packets_sent);
    ++seq_;
    sent_last_slot_ = true;
  } else {
    sent_last_slot_ = false;
  }
  timestamp_ += kSamplesPerFrame;
  if (last) finish_playback(PlaybackEnd::completed);
}

bool RtpSession::send_datagram(const uint8_t *data, size_t size) {
  const SockAddr &to = latched_.empty() ? sdp_addr_ : latched_;
  const ssize_t n = ::sendto(rtp_fd_.get(), data, size, MSG_DONTWAIT | MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr *>(&to.storage), to.length);
  if (n >= 0) return true;
  MediaCounters::bump(ctx_.counters->packets_dropped);
  if (first_time(log_send))
    IVR_LOG(ctx_.options->logger, warn, "media",
            "session %llu: sending RTP to %s failed: %s (further failures only counted)",
            static_cast<unsigned long long>(id_), to.to_string().c_str(), std::strerror(errno));
  return false;
}

void RtpSession::start_bridge(RtpSession *peer) {
  finish_playback(PlaybackEnd::stopped);
  peer_ = peer;
  relay_anchored_ = false;
}

void RtpSession::end_bridge(uint64_t now_ns) {
  peer_ = nullptr;
  relay_anchored_ = false;
  // Pacing resumes now, not in a burst for the bridged time; the timestamp keeps real time.
  timestamp_ = timeline_at(now_ns);
  if (now_ns > next_send_ns_) next_send_ns_ = now_ns;
  sent_last_slot_ = false;  // the first paced frame carries the marker bit
}

uint32_t RtpSession::timeline_at(uint64_t now_ns) const {
  if (now_ns <= next_send_ns_) return timestamp_;
  return timestamp_ + static_cast<uint32_t>((now_ns - next_send_ns_) / kNsPerSample);
}

void RtpSession::relay(const RtpPacket &in, bool is_event, Codec from, uint64_t now_ns) {
  MediaCounters &c = *ctx_.counters;
  // Closed (close_session returned, the close command not run yet), no usable remote yet,
  // or on hold: nothing to send to.
  if (closed_->load(std::memory_order_acquire) || !may_send() ||
      (is_event && remote_.telephone_event_pt < 0)) {
    MediaCounters::bump(c.packets_dropped);
    return;
  }
  if (!relay_anchored_ || in.ssrc != relay_src_ssrc_) {
    // A new source stream continues our timeline from where our own frames would be now.
    relay_offset_ = timeline_at(now_ns) - in.timestamp;
    relay_src_ssrc_ = in.ssrc;
    relay_anchored_ = true;
    relay_marker_ = true;
  }
  RtpPacket out;
  out.marker = in.marker || relay_marker_;  // RFC 4733 marks an event's first packet
  out.sequence = seq_;
  out.timestamp = in.timestamp + relay_offset_;
  out.ssrc = ssrc_;
  out.payload = in.payload;
  uint8_t transcoded[RecvBatch::kBufferSize];
  if (is_event) {
    out.payload_type = static_cast<uint8_t>(remote_.telephone_event_pt);  // same event payload
  } else {
    out.payload_type = remote_.payload_type;
    if (from != remote_.codec) {
      transcode(from, remote_.codec, in.payload, transcoded);
      out.payload = std::span<const uint8_t>(transcoded, in.payload.size());
    }
  }
  uint8_t buf[12 + RecvBatch::kBufferSize];
  const size_t len = build_rtp(out, buf);
  if (len == 0) {  // cannot happen: the payload came from a buffer of this size
    MediaCounters::bump(c.packets_dropped);
    return;
  }
  ++seq_;
  if (!send_datagram(buf, len)) return;
  MediaCounters::bump(c.packets_sent);
  MediaCounters::bump(c.packets_relayed);
  relay_marker_ = false;
  if (!is_event) {
    // Keep the paced timeline at the end of the newest audio sent (G.711: one byte per
    // sample), so unbridging or a new source continues from here by elapsed time.
    const auto samples = static_cast<uint32_t>(in.payload.size());
    const uint32_t end = out.timestamp + samples;
    if (static_cast<int32_t>(end - timestamp_) > 0) {
      timestamp_ = end;
      next_send_ns_ = now_ns + samples * kNsPerSample;
    }
  }
}

void RtpSession::on_rtp_readable(int, short, void *self) {
  static_cast<RtpSession *>(self)->read_rtp();
}

void RtpSession::on_rtcp_readable(int, short, void *self) {
  static_cast<RtpSession *>(self)->read_rtcp();
}

void RtpSession::read_rtp() {
  RecvBatch &rb = *ctx_.recv;
  mmsghdr msgs[RecvBatch::kMessages];
  iovec iov[RecvBatch::kMessages];
  for (int round = 0; round < kMaxReadRounds; ++round) {
    for (int i = 0; i < RecvBatch::kMessages; ++i) {
      iov[i].iov_base = rb.buffers[i].data();
      iov[i].iov_len = RecvBatch::kBufferSize;
      msgs[i] = mmsghdr{};
      msgs[i].msg_hdr.msg_name = &rb.sources[i];
      msgs[i].msg_hdr.msg_namelen = sizeof rb.sources[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::recvmmsg(rtp_fd_.get(), msgs, RecvBatch::kMessages, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK && first_time(log_recv))
        IVR_LOG(ctx_.options->logger, warn, "media", "session %llu: reading RTP failed: %s",
                static_cast<unsigned long long>(id_), std::strerror(errno));
      return;
    }
    const uint64_t now_ns = monotonic_ns();  // one clock read per batch (relay timestamps)
    for (int i = 0; i < n; ++i)
      handle_datagram(rb.buffers[i].data(), msgs[i].msg_len, rb.sources[i],
                      msgs[i].msg_hdr.msg_namelen, (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0,
                      now_ns);
    if (n < RecvBatch::kMessages) return;  // drained
  }
  // Still data: the read event is level-triggered and fires again after other work runs.
}

void RtpSession::read_rtcp() {
  // Read and counted only: sending and parsing RTCP reports is not implemented yet.
  uint8_t buf[RecvBatch::kBufferSize];
  for (int i = 0; i < kMaxRtcpReads; ++i) {
    const ssize_t n = ::recv(rtcp_fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    MediaCounters::bump(ctx_.counters->rtcp_packets);
  }
}

void RtpSession::handle_datagram(const uint8_t *data, size_t size, const sockaddr_storage &from,
                                 socklen_t from_len, bool truncated, uint64_t now_ns) {
  MediaCounters &c = *ctx_.counters;
  const auto &logger = ctx_.options->logger;
  const auto sid = static_cast<unsigned long long>(id_);
  MediaCounters::bump(c.packets_received);
  const SockAddr source = SockAddr::from(reinterpret_cast<const sockaddr *>(&from), from_len);
  if (truncated) {
    MediaCounters::bump(c.bad_packets);
    if (first_time(log_oversized))
      IVR_LOG(logger, warn, "media",
              "session %llu: dropping a datagram larger than %zu bytes from %s (further ones "
              "only counted)",
              sid, RecvBatch::kBufferSize, source.to_string().c_str());
    return;
  }
  const std::span<const uint8_t> datagram(data, size);
  if (looks_like_rtcp(datagram)) {  // rtcp-mux: not parsed yet
    MediaCounters::bump(c.rtcp_packets);
    return;
  }
  auto parsed = parse_rtp(datagram);
  if (!parsed) {
    MediaCounters::bump(c.bad_packets);
    if (first_time(log_malformed))
      IVR_LOG(logger, warn, "media",
              "session %llu: dropping malformed RTP from %s: %s (further ones only counted)", sid,
              source.to_string().c_str(), parsed.error().message.c_str());
    return;
  }
  if (!latched_.empty() && !(source == latched_)) {
    MediaCounters::bump(c.foreign_packets);
    if (first_time(log_foreign))
      IVR_LOG(logger, warn, "media",
              "session %llu: dropping RTP from %s, latched to %s (further ones only counted)", sid,
              source.to_string().c_str(), latched_.to_string().c_str());
    return;
  }
  if (!have_remote_) {  // no SDP yet: payload types unknown
    MediaCounters::bump(c.packets_dropped);
    if (first_time(log_no_remote))
      IVR_LOG(logger, debug, "media", "session %llu: RTP from %s before the remote is known", sid,
              source.to_string().c_str());
    return;
  }
  const RtpPacket &packet = parsed.value();
  const bool is_event =
      remote_.telephone_event_pt >= 0 && packet.payload_type == remote_.telephone_event_pt;
  const bool is_audio = !is_event && packet.payload_type == remote_.payload_type;
  if (!is_event && !is_audio) {
    MediaCounters::bump(c.packets_dropped);
    if (first_time(log_payload_type))
      IVR_LOG(logger, warn, "media",
              "session %llu: dropping RTP with unexpected payload type %u from %s (further ones "
              "only counted)",
              sid, static_cast<unsigned>(packet.payload_type), source.to_string().c_str());
    return;
  }
  if (latched_.empty()) {
    // Symmetric RTP: answer where the peer really sends from (NAT), not where SDP says.
    latched_ = source;
    IVR_LOG(logger, debug, "media", "session %llu: latched to %s", sid, source.to_string().c_str());
    emit(MediaEvent{
        MediaEvent::Kind::remote_latched, id_, {}, 0, PlaybackEnd::completed, source.to_string()});
  }
  last_rx_ns_ = now_ns;
  timeout_reported_ = false;
  if (ctx_.options->packet_tap) ctx_.options->packet_tap(id_, packet);
  if (is_event) {
    auto digit = te_decoder_.on_packet(packet);
    if (!digit) {
      MediaCounters::bump(c.bad_packets);
      if (first_time(log_telephone_event))
        IVR_LOG(logger, warn, "media",
                "session %llu: dropping bad telephone-event from %s: %s (further ones only "
                "counted)",
                sid, source.to_string().c_str(), digit.error().message.c_str());
      return;
    }
    if (peer_) peer_->relay(packet, true, remote_.codec, now_ns);
    if (digit.value()) emit_dtmf(*digit.value());
    return;
  }
  if (peer_) peer_->relay(packet, false, remote_.codec, now_ns);  // first: least delay
  if (inband_) {
    int16_t pcm[RecvBatch::kBufferSize];
    const size_t n = packet.payload.size();
    decode(remote_.codec, packet.payload, std::span<int16_t>(pcm, n));
    inband_->feed(std::span<const int16_t>(pcm, n), [this](DtmfDigit digit) { emit_dtmf(digit); });
  }
}

}  // namespace ivr::media
