// Small vocabulary shared by the resilience policies (response_cache.h, circuit_breaker.h,
// retry_policy.h): sets of HTTP statuses, sets of transport errors, and the origin
// ("scheme://host:port") a URL talks to.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/text.h"
#include "net/http_client.h"

namespace ivr::net {

// The policies never read a clock: every time is passed in as `now`.
using SteadyTime = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;
// The longest delay, timeout or cool-down an option may hold: keeps time arithmetic far
// from overflow (steady_clock counts nanoseconds in 64 bits).
inline constexpr Millis kMaxPolicyDuration{Millis{24LL * 3600 * 1000}};

// A set of HTTP statuses as inclusive ranges, e.g. "2xx", "429", "500-504".
class StatusSet {
 public:
  StatusSet() = default;
  StatusSet(std::initializer_list<std::pair<int, int>> ranges) : ranges_(ranges) {}
  static StatusSet of(std::initializer_list<int> statuses);
  static StatusSet successes() { return StatusSet{{200, 299}}; }

  // A comma-separated list of items "NNN", "Nxx" or "NNN-NNN" (100..599, whitespace
  // around items allowed). Errc::invalid_argument naming `field`, the item and the reason.
  static Result<StatusSet> parse(std::string_view text, std::string_view field);

  bool contains(int status) const;
  bool empty() const { return ranges_.empty(); }
  const std::vector<std::pair<int, int>> &ranges() const { return ranges_; }

 private:
  std::vector<std::pair<int, int>> ranges_;
};

// A set of transport errors (HttpErrc values other than none).
class TransportErrorSet {
 public:
  TransportErrorSet() = default;
  TransportErrorSet(std::initializer_list<HttpErrc> errors);
  bool contains(HttpErrc e) const { return (bits_ >> static_cast<unsigned>(e)) & 1u; }
  void add(HttpErrc e) { bits_ |= 1u << static_cast<unsigned>(e); }

 private:
  uint32_t bits_ = 0;
};

// The origin a URL talks to, normalised: "scheme://host:port" with scheme and host in
// lower case, the port explicit (80 for http, 443 for https when absent), userinfo, path,
// query and fragment dropped. IPv6 literals keep their brackets. Errc::invalid_argument
// ("url: ...") for anything but an http or https URL with a host.
Result<std::string> origin_of(std::string_view url);

// Text helpers of the policies, in their own namespace so they cannot clash with helpers of
// the same name elsewhere in ivr::net.
namespace policy_detail {
const std::string *find_header(const Headers &headers, std::string_view name);
using text::iequals;
using text::to_lower;
using text::trim;
}  // namespace policy_detail

}  // namespace ivr::net
