#include <doctest/doctest.h>

#include <array>
#include <vector>

#include "media/rtp_packet.h"

using namespace ivr;
using namespace ivr::media;

namespace {

// A PCMU packet: V=2, PT 0, seq 0x1234, ts 0x01020304, SSRC 0xDEADBEEF, 4 payload bytes.
std::vector<uint8_t> basic_packet() {
  return {0x80, 0x00, 0x12, 0x34, 0x01, 0x02, 0x03, 0x04,
          0xDE, 0xAD, 0xBE, 0xEF, 0xAA, 0xBB, 0xCC, 0xDD};
}

}  // namespace

TEST_CASE("rtp: parses the fixed header and payload") {
  const auto bytes = basic_packet();
  auto r = parse_rtp(bytes);
  REQUIRE(r.ok());
  CHECK(r->payload_type == 0);
  CHECK_FALSE(r->marker);
  CHECK(r->sequence == 0x1234);
  CHECK(r->timestamp == 0x01020304u);
  CHECK(r->ssrc == 0xDEADBEEFu);
  REQUIRE(r->payload.size() == 4);
  CHECK(r->payload.data() == bytes.data() + 12);
  CHECK(r->payload[3] == 0xDD);
}

TEST_CASE("rtp: marker and dynamic payload type") {
  auto bytes = basic_packet();
  bytes[1] = 0x80 | 101;
  auto r = parse_rtp(bytes);
  REQUIRE(r.ok());
  CHECK(r->marker);
  CHECK(r->payload_type == 101);
}

TEST_CASE("rtp: header only, empty payload") {
  auto bytes = basic_packet();
  bytes.resize(12);
  auto r = parse_rtp(bytes);
  REQUIRE(r.ok());
  CHECK(r->payload.empty());
}

TEST_CASE("rtp: rejects short datagrams") {
  const auto bytes = basic_packet();
  for (size_t n = 0; n < 12; ++n) {
    CAPTURE(n);
    auto r = parse_rtp(std::span<const uint8_t>(bytes.data(), n));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::parse);
  }
}

TEST_CASE("rtp: rejects versions other than 2") {
  auto bytes = basic_packet();
  for (uint8_t v : {0, 1, 3}) {
    bytes[0] = static_cast<uint8_t>(v << 6);
    auto r = parse_rtp(bytes);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::parse);
    CHECK(r.error().message.find("version") != std::string::npos);
  }
}

TEST_CASE("rtp: CSRC list") {
  auto bytes = basic_packet();  // 4 bytes after the fixed header
  bytes[0] = 0x81;              // one CSRC: exactly fills the remaining 4 bytes
  auto r = parse_rtp(bytes);
  REQUIRE(r.ok());
  CHECK(r->payload.empty());

  bytes[0] = 0x82;  // two CSRCs need 8 bytes
  auto bad = parse_rtp(bytes);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::parse);
  CHECK(bad.error().message.find("CSRC") != std::string::npos);

  bytes[0] = 0x8F;  // 15 CSRCs
  CHECK_FALSE(parse_rtp(bytes).ok());
}

TEST_CASE("rtp: header extension") {
  // Extension header (profile 0xBEDE, length 1 word) + 1 word + 2 payload bytes.
  std::vector<uint8_t> bytes = {0x90, 0x00, 0,    1,    0,    0, 0, 2, 0, 0,    0,
                                3,    0xBE, 0xDE, 0x00, 0x01, 1, 2, 3, 4, 0x55, 0x66};
  auto r = parse_rtp(bytes);
  REQUIRE(r.ok());
  REQUIRE(r->payload.size() == 2);
  CHECK(r->payload[0] == 0x55);

  auto overflow = bytes;
  overflow[15] = 0x02;  // 2 words announced, only 1.5 present
  auto bad = parse_rtp(overflow);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("extension") != std::string::npos);

  overflow[14] = 0xFF;  // 65282 words
  CHECK_FALSE(parse_rtp(overflow).ok());

  // Extension bit set but not even the 4-byte extension header present.
  std::vector<uint8_t> truncated(bytes.begin(), bytes.begin() + 14);
  CHECK_FALSE(parse_rtp(truncated).ok());

  // Extension after a CSRC list: both must be accounted for.
  std::vector<uint8_t> both = {0x91, 0x00, 0, 1, 0, 0,    0,    2,    0,    0,   0,
                               3,    9,    9, 9, 9, 0xBE, 0xDE, 0x00, 0x00, 0x77};
  auto rb = parse_rtp(both);
  REQUIRE(rb.ok());
  REQUIRE(rb->payload.size() == 1);
  CHECK(rb->payload[0] == 0x77);
  both.pop_back();
  both.pop_back();  // extension header now truncated
  CHECK_FALSE(parse_rtp(both).ok());
}

TEST_CASE("rtp: padding") {
  auto bytes = basic_packet();
  bytes[0] = 0xA0;   // padding bit
  bytes.back() = 2;  // last 2 bytes are padding
  auto r = parse_rtp(bytes);
  REQUIRE(r.ok());
  REQUIRE(r->payload.size() == 2);
  CHECK(r->payload[1] == 0xBB);

  bytes.back() = 4;  // all of it is padding
  auto all = parse_rtp(bytes);
  REQUIRE(all.ok());
  CHECK(all->payload.empty());

  bytes.back() = 0;  // padding count must include itself
  auto zero = parse_rtp(bytes);
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error().message.find("padding") != std::string::npos);

  bytes.back() = 5;  // more than what follows the header
  CHECK_FALSE(parse_rtp(bytes).ok());

  std::vector<uint8_t> header_only(bytes.begin(), bytes.begin() + 12);  // last byte is SSRC
  header_only[11] = 1;                                                  // would eat into the header
  CHECK_FALSE(parse_rtp(header_only).ok());
}

TEST_CASE("rtp: RTCP detection by the RFC 5761 rule") {
  // Sender report header: V=2, RC=0, PT=200, length 6, SSRC.
  std::vector<uint8_t> sr = {0x80, 200, 0x00, 0x06, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0,
                             0,    0,   0,    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(looks_like_rtcp(sr));
  auto r = parse_rtp(sr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::unsupported);

  for (int pt : {192, 201, 202, 203, 204, 205, 206, 207, 223}) {
    sr[1] = static_cast<uint8_t>(pt);
    CAPTURE(pt);
    CHECK(looks_like_rtcp(sr));
    CHECK(parse_rtp(sr).error().code == Errc::unsupported);
  }
  // An empty receiver report is 8 bytes and still RTCP, not a short RTP packet.
  std::vector<uint8_t> rr = {0x80, 201, 0x00, 0x01, 1, 2, 3, 4};
  CHECK(looks_like_rtcp(rr));
  CHECK(parse_rtp(rr).error().code == Errc::unsupported);

  for (int b : {0, 8, 101, 0x80 | 0, 0x80 | 8, 0x80 | 101, 191, 224}) {
    auto rtp = basic_packet();
    rtp[1] = static_cast<uint8_t>(b);
    CAPTURE(b);
    CHECK_FALSE(looks_like_rtcp(rtp));
    CHECK(parse_rtp(rtp).ok());
  }
  sr[0] = 0x40;  // version 1
  sr[1] = 200;
  CHECK_FALSE(looks_like_rtcp(sr));
  CHECK_FALSE(looks_like_rtcp(std::span<const uint8_t>(sr.data(), 2)));
}

TEST_CASE("rtp: build then parse round trip") {
  std::array<uint8_t, 160> payload{};
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7);
  RtpPacket p;
  p.payload_type = 8;
  p.marker = true;
  p.sequence = 65535;
  p.timestamp = 0xFFFFFF00u;
  p.ssrc = 0x01020304u;
  p.payload = payload;

  std::array<uint8_t, 172> out{};
  REQUIRE(build_rtp(p, out) == 172);
  CHECK(out[0] == 0x80);
  CHECK(out[1] == (0x80 | 8));
  auto r = parse_rtp(out);
  REQUIRE(r.ok());
  CHECK(r->payload_type == 8);
  CHECK(r->marker);
  CHECK(r->sequence == 65535);
  CHECK(r->timestamp == 0xFFFFFF00u);
  CHECK(r->ssrc == 0x01020304u);
  REQUIRE(r->payload.size() == payload.size());
  CHECK(std::equal(payload.begin(), payload.end(), r->payload.begin()));

  std::array<uint8_t, 171> small{};
  CHECK(build_rtp(p, small) == 0);
  p.payload_type = 128;
  CHECK(build_rtp(p, out) == 0);
}
