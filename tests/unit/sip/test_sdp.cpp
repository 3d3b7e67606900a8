// SDP offer/answer: offers as real peers send them, hold forms, errors, and answers that Sofia
// re-parses.
#include <doctest/doctest.h>
#include <sofia-sip/sdp.h>

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <string>
#include <vector>

#include "sip/sdp.h"

using ivr::Errc;
using ivr::media::Codec;
using ivr::media::Direction;
using namespace ivr::sip;
using namespace std::string_literals;

namespace {

std::string sdp(std::initializer_list<const char *> lines, const char *eol = "\r\n") {
  std::string out;
  for (const char *l : lines) {
    out += l;
    out += eol;
  }
  return out;
}

// Session part shared by most offers.
std::string offer_with(std::initializer_list<const char *> media_lines,
                       const char *connection = "c=IN IP4 192.0.2.1") {
  std::string out = sdp({"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", connection, "t=0 0"});
  for (const char *l : media_lines) {
    out += l;
    out += "\r\n";
  }
  return out;
}

std::vector<std::string> lines_of(const std::string &text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    auto end = text.find("\r\n", start);
    REQUIRE(end != std::string::npos);  // every line ends with CRLF
    out.push_back(text.substr(start, end - start));
    start = end + 2;
  }
  return out;
}

bool sofia_accepts(const std::string &text) {
  sdp_parser_t *p =
      sdp_parse(nullptr, text.data(), static_cast<issize_t>(text.size()), sdp_f_strict);
  bool ok = sdp_session(p) != nullptr;
  sdp_parser_free(p);
  return ok;
}

LocalMedia local4() {
  LocalMedia l;
  l.address = "198.51.100.7";
  l.port = 40000;
  l.session_id = 12345;
  l.version = 1;
  return l;
}

const char *kSippUac =
    "v=0\r\n"
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n";

const char *kLinphone =
    "v=0\r\n"
    "o=alice 2214 3346 IN IP4 192.168.1.20\r\n"
    "s=Talk\r\n"
    "c=IN IP4 192.168.1.20\r\n"
    "t=0 0\r\n"
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n"
    "m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=fmtp:96 useinbandfec=1\r\n"
    "a=rtpmap:97 speex/16000\r\n"
    "a=fmtp:97 vbr=on\r\n"
    "a=rtpmap:98 speex/8000\r\n"
    "a=fmtp:98 vbr=on\r\n"
    "a=fmtp:18 annexb=yes\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=rtpmap:99 telephone-event/16000\r\n"
    "a=rtpmap:100 telephone-event/48000\r\n"
    "a=rtcp-fb:* trr-int 1000\r\n";

}  // namespace

TEST_CASE("SIPp default uac offer: PCMU 0 only") {
  auto n = negotiate_offer(kSippUac, {});
  REQUIRE_MESSAGE(n.ok(), n.error().message);
  CHECK(n->remote.address == "127.0.0.1");
  CHECK(n->remote.port == 6000);
  CHECK(n->remote.codec == Codec::pcmu);
  CHECK(n->remote.payload_type == 0);
  CHECK(n->remote.telephone_event_pt == -1);
  CHECK(n->remote.direction == Direction::sendrecv);
  CHECK_FALSE(n->on_hold);
  CHECK(n->remote_ptime == 20);
}

TEST_CASE("Linphone-style offer: dynamic codecs skipped, PCMU and telephone-event/8000 chosen") {
  auto n = negotiate_offer(kLinphone, {});
  REQUIRE_MESSAGE(n.ok(), n.error().message);
  CHECK(n->remote.address == "192.168.1.20");
  CHECK(n->remote.port == 7078);
  CHECK(n->remote.codec == Codec::pcmu);
  CHECK(n->remote.payload_type == 0);
  CHECK(n->remote.telephone_event_pt == 101);  // not 99 (16000) or 100 (48000)

  LocalMediaCaps no_te;
  no_te.telephone_event = false;
  auto plain = negotiate_offer(kLinphone, no_te);
  REQUIRE(plain.ok());
  CHECK(plain->remote.telephone_event_pt == -1);
}

TEST_CASE("telephone-event is taken only at 8000 Hz, under any pt") {
  auto n = negotiate_offer(
      offer_with({"m=audio 4000 RTP/AVP 0 99 100", "a=rtpmap:99 telephone-event/16000",
                  "a=rtpmap:100 Telephone-Event/8000", "a=fmtp:100 0-15"}),
      {});
  REQUIRE(n.ok());
  CHECK(n->remote.telephone_event_pt == 100);
  auto none = negotiate_offer(
      offer_with({"m=audio 4000 RTP/AVP 0 99", "a=rtpmap:99 telephone-event/48000"}), {});
  REQUIRE(none.ok());
  CHECK(none->remote.telephone_event_pt == -1);
  auto first = negotiate_offer(
      offer_with({"m=audio 4000 RTP/AVP 0 101 100", "a=rtpmap:101 telephone-event/8000",
                  "a=rtpmap:100 telephone-event/8000"}),
      {});
  REQUIRE(first.ok());
  CHECK(first->remote.telephone_event_pt == 101);
}

TEST_CASE("PCMA-only offer") {
  auto n = negotiate_offer(offer_with({"m=audio 5004 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000",
                                       "a=rtpmap:101 telephone-event/8000"}),
                           {});
  REQUIRE(n.ok());
  CHECK(n->remote.codec == Codec::pcma);
  CHECK(n->remote.payload_type == 8);
  CHECK(n->remote.telephone_event_pt == 101);

  LocalMediaCaps pcmu_only;
  pcmu_only.pcma = false;
  auto refused = negotiate_offer(offer_with({"m=audio 5004 RTP/AVP 8"}), pcmu_only);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == Errc::unsupported);
  CHECK(refused.error().message.find("no common codec (offered: 8") != std::string::npos);
}

TEST_CASE("codec follows the offer's m= order, within our caps") {
  auto a_first = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 8 0"}), {});
  REQUIRE(a_first.ok());
  CHECK(a_first->remote.codec == Codec::pcma);
  auto u_first = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 18 0 8"}), {});
  REQUIRE(u_first.ok());
  CHECK(u_first->remote.codec == Codec::pcmu);
  LocalMediaCaps pcma_only;
  pcma_only.pcmu = false;
  auto limited = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0 8"}), pcma_only);
  REQUIRE(limited.ok());
  CHECK(limited->remote.codec == Codec::pcma);
  CHECK(limited->remote.payload_type == 8);
}

TEST_CASE("dynamic payload types mapped to G.711 by rtpmap") {
  auto n = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 96 97 0", "a=rtpmap:96 pcma/8000",
                                       "a=rtpmap:97 PCMU/8000/1"}),
                           {});
  REQUIRE(n.ok());
  CHECK(n->remote.codec == Codec::pcma);
  CHECK(n->remote.payload_type == 96);

  // Wrong clock rate, stereo, or a dynamic pt without rtpmap are not G.711 as we send it.
  auto none = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 96 97 98", "a=rtpmap:96 PCMU/16000",
                                          "a=rtpmap:97 PCMA/8000/2"}),
                              {});
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == Errc::unsupported);
  CHECK(none.error().message.find("offered: 96 97 98") != std::string::npos);
}

TEST_CASE("no common codec names what was offered") {
  auto n = negotiate_offer(
      offer_with({"m=audio 4000 RTP/AVP 3 18 101", "a=rtpmap:101 telephone-event/8000"}), {});
  REQUIRE_FALSE(n.ok());
  CHECK(n.error().code == Errc::unsupported);
  CHECK(n.error().message.find("no common codec (offered: 3 18 101") != std::string::npos);
}

TEST_CASE("no usable audio stream is unsupported") {
  SUBCASE("video only") {
    auto n = negotiate_offer(offer_with({"m=video 5000 RTP/AVP 31 34"}), {});
    REQUIRE_FALSE(n.ok());
    CHECK(n.error().code == Errc::unsupported);
    CHECK(n.error().message.find("no audio stream") != std::string::npos);
    CHECK(n.error().message.find("video") != std::string::npos);
  }
  SUBCASE("no m= line at all") {
    auto n = negotiate_offer(offer_with({}), {});
    REQUIRE_FALSE(n.ok());
    CHECK(n.error().code == Errc::unsupported);
    CHECK(n.error().message.find("no audio stream") != std::string::npos);
  }
  SUBCASE("audio port 0") {
    auto n = negotiate_offer(offer_with({"m=audio 0 RTP/AVP 0"}), {});
    REQUIRE_FALSE(n.ok());
    CHECK(n.error().code == Errc::unsupported);
    CHECK(n.error().message.find("audio port 0") != std::string::npos);
  }
  SUBCASE("SRTP only") {
    auto n = negotiate_offer(offer_with({"m=audio 4000 RTP/SAVP 0"}), {});
    REQUIRE_FALSE(n.ok());
    CHECK(n.error().code == Errc::unsupported);
    CHECK(n.error().message.find("RTP/SAVP") != std::string::npos);
  }
  SUBCASE("a live stream's reason wins over a declined one's") {
    auto n = negotiate_offer(offer_with({"m=audio 0 RTP/AVP 0", "m=audio 4000 RTP/AVP 18"}), {});
    REQUIRE_FALSE(n.ok());
    CHECK(n.error().message.find("no common codec") != std::string::npos);
  }
}

TEST_CASE("RTP/AVPF is accepted, with formats Sofia leaves as text") {
  auto n = negotiate_offer(offer_with({"m=audio 4000 RTP/AVPF 96 8 101", "a=rtpmap:96 opus/48000/2",
                                       "a=rtpmap:101 telephone-event/8000", "a=rtcp-fb:* nack"}),
                           {});
  REQUIRE_MESSAGE(n.ok(), n.error().message);
  CHECK(n->remote.codec == Codec::pcma);
  CHECK(n->remote.telephone_event_pt == 101);
  auto answer =
      build_answer(offer_with({"m=audio 4000 RTP/AVPF 96 8 101", "a=rtpmap:96 opus/48000/2",
                               "a=rtpmap:101 telephone-event/8000"}),
                   *n, local4());
  REQUIRE(answer.ok());
  CHECK(answer->find("m=audio 40000 RTP/AVPF 8 101\r\n") != std::string::npos);
}

TEST_CASE("hold forms") {
  SUBCASE("media-level sendonly") {
    auto n = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0", "a=sendonly"}), {});
    REQUIRE(n.ok());
    CHECK(n->on_hold);
    CHECK(n->remote.direction == Direction::recvonly);
  }
  SUBCASE("inactive") {
    auto n = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0", "a=inactive"}), {});
    REQUIRE(n.ok());
    CHECK(n->on_hold);
    CHECK(n->remote.direction == Direction::inactive);
  }
  SUBCASE("RFC 2543 c=0.0.0.0") {
    auto n = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0"}, "c=IN IP4 0.0.0.0"), {});
    REQUIRE(n.ok());
    CHECK(n->on_hold);
    CHECK(n->remote.address == "0.0.0.0");
    CHECK(n->remote.direction == Direction::recvonly);  // nowhere to send to
  }
  SUBCASE("session-level sendonly") {
    std::string offer = sdp({"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1",
                             "t=0 0", "a=sendonly", "m=audio 4000 RTP/AVP 0"});
    auto n = negotiate_offer(offer, {});
    REQUIRE(n.ok());
    CHECK(n->on_hold);
    CHECK(n->remote.direction == Direction::recvonly);
  }
  SUBCASE("media level overrides session level") {
    std::string offer = sdp({"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1",
                             "t=0 0", "a=inactive", "m=audio 4000 RTP/AVP 0", "a=sendrecv"});
    auto n = negotiate_offer(offer, {});
    REQUIRE(n.ok());
    CHECK_FALSE(n->on_hold);
    CHECK(n->remote.direction == Direction::sendrecv);
  }
  SUBCASE("recvonly peer is not holding us") {
    auto n = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0", "a=recvonly"}), {});
    REQUIRE(n.ok());
    CHECK_FALSE(n->on_hold);
    CHECK(n->remote.direction == Direction::sendonly);
  }
}

TEST_CASE("connection address: media level first, IPv6, invalid forms") {
  auto media_level =
      negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0", "c=IN IP4 203.0.113.9"}), {});
  REQUIRE(media_level.ok());
  CHECK(media_level->remote.address == "203.0.113.9");

  auto v6 = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0"}, "c=IN IP6 2001:db8::1"), {});
  REQUIRE_MESSAGE(v6.ok(), v6.error().message);
  CHECK(v6->remote.address == "2001:db8::1");

  auto missing = negotiate_offer(
      sdp({"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0"}), {});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == Errc::parse);
  CHECK(missing.error().message.find("missing c= connection address") != std::string::npos);

  auto name =
      negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0"}, "c=IN IP4 media.example.com"), {});
  REQUIRE_FALSE(name.ok());
  CHECK(name.error().code == Errc::unsupported);
  CHECK(name.error().message.find("media.example.com") != std::string::npos);

  auto mcast =
      negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0"}, "c=IN IP4 224.2.1.1/127"), {});
  REQUIRE_FALSE(mcast.ok());
  CHECK(mcast.error().code == Errc::unsupported);
  CHECK(mcast.error().message.find("multicast") != std::string::npos);

  auto wrong_family =
      negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0"}, "c=IN IP6 192.0.2.1"), {});
  REQUIRE_FALSE(wrong_family.ok());
  CHECK(wrong_family.error().code == Errc::unsupported);
}

TEST_CASE("two audio streams: the first usable one wins") {
  std::string offer =
      offer_with({"m=audio 4000 RTP/AVP 18", "m=audio 4002 RTP/AVP 8 0", "m=audio 4004 RTP/AVP 0"});
  auto n = negotiate_offer(offer, {});
  REQUIRE(n.ok());
  CHECK(n->remote.port == 4002);
  CHECK(n->remote.codec == Codec::pcma);
  auto answer = build_answer(offer, *n, local4());
  REQUIRE_MESSAGE(answer.ok(), answer.error().message);
  auto lines = lines_of(*answer);
  std::vector<std::string> m_lines;
  for (const auto &l : lines)
    if (l.starts_with("m=")) m_lines.push_back(l);
  REQUIRE(m_lines.size() == 3);
  CHECK(m_lines[0] == "m=audio 0 RTP/AVP 18");
  CHECK(m_lines[1] == "m=audio 40000 RTP/AVP 8");
  CHECK(m_lines[2] == "m=audio 0 RTP/AVP 0");
  CHECK(sofia_accepts(*answer));
}

TEST_CASE("ptime is read from media, then session level") {
  auto media = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0", "a=ptime:30"}), {});
  REQUIRE(media.ok());
  CHECK(media->remote_ptime == 30);
  std::string session_level = sdp({"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1",
                                   "t=0 0", "a=ptime:40", "m=audio 4000 RTP/AVP 0"});
  auto session = negotiate_offer(session_level, {});
  REQUIRE(session.ok());
  CHECK(session->remote_ptime == 40);
  auto junk = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0", "a=ptime:abc"}), {});
  REQUIRE(junk.ok());
  CHECK(junk->remote_ptime == 20);
}

TEST_CASE("LF-only line ends are accepted") {
  auto n = negotiate_offer(sdp({"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1",
                                "t=0 0", "m=audio 4000 RTP/AVP 0"},
                               "\n"),
                           {});
  REQUIRE_MESSAGE(n.ok(), n.error().message);
  CHECK(n->remote.port == 4000);
}

TEST_CASE("malformed SDP is a parse error naming the problem") {
  auto expect_parse = [](const std::string &text, const char *needle) {
    auto n = negotiate_offer(text, {});
    REQUIRE_FALSE(n.ok());
    CHECK(n.error().code == Errc::parse);
    CHECK_MESSAGE(n.error().message.find(needle) != std::string::npos, n.error().message);
  };
  expect_parse("", "empty SDP");
  expect_parse("\r\n\r\n", "empty SDP");
  expect_parse("hello world", "SDP line 1: expected \"v=0\"");
  expect_parse("INVITE sip:bob@example.com SIP/2.0\r\n", "SDP line 1");
  expect_parse(" v=0\r\n", "SDP line 1");
  // Truncated in the middle of the media line.
  std::string truncated = std::string(kSippUac).substr(0, std::string(kSippUac).find("RTP/AVP"));
  expect_parse(truncated, "SDP line 6: malformed m= line");
  // Sofia's own errors get the line number found by re-parsing prefixes.
  expect_parse(offer_with({"m=audio 4000 RTP/AVP 0", "a=rtpmap:97 PCMU/8000"}),
               "SDP line 7: a=rtpmap:97: unknown payload type");
  expect_parse(sdp({"v=0", "o=- 1 1 IN IP4 192.0.2.1", "c=IN IP4 192.0.2.1", "t=0 0",
                    "m=audio 4000 RTP/AVP 0"}),
               "No s= present");
  expect_parse(sdp({"v=0", "o=- x 1 IN IP4 192.0.2.1", "s=-", "t=0 0"}),
               "SDP line 2: invalid session id");
  expect_parse(offer_with({"m=audio 4000 RTP/AVP 0", "a line"}),
               "SDP line 7: expected <type>=<value>");
  expect_parse(offer_with({"m=audio 70000 RTP/AVP 0"}), "audio port 70000 out of range");
  expect_parse(offer_with({"m=audio 4000 RTP/AVP"}), "malformed m= line");
  expect_parse("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=\0x\r\n"s, "SDP line 3: contains a NUL byte");
  std::string huge = std::string(kSippUac) + "a=" + std::string(40000, 'a') + "\r\n";
  expect_parse(huge, "too large");
  std::string many_lines = kSippUac;
  for (int i = 0; i < 1000; ++i) many_lines += "a=x\r\n";
  expect_parse(many_lines, "too many lines (1007, limit 1000)");
  // Within the limits, Sofia's errors are still located.
  std::string big = offer_with({"m=audio 4000 RTP/AVP 0"});
  for (int i = 0; i < 900; ++i) big += "a=x-filler:" + std::string(20, 'y') + "\r\n";
  expect_parse(big + "a=rtpmap:97 PCMU/8000\r\n",
               "SDP line 907: a=rtpmap:97: unknown payload type");
}

TEST_CASE("inputs that hang or over-read Sofia 1.12.11 are rejected before it sees them") {
  // Each of these made the packaged parser loop forever (format list of a non-RTP m= line)
  // or read past its buffer (a one-character last line).
  const std::string cases[] = {
      offer_with({"m=video 0 UDP \t"}),
      offer_with({"m=video 0 UDP @"}),
      offer_with({"m=audio 4000 RTP/AVP 0", "m=application 9 TCP/BFCP \"x\""}),
      std::string(kSippUac) + "x",
      std::string(kSippUac) + "a",
  };
  for (const auto &text : cases) {
    auto start = std::chrono::steady_clock::now();
    auto n = negotiate_offer(text, {});
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
    REQUIRE_FALSE(n.ok());
    CHECK(n.error().code == Errc::parse);
    CHECK(n.error().message.starts_with("SDP line "));
  }
}

TEST_CASE("build_answer: line by line, re-parsed by Sofia") {
  auto n = negotiate_offer(kLinphone, {});
  REQUIRE(n.ok());
  auto answer = build_answer(kLinphone, *n, local4());
  REQUIRE_MESSAGE(answer.ok(), answer.error().message);
  std::vector<std::string> expected = {
      "v=0",
      "o=- 12345 1 IN IP4 198.51.100.7",
      "s=-",
      "c=IN IP4 198.51.100.7",
      "t=0 0",
      "m=audio 40000 RTP/AVP 0 101",
      "a=rtpmap:0 PCMU/8000",
      "a=rtpmap:101 telephone-event/8000",
      "a=fmtp:101 0-16",
      "a=ptime:20",
      "a=sendrecv",
  };
  CHECK(lines_of(*answer) == expected);
  CHECK(sofia_accepts(*answer));
}

TEST_CASE("build_answer declines other streams keeping media, proto and formats") {
  std::string offer = offer_with({"m=video 5000 RTP/AVP 31 34", "m=audio 4000 RTP/AVP 0",
                                  "m=application 5060 UDP/BFCP *", "m=image 6000 udptl t38"});
  auto n = negotiate_offer(offer, {});
  REQUIRE(n.ok());
  auto answer = build_answer(offer, *n, local4());
  REQUIRE_MESSAGE(answer.ok(), answer.error().message);
  auto lines = lines_of(*answer);
  std::vector<std::string> m_lines;
  for (const auto &l : lines)
    if (l.starts_with("m=")) m_lines.push_back(l);
  std::vector<std::string> expected = {"m=video 0 RTP/AVP 31 34", "m=audio 40000 RTP/AVP 0",
                                       "m=application 0 UDP/BFCP *", "m=image 0 udptl t38"};
  CHECK(m_lines == expected);
  CHECK(sofia_accepts(*answer));
  // Our answer is itself an offer we would accept, on the same stream.
  auto again = negotiate_offer(*answer, {});
  REQUIRE(again.ok());
  CHECK(again->remote.port == 40000);
}

TEST_CASE("build_answer mirrors hold and uses the offer's dynamic pt") {
  std::string offer =
      offer_with({"m=audio 4000 RTP/AVP 96", "a=rtpmap:96 PCMU/8000", "a=sendonly"});
  auto n = negotiate_offer(offer, {});
  REQUIRE(n.ok());
  auto answer = build_answer(offer, *n, local4());
  REQUIRE(answer.ok());
  auto lines = lines_of(*answer);
  CHECK(std::find(lines.begin(), lines.end(), "m=audio 40000 RTP/AVP 96") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(), "a=rtpmap:96 PCMU/8000") != lines.end());
  CHECK(lines.back() == "a=recvonly");

  std::string inactive = offer_with({"m=audio 4000 RTP/AVP 0", "a=inactive"});
  auto ni = negotiate_offer(inactive, {});
  REQUIRE(ni.ok());
  auto ai = build_answer(inactive, *ni, local4());
  REQUIRE(ai.ok());
  CHECK(lines_of(*ai).back() == "a=inactive");
}

TEST_CASE("build_answer over IPv6") {
  auto n = negotiate_offer(offer_with({"m=audio 4000 RTP/AVP 0"}, "c=IN IP6 2001:db8::1"), {});
  REQUIRE(n.ok());
  LocalMedia l = local4();
  l.address = "2001:db8::7";
  auto answer = build_answer(offer_with({"m=audio 4000 RTP/AVP 0"}, "c=IN IP6 2001:db8::1"), *n, l);
  REQUIRE(answer.ok());
  auto lines = lines_of(*answer);
  CHECK(lines[1] == "o=- 12345 1 IN IP6 2001:db8::7");
  CHECK(lines[3] == "c=IN IP6 2001:db8::7");
  CHECK(sofia_accepts(*answer));
}

TEST_CASE("build_answer refuses inconsistent input") {
  auto n = negotiate_offer(kSippUac, {});
  REQUIRE(n.ok());
  LocalMedia bad = local4();
  bad.address = "not-an-ip";
  auto a1 = build_answer(kSippUac, *n, bad);
  REQUIRE_FALSE(a1.ok());
  CHECK(a1.error().code == Errc::invalid_argument);

  Negotiated other = *n;
  other.remote.codec = Codec::pcma;
  other.remote.payload_type = 8;
  auto a2 = build_answer(kSippUac, other, local4());
  REQUIRE_FALSE(a2.ok());
  CHECK(a2.error().code == Errc::invalid_argument);

  Negotiated te = *n;
  te.remote.telephone_event_pt = 101;  // not in this offer
  CHECK_FALSE(build_answer(kSippUac, te, local4()).ok());

  auto a3 = build_answer("garbage", *n, local4());
  REQUIRE_FALSE(a3.ok());
  CHECK(a3.error().code == Errc::parse);
}

TEST_CASE("build_offer content") {
  LocalMedia l = local4();
  l.port = 30000;
  auto offer = build_offer({}, l);
  std::vector<std::string> expected = {
      "v=0",
      "o=- 12345 1 IN IP4 198.51.100.7",
      "s=-",
      "c=IN IP4 198.51.100.7",
      "t=0 0",
      "m=audio 30000 RTP/AVP 0 8 101",
      "a=rtpmap:0 PCMU/8000",
      "a=rtpmap:8 PCMA/8000",
      "a=rtpmap:101 telephone-event/8000",
      "a=fmtp:101 0-16",
      "a=ptime:20",
      "a=sendrecv",
  };
  CHECK(lines_of(offer) == expected);
  CHECK(sofia_accepts(offer));

  LocalMediaCaps pcma;
  pcma.pcmu = false;
  pcma.telephone_event = false;
  auto small = build_offer(pcma, l);
  CHECK(small.find("m=audio 30000 RTP/AVP 8\r\n") != std::string::npos);
  CHECK(small.find("PCMU") == std::string::npos);
  CHECK(small.find("telephone-event") == std::string::npos);
}

TEST_CASE("offer/answer round trip: build_offer -> peer answers -> parse_answer") {
  LocalMedia ours = local4();
  ours.port = 30000;
  std::string offer = build_offer({}, ours);

  // The peer runs the same negotiation on our offer and answers it.
  auto at_peer = negotiate_offer(offer, {});
  REQUIRE(at_peer.ok());
  LocalMedia peer;
  peer.address = "203.0.113.50";
  peer.port = 50000;
  peer.session_id = 99;
  peer.version = 3;
  auto answer = build_answer(offer, *at_peer, peer);
  REQUIRE(answer.ok());

  auto n = parse_answer(*answer, {});
  REQUIRE_MESSAGE(n.ok(), n.error().message);
  CHECK(n->remote.address == "203.0.113.50");
  CHECK(n->remote.port == 50000);
  CHECK(n->remote.codec == Codec::pcmu);
  CHECK(n->remote.payload_type == 0);
  CHECK(n->remote.telephone_event_pt == 101);
  CHECK(n->remote.direction == Direction::sendrecv);
  CHECK_FALSE(n->on_hold);
}

TEST_CASE("parse_answer: one of our codecs, in the answerer's order") {
  std::string answer = offer_with(
      {"m=audio 7000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000", "a=recvonly"});
  auto n = parse_answer(answer, {});
  REQUIRE(n.ok());
  CHECK(n->remote.codec == Codec::pcma);
  CHECK(n->remote.direction == Direction::sendonly);

  auto rejected = parse_answer(offer_with({"m=audio 0 RTP/AVP 0"}), {});
  REQUIRE_FALSE(rejected.ok());
  CHECK(rejected.error().code == Errc::unsupported);

  auto foreign = parse_answer(offer_with({"m=audio 7000 RTP/AVP 18"}), {});
  REQUIRE_FALSE(foreign.ok());
  CHECK(foreign.error().message.find("no common codec") != std::string::npos);

  // Caps without any codec still produce a well-formed offer, and the answer then fails.
  LocalMediaCaps none;
  none.pcmu = none.pcma = false;
  auto offer = build_offer(none, local4());
  CHECK(sofia_accepts(offer));
  auto at_peer = negotiate_offer(offer, {});
  REQUIRE(at_peer.ok());
  auto peer_answer = build_answer(offer, *at_peer, local4());
  REQUIRE(peer_answer.ok());
  auto mine = parse_answer(*peer_answer, none);
  REQUIRE_FALSE(mine.ok());
  CHECK(mine.error().message.find("accepted: none") != std::string::npos);
}
