// RFC 4733 telephone-event decoding: one digit per event, however many packets carry it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "common/result.h"
#include "media/dtmf.h"
#include "media/rtp_packet.h"

namespace ivr::media {

struct TelephoneEventPayload {
  uint8_t event = 0;
  bool end = false;
  uint8_t volume = 0;
  uint16_t duration = 0;  // in RTP timestamp units
};

// Rejects payloads shorter than 4 bytes. Extra bytes (redundancy per RFC 2198 is not
// negotiated) are ignored.
Result<TelephoneEventPayload> parse_telephone_event(std::span<const uint8_t> payload);

// Feeds telephone-event RTP packets of one stream. An event is identified by its RTP
// timestamp; it is reported once, when its first end packet arrives (the end packet is
// normally sent three times) or, if no end packet ever comes, when a packet of a new event
// arrives. Events outside 0..15 are not DTMF and are ignored (not reported). Late packets
// of an older event (timestamp up to 10 s behind the newest) are ignored too.
class TelephoneEventDecoder {
 public:
  explicit TelephoneEventDecoder(uint32_t clock_rate = 8000) : clock_rate_(clock_rate) {}

  // Returns the digit completed by this packet, if any. A packet whose payload does not
  // parse returns an Error (the caller logs it once and drops the packet).
  Result<std::optional<DtmfDigit>> on_packet(const RtpPacket &packet);

  // Reports an event still open (no end packet) if it has been silent for 500 ms, with its
  // last duration: call periodically with the current time in ms from any monotonic clock.
  std::optional<DtmfDigit> on_tick(uint64_t now_ms);

 private:
  void emit(DtmfDigit digit, std::optional<DtmfDigit> &out);
  DtmfDigit close_open();

  uint32_t clock_rate_;
  bool open_ = false;       // an event has started and is not reported yet
  bool have_last_ = false;  // last_ts_ is meaningful
  bool have_ssrc_ = false;  // ssrc_ is the stream the decoder follows
  uint32_t ssrc_ = 0;
  uint32_t last_ts_ = 0;    // timestamp of the newest event seen (reported or not)
  uint8_t open_event_ = 0;
  uint16_t open_duration_ = 0;
  bool packet_since_tick_ = false;  // on_tick stamps the time of packets seen since the last tick
  uint64_t last_packet_ms_ = 0;
  // One packet can complete two digits (the open event and a new one that arrives as an end
  // packet); the second waits here for the next call.
  std::optional<DtmfDigit> backlog_;
  friend struct TelephoneEventDecoderTestAccess;
};

}  // namespace ivr::media
