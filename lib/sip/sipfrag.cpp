#include "sip/sipfrag.h"

#include <cstdio>

#include "common/text.h"

namespace ivr::sip {
namespace {

std::string quoted(std::string_view s) { return text::quote_untrusted(s, 40, '\''); }

}  // namespace

Result<SipfragStatus> parse_sipfrag_status(std::string_view body) {
  std::string_view s = body;
  while (!s.empty() && (s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  if (s.empty()) return Error{Errc::parse, "sipfrag: empty body"};
  std::string_view line = s.substr(0, s.find_first_of("\r\n"));
  constexpr std::string_view kVersion = "SIP/2.0";
  auto bad = [&](const char *why) {
    return Error{Errc::parse, std::string("sipfrag: ") + why + " in " + quoted(line)};
  };
  if (line.size() < kVersion.size() || !text::iequals(line.substr(0, kVersion.size()), kVersion))
    return bad("no SIP/2.0 status line");
  std::string_view rest = line.substr(kVersion.size());
  if (rest.empty() || rest.front() != ' ') return bad("no space after SIP/2.0");
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.size() < 3) return bad("no 3-digit status");
  int status = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (rest[i] < '0' || rest[i] > '9') return bad("no 3-digit status");
    status = status * 10 + (rest[i] - '0');
  }
  rest.remove_prefix(3);
  if (status < 100 || status > 699) return bad("status out of 100-699");
  if (!rest.empty() && rest.front() != ' ') return bad("status longer than 3 digits");
  SipfragStatus out;
  out.status = status;
  out.phrase = std::string(text::trim(rest));
  return out;
}

}  // namespace ivr::sip
