#include "net/policy_common.h"
#include "common/text.h"

#include <algorithm>
#include <charconv>

namespace ivr::net {

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Error bad_status(std::string_view field, std::string_view item, std::string_view why) {
  return Error{Errc::invalid_argument,
               std::string(field) + ": \"" + std::string(item) + "\": " + std::string(why)};
}

Error bad_url(std::string_view url, std::string_view why) {
  return Error{Errc::invalid_argument, "url: \"" + std::string(url) + "\": " + std::string(why)};
}

}  // namespace

namespace policy_detail {

const std::string *find_header(const Headers &headers, std::string_view name) {
  for (const auto &[key, value] : headers)
    if (iequals(key, name)) return &value;
  return nullptr;
}

}  // namespace policy_detail

using namespace policy_detail;

StatusSet StatusSet::of(std::initializer_list<int> statuses) {
  StatusSet set;
  for (int s : statuses) set.ranges_.emplace_back(s, s);
  return set;
}

bool StatusSet::contains(int status) const {
  return std::any_of(ranges_.begin(), ranges_.end(),
                     [status](const auto &r) { return status >= r.first && status <= r.second; });
}

Result<StatusSet> StatusSet::parse(std::string_view text, std::string_view field) {
  StatusSet set;
  if (trim(text).empty()) return set;  // an empty list is a valid (empty) set
  while (true) {
    size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    auto number = [&](std::string_view digits) -> Result<int> {
      int value = 0;
      if (digits.size() != 3 || !all_digits(digits))
        return bad_status(field, item, "a status is three digits");
      std::from_chars(digits.data(), digits.data() + digits.size(), value);
      if (value < 100 || value > 599) return bad_status(field, item, "status outside 100..599");
      return value;
    };
    if (item.empty()) return bad_status(field, item, "empty item in the list");
    if (item.size() == 3 && (item[1] == 'x' || item[1] == 'X') &&
        (item[2] == 'x' || item[2] == 'X')) {
      if (item[0] < '1' || item[0] > '5') return bad_status(field, item, "class must be 1xx..5xx");
      int base = (item[0] - '0') * 100;
      set.ranges_.emplace_back(base, base + 99);
    } else if (size_t dash = item.find('-'); dash != std::string_view::npos) {
      auto lo = number(trim(item.substr(0, dash)));
      if (!lo.ok()) return lo.error();
      auto hi = number(trim(item.substr(dash + 1)));
      if (!hi.ok()) return hi.error();
      if (*lo > *hi) return bad_status(field, item, "range runs backwards");
      set.ranges_.emplace_back(*lo, *hi);
    } else {
      auto one = number(item);
      if (!one.ok()) return one.error();
      set.ranges_.emplace_back(*one, *one);
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return set;
}

TransportErrorSet::TransportErrorSet(std::initializer_list<HttpErrc> errors) {
  for (HttpErrc e : errors) add(e);
}

Result<std::string> origin_of(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return bad_url(url, "no scheme");
  std::string scheme = to_lower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") return bad_url(url, "scheme must be http or https");
  std::string_view rest = url.substr(sep + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = authority.rfind('@'); at != std::string_view::npos)
    authority.remove_prefix(at + 1);  // userinfo never enters the origin
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {  // IPv6 literal
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad_url(url, "unterminated IPv6 literal");
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad_url(url, "junk after IPv6 literal");
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return bad_url(url, "no host");
  for (char c : host)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return bad_url(url, "bad host character");
  unsigned port_number = scheme == "https" ? 443 : 80;
  if (!port.empty()) {
    if (!all_digits(port) || port.size() > 5) return bad_url(url, "port must be 1..65535");
    std::from_chars(port.data(), port.data() + port.size(), port_number);
    if (port_number == 0 || port_number > 65535) return bad_url(url, "port must be 1..65535");
  }
  return scheme + "://" + to_lower(host) + ":" + std::to_string(port_number);
}

}  // namespace ivr::net
