// Fuzzes the RTP receive path: RTP/RTCP parsing, RFC 4733 payloads and the de-duplicating
// telephone-event decoder. Checks properties, not just the absence of crashes.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "media/rtp_packet.h"
#include "media/telephone_event.h"

using namespace ivr::media;

namespace {

void check(bool ok, const char *what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_media_rtp: property violated: %s\n", what);
    std::abort();
  }
}

// A parsed packet must survive build_rtp -> parse_rtp with the same fields and payload.
void check_round_trip(const RtpPacket &p) {
  std::vector<uint8_t> buf(12 + p.payload.size());
  const size_t n = build_rtp(p, buf);
  check(n == buf.size(), "build_rtp size");
  auto again = parse_rtp(std::span<const uint8_t>(buf.data(), n));
  check(again.ok(), "rebuilt packet parses");
  check(again->payload_type == p.payload_type && again->marker == p.marker &&
            again->sequence == p.sequence && again->timestamp == p.timestamp &&
            again->ssrc == p.ssrc && again->payload.size() == p.payload.size(),
        "round trip fields");
  check(p.payload.empty() ||
            std::memcmp(again->payload.data(), p.payload.data(), p.payload.size()) == 0,
        "round trip payload");
}

void check_digit(const DtmfDigit &d) {
  check(is_dtmf_digit(d.digit), "reported digit is DTMF");
  check(d.source == DtmfSource::rfc4733, "source is rfc4733");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::span<const uint8_t> input(data, size);

  // 1. The whole input as one datagram.
  auto whole = parse_rtp(input);
  const bool rtcp = looks_like_rtcp(input);
  if (whole) {
    check(!rtcp, "RTCP-looking datagram parsed as RTP");
    check(whole->payload.data() >= data &&
              whole->payload.data() + whole->payload.size() <= data + size,
          "payload inside the datagram");
    check_round_trip(*whole);
  } else if (rtcp) {
    check(whole.error().code == ivr::Errc::unsupported, "RTCP reported as unsupported");
  }
  auto event = parse_telephone_event(input);
  check(event.ok() == (size >= 4), "telephone-event accepts exactly 4+ bytes");

  // 2. Length-prefixed datagrams through parse_rtp into a decoder.
  {
    TelephoneEventDecoder decoder;
    uint64_t now = 0;
    size_t pos = 0;
    while (pos < size) {
      const size_t len = data[pos++] % 48;
      const size_t n = len < size - pos ? len : size - pos;
      const std::span<const uint8_t> datagram(data + pos, n);
      pos += n;
      auto packet = parse_rtp(datagram);
      if (packet) {
        auto r = decoder.on_packet(*packet);
        if (r.ok() && r->has_value()) check_digit(**r);
      }
      now += 20;
      if (auto d = decoder.on_tick(now)) check_digit(*d);
    }
  }

  // 3. Six-byte records driving the decoder directly, so that timestamps repeat, move
  //    back a little or jump, as real retransmissions and losses do.
  {
    TelephoneEventDecoder decoder;
    uint32_t ts = 0x7FFFFF00u;
    uint64_t now = 1000;
    size_t dtmf_packets = 0, digits = 0;
    for (size_t pos = 0; pos + 6 <= size; pos += 6) {
      const auto step = static_cast<int8_t>(data[pos]);
      ts += static_cast<uint32_t>(static_cast<int32_t>(step) * 160);
      if (step == -128) ts += 0x40000000u;  // a stream restart
      std::array<uint8_t, 4> payload;
      std::memcpy(payload.data(), data + pos + 2, 4);
      RtpPacket p;
      p.payload_type = 101;
      p.timestamp = ts;
      p.payload = payload;
      if (payload[0] < 16) ++dtmf_packets;
      auto r = decoder.on_packet(p);
      check(r.ok(), "4-byte payload accepted");
      if (r->has_value()) {
        check_digit(**r);
        ++digits;
      }
      now += data[pos + 1] * 4u;
      if (data[pos + 1] & 1) {
        if (auto d = decoder.on_tick(now)) {
          check_digit(*d);
          ++digits;
        }
      }
      check(digits <= dtmf_packets, "never more digits than DTMF packets");
    }
    // Whatever is still open or queued comes out after enough silence, once.
    for (int i = 0; i < 3; ++i) {
      now += 1000;
      if (auto d = decoder.on_tick(now)) {
        check_digit(*d);
        ++digits;
      }
    }
    check(digits <= dtmf_packets, "never more digits than DTMF packets (drained)");
    check(!decoder.on_tick(now + 1000).has_value(), "decoder drained");
  }
  return 0;
}
