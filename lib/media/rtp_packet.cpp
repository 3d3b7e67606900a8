#include "media/rtp_packet.h"

#include <cstring>
#include <string>

namespace ivr::media {
namespace {

constexpr size_t kFixedHeader = 12;

uint16_t read16(const uint8_t *p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t read32(const uint8_t *p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
void write16(uint8_t *p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void write32(uint8_t *p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// RFC 5761 section 4: with RTP and RTCP on one port, the second byte of an RTCP packet is
// its packet type (192..223 in practice: SR 200, RR 201, SDES 202, BYE 203, APP 204,
// feedback 205/206, XR 207 ...), which as RTP would be marker=1 and payload type 64..95,
// a range RTP must then not use.
bool rtcp_second_byte(uint8_t b) {
  return b >= 192 && b <= 223;
}

}  // namespace

Result<RtpPacket> parse_rtp(std::span<const uint8_t> datagram) {
  const size_t size = datagram.size();
  if (looks_like_rtcp(datagram)) {
    return Error{Errc::unsupported, "rtp: RTCP packet type " + std::to_string(datagram[1])};
  }
  if (size < kFixedHeader) {
    return Error{Errc::parse, "rtp: datagram of " + std::to_string(size) +
                                  " bytes is shorter than the 12-byte header"};
  }
  const uint8_t *p = datagram.data();
  const unsigned version = p[0] >> 6;
  if (version != 2) return Error{Errc::parse, "rtp: version " + std::to_string(version) + " != 2"};
  const bool padding = (p[0] & 0x20) != 0;
  const bool extension = (p[0] & 0x10) != 0;
  const size_t csrc_count = p[0] & 0x0F;

  size_t header = kFixedHeader + 4 * csrc_count;
  if (header > size) {
    return Error{Errc::parse, "rtp: CSRC list of " + std::to_string(csrc_count) +
                                  " entries runs past the end of a " + std::to_string(size) +
                                  "-byte datagram"};
  }
  if (extension) {
    if (header + 4 > size) return Error{Errc::parse, "rtp: header extension header truncated"};
    const size_t words = read16(p + header + 2);
    header += 4 + 4 * words;
    if (header > size) {
      return Error{Errc::parse, "rtp: header extension of " + std::to_string(words) +
                                    " words runs past the end"};
    }
  }
  size_t end = size;
  if (padding) {
    // The last byte counts the padding bytes including itself (RFC 3550 5.1).
    const size_t pad = p[size - 1];
    if (pad == 0 || pad > size - header) {
      return Error{Errc::parse, "rtp: padding length " + std::to_string(pad) + " invalid for " +
                                    std::to_string(size - header) + " bytes after the header"};
    }
    end = size - pad;
  }

  RtpPacket packet;
  packet.marker = (p[1] & 0x80) != 0;
  packet.payload_type = p[1] & 0x7F;
  packet.sequence = read16(p + 2);
  packet.timestamp = read32(p + 4);
  packet.ssrc = read32(p + 8);
  packet.payload = datagram.subspan(header, end - header);
  return packet;
}

bool looks_like_rtcp(std::span<const uint8_t> datagram) {
  // The smallest RTCP packet (an empty RR) is 8 bytes: header plus sender SSRC.
  return datagram.size() >= 8 && (datagram[0] >> 6) == 2 && rtcp_second_byte(datagram[1]);
}

size_t build_rtp(const RtpPacket &packet, std::span<uint8_t> out) {
  if (packet.payload_type > 127) return 0;  // would not fit in 7 bits
  const size_t total = kFixedHeader + packet.payload.size();
  if (out.size() < total) return 0;
  uint8_t *p = out.data();
  p[0] = 0x80;  // version 2, no padding, no extension, no CSRC
  p[1] = static_cast<uint8_t>((packet.marker ? 0x80 : 0) | packet.payload_type);
  write16(p + 2, packet.sequence);
  write32(p + 4, packet.timestamp);
  write32(p + 8, packet.ssrc);
  if (!packet.payload.empty()) {
    std::memmove(p + kFixedHeader, packet.payload.data(), packet.payload.size());
  }
  return total;
}

}  // namespace ivr::media
