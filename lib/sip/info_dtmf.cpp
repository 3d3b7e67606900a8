// DTMF in SIP INFO bodies. Neither body format has an RFC; this follows what gateways send
// (Cisco's application/dtmf-relay, "Signal=5\r\nDuration=160") and tolerates the variants
// seen in the field: spaces around '=', LF-only lines, lower-case keys, "10"/"11" for * and #.
#include "sip/info_dtmf.h"

#include <cstdio>
#include <optional>
#include <string>

#include "common/text.h"

namespace ivr::sip {
namespace {

constexpr uint32_t kDefaultDurationMs = 250;
constexpr uint32_t kMaxDurationMs = 10000;

using text::iequals;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string quoted(std::string_view s) { return text::quote_untrusted(s, 24, '\''); }

// A digit as a character (0-9 * # A-D, a-d) or as its RFC 4733 event code 0-15; gateways
// send "10" and "11" for * and #.
std::optional<char> signal_digit(std::string_view v) {
  if (v.size() == 1) {
    char c = v[0];
    if ((c >= '0' && c <= '9') || c == '*' || c == '#') return c;
    if (c >= 'A' && c <= 'D') return c;
    if (c >= 'a' && c <= 'd') return char(c - 'a' + 'A');
    return std::nullopt;
  }
  if (v.size() == 2 && v[0] >= '0' && v[0] <= '9' && v[1] >= '0' && v[1] <= '9') {
    unsigned code = unsigned(v[0] - '0') * 10 + unsigned(v[1] - '0');
    if (code < 16) return media::dtmf_event_to_digit(code);
  }
  return std::nullopt;
}

// Out-of-range or unreadable durations fall back to the default: the digit matters more.
uint32_t duration_ms(std::string_view v) {
  if (v.empty() || v.size() > 9) return kDefaultDurationMs;
  uint32_t ms = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return kDefaultDurationMs;
    ms = ms * 10 + uint32_t(c - '0');
  }
  return ms >= 1 && ms <= kMaxDurationMs ? ms : kDefaultDurationMs;
}

Result<media::DtmfDigit> parse_relay(std::string_view body) {
  std::optional<std::string_view> signal, duration;
  while (!body.empty()) {
    auto eol = body.find('\n');
    auto line = body.substr(0, eol);
    body = eol == std::string_view::npos ? std::string_view() : body.substr(eol + 1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;  // blank or unknown lines carry no digit
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    if (iequals(key, "signal")) {
      if (signal && *signal != value)
        return Error{Errc::parse, "dtmf-relay body has two different Signal lines (" +
                                      quoted(*signal) + ", " + quoted(value) + ")"};
      signal = value;
    } else if (iequals(key, "duration")) {
      duration = value;
    }
  }
  if (!signal) return Error{Errc::parse, "dtmf-relay body has no Signal line"};
  auto digit = signal_digit(*signal);
  if (!digit) return Error{Errc::parse, "bad DTMF signal " + quoted(*signal)};
  return media::DtmfDigit{*digit, duration ? duration_ms(*duration) : kDefaultDurationMs,
                          media::DtmfSource::info};
}

Result<media::DtmfDigit> parse_plain(std::string_view body) {
  auto value = trim(body);
  if (value.empty()) return Error{Errc::parse, "application/dtmf body is empty"};
  auto digit = signal_digit(value);
  if (!digit) return Error{Errc::parse, "bad DTMF signal " + quoted(value)};
  return media::DtmfDigit{*digit, kDefaultDurationMs, media::DtmfSource::info};
}

}  // namespace

Result<media::DtmfDigit> parse_info_dtmf(std::string_view content_type, std::string_view body) {
  auto type = trim(content_type.substr(0, content_type.find(';')));
  if (iequals(type, "application/dtmf-relay")) return parse_relay(body);
  if (iequals(type, "application/dtmf")) return parse_plain(body);
  return Error{Errc::unsupported, "INFO content type " + quoted(content_type) +
                                      " is not application/dtmf-relay or application/dtmf"};
}

}  // namespace ivr::sip
