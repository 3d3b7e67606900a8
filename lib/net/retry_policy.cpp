#include "net/retry_policy.h"

#include <algorithm>
#include <array>
#include <optional>

namespace ivr::net {

using namespace policy_detail;

namespace {

constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a proleptic Gregorian date (the usual era-of-400-years method).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;                                    // [0, 399]
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + doe - 719468;
}

bool leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(int y, unsigned m) {
  static constexpr unsigned kDaysIn[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDaysIn[m - 1];
}

// Reads the fixed-format pieces of an HTTP-date left to right.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool literal(std::string_view lit) {
    if (!s_.starts_with(lit)) return false;
    s_.remove_prefix(lit.size());
    return true;
  }
  std::optional<int> digits(size_t n) {
    if (s_.size() < n) return std::nullopt;
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
      if (s_[i] < '0' || s_[i] > '9') return std::nullopt;
      v = v * 10 + (s_[i] - '0');
    }
    s_.remove_prefix(n);
    return v;
  }
  template <size_t N>
  std::optional<unsigned> word(const std::array<std::string_view, N> &words) {
    for (size_t i = 0; i < N; ++i)
      if (literal(words[i])) return static_cast<unsigned>(i);
    return std::nullopt;
  }
  bool done() const { return s_.empty(); }
  bool next_is(char c) const { return !s_.empty() && s_.front() == c; }

 private:
  std::string_view s_;
};

struct Civil {
  int year = 0;
  unsigned month = 0, day = 0;
  int hour = 0, minute = 0, second = 0;
};

bool read_time(Cursor &c, Civil &t) {
  auto h = c.digits(2);
  if (!h || !c.literal(":")) return false;
  auto m = c.digits(2);
  if (!m || !c.literal(":")) return false;
  auto s = c.digits(2);
  if (!s) return false;
  t.hour = *h;
  t.minute = *m;
  t.second = *s;
  return true;
}

Error date_error(std::string_view why) {
  return Error{Errc::parse, "HTTP-date: " + std::string(why)};
}

std::string quoted(std::string_view v) {
  constexpr size_t kMax = 64;  // never echo a whole hostile header into a log
  std::string out = "\"";
  out += v.substr(0, kMax);
  if (v.size() > kMax) out += "...";
  return out + "\"";
}

uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

Result<WallTime> parse_http_date(std::string_view text) {
  text = trim(text);
  Cursor c(text);
  Civil t;
  if (c.word(kLongDays)) {  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    auto day = c.literal(", ") ? c.digits(2) : std::nullopt;
    auto month = day && c.literal("-") ? c.word(kMonths) : std::nullopt;
    auto year = month && c.literal("-") ? c.digits(2) : std::nullopt;
    if (!year || !c.literal(" ") || !read_time(c, t) || !c.literal(" GMT") || !c.done())
      return date_error("malformed RFC 850 date");
    t.day = static_cast<unsigned>(*day);
    t.month = *month + 1;
    t.year = *year >= 70 ? 1900 + *year : 2000 + *year;
  } else if (c.word(kDays)) {
    if (c.literal(", ")) {  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
      auto day = c.digits(2);
      auto month = day && c.literal(" ") ? c.word(kMonths) : std::nullopt;
      auto year = month && c.literal(" ") ? c.digits(4) : std::nullopt;
      if (!year || !c.literal(" ") || !read_time(c, t) || !c.literal(" GMT") || !c.done())
        return date_error("malformed IMF-fixdate");
      t.day = static_cast<unsigned>(*day);
      t.month = *month + 1;
      t.year = *year;
    } else {  // asctime: Sun Nov  6 08:49:37 1994
      auto month = c.literal(" ") ? c.word(kMonths) : std::nullopt;
      std::optional<int> day;
      if (month && c.literal(" ")) day = c.literal(" ") ? c.digits(1) : c.digits(2);
      std::optional<int> year;
      if (day && c.literal(" ") && read_time(c, t) && c.literal(" ")) year = c.digits(4);
      if (!year || !c.done()) return date_error("malformed asctime date");
      t.day = static_cast<unsigned>(*day);
      t.month = *month + 1;
      t.year = *year;
    }
  } else {
    return date_error("does not start with a day name");
  }
  if (t.day < 1 || t.day > days_in_month(t.year, t.month)) return date_error("no such day");
  if (t.hour > 23 || t.minute > 59 || t.second > 60) return date_error("no such time");
  int64_t total =
      days_from_civil(t.year, t.month, t.day) * 86400 + t.hour * 3600 + t.minute * 60 + t.second;
  // system_clock counts nanoseconds in 64 bits (years 1677..2262): clamp, do not overflow.
  // A clamped date is still far past or far future, which is all Retry-After needs.
  using std::chrono::seconds;
  const int64_t lo = std::chrono::ceil<seconds>(WallTime::min().time_since_epoch()).count();
  const int64_t hi = std::chrono::floor<seconds>(WallTime::max().time_since_epoch()).count();
  return WallTime{
      std::chrono::duration_cast<WallTime::duration>(seconds{std::clamp(total, lo, hi)})};
}

Result<Millis> parse_retry_after(std::string_view value, std::string_view date_header,
                                 WallTime received_at) {
  std::string_view v = trim(value);
  if (v.empty()) return Error{Errc::parse, "Retry-After: empty"};
  if (std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    constexpr int64_t kMaxSeconds = 1'000'000'000;  // ~31 years: later capped by max_delay
    int64_t seconds = 0;
    for (char ch : v) {
      seconds = seconds * 10 + (ch - '0');
      if (seconds > kMaxSeconds) {
        seconds = kMaxSeconds;
        break;
      }
    }
    return Millis{seconds * 1000};
  }
  auto when = parse_http_date(v);
  if (!when.ok())
    return Error{Errc::parse, "Retry-After: " + quoted(v) +
                                  " is neither delta-seconds nor an HTTP-date (" +
                                  when.error().message + ")"};
  WallTime reference;
  if (auto server_now = parse_http_date(date_header); server_now.ok())
    reference = *server_now;
  else if (received_at != WallTime{})
    reference = received_at;
  else
    return Error{Errc::parse, "Retry-After: " + quoted(v) +
                                  " is a date but there is no clock to measure it against"};
  // In milliseconds since the epoch, where any two WallTimes subtract without overflow.
  const Millis delay = std::chrono::floor<Millis>(when->time_since_epoch()) -
                       std::chrono::floor<Millis>(reference.time_since_epoch());
  return std::max(Millis{0}, delay);
}

Status RetryOptions::validate() const {
  auto bad = [](const char *field, const char *why) {
    return Status(Errc::invalid_argument, std::string(field) + ": " + why);
  };
  if (max_attempts < 1) return bad("max_attempts", "must be at least 1");
  if (base_delay.count() <= 0) return bad("base_delay", "must be positive");
  if (max_delay < base_delay) return bad("max_delay", "must be at least base_delay");
  if (max_delay > kMaxPolicyDuration) return bad("max_delay", "must be at most 24 hours");
  if (attempt_timeout.count() < 0) return bad("attempt_timeout", "must not be negative");
  if (attempt_timeout > kMaxPolicyDuration)
    return bad("attempt_timeout", "must be at most 24 hours");
  return {};
}

AttemptOutcome AttemptOutcome::of(const HttpRequest &request, const HttpResponse &response,
                                  WallTime received_at, bool allow_non_idempotent) {
  AttemptOutcome o;
  o.method = request.method;
  o.allow_non_idempotent = allow_non_idempotent;
  o.error = response.error;
  o.status = response.status;
  if (response.error == HttpErrc::none) {
    if (const std::string *h = find_header(response.headers, "retry-after")) o.retry_after = *h;
    if (const std::string *h = find_header(response.headers, "date")) o.date = *h;
  }
  o.received_at = received_at;
  return o;
}

const char *give_up_reason_name(GiveUpReason r) {
  switch (r) {
    case GiveUpReason::none:
      return "";
    case GiveUpReason::not_retryable:
      return "not_retryable";
    case GiveUpReason::not_idempotent:
      return "not_idempotent";
    case GiveUpReason::attempts_exhausted:
      return "attempts_exhausted";
    case GiveUpReason::budget_exhausted:
      return "budget_exhausted";
  }
  return "?";
}

Result<RetryPolicy> RetryPolicy::create(RetryOptions options, uint64_t seed) {
  return create(std::move(options), [state = seed]() mutable { return splitmix64(state); });
}

Result<RetryPolicy> RetryPolicy::create(RetryOptions options, RandomSource random) {
  if (Status s = options.validate(); !s.ok()) return s.error();
  if (!random) return Error{Errc::invalid_argument, "random: no random source"};
  return RetryPolicy(std::move(options), std::move(random));
}

bool RetryPolicy::idempotent(std::string_view method) {
  for (std::string_view m : {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
    if (iequals(method, m)) return true;
  return false;
}

bool RetryPolicy::retryable(const AttemptOutcome &outcome) const {
  if (outcome.error != HttpErrc::none) return options_.retry_errors.contains(outcome.error);
  return options_.retry_statuses.contains(outcome.status);
}

Millis RetryPolicy::backoff_cap(uint32_t attempt) const {
  const int64_t base = options_.base_delay.count();
  const int64_t cap = options_.max_delay.count();
  const uint32_t exponent = attempt > 0 ? attempt - 1 : 0;
  if (exponent >= 62 || base > (cap >> exponent)) return options_.max_delay;
  return Millis{std::min(cap, base << exponent)};
}

Millis RetryPolicy::uniform(Millis upper) {
  if (upper.count() <= 0) return Millis{0};
  // Modulo bias is below upper / 2^64: irrelevant for delays.
  const uint64_t span = static_cast<uint64_t>(upper.count()) + 1;
  return Millis{static_cast<int64_t>(random_() % span)};
}

RetryDecision RetryPolicy::next(uint32_t attempt, const AttemptOutcome &outcome, SteadyTime now,
                                SteadyTime deadline) {
  if (!retryable(outcome)) return RetryDecision::give_up(GiveUpReason::not_retryable);
  if (!outcome.allow_non_idempotent && !idempotent(outcome.method))
    return RetryDecision::give_up(GiveUpReason::not_idempotent);
  if (attempt >= options_.max_attempts)
    return RetryDecision::give_up(GiveUpReason::attempts_exhausted);
  // What the budget leaves for waiting once the next attempt's timeout is set aside.
  const Millis remaining = std::chrono::floor<Millis>(deadline - now);
  if (remaining < options_.attempt_timeout)
    return RetryDecision::give_up(GiveUpReason::budget_exhausted);
  const Millis slack = remaining - options_.attempt_timeout;
  if (options_.honour_retry_after && !outcome.retry_after.empty()) {
    auto asked = parse_retry_after(outcome.retry_after, outcome.date, outcome.received_at);
    if (asked.ok()) {  // garbage falls through to the backoff
      const Millis delay = std::min(*asked, options_.max_delay);
      if (delay > slack) return RetryDecision::give_up(GiveUpReason::budget_exhausted);
      return RetryDecision::retry_after(delay, true);
    }
  }
  return RetryDecision::retry_after(uniform(std::min(backoff_cap(attempt), slack)));
}

}  // namespace ivr::net
