#include "routing/model.h"

#include <algorithm>

#include "common/text.h"

namespace ivr::routing {

namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_tchar(char c) {  // RFC 9110 token characters
  return is_alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string range(uint32_t lo, uint32_t hi) {
  return "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

}  // namespace

const char *transport_name(Transport t) {
  switch (t) {
    case Transport::udp:
      return "udp";
    case Transport::tcp:
      return "tcp";
    case Transport::tls:
      return "tls";
  }
  return "?";
}

const char *health_name(Health h) {
  switch (h) {
    case Health::up:
      return "up";
    case Health::down:
      return "down";
    case Health::draining:
      return "draining";
  }
  return "?";
}

const char *skip_reason_name(SkipReason r) {
  switch (r) {
    case SkipReason::down:
      return "down";
    case SkipReason::draining:
      return "draining";
    case SkipReason::full:
      return "full";
    case SkipReason::stale_availability:
      return "stale availability";
    case SkipReason::no_agents:
      return "no agents";
    case SkipReason::tried:
      return "tried";
  }
  return "?";
}

const char *fail_reason_name(FailReason r) {
  switch (r) {
    case FailReason::busy:
      return "busy";
    case FailReason::rejected:
      return "rejected";
    case FailReason::server_error:
      return "server_error";
    case FailReason::no_answer:
      return "no_answer";
    case FailReason::transport:
      return "transport";
  }
  return "?";
}

namespace {
constexpr std::array<std::pair<std::string_view, Strategy>, 7> kStrategies = {{
    {"failover", Strategy::failover},
    {"round_robin", Strategy::round_robin},
    {"weighted", Strategy::weighted},
    {"least_busy", Strategy::least_busy},
    {"most_idle", Strategy::most_idle},
    {"sticky", Strategy::sticky},
    {"rules", Strategy::rules},
}};
}  // namespace

const char *strategy_name(Strategy s) {
  for (auto &[name, v] : kStrategies)
    if (v == s) return name.data();
  return "?";
}

bool parse_strategy(std::string_view name, Strategy &out) {
  for (auto &[n, v] : kStrategies) {
    if (n == name) {
      out = v;
      return true;
    }
  }
  return false;
}

const char *delivery_method_name(DeliveryMethod m) {
  switch (m) {
    case DeliveryMethod::bridge:
      return "bridge";
    case DeliveryMethod::refer:
      return "refer";
    case DeliveryMethod::redirect:
      return "redirect";
  }
  return "?";
}

const char *agent_rule_name(AgentRule r) {
  return r == AgentRule::idle_agent ? "idle_agent" : "none";
}

std::string shown_name(std::string_view name) {
  bool printable =
      !name.empty() && name.size() <= 64 &&
      std::all_of(name.begin(), name.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  return printable ? std::string(name) : "(a member)";
}

bool valid_target_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_alnum(c) || c == '_' || c == '-'; });
}

bool valid_secret_name(std::string_view name) {  // the rule of net::valid_secret_name
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

bool valid_header_name(std::string_view name) {
  if (text::iequals(name, "User-to-User")) return true;
  if (name.size() < 3 || text::ascii_lower(name[0]) != 'x' || name[1] != '-') return false;
  return std::all_of(name.begin() + 2, name.end(), is_tchar);
}

bool valid_sip_uri(std::string_view uri) {
  size_t rest;
  if (uri.substr(0, 4) == "sip:")
    rest = 4;
  else if (uri.substr(0, 5) == "sips:")
    rest = 5;
  else
    return false;
  if (uri.size() <= rest || uri.size() > 1024) return false;
  return std::none_of(uri.begin(), uri.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
}

Status validate_target(const TargetConfig &t, std::string_view path) {
  std::string at = std::string(path);
  auto bad = [&](std::string_view field, const std::string &why) {
    return Status(Errc::invalid_argument, at + "." + std::string(field) + ": " + why);
  };
  if (!valid_target_name(t.name))
    return Status(Errc::invalid_argument,
                  at + ": target name must be 1-64 characters of letters, digits, '_' and '-' "
                       "(not starting with '-')");
  if (t.uris.empty()) return bad("uris", "at least one SIP URI is needed");
  for (size_t i = 0; i < t.uris.size(); ++i) {
    const SipTarget &u = t.uris[i];
    std::string f = "uris[" + std::to_string(i) + "]";
    if (!valid_sip_uri(u.uri))
      return bad(f, "not a SIP URI (want sip:user@host[:port] or sips:..., no spaces)");
    if (u.uri.rfind("sips:", 0) == 0 && u.transport != Transport::tls)
      return bad(f, "a sips: URI needs transport tls");
  }
  if (!t.password_secret.empty() && t.username.empty())
    return bad("username", "missing (password_secret is set)");
  if (!t.username.empty()) {
    if (std::any_of(t.username.begin(), t.username.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
      return bad("username", "contains a control character");
    if (t.password_secret.empty()) return bad("password_secret", "missing (username is set)");
    if (!valid_secret_name(t.password_secret))
      return bad("password_secret",
                 "not a valid secret name (1-128 characters of A-Z a-z 0-9 _ . -; it names the "
                 "secret, it is not the secret)");
  }
  if (t.capacity < 1 || t.capacity > kMaxCapacity) return bad("capacity", range(1, kMaxCapacity));
  if (t.weight < 1 || t.weight > kMaxWeight) return bad("weight", range(1, kMaxWeight));
  if (t.priority > kMaxPriority) return bad("priority", range(0, kMaxPriority));
  for (size_t i = 0; i < t.headers.size(); ++i) {
    const HeaderTemplate &h = t.headers[i];
    std::string f = "headers." + h.name;
    if (!valid_header_name(h.name))
      return bad(h.name.size() <= 64 && std::all_of(h.name.begin(), h.name.end(), is_tchar)
                     ? f
                     : "headers[" + std::to_string(i) + "]",
                 "header name must be X-<token> or User-to-User");
    for (size_t j = 0; j < i; ++j)
      if (text::iequals(t.headers[j].name, h.name)) return bad(f, "duplicate header");
    if (h.value.size() > kMaxHeaderValue)
      return bad(f, "longer than " + std::to_string(kMaxHeaderValue) + " characters");
    if (h.value.find_first_of("\r\n") != std::string::npos)
      return bad(f, "contains a line break (header injection)");
  }
  const ProbeConfig &p = t.probe;
  if (p.interval_s < 1 || p.interval_s > kMaxProbeInterval)
    return bad("probe.interval_s", range(1, kMaxProbeInterval));
  if (p.down_after < 1 || p.down_after > kMaxThreshold)
    return bad("probe.down_after", range(1, kMaxThreshold));
  if (p.up_after < 1 || p.up_after > kMaxThreshold)
    return bad("probe.up_after", range(1, kMaxThreshold));
  if (p.min_hold_s > kMaxHoldSeconds) return bad("probe.min_hold_s", range(0, kMaxHoldSeconds));
  const AvailabilityConfig &a = t.availability;
  if (a.stale_after_s < 1 || a.stale_after_s > kMaxStaleSeconds)
    return bad("availability.stale_after_s", range(1, kMaxStaleSeconds));
  return {};
}

}  // namespace ivr::routing
