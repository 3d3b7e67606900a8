#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "media/telephone_event.h"

using namespace ivr;
using namespace ivr::media;

namespace {

// Owns the payload bytes an RtpPacket points to.
struct EventPacket {
  std::array<uint8_t, 4> bytes{};
  RtpPacket rtp;
  EventPacket(uint8_t event, bool end, uint16_t duration, uint32_t timestamp, uint8_t volume = 10) {
    bytes = {event, static_cast<uint8_t>((end ? 0x80 : 0) | volume),
             static_cast<uint8_t>(duration >> 8), static_cast<uint8_t>(duration)};
    rtp.payload_type = 101;
    rtp.timestamp = timestamp;
    rtp.payload = bytes;
  }
  EventPacket(const EventPacket &other) : bytes(other.bytes), rtp(other.rtp) {
    rtp.payload = bytes;
  }
  EventPacket &operator=(const EventPacket &other) {
    bytes = other.bytes;
    rtp = other.rtp;
    rtp.payload = bytes;
    return *this;
  }
};

// A sender's packets for one digit: start (marker), updates every 20 ms, three ends.
std::vector<EventPacket> digit_packets(uint8_t event, uint32_t ts, uint16_t duration) {
  std::vector<EventPacket> out;
  for (uint16_t d = 160; d < duration; d = static_cast<uint16_t>(d + 160)) {
    out.emplace_back(event, false, d, ts);
  }
  for (int i = 0; i < 3; ++i) out.emplace_back(event, true, duration, ts);
  return out;
}

// Feeds packets, collecting reported digits; every packet must parse.
std::string feed(TelephoneEventDecoder &dec, const std::vector<EventPacket> &packets,
                 std::vector<uint32_t> *durations = nullptr) {
  std::string digits;
  for (const auto &p : packets) {
    auto r = dec.on_packet(p.rtp);
    REQUIRE(r.ok());
    if (r->has_value()) {
      digits += (*r)->digit;
      CHECK((*r)->source == DtmfSource::rfc4733);
      if (durations) durations->push_back((*r)->duration_ms);
    }
  }
  return digits;
}

}  // namespace

TEST_CASE("rfc4733: payload parsing") {
  const std::array<uint8_t, 4> bytes = {11, 0x80 | 0x40 | 7, 0x03, 0x20};
  auto r = parse_telephone_event(bytes);
  REQUIRE(r.ok());
  CHECK(r->event == 11);
  CHECK(r->end);
  CHECK(r->volume == 7);  // the reserved bit does not leak into the volume
  CHECK(r->duration == 800);

  const std::array<uint8_t, 6> longer = {5, 0x0A, 0x00, 0xA0, 0xFF, 0xFF};
  auto l = parse_telephone_event(longer);
  REQUIRE(l.ok());
  CHECK_FALSE(l->end);
  CHECK(l->duration == 160);

  for (size_t n = 0; n < 4; ++n) {
    auto s = parse_telephone_event(std::span<const uint8_t>(bytes.data(), n));
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == Errc::parse);
  }
}

TEST_CASE("rfc4733: one digit with three end packets is reported once, on the first end") {
  TelephoneEventDecoder dec;
  auto packets = digit_packets(5, 1000, 800);  // 100 ms at 8 kHz
  std::vector<uint32_t> durations;
  std::string digits;
  for (size_t i = 0; i < packets.size(); ++i) {
    auto r = dec.on_packet(packets[i].rtp);
    REQUIRE(r.ok());
    // Only the first end packet (index 4: updates at 160..640, then ends) reports.
    CHECK(r->has_value() == (i == 4));
    if (r->has_value()) {
      digits += (*r)->digit;
      durations.push_back((*r)->duration_ms);
    }
  }
  CHECK(digits == "5");
  REQUIRE(durations.size() == 1);
  CHECK(durations[0] == 100);
  CHECK_FALSE(dec.on_tick(0).has_value());
  CHECK_FALSE(dec.on_tick(10000).has_value());
}

TEST_CASE("rfc4733: duration uses the clock rate") {
  TelephoneEventDecoder dec(16000);
  std::vector<uint32_t> durations;
  CHECK(feed(dec, digit_packets(1, 50, 1600), &durations) == "1");
  REQUIRE(durations.size() == 1);
  CHECK(durations[0] == 100);
}

TEST_CASE("rfc4733: redundant and retransmitted packets never repeat a digit") {
  TelephoneEventDecoder dec;
  std::vector<EventPacket> packets;
  // Each update sent twice, ends sent three times, then a late retransmitted update and a
  // late end after the event was reported.
  for (uint16_t d : {160, 160, 320, 320, 480}) packets.emplace_back(9, false, d, 2000);
  for (int i = 0; i < 3; ++i) packets.emplace_back(9, true, 640, 2000);
  packets.emplace_back(9, false, 480, 2000);
  packets.emplace_back(9, true, 640, 2000);
  std::vector<uint32_t> durations;
  CHECK(feed(dec, packets, &durations) == "9");
  CHECK(durations == std::vector<uint32_t>{80});
}

TEST_CASE("rfc4733: the same digit twice with different timestamps gives two digits") {
  TelephoneEventDecoder dec;
  auto packets = digit_packets(3, 8000, 640);
  auto second = digit_packets(3, 8000 + 1600, 960);
  packets.insert(packets.end(), second.begin(), second.end());
  std::vector<uint32_t> durations;
  CHECK(feed(dec, packets, &durations) == "33");
  CHECK(durations == std::vector<uint32_t>{80, 120});
}

TEST_CASE("rfc4733: a digit sequence with all event codes") {
  TelephoneEventDecoder dec;
  std::vector<EventPacket> packets;
  for (uint8_t e = 0; e < 16; ++e) {
    auto p = digit_packets(e, 160000u + e * 2000u, 480);
    packets.insert(packets.end(), p.begin(), p.end());
  }
  CHECK(feed(dec, packets) == "0123456789*#ABCD");
}

TEST_CASE("rfc4733: lost end packets: reported when the next event starts") {
  TelephoneEventDecoder dec;
  std::vector<EventPacket> packets;
  for (uint16_t d : {160, 320, 480}) packets.emplace_back(7, false, d, 4000);
  auto r1 = dec.on_packet(packets[0].rtp);
  auto r2 = dec.on_packet(packets[1].rtp);
  auto r3 = dec.on_packet(packets[2].rtp);
  REQUIRE((r1.ok() && r2.ok() && r3.ok()));
  CHECK_FALSE((r1->has_value() || r2->has_value() || r3->has_value()));

  // The next event's first packet reports the open one, with its last duration.
  EventPacket next(8, false, 160, 6000);
  auto r = dec.on_packet(next.rtp);
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  CHECK((*r)->digit == '7');
  CHECK((*r)->duration_ms == 60);

  // The new event was opened and completes normally.
  EventPacket end(8, true, 400, 6000);
  auto e = dec.on_packet(end.rtp);
  REQUIRE(e.ok());
  REQUIRE(e->has_value());
  CHECK((*e)->digit == '8');
  CHECK((*e)->duration_ms == 50);
}

TEST_CASE("rfc4733: lost end packets: reported by on_tick after 500 ms of silence") {
  TelephoneEventDecoder dec;
  CHECK_FALSE(dec.on_tick(1000).has_value());
  EventPacket a(2, false, 160, 100);
  EventPacket b(2, false, 320, 100);
  REQUIRE(dec.on_packet(a.rtp).ok());
  CHECK_FALSE(dec.on_tick(1020).has_value());  // the packet is stamped at this tick
  REQUIRE(dec.on_packet(b.rtp).ok());
  CHECK_FALSE(dec.on_tick(1040).has_value());
  CHECK_FALSE(dec.on_tick(1300).has_value());
  CHECK_FALSE(dec.on_tick(1539).has_value());
  auto t = dec.on_tick(1540);
  REQUIRE(t.has_value());
  CHECK(t->digit == '2');
  CHECK(t->duration_ms == 40);
  CHECK_FALSE(dec.on_tick(3000).has_value());  // reported once

  // A late end packet of that event is ignored.
  EventPacket late_end(2, true, 480, 100);
  auto r = dec.on_packet(late_end.rtp);
  REQUIRE(r.ok());
  CHECK_FALSE(r->has_value());
}

TEST_CASE("rfc4733: a new event that arrives only as end packets while one is open") {
  TelephoneEventDecoder dec;
  EventPacket open(1, false, 320, 500);
  EventPacket end_only(4, true, 800, 2500);
  REQUIRE(dec.on_packet(open.rtp).ok());
  auto r = dec.on_packet(end_only.rtp);
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  CHECK((*r)->digit == '1');  // the open one first
  // The second completed digit is delivered by the next call, whichever it is.
  auto t = dec.on_tick(0);
  REQUIRE(t.has_value());
  CHECK(t->digit == '4');
  CHECK(t->duration_ms == 100);
  // Its retransmitted end packets do not repeat it.
  auto again = dec.on_packet(end_only.rtp);
  REQUIRE(again.ok());
  CHECK_FALSE(again->has_value());
  CHECK_FALSE(dec.on_tick(5000).has_value());
}

TEST_CASE("rfc4733: backlog is delivered by the next packet too") {
  TelephoneEventDecoder dec;
  EventPacket open(1, false, 320, 500);
  EventPacket end_only(4, true, 800, 2500);
  EventPacket next(6, false, 160, 4500);
  REQUIRE(dec.on_packet(open.rtp).ok());
  auto r = dec.on_packet(end_only.rtp);
  REQUIRE((r.ok() && r->has_value()));
  auto n = dec.on_packet(next.rtp);
  REQUIRE(n.ok());
  REQUIRE(n->has_value());
  CHECK((*n)->digit == '4');
}

TEST_CASE("rfc4733: late packets of an earlier event are ignored") {
  TelephoneEventDecoder dec;
  auto first = digit_packets(1, 10000, 480);
  auto second = digit_packets(2, 12000, 480);
  std::vector<EventPacket> packets = first;
  packets.insert(packets.end(), second.begin(), second.begin() + 1);  // 2 starts
  packets.push_back(first.back());                                    // late end of 1
  packets.insert(packets.end(), second.begin() + 1, second.end());
  CHECK(feed(dec, packets) == "12");
}

TEST_CASE("rfc4733: a large backwards timestamp jump is a new stream, not a late packet") {
  TelephoneEventDecoder dec;
  // 10^9 behind is serially older but far outside the 10 s window for late packets.
  auto packets = digit_packets(1, 2000000000u, 480);
  auto restarted = digit_packets(2, 1000000000u, 480);
  packets.insert(packets.end(), restarted.begin(), restarted.end());
  CHECK(feed(dec, packets) == "12");
}

TEST_CASE("rfc4733: timestamps wrapping around 2^32") {
  TelephoneEventDecoder dec;
  auto packets = digit_packets(1, 0xFFFFFF00u, 480);
  auto after = digit_packets(2, 0x00000100u, 480);
  packets.insert(packets.end(), after.begin(), after.end());
  CHECK(feed(dec, packets) == "12");
}

TEST_CASE("rfc4733: events above 15 are not DTMF and are ignored") {
  TelephoneEventDecoder dec;
  auto packets = digit_packets(200, 7000, 800);
  CHECK(feed(dec, packets).empty());
  CHECK_FALSE(dec.on_tick(0).has_value());
  CHECK_FALSE(dec.on_tick(100000).has_value());

  // A non-DTMF event does not end an open digit (a bogus packet could otherwise split a
  // digit in two); the digit ends with its own end packet.
  TelephoneEventDecoder dec2;
  EventPacket open(0, false, 160, 100);
  EventPacket tone(16, false, 160, 900);
  EventPacket end(0, true, 320, 100);
  REQUIRE(dec2.on_packet(open.rtp).ok());
  auto r = dec2.on_packet(tone.rtp);
  REQUIRE(r.ok());
  CHECK_FALSE(r->has_value());
  r = dec2.on_packet(end.rtp);
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  CHECK((*r)->digit == '0');
}

TEST_CASE("rfc4733: a short payload is an error and does not disturb the state") {
  TelephoneEventDecoder dec;
  EventPacket start(6, false, 160, 100);
  REQUIRE(dec.on_packet(start.rtp).ok());

  const std::array<uint8_t, 3> short_payload = {6, 0x80, 0x01};
  RtpPacket bad;
  bad.payload_type = 101;
  bad.timestamp = 100;
  bad.payload = short_payload;
  auto r = dec.on_packet(bad);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::parse);

  EventPacket end(6, true, 480, 100);
  auto e = dec.on_packet(end.rtp);
  REQUIRE(e.ok());
  REQUIRE(e->has_value());
  CHECK((*e)->digit == '6');
  CHECK((*e)->duration_ms == 60);
}

TEST_CASE("bogus non-DTMF events inside a digit do not split it") {
  TelephoneEventDecoder dec;
  auto packets = digit_packets(2, 1000, 800);
  std::vector<EventPacket> mixed;
  for (size_t i = 0; i < packets.size(); ++i) {
    mixed.push_back(packets[i]);
    if (i == 1) {  // garbage codes on fresh timestamps, as a hostile peer might send
      mixed.emplace_back(200, false, 160, 777777);
      mixed.emplace_back(255, true, 160, 888888);
    }
  }
  std::vector<uint32_t> durations;
  CHECK(feed(dec, mixed, &durations) == "2");
  REQUIRE(durations.size() == 1);
  CHECK(durations[0] == 100);
}

TEST_CASE("another SSRC is ignored while a digit is open, followed once it is done") {
  TelephoneEventDecoder dec;
  auto first = digit_packets(5, 1000, 480);
  std::vector<EventPacket> mixed(first.begin(), first.begin() + 1);
  EventPacket intruder(7, true, 480, 99999);
  intruder.rtp.ssrc = 0xabcdef;
  mixed.push_back(intruder);
  mixed.insert(mixed.end(), first.begin() + 1, first.end());
  CHECK(feed(dec, mixed) == "5");
  // After the digit, a new stream (e.g. after a re-INVITE) is followed with its own clock.
  auto second = digit_packets(9, 50, 480);
  for (auto &p : second) p.rtp.ssrc = 0xabcdef;
  CHECK(feed(dec, second) == "9");
}
