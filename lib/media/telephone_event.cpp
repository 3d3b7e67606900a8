#include "media/telephone_event.h"

#include <string>

namespace ivr::media {
namespace {

constexpr uint64_t kSilenceTimeoutMs = 500;
constexpr uint64_t kStaleWindowSeconds = 10;

}  // namespace

Result<TelephoneEventPayload> parse_telephone_event(std::span<const uint8_t> payload) {
  if (payload.size() < 4) {
    return Error{Errc::parse, "telephone-event: payload of " + std::to_string(payload.size()) +
                                  " bytes is shorter than 4"};
  }
  TelephoneEventPayload ev;
  ev.event = payload[0];
  ev.end = (payload[1] & 0x80) != 0;  // bit 0x40 is reserved: ignored on receipt
  ev.volume = payload[1] & 0x3F;
  ev.duration = static_cast<uint16_t>((payload[2] << 8) | payload[3]);
  return ev;
}

void TelephoneEventDecoder::emit(DtmfDigit digit, std::optional<DtmfDigit> &out) {
  if (!out) {
    out = digit;
  } else {
    // Only reached when the open event and a new end-only event complete together; the
    // backlog is empty then because that case leaves no event open.
    backlog_ = digit;
  }
}

DtmfDigit TelephoneEventDecoder::close_open() {
  open_ = false;
  const uint32_t rate = clock_rate_ ? clock_rate_ : 8000;
  DtmfDigit digit;
  digit.digit = dtmf_event_to_digit(open_event_);
  digit.duration_ms = static_cast<uint32_t>(uint64_t{open_duration_} * 1000 / rate);
  digit.source = DtmfSource::rfc4733;
  return digit;
}

Result<std::optional<DtmfDigit>> TelephoneEventDecoder::on_packet(const RtpPacket &packet) {
  auto parsed = parse_telephone_event(packet.payload);
  if (!parsed) return parsed.error();
  const TelephoneEventPayload &ev = *parsed;
  packet_since_tick_ = true;

  std::optional<DtmfDigit> out = backlog_;
  backlog_.reset();

  // Events that are not DTMF (tones, flash, garbage codes) never touch the digit state: a
  // bogus packet must not end a real digit early and have its remaining packets reported
  // as a second digit.
  if (dtmf_event_to_digit(ev.event) == 0) return out;
  if (have_ssrc_ && packet.ssrc != ssrc_) {
    if (open_) return out;  // a digit of the followed stream is in progress: not ours
    have_last_ = false;     // a new stream (e.g. after a re-INVITE): its own timestamps
  }
  have_ssrc_ = true;
  ssrc_ = packet.ssrc;

  const uint32_t ts = packet.timestamp;
  if (have_last_ && ts == last_ts_) {
    if (!open_) return out;  // retransmission of an event already reported or ignored
    if (ev.duration > open_duration_) open_duration_ = ev.duration;  // tolerate reordering
    if (ev.end) {
      open_duration_ = ev.duration;  // the end packet carries the final duration
      emit(close_open(), out);
    }
    return out;
  }

  if (have_last_) {
    // Serial-number arithmetic: a timestamp a little behind the newest one is a late packet
    // of an earlier event; a large jump backwards is a new stream (new SSRC or restart).
    const uint32_t behind = last_ts_ - ts;
    const uint64_t window = uint64_t{clock_rate_ ? clock_rate_ : 8000} * kStaleWindowSeconds;
    if (behind < 0x80000000u && behind <= window) return out;
  }

  // A new event: whatever was open ended without an end packet reaching us.
  if (open_) emit(close_open(), out);
  have_last_ = true;
  last_ts_ = ts;

  open_ = true;
  open_event_ = ev.event;
  open_duration_ = ev.duration;
  if (ev.end) emit(close_open(), out);  // its start packets were lost
  return out;
}

std::optional<DtmfDigit> TelephoneEventDecoder::on_tick(uint64_t now_ms) {
  if (packet_since_tick_) {
    packet_since_tick_ = false;
    last_packet_ms_ = now_ms;
  }
  if (backlog_) {
    std::optional<DtmfDigit> out = backlog_;
    backlog_.reset();
    return out;
  }
  if (open_ && now_ms >= last_packet_ms_ && now_ms - last_packet_ms_ >= kSilenceTimeoutMs) {
    return close_open();
  }
  return std::nullopt;
}

}  // namespace ivr::media
