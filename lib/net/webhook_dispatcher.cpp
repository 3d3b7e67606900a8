// Webhook delivery from the durable spool (see webhook_dispatcher.h and docs/net.md).
#include "net/webhook_dispatcher.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include "common/json.h"
#include "net/policy_common.h"
#include "net/retry_policy.h"
#include "net/webhook_signature.h"

namespace ivr::net {

namespace {

constexpr const char *kLog = "webhook";
constexpr size_t kMaxNameBytes = 64;
constexpr size_t kMaxTypeBytes = 128;
constexpr uint32_t kMaxTimeoutMs = 600000;
constexpr size_t kErrorBodySnippet = 200;
// The longest a timer sleeps before looking again (bounds the effect of a wall-clock jump).
constexpr int64_t kMaxSleepMs = 60000;

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

Status check_event_type(std::string_view field, std::string_view type) {
  if (type.empty() || type.size() > kMaxTypeBytes)
    return Status(Errc::invalid_argument,
                  std::string(field) + ": must be 1.." + std::to_string(kMaxTypeBytes) + " bytes");
  for (char c : type)
    if (!name_char(c) && c != ':')
      return Status(Errc::invalid_argument, std::string(field) + ": '" + std::string(type) +
                                                "' may hold only letters, digits and . _ - :");
  return {};
}

bool token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char &c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool reserved_header(std::string_view name) {
  std::string n = lower(name);
  return n == "content-type" || n == "content-length" || n == "host" || n == "transfer-encoding" ||
         n.rfind("x-ivr-", 0) == 0;
}

void append_json_string(std::string &out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

// A short, single-line excerpt of a response body for the error text.
std::string snippet(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, kErrorBodySnippet))
    out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  if (body.size() > kErrorBodySnippet) out += "...";
  return out;
}

int64_t system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Cross-thread wake-up for the spool's completions: the writer thread queues a task and
// writes the eventfd; the loop reads it and runs the tasks. Works whether or not libevent
// was set up for threads.
struct Mailbox {
  std::mutex mu;
  std::vector<std::function<void()>> tasks;
  int fd = -1;
  bool open = true;

  void post(std::function<void()> task) {
    std::lock_guard lock(mu);
    if (!open) return;
    tasks.push_back(std::move(task));
    uint64_t one = 1;
    ssize_t n;
    do {
      n = ::write(fd, &one, sizeof one);
    } while (n < 0 && errno == EINTR);  // EAGAIN: the counter is already non-zero
  }
  std::vector<std::function<void()>> take() {
    uint64_t value;
    while (::read(fd, &value, sizeof value) > 0) {
    }
    std::lock_guard lock(mu);
    return std::exchange(tasks, {});
  }
  void shut() {
    std::lock_guard lock(mu);
    open = false;
  }
  ~Mailbox() {
    if (fd >= 0) ::close(fd);
  }
};

struct EventDeleter {
  void operator()(event *e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

}  // namespace

const char *delivery_outcome_name(DeliveryOutcome o) {
  switch (o) {
    case DeliveryOutcome::delivered:
      return "delivered";
    case DeliveryOutcome::retry:
      return "retry";
    case DeliveryOutcome::dead_lettered:
      return "dead_lettered";
  }
  return "?";
}

std::string rfc3339_utc_ms(int64_t unix_ms) {
  int64_t secs = unix_ms / 1000, ms = unix_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];  // room for any int year, which the compiler cannot rule out
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string webhook_body(const SpoolRecord &record) {
  std::string out;
  out.reserve(record.body().size() + record.subscription.size() + 160);
  out += "{\"id\":";
  append_json_string(out, record.id);
  out += ",\"type\":";
  append_json_string(out, record.event_type);
  out += ",\"created_at\":\"";
  out += rfc3339_utc_ms(record.created_ms);
  out += "\",\"subscription\":";
  append_json_string(out, record.subscription);
  out += ",\"data\":";
  out += record.body();
  out += '}';
  return out;
}

Status WebhookSubscription::validate() const {
  const std::string where = "subscription '" + name + "': ";
  auto bad = [&](std::string what) { return Status(Errc::invalid_argument, where + what); };
  if (name.empty() || name.size() > kMaxNameBytes ||
      !std::all_of(name.begin(), name.end(), name_char))
    return Status(Errc::invalid_argument,
                  "subscription name: '" + name + "' must be 1..64 of letters, digits, . _ -");
  if (auto origin = origin_of(url); !origin) return bad(origin.error().message);  // "url: ..."
  if (event_types.empty()) return bad("event_types: at least one is required (\"*\" for all)");
  for (size_t i = 0; i < event_types.size(); ++i) {
    if (event_types[i] == "*") continue;
    if (auto st = check_event_type("event_types[" + std::to_string(i) + "]", event_types[i]); !st)
      return bad(st.error().message);
  }
  if (secrets.empty()) return bad("secrets: at least one signing secret is required");
  for (size_t i = 0; i < secrets.size(); ++i)
    if (secrets[i].empty()) return bad("secrets[" + std::to_string(i) + "]: must not be empty");
  for (size_t i = 0; i < headers.size(); ++i) {
    const auto &[hn, hv] = headers[i];
    const std::string at = "headers[" + std::to_string(i) + "]: ";
    if (hn.empty() || !std::all_of(hn.begin(), hn.end(), token_char))
      return bad(at + "name '" + hn + "' is not an HTTP token");
    if (reserved_header(hn)) return bad(at + "'" + hn + "' is set by the dispatcher");
    if (hv.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      return bad(at + "value of '" + hn + "' holds CR, LF or NUL");
  }
  if (timeout_ms == 0 || timeout_ms > kMaxTimeoutMs)
    return bad("timeout_ms: must be 1.." + std::to_string(kMaxTimeoutMs));
  if (max_attempts == 0) return bad("max_attempts: must be at least 1");
  if (backoff_base.count() <= 0) return bad("backoff_base: must be positive");
  if (backoff_max < backoff_base) return bad("backoff_max: less than backoff_base");
  if (backoff_max > kMaxPolicyDuration) return bad("backoff_max: more than 24 hours");
  if (max_concurrency == 0) return bad("max_concurrency: must be at least 1");
  return {};
}

bool WebhookSubscription::matches(std::string_view event_type) const {
  return std::any_of(event_types.begin(), event_types.end(),
                     [&](const std::string &t) { return t == "*" || t == event_type; });
}

// ---- the dispatcher ------------------------------------------------------------------------

struct WebhookDispatcher::Impl {
  struct Sub {
    WebhookSubscription config;
    std::set<std::pair<int64_t, std::string>> queue;  // (next attempt ms, id), not in flight
    uint64_t delivered = 0, failed = 0, dead = 0;
  };
  struct Delivery {
    std::string subscription, event_type;
    uint32_t attempt = 0;
  };

  event_base *base = nullptr;
  WebhookDispatcherOptions opt;
  std::optional<EventSpool> spool;
  std::unique_ptr<HttpClient> http;
  std::shared_ptr<Mailbox> mailbox;
  EventPtr wake_event, timer_event;
  std::optional<int64_t> timer_at;  // when the armed timer fires (Unix ms)
  std::map<std::string, Sub, std::less<>> subs;
  std::map<std::string, Delivery, std::less<>> in_flight;  // by record id
  std::map<std::string, size_t, std::less<>> in_flight_by_sub;
  std::mt19937_64 rng;
  WebhookCounters counters;
  Status broken;
  bool started = false, closed = false;

  int64_t now_ms() const { return opt.clock_ms(); }

  bool logs(LogLevel level) const { return opt.logger && opt.logger->enabled(level); }
  void log(LogLevel level, const std::string &message) const {
    if (logs(level)) opt.logger->log(level, kLog, "%s", message.c_str());
  }

  void report(DeliveryReport r) {
    if (!opt.on_report) return;
    try {
      opt.on_report(r);
    } catch (...) {  // never unwind through libevent
      log(LogLevel::error, "on_report threw; ignored");
    }
  }

  // A spool operation failed: the spool refuses everything after a write error, so stop.
  void check(const Status &st, const char *what) {
    if (st.ok() || !broken.ok()) return;
    broken =
        Status(st.error().code, std::string("webhook spool: ") + what + ": " + st.error().message);
    log(LogLevel::error, broken.error().message + "; delivery stopped");
  }

  SpoolDone durable_or_log(const char *what) {
    return [this, what](Status st) { check(st, what); };
  }

  size_t sub_in_flight(std::string_view name) const {
    auto it = in_flight_by_sub.find(name);
    return it == in_flight_by_sub.end() ? 0 : it->second;
  }

  bool may_send() const { return started && !closed && broken.ok(); }

  // ---- timers ----

  void arm_at(int64_t when, int64_t now) {
    if (timer_at && *timer_at <= when) return;  // an earlier wake-up is already set
    int64_t delay = std::clamp<int64_t>(when - now, 0, kMaxSleepMs);
    timeval tv{static_cast<time_t>(delay / 1000), static_cast<suseconds_t>(delay % 1000 * 1000)};
    event_add(timer_event.get(), &tv);
    timer_at = now + delay;
  }
  void kick() {
    if (may_send()) arm_at(now_ms(), now_ms());
  }
  static void on_timer(evutil_socket_t, short, void *self) {
    auto *s = static_cast<Impl *>(self);
    s->timer_at.reset();
    s->dispatch();
  }
  static void on_wake(evutil_socket_t, short, void *self) {
    auto *s = static_cast<Impl *>(self);
    for (auto &task : s->mailbox->take()) task();
  }

  // ---- scheduling ----

  void dispatch() {
    if (!may_send()) return;
    const int64_t now = now_ms();
    for (bool progress = true; progress && in_flight.size() < opt.max_in_flight;) {
      progress = false;  // one record per subscription per pass: fair under the global limit
      for (auto &[name, sub] : subs) {
        if (in_flight.size() >= opt.max_in_flight || !may_send()) break;
        if (!sub.config.enabled || sub.queue.empty() || sub.queue.begin()->first > now ||
            sub_in_flight(name) >= sub.config.max_concurrency)
          continue;
        std::string id = sub.queue.begin()->second;
        sub.queue.erase(sub.queue.begin());
        send(sub, id, now);
        progress = true;
      }
    }
    arm_next(now);
  }

  void arm_next(int64_t now) {
    if (!may_send() || in_flight.size() >= opt.max_in_flight) return;  // a completion kicks
    std::optional<int64_t> next;
    for (auto &[name, sub] : subs) {
      if (!sub.config.enabled || sub.queue.empty() ||
          sub_in_flight(name) >= sub.config.max_concurrency)
        continue;
      int64_t t = sub.queue.begin()->first;
      if (!next || t < *next) next = t;
    }
    if (next) arm_at(*next, now);
  }

  void send(Sub &sub, const std::string &id, int64_t now) {
    auto record = spool->find(id);
    if (!record || record->dead) return;  // settled meanwhile
    const WebhookSubscription &c = sub.config;
    if (record->attempts >= c.max_attempts) {
      // A crash between recording the last failure and the dead letter, or max_attempts
      // lowered since: settle without another attempt.
      to_dead_letters(sub, *record, 0,
                      "attempts exhausted (" + std::to_string(record->attempts) + " of " +
                          std::to_string(c.max_attempts) + "): " + record->last_error);
      return;
    }
    std::string body = webhook_body(*record);
    auto headers = webhook_headers(id, record->event_type, now / 1000, body, c.secrets);
    in_flight.emplace(id, Delivery{c.name, record->event_type, record->attempts + 1});
    ++in_flight_by_sub[c.name];
    if (!headers) {  // only an OpenSSL failure: a failed attempt, settled later like any other
      HttpResponse r;
      r.error = HttpErrc::protocol;
      r.error_text = "signing: " + headers.error().message;
      mailbox->post([this, id, r = std::move(r)]() mutable { settle(id, std::move(r)); });
      return;
    }
    headers->emplace_back(kWebhookAttemptHeader, std::to_string(record->attempts + 1));
    for (const auto &h : c.headers) headers->push_back(h);
    HttpRequest req;
    req.method = "POST";
    req.url = c.url;
    req.headers = std::move(*headers);
    req.body = std::move(body);
    req.timeout_ms = c.timeout_ms;
    req.connect_timeout_ms = std::min(c.connect_timeout_ms, c.timeout_ms);
    req.follow_redirects = false;
    req.max_response_bytes = opt.max_response_bytes;
    req.tls = c.tls;
    http->start(std::move(req), [this, id](HttpResponse &&r) { settle(id, std::move(r)); });
  }

  int64_t backoff_ms(const WebhookSubscription &c, uint32_t attempt, const HttpResponse &r,
                     int64_t now) {
    const int64_t max = c.backoff_max.count();
    if (r.error == HttpErrc::none && (r.status == 429 || r.status == 503)) {
      if (const std::string *ra = r.header("Retry-After")) {
        const std::string *date = r.header("Date");
        auto asked = parse_retry_after(*ra, date ? *date : std::string_view{},
                                       WallTime(std::chrono::milliseconds(now)));
        if (asked) return std::min<int64_t>(asked->count(), max);
      }
    }
    int64_t cap = c.backoff_base.count();  // base * 2^(attempt-1), at most max
    for (uint32_t i = 1; i < attempt && cap < max; ++i) cap *= 2;
    cap = std::min(cap, max);
    return static_cast<int64_t>(rng() % static_cast<uint64_t>(cap + 1));  // full jitter
  }

  void settle(const std::string &id, HttpResponse &&r) {
    auto it = in_flight.find(id);
    if (it == in_flight.end()) return;
    Delivery d = std::move(it->second);
    in_flight.erase(it);
    if (auto n = in_flight_by_sub.find(d.subscription); n != in_flight_by_sub.end())
      if (--n->second == 0) in_flight_by_sub.erase(n);
    if (closed || !broken.ok()) return;  // stays pending in the spool

    const int64_t now = now_ms();
    auto sub_it = subs.find(d.subscription);
    Sub *sub = sub_it == subs.end() ? nullptr : &sub_it->second;
    DeliveryReport rep{
        id, d.subscription, d.event_type, d.attempt, DeliveryOutcome::delivered, r.status, "", 0};

    if (r.error == HttpErrc::none && r.status >= 200 && r.status <= 299) {
      check(spool->mark_delivered(id, durable_or_log("mark delivered")), "mark delivered");
      ++counters.delivered;
      if (sub) ++sub->delivered;
      report(std::move(rep));
      dispatch();
      return;
    }

    std::string error =
        r.error != HttpErrc::none
            ? std::string(http_errc_name(r.error)) + ": " + r.error_text
            : "HTTP " + std::to_string(r.status) + (r.body.empty() ? "" : ": " + snippet(r.body));
    ++counters.failed_attempts;
    if (sub) ++sub->failed;
    rep.error = error;
    auto record = spool->find(id);
    if (!record || record->dead) {
      report(std::move(rep));
      dispatch();
      return;
    }
    const bool gone = r.error == HttpErrc::none && r.status == 410;
    if (!sub || gone || d.attempt >= sub->config.max_attempts) {
      std::string why = !sub   ? "subscription removed; last attempt: " + error
                        : gone ? error + " (the endpoint is gone: not retried)"
                               : "attempts exhausted (" + std::to_string(d.attempt) + " of " +
                                     std::to_string(sub->config.max_attempts) + "): " + error;
      auto failed = spool->record_failure(id, now, error, durable_or_log("record failure"));
      if (!failed) return check(Status(failed.error()), "record failure");
      to_dead_letters(sub, *record, d.attempt, std::move(why));
      rep.outcome = DeliveryOutcome::dead_lettered;
      report(std::move(rep));
      dispatch();
      return;
    }
    const int64_t next = now + backoff_ms(sub->config, d.attempt, r, now);
    auto failed = spool->record_failure(id, next, error, durable_or_log("record failure"));
    if (!failed) return check(Status(failed.error()), "record failure");
    sub->queue.emplace(next, id);
    rep.outcome = DeliveryOutcome::retry;
    rep.next_attempt_ms = next;
    if (logs(LogLevel::debug))
      log(LogLevel::debug, id + " to '" + d.subscription + "': attempt " +
                               std::to_string(d.attempt) + " failed (" + error + "); next in " +
                               std::to_string(next - now) + " ms");
    report(std::move(rep));
    dispatch();
  }

  void to_dead_letters(Sub *sub, const SpoolRecord &record, uint32_t attempt, std::string why) {
    Status st = spool->dead_letter(record.id, why, durable_or_log("dead letter"));
    check(st, "dead letter");
    if (!st) return;
    ++counters.dead_lettered;
    if (sub) ++sub->dead;
    log(LogLevel::warn, record.id + " (" + record.event_type + " to '" + record.subscription +
                            "') is a dead letter: " + why);
    if (attempt == 0)  // settled without an attempt: still tell the observer
      report(DeliveryReport{record.id, record.subscription, record.event_type, record.attempts,
                            DeliveryOutcome::dead_lettered, 0, why, 0});
  }
  void to_dead_letters(Sub &sub, const SpoolRecord &record, uint32_t attempt, std::string why) {
    to_dead_letters(&sub, record, attempt, std::move(why));
  }

  Status shut_down(bool run_callbacks) {
    if (closed) return {};
    closed = true;
    http.reset();  // in-flight requests are dropped: their records stay pending
    in_flight.clear();
    in_flight_by_sub.clear();
    if (timer_event) event_del(timer_event.get());
    timer_at.reset();
    Status st = spool->close();
    mailbox->shut();
    auto tasks = mailbox->take();
    if (run_callbacks)
      for (auto &task : tasks) task();  // the last done callbacks: everything is durable
    return st;
  }

  Status usable() const {
    if (closed) return Status(Errc::bad_state, "webhook dispatcher: closed");
    return broken;
  }
};

WebhookDispatcher::WebhookDispatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WebhookDispatcher::~WebhookDispatcher() {
  if (!impl_) return;
  (void)impl_->shut_down(false);  // callbacks still queued are dropped
  impl_->timer_event.reset();
  impl_->wake_event.reset();
}

Result<std::unique_ptr<WebhookDispatcher>> WebhookDispatcher::create(
    event_base *base, WebhookDispatcherOptions options) {
  if (!base) return Error{Errc::invalid_argument, "webhook dispatcher: base: must not be null"};
  if (options.max_in_flight == 0)
    return Error{Errc::invalid_argument, "webhook dispatcher: max_in_flight: must be at least 1"};
  if (options.max_response_bytes == 0)
    return Error{Errc::invalid_argument,
                 "webhook dispatcher: max_response_bytes: must be at least 1"};
  try {
    auto impl = std::make_unique<Impl>();
    impl->base = base;
    impl->opt = std::move(options);
    if (!impl->opt.clock_ms) impl->opt.clock_ms = system_clock_ms;
    impl->rng.seed(impl->opt.seed != 0
                       ? impl->opt.seed
                       : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}());

    auto mailbox = std::make_shared<Mailbox>();
    mailbox->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mailbox->fd < 0) return Error{Errc::io, "webhook dispatcher: eventfd failed"};
    impl->mailbox = mailbox;
    Impl *raw = impl.get();
    impl->wake_event.reset(event_new(base, mailbox->fd, EV_READ | EV_PERSIST, &Impl::on_wake, raw));
    impl->timer_event.reset(evtimer_new(base, &Impl::on_timer, raw));
    if (!impl->wake_event || !impl->timer_event)
      return Error{Errc::internal, "webhook dispatcher: libevent: event_new failed"};
    event_add(impl->wake_event.get(), nullptr);

    EventSpoolOptions so = impl->opt.spool;
    so.post = [mailbox](std::function<void()> task) { mailbox->post(std::move(task)); };
    so.max_attempts = std::numeric_limits<uint32_t>::max();  // each subscription has its own
    if (!so.clock_ms) so.clock_ms = impl->opt.clock_ms;
    if (!so.logger) so.logger = impl->opt.logger;
    auto spool = EventSpool::open(std::move(so));
    if (!spool) return spool.error();
    impl->spool.emplace(std::move(*spool));
    impl->http = std::make_unique<HttpClient>(base, impl->opt.http);
    return std::unique_ptr<WebhookDispatcher>(new WebhookDispatcher(std::move(impl)));
  } catch (const std::exception &e) {
    return Error{Errc::internal, std::string("webhook dispatcher: ") + e.what()};
  }
}

Status WebhookDispatcher::set_subscription(WebhookSubscription subscription) {
  Impl &s = *impl_;
  if (s.closed) return s.usable();
  if (auto st = subscription.validate(); !st) return st;
  auto it = s.subs.find(subscription.name);
  if (it == s.subs.end()) {
    std::string name = subscription.name;
    s.subs.emplace(std::move(name), Impl::Sub{std::move(subscription), {}, 0, 0, 0});
  } else {
    it->second.config = std::move(subscription);
  }
  s.kick();
  return {};
}

Status WebhookDispatcher::remove_subscription(std::string_view name) {
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st;
  auto it = s.subs.find(name);
  if (it == s.subs.end())
    return Status(Errc::not_found, "subscription '" + std::string(name) + "': not configured");
  Impl::Sub sub = std::move(it->second);
  s.subs.erase(it);
  for (auto &[when, id] : sub.queue)
    if (auto record = s.spool->find(id); record && !record->dead)
      s.to_dead_letters(nullptr, *record, 0, "subscription removed");
  return s.broken;
}

std::vector<SubscriptionState> WebhookDispatcher::subscriptions() const {
  std::vector<SubscriptionState> out;
  for (auto &[name, sub] : impl_->subs) {
    size_t flying = impl_->sub_in_flight(name);
    out.push_back({name, sub.config.enabled, sub.queue.size() + flying, flying, sub.delivered,
                   sub.failed, sub.dead});
  }
  return out;
}

void WebhookDispatcher::start() {
  Impl &s = *impl_;
  if (s.started || s.closed) return;
  s.started = true;
  for (auto &[name, sub] : s.subs) sub.queue.clear();  // rebuilt from the spool, the truth
  for (const SpoolRecord &r :
       s.spool->due(std::numeric_limits<int64_t>::max(), std::numeric_limits<size_t>::max())) {
    auto it = s.subs.find(r.subscription);
    if (it == s.subs.end())
      s.to_dead_letters(nullptr, r, 0,
                        "subscription removed: '" + r.subscription + "' is not configured");
    else
      it->second.queue.emplace(r.next_attempt_ms, r.id);
  }
  s.kick();
}

Result<std::vector<std::string>> WebhookDispatcher::publish(std::string_view event_type,
                                                            std::string_view json_payload,
                                                            PublishDone done) {
  Impl &s = *impl_;
  auto reject = [&](Error e) {
    ++s.counters.publish_rejected;
    return e;
  };
  if (auto st = s.usable(); !st) return reject(st.error());
  if (auto st = check_event_type("event_type", event_type); !st) return reject(st.error());
  if (json_payload.size() > s.opt.spool.max_payload_bytes)
    return reject(Error{Errc::invalid_argument, "payload: " + std::to_string(json_payload.size()) +
                                                    " bytes, more than max_payload_bytes (" +
                                                    std::to_string(s.opt.spool.max_payload_bytes) +
                                                    ")"});
  try {
    if (auto parsed = json::parse(json_payload); !parsed)
      return reject(Error{Errc::invalid_argument, "payload: " + parsed.error().message});
  } catch (const std::exception &e) {
    return reject(Error{Errc::invalid_argument, std::string("payload: ") + e.what()});
  }

  // Every append's done reports into one join; done runs once with the first error.
  struct Join {
    size_t left = 0;
    Status first;
    bool withdrawn = false;
    PublishDone done;
  };
  auto join = std::make_shared<Join>();
  join->done = std::move(done);
  std::vector<Impl::Sub *> targets;
  for (auto &[name, sub] : s.subs)
    if (sub.config.enabled && sub.config.matches(event_type)) targets.push_back(&sub);
  std::vector<std::string> ids;
  if (targets.empty()) {
    if (join->done) s.mailbox->post([join] { join->done(Status{}); });
    return ids;
  }
  join->left = targets.size();
  const int64_t now = std::max<int64_t>(s.now_ms(), 1);
  for (Impl::Sub *sub : targets) {
    SpoolEvent ev{sub->config.name, std::string(event_type), std::string(json_payload), now};
    auto id = s.spool->append(std::move(ev), [join](Status st) {
      if (!st && join->first) join->first = st;
      if (--join->left == 0 && !join->withdrawn && join->done) join->done(join->first);
    });
    if (!id) {
      join->withdrawn = true;  // all or nothing: take back what this call added
      for (size_t i = 0; i < ids.size(); ++i) {
        targets[i]->queue.erase({now, ids[i]});
        s.check(s.spool->purge(ids[i], s.durable_or_log("withdraw")), "withdraw");
        --s.counters.published;
      }
      Error e = id.error();
      e.message = "publish: " + e.message;
      if (e.code == Errc::io) s.check(Status(id.error()), "append");
      return reject(std::move(e));
    }
    sub->queue.emplace(now, *id);
    ++s.counters.published;
    ids.push_back(std::move(*id));
  }
  s.kick();
  return ids;
}

std::vector<DeadLetter> WebhookDispatcher::dead_letters(size_t limit) const {
  std::vector<DeadLetter> out;
  if (!impl_->spool) return out;
  for (auto &r : impl_->spool->dead_letters(limit))
    out.push_back({r.id, r.subscription, r.event_type, r.attempts, r.last_error, r.created_ms});
  return out;
}

Status WebhookDispatcher::requeue(std::string_view id) {
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st;
  auto record = s.spool->find(id);
  if (!record) return Status(Errc::not_found, "dead letter " + std::string(id) + ": not found");
  if (!record->dead)
    return Status(Errc::bad_state, "dead letter " + std::string(id) + ": is pending, not dead");
  auto sub = s.subs.find(record->subscription);
  if (sub == s.subs.end())
    return Status(Errc::not_found, "dead letter " + std::string(id) + ": subscription '" +
                                       record->subscription + "' is not configured");
  const int64_t now = s.now_ms();
  Status st = s.spool->requeue_dead_letter(id, now, s.durable_or_log("requeue"));
  s.check(st, "requeue");
  if (!st) return st;
  sub->second.queue.emplace(now, std::string(id));
  ++s.counters.requeued;
  s.kick();
  return {};
}

Result<size_t> WebhookDispatcher::requeue_dead_letters(std::string_view subscription) {
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st.error();
  size_t n = 0;
  for (auto &r : s.spool->dead_letters()) {
    if (!subscription.empty() && r.subscription != subscription) continue;
    if (s.subs.find(r.subscription) == s.subs.end()) continue;
    if (auto st = requeue(r.id); !st) return st.error();
    ++n;
  }
  return n;
}

Status WebhookDispatcher::purge(std::string_view id) {
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st;
  auto record = s.spool->find(id);
  if (!record) return Status(Errc::not_found, "dead letter " + std::string(id) + ": not found");
  if (!record->dead)
    return Status(Errc::bad_state,
                  "dead letter " + std::string(id) + ": is pending; only dead letters are purged");
  Status st = s.spool->purge(id, s.durable_or_log("purge"));
  s.check(st, "purge");
  return st;
}

Result<size_t> WebhookDispatcher::purge_dead_letters() {
  Impl &s = *impl_;
  if (auto st = s.usable(); !st) return st.error();
  auto n = s.spool->purge_dead_letters(s.durable_or_log("purge"));
  if (!n) s.check(Status(n.error()), "purge");
  return n;
}

WebhookCounters WebhookDispatcher::counters() const {
  WebhookCounters c = impl_->counters;
  c.in_flight = impl_->in_flight.size();
  if (impl_->spool) {
    auto st = impl_->spool->stats();
    c.queued = st.pending;
    c.dead = st.dead;
  }
  return c;
}

Status WebhookDispatcher::health() const {
  return impl_->usable();
}

Status WebhookDispatcher::flush() {
  if (impl_->closed) return impl_->usable();
  return impl_->spool->flush();
}

Status WebhookDispatcher::close() {
  return impl_->shut_down(true);
}

}  // namespace ivr::net
