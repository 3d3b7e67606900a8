// Fuzzes INFO DTMF parsing. The first byte picks the content type (or, past the table, makes
// the first line of the input the content type); the rest is the body.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sip/info_dtmf.h"

namespace {

[[noreturn]] void fail(const char *what, const std::string &detail) {
  std::fprintf(stderr, "fuzz_sip_info: %s: %s\n", what, detail.c_str());
  std::abort();
}

constexpr std::string_view kTypes[] = {
    "application/dtmf-relay", "application/dtmf", "Application/DTMF-Relay; charset=UTF-8",
    " APPLICATION/DTMF ;x=y", "text/plain",       "",
};
constexpr size_t kTypeCount = sizeof kTypes / sizeof kTypes[0];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char *>(data) + 1, size - 1);
  std::string_view type;
  bool known_type;
  if (data[0] < 0x80) {
    type = kTypes[data[0] % kTypeCount];
    known_type = data[0] % kTypeCount < 4;
  } else {
    auto eol = rest.find('\n');
    type = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    known_type = false;  // unknown here: any result is allowed, but must be well formed
  }
  auto d = ivr::sip::parse_info_dtmf(type, rest);
  if (d) {
    if (std::string_view("0123456789*#ABCD").find(d->digit) == std::string_view::npos)
      fail("digit outside 0-9 * # A-D", std::string(1, d->digit));
    if (d->duration_ms < 1 || d->duration_ms > 10000)
      fail("duration out of range", std::to_string(d->duration_ms));
    if (d->source != ivr::media::DtmfSource::info) fail("source is not info", "");
    return 0;
  }
  const auto &e = d.error();
  if (e.message.empty()) fail("empty error message", "");
  if (e.code == ivr::Errc::unsupported && known_type) fail("known type unsupported", e.message);
  if (e.code != ivr::Errc::unsupported && e.code != ivr::Errc::parse)
    fail("unexpected error code", e.message);
  return 0;
}
