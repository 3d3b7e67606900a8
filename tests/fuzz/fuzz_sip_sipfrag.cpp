// Fuzzes the status line of message/sipfrag bodies (the NOTIFYs of a REFER: untrusted input
// from the far end). Any input: a status 100-699 with a phrase of one line, or a parse error
// with a message; never a crash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sip/sipfrag.h"

namespace {

[[noreturn]] void fail(const char *what, const std::string &detail) {
  std::fprintf(stderr, "fuzz_sip_sipfrag: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view body(reinterpret_cast<const char *>(data), size);
  auto r = ivr::sip::parse_sipfrag_status(body);
  if (r) {
    if (r->status < 100 || r->status > 699) fail("status out of range", std::to_string(r->status));
    if (r->phrase.find_first_of("\r\n") != std::string::npos) fail("phrase spans lines", r->phrase);
  } else {
    if (r.error().message.empty()) fail("error without a message", "");
    if (r.error().message.size() > 200) fail("unbounded error message", r.error().message);
  }
  return 0;
}
