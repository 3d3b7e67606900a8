// A DTMF digit as the media and SIP layers report it to the engine.
#pragma once

#include <cstdint>

namespace ivr::media {

enum class DtmfSource : uint8_t { rfc4733 = 0, info = 1, inband = 2 };

struct DtmfDigit {
  char digit = 0;            // one of 0-9 * # A-D
  uint32_t duration_ms = 0;  // tone length as the source reported it
  DtmfSource source = DtmfSource::rfc4733;
};

// Maps an RFC 4733 event code (0..15) to its digit, or 0 when it is not a DTMF event.
constexpr char dtmf_event_to_digit(unsigned event) {
  constexpr char table[] = "0123456789*#ABCD";
  return event < 16 ? table[event] : 0;
}

constexpr bool is_dtmf_digit(char c) {
  return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
}

}  // namespace ivr::media
