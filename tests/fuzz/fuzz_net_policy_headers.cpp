// Fuzzes the parsers of outside input behind the resilience policies: Retry-After and
// HTTP-dates (from any server's headers), status lists (from configuration), origin_of() and
// cache_key() over arbitrary URLs and header values, and RetryPolicy::next() fed the value.
//
// Input layout: the bytes up to the first '\n' are the header value (or URL, or list); the
// rest, if any, is a Date header value.
//
// Checks: nothing crashes or overflows (run under ASan/UBSan); a Retry-After delay is never
// negative; a retry delay stays within [0, max_delay] and the budget; a parsed status list
// has ordered ranges inside 100..599; origin_of() is idempotent on its own output; a cache
// key is always 64 hex digits.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/policy_common.h"
#include "net/response_cache.h"
#include "net/retry_policy.h"

namespace {

using namespace ivr::net;

[[noreturn]] void fail(const char *what, std::string_view input) {
  std::fprintf(stderr, "fuzz_net_policy_headers: %s: \"%.*s\"\n", what,
               static_cast<int>(input.size()), input.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string_view all(reinterpret_cast<const char *>(data), size);
  const size_t nl = all.find('\n');
  const std::string_view value = all.substr(0, nl);
  const std::string_view date =
      nl == std::string_view::npos ? std::string_view{} : all.substr(nl + 1);
  const WallTime received_at{std::chrono::seconds{784111777}};

  (void)parse_http_date(value);
  (void)parse_http_date(date);
  for (WallTime at : {WallTime{}, received_at}) {
    auto delay = parse_retry_after(value, date, at);
    if (delay.ok() && delay->count() < 0) fail("negative Retry-After", all);
  }

  auto statuses = StatusSet::parse(value, "statuses");
  if (statuses.ok())
    for (const auto &[lo, hi] : statuses->ranges())
      if (lo < 100 || hi > 599 || lo > hi) fail("bad status range", all);

  auto origin = origin_of(value);
  if (origin.ok()) {
    auto again = origin_of(*origin);
    if (!again.ok() || *again != *origin) fail("origin_of not idempotent", all);
  }

  HttpRequest request;
  request.url = std::string(value);
  request.headers = {{"Accept", std::string(date)}, {std::string(date), std::string(value)}};
  request.body = std::string(date);
  if (cache_key(request).size() != 64) fail("cache key size", all);
  (void)cache_key_label(request);

  static RetryPolicy policy = RetryPolicy::create(RetryOptions{}, 1).value();
  AttemptOutcome outcome;
  outcome.status = 503;
  outcome.retry_after = std::string(value);
  outcome.date = std::string(date);
  outcome.received_at = received_at;
  const auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1000);
  const auto deadline = now + std::chrono::seconds(20);
  RetryDecision d = policy.next(1, outcome, now, deadline);
  if (d.retry && (d.delay.count() < 0 || d.delay > policy.options().max_delay ||
                  now + d.delay + policy.options().attempt_timeout > deadline))
    fail("retry delay out of bounds", all);
  return 0;
}
