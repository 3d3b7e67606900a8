// DTMF from SIP INFO bodies, in the shapes gateways and softphones send.
#include <doctest/doctest.h>

#include <string>

#include "sip/info_dtmf.h"

using ivr::Errc;
using ivr::media::DtmfSource;
using ivr::sip::parse_info_dtmf;
using namespace std::string_literals;

namespace {

constexpr const char *kRelay = "application/dtmf-relay";

char digit_of(const char *type, const std::string &body) {
  auto d = parse_info_dtmf(type, body);
  REQUIRE_MESSAGE(d.ok(), d.error().message);
  CHECK(d->source == DtmfSource::info);
  return d->digit;
}

uint32_t duration_of(const std::string &body) {
  auto d = parse_info_dtmf(kRelay, body);
  REQUIRE_MESSAGE(d.ok(), d.error().message);
  return d->duration_ms;
}

void expect_error(const char *type, const std::string &body, Errc code, const char *needle) {
  auto d = parse_info_dtmf(type, body);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().code == code);
  CHECK_MESSAGE(d.error().message.find(needle) != std::string::npos, d.error().message);
}

}  // namespace

TEST_CASE("dtmf-relay as Cisco sends it") {
  auto d = parse_info_dtmf(kRelay, "Signal=5\r\nDuration=160\r\n");
  REQUIRE(d.ok());
  CHECK(d->digit == '5');
  CHECK(d->duration_ms == 160);
  CHECK(d->source == DtmfSource::info);
}

TEST_CASE("dtmf-relay variants: spaces, LF-only, key case, extra lines") {
  CHECK(digit_of(kRelay, "Signal = 7 \r\nDuration = 100\r\n") == '7');
  CHECK(duration_of("Signal = 7 \r\nDuration = 100\r\n") == 100);
  CHECK(digit_of(kRelay, "signal=#\nduration=200\n") == '#');
  CHECK(duration_of("signal=#\nduration=200\n") == 200);
  CHECK(digit_of(kRelay, "SIGNAL=*") == '*');
  CHECK(digit_of(kRelay, "\r\n\tSignal=\t9\r\n\r\n") == '9');
  CHECK(digit_of(kRelay, "Duration=120\r\nSignal=3\r\n") == '3');
  CHECK(digit_of(kRelay, "Signal=4\r\nVolume=10\r\nDuration=90\r\n") == '4');
  CHECK(digit_of(kRelay, "Signal=4\r\nSignal=4\r\n") == '4');  // repeated, not conflicting
}

TEST_CASE("every DTMF signal, and the numeric forms of * # A-D") {
  for (char c : std::string("0123456789*#ABCD"))
    CHECK(digit_of(kRelay, "Signal="s + c + "\r\n") == c);
  for (char c : std::string("abcd"))
    CHECK(digit_of(kRelay, "Signal="s + c + "\r\n") == char(c - 'a' + 'A'));
  CHECK(digit_of(kRelay, "Signal=10\r\n") == '*');
  CHECK(digit_of(kRelay, "Signal=11\r\n") == '#');
  CHECK(digit_of(kRelay, "Signal=12\r\n") == 'A');
  CHECK(digit_of(kRelay, "Signal=15\r\n") == 'D');
  CHECK(digit_of(kRelay, "Signal=05\r\n") == '5');
}

TEST_CASE("duration: absent or out of 1..10000 gives 250 ms") {
  CHECK(duration_of("Signal=1\r\n") == 250);
  CHECK(duration_of("Signal=1\r\nDuration=0\r\n") == 250);
  CHECK(duration_of("Signal=1\r\nDuration=1\r\n") == 1);
  CHECK(duration_of("Signal=1\r\nDuration=10000\r\n") == 10000);
  CHECK(duration_of("Signal=1\r\nDuration=10001\r\n") == 250);
  CHECK(duration_of("Signal=1\r\nDuration=99999999999999999999\r\n") == 250);
  CHECK(duration_of("Signal=1\r\nDuration=-5\r\n") == 250);
  CHECK(duration_of("Signal=1\r\nDuration=abc\r\n") == 250);
  CHECK(duration_of("Signal=1\r\nDuration=\r\n") == 250);
}

TEST_CASE("dtmf-relay errors name the problem") {
  expect_error(kRelay, "", Errc::parse, "dtmf-relay body has no Signal line");
  expect_error(kRelay, "Duration=160\r\n", Errc::parse, "no Signal line");
  expect_error(kRelay, "Signal=Z\r\n", Errc::parse, "bad DTMF signal 'Z'");
  expect_error(kRelay, "Signal=\r\n", Errc::parse, "bad DTMF signal ''");
  expect_error(kRelay, "Signal=16\r\n", Errc::parse, "bad DTMF signal '16'");  // flash
  expect_error(kRelay, "Signal=55\r\n", Errc::parse, "bad DTMF signal '55'");
  expect_error(kRelay, "Signal=1 2\r\n", Errc::parse, "bad DTMF signal");
  expect_error(kRelay, "Signal=1\r\nSignal=2\r\n", Errc::parse, "two different Signal lines");
  expect_error(kRelay, "Signal=\x01\r\n", Errc::parse, "'\\x01'");  // escaped in the message
}

TEST_CASE("application/dtmf: one digit, optional whitespace") {
  const char *type = "application/dtmf";
  CHECK(digit_of(type, "5") == '5');
  CHECK(digit_of(type, " # \r\n") == '#');
  CHECK(digit_of(type, "d") == 'D');
  auto d = parse_info_dtmf(type, "1");
  REQUIRE(d.ok());
  CHECK(d->duration_ms == 250);
  expect_error(type, "", Errc::parse, "application/dtmf body is empty");
  expect_error(type, " \r\n", Errc::parse, "empty");
  expect_error(type, "Z", Errc::parse, "bad DTMF signal 'Z'");
  expect_error(type, "123", Errc::parse, "bad DTMF signal '123'");
  expect_error(type, "Signal=5", Errc::parse, "bad DTMF signal");
}

TEST_CASE("content type: case-insensitive, parameters ignored, others unsupported") {
  CHECK(digit_of("Application/DTMF-Relay", "Signal=1") == '1');
  CHECK(digit_of("application/dtmf-relay; charset=UTF-8", "Signal=2") == '2');
  CHECK(digit_of("  APPLICATION/DTMF ; x=y", "3") == '3');
  expect_error("text/plain", "Signal=1", Errc::unsupported, "text/plain");
  expect_error("application/dtmf-relayx", "Signal=1", Errc::unsupported, "content type");
  expect_error("", "Signal=1", Errc::unsupported, "content type");
  expect_error("application/sdp", "v=0", Errc::unsupported, "application/sdp");
}
