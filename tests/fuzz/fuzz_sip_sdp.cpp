// Fuzzes SDP offer handling: negotiate_offer on any bytes; when it accepts, the answer we build
// must be SDP that Sofia accepts and that we ourselves read back to the same codec and port.
#include <sofia-sip/sdp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sip/sdp.h"

namespace {

using namespace ivr::sip;

[[noreturn]] void fail(const char *what, const std::string &detail) {
  std::fprintf(stderr, "fuzz_sip_sdp: %s: %s\n", what, detail.c_str());
  std::abort();
}

bool sofia_accepts(const std::string &text) {
  sdp_parser_t *p =
      sdp_parse(nullptr, text.data(), static_cast<issize_t>(text.size()), sdp_f_strict);
  bool ok = sdp_session(p) != nullptr;
  sdp_parser_free(p);
  return ok;
}

void check_offer(std::string_view text, const LocalMediaCaps &caps) {
  auto n = negotiate_offer(text, caps);
  if (!n) {
    const auto &e = n.error();
    if (e.code != ivr::Errc::parse && e.code != ivr::Errc::unsupported)
      fail("unexpected error code", e.message);
    if (e.message.empty()) fail("empty error message", "");
    return;
  }
  const auto &r = n->remote;
  if (r.port == 0 || r.address.empty()) fail("accepted without address/port", r.address);
  if (r.payload_type > 127 || r.telephone_event_pt < -1 || r.telephone_event_pt > 127)
    fail("payload type out of range", std::to_string(r.payload_type));
  if ((r.codec == ivr::media::Codec::pcmu && !caps.pcmu) ||
      (r.codec == ivr::media::Codec::pcma && !caps.pcma))
    fail("codec outside caps", "");
  if (r.telephone_event_pt >= 0 && !caps.telephone_event) fail("te outside caps", "");

  LocalMedia local;
  local.address = "192.0.2.10";
  local.port = 40000;
  local.session_id = 7;
  local.version = 1;
  auto answer = build_answer(text, *n, local);
  if (!answer) fail("build_answer failed on an accepted offer", answer.error().message);
  if (!sofia_accepts(*answer)) fail("Sofia rejects our answer", *answer);
  auto back = parse_answer(*answer, caps);
  if (!back) fail("we reject our own answer", back.error().message + "\n" + *answer);
  if (back->remote.codec != r.codec || back->remote.payload_type != r.payload_type ||
      back->remote.telephone_event_pt != r.telephone_event_pt || back->remote.port != 40000 ||
      back->remote.address != local.address)
    fail("answer reads back differently", *answer);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  check_offer(text, LocalMediaCaps{});
  LocalMediaCaps pcma_only;
  pcma_only.pcmu = false;
  pcma_only.telephone_event = false;
  check_offer(text, pcma_only);
  // The answer path shares the parser but not the caller; run it on the same bytes.
  auto a = parse_answer(text, LocalMediaCaps{});
  if (!a && a.error().message.empty()) fail("empty error message", "parse_answer");
  return 0;
}
