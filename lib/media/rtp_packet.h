// RTP (RFC 3550) packet parsing and building. Parsing never trusts the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/result.h"

namespace ivr::media {

struct RtpPacket {
  uint8_t payload_type = 0;
  bool marker = false;
  uint16_t sequence = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  std::span<const uint8_t> payload;  // points into the parsed buffer (padding removed)
};

// Rejects: shorter than 12 bytes, version != 2, CSRC list or header extension running past
// the end, bad padding length. RTCP by the RFC 5761 rule (second byte 192..223, i.e. marker
// bit with payload types 64..95) is rejected with Errc::unsupported so callers can tell it
// apart.
Result<RtpPacket> parse_rtp(std::span<const uint8_t> datagram);

// True when the datagram looks like RTCP (RFC 5761 demultiplexing rule).
bool looks_like_rtcp(std::span<const uint8_t> datagram);

// Writes a 12-byte header plus payload into out; returns bytes written, or 0 when out is
// too small or payload_type does not fit in 7 bits.
size_t build_rtp(const RtpPacket &packet, std::span<uint8_t> out);

}  // namespace ivr::media
