// Checks of route and transfer values, shared by the compiler (literal values, with the
// node's JSON Pointer) and the interpreter (templated values, after rendering: on_error).
// Private to lib/flow.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ivr::flow::route_checks {

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char &c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

// Routing names (plans, targets) are 1-64 letters, digits, '_' or '-' (docs/routing.md).
inline constexpr std::string_view kPlanRule =
    "plan names a routing plan: 1-64 characters of letters, digits, '_' or '-'";
inline bool valid_plan(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// Headers toward a dialing system: X-<token> or User-to-User, as routing targets allow.
inline constexpr std::string_view kHeaderNameRule =
    "a header toward the dialing system is X-<name> (letters, digits, - . ! % * _ + ` ' ~) "
    "or User-to-User";
inline bool valid_header_name(std::string_view s) {
  if (lower(s) == "user-to-user") return true;
  if (s.size() < 3 || s.size() > 128 || (s[0] != 'X' && s[0] != 'x') || s[1] != '-') return false;
  return std::all_of(s.begin() + 2, s.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("-.!%*_+`'~").find(c) != std::string_view::npos;
  });
}

// The From user part toward the dialing system.
inline constexpr std::string_view kCallerIdRule =
    "caller_id is a number or SIP user name: 1-64 characters of letters, digits and + - . _ ~ *";
inline bool valid_caller_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("+-._~*").find(c) != std::string_view::npos;
  });
}

inline constexpr std::string_view kPriorityRule =
    "priority must be an integer from 0 to 999 (lower is served first)";
inline std::optional<uint32_t> parse_priority(std::string_view s) {
  if (s.empty() || s.size() > 3) return std::nullopt;
  uint32_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n;
}

// "" when the queue's announcement text is fine; else why not. The queue fills in its own
// placeholders: anything else in braces would be spoken as written.
inline std::string announce_problem(std::string_view text) {
  static constexpr std::string_view kPlaceholders[] = {"position", "wait_minutes", "wait_seconds"};
  static const std::string kKnown = "{position}, {wait_minutes} and {wait_seconds}";
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return "announce needs the text to say";
  if (text.size() > 1000) return "announce text is longer than 1000 characters";
  if (text.find("{{") != std::string_view::npos)
    return "announce text is spoken by the queue, not a flow template: \"{{\" is not allowed "
           "(the queue fills in " +
           kKnown + ")";
  for (size_t open = text.find('{'); open != std::string_view::npos;
       open = text.find('{', open + 1)) {
    size_t close = text.find('}', open);
    std::string_view name =
        text.substr(open + 1, close == std::string_view::npos ? 0 : close - open - 1);
    if (close == std::string_view::npos ||
        std::find(std::begin(kPlaceholders), std::end(kPlaceholders), name) ==
            std::end(kPlaceholders))
      return "unknown placeholder \"" +
             std::string(
                 text.substr(open, close == std::string_view::npos ? 1 : close - open + 1)) +
             "\" (the queue fills in " + kKnown + ")";
  }
  return "";
}

inline bool has_sip_scheme(std::string_view s) {
  std::string l = lower(s.substr(0, 5));
  return l.rfind("sip:", 0) == 0 || l == "sips:";
}

// "" when `uri` is a usable transfer target; else why not.
inline std::string sip_uri_problem(std::string_view uri) {
  if (!has_sip_scheme(uri))
    return "to must be a sip: or sips: URI, not \"" + std::string(uri.substr(0, 64)) + "\"";
  if (uri.size() > 1024) return "to is longer than 1024 characters";
  size_t scheme = uri[3] == ':' ? 4 : 5;
  if (uri.size() == scheme) return "to has nothing after \"" + std::string(uri) + "\"";
  for (char c : uri)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"')
      return "to must not hold spaces, control characters, '<', '>' or '\"'";
  // "sip:@pbx" or "sip:1001@": a variable that was not set, most likely.
  std::string_view rest = uri.substr(scheme);
  size_t at = rest.find('@');
  if (at == 0) return "to has an empty user part: \"" + std::string(uri) + "\"";
  std::string_view host = at == std::string_view::npos ? rest : rest.substr(at + 1);
  if (host.empty() || host[0] == ':' || host[0] == ';')
    return "to has no host: \"" + std::string(uri) + "\"";
  return "";
}

// A templated URI: the literal text before the first {{...}} must be empty or start with
// the scheme (the rest is checked per call).
inline std::string sip_prefix_problem(std::string_view prefix) {
  if (prefix.empty() || has_sip_scheme(prefix)) return "";
  return "to must be a sip: or sips: URI: write the scheme first (\"sip:{{vars.agent}}@pbx\") "
         "or template the whole URI";
}

}  // namespace ivr::flow::route_checks
