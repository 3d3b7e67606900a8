#include "net/http_service.h"

#include <event2/event.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <random>
#include <unordered_map>

#include "net/crypto.h"

namespace ivr::net {

const char *fetch_reason(HttpErrc e) {
  return e == HttpErrc::none ? "" : http_errc_name(e);  // the client's names are the reasons
}

namespace {

struct EventDeleter {
  void operator()(event *ev) const { event_free(ev); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

SteadyTime steady_now() {
  return std::chrono::steady_clock::now();
}

timeval to_timeval(Millis d) {
  if (d.count() < 0) d = Millis{0};
  return timeval{static_cast<time_t>(d.count() / 1000),
                 static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

// Splits the 64-bit stream of one seed between the fetches' retry policies.
uint64_t splitmix(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// What stale-if-error treats as the live request failing (RFC 5861 names 500-504; 429 is
// the same kind of "not now").
bool failed_answer(const HttpResponse &r) {
  return r.error != HttpErrc::none || r.status >= 500 || r.status == 429;
}

std::string outcome_text(const HttpResponse &r) {
  return r.error == HttpErrc::none ? "HTTP " + std::to_string(r.status)
                                   : std::string(fetch_reason(r.error));
}

// An attempt whose timeout was cut to the deadline is ended by curl at the deadline; the
// service steps in only if that has not happened this long after.
constexpr Millis kDeadlineGrace{250};

}  // namespace

struct HttpService::Impl {
  struct TimerCtx {
    Impl *self = nullptr;
    uint64_t id = 0;
  };
  struct Fetch {
    uint64_t id = 0;
    FetchRequest req;
    Callback done;
    std::string key, origin, label;             // label: for logs (no query, no userinfo)
    std::shared_ptr<const HttpResponse> stale;  // served if the live request fails
    Millis budget{0};
    SteadyTime deadline;
    std::optional<RetryPolicy> retry;
    unsigned attempts = 0;              // requests sent
    bool reauthorized = false;          // the one extra attempt after a 401 was made
    bool clamped = false;               // the attempt in flight had its timeout cut to the deadline
    bool in_grace = false;              // the deadline passed with that attempt still in flight
    std::optional<uint64_t> admission;  // generation of an admitted attempt not yet recorded
    uint64_t client_id = 0;             // the attempt in flight
    uint64_t auth_seq = 0;              // the authorization waited for (0: none)
    std::string give_up;
    TimerCtx ctx;  // the timers' argument: lives as long as the fetch, which frees the timers
    EventPtr retry_timer, deadline_timer;
  };
  struct Ready {
    uint64_t id = 0;
    Callback done;
    FetchResult result;
  };

  event_base *base;
  HttpServiceOptions options;
  RequestAuthorizer *authorizer;
  HttpClient client;
  ResponseCache cache;
  CircuitBreakers breakers;
  std::shared_ptr<CircuitBreakers::StateCallback> breaker_forward;
  HttpServiceCounters counters;
  uint64_t next_id = 1;
  uint64_t next_auth_seq = 1;
  uint64_t rng_state;
  std::unordered_map<uint64_t, std::unique_ptr<Fetch>> fetches;
  std::deque<Ready> ready;
  EventPtr deliver_ev;
  // Callbacks that may outlive the service (the authorizer's, a completion that destroys the
  // service) check this first. Declared last: it dies first.
  std::shared_ptr<char> life = std::make_shared<char>(0);

  Impl(event_base *b, HttpServiceOptions o, RequestAuthorizer *a, ResponseCache c,
       CircuitBreakers br)
      : base(b),
        options(std::move(o)),
        authorizer(a),
        client(b, options.client),
        cache(std::move(c)),
        breakers(std::move(br)),
        rng_state(options.seed ? options.seed : std::random_device{}()) {
    deliver_ev.reset(evtimer_new(
        base, [](evutil_socket_t, short, void *self) { static_cast<Impl *>(self)->deliver(); },
        this));
  }

  // ---- completion ----

  // Completions run from a zero-delay timer: never inside fetch(), cancel() or a client
  // callback, and only those queued before the run (a callback that keeps starting lookups
  // that complete at once cannot starve the loop).
  void deliver() {
    std::weak_ptr<char> alive = life;
    for (size_t n = ready.size(); n > 0 && !ready.empty(); --n) {
      Ready r = std::move(ready.front());
      ready.pop_front();
      try {
        r.done(std::move(r.result));
      } catch (...) {  // nothing may unwind through libevent
      }
      if (alive.expired()) return;  // the callback destroyed the service
    }
    if (!ready.empty()) arm_delivery();
  }
  void arm_delivery() {
    const timeval zero{0, 0};
    evtimer_add(deliver_ev.get(), &zero);
  }

  // Reports the admitted attempt's outcome to the breaker, once.
  void settle(Fetch &f, BreakerOutcome outcome, SteadyTime now) {
    if (!f.admission) return;
    breakers.record(f.origin, outcome, now, *f.admission);
    f.admission.reset();
  }

  void finish(Fetch &f, FetchResult result) {
    result.attempts = f.attempts;
    if (result.give_up.empty()) result.give_up = f.give_up;
    settle(f, BreakerOutcome::neutral, steady_now());  // abandoned before an outcome
    if (f.client_id) client.cancel(f.client_id);       // its callback finds no fetch
    if (!result.reason.empty() && result.reason != "cancelled") {
      ++counters.failures;
      IVR_LOG(options.logger, info, "http", "%s: %s after %u attempt(s): %s", f.label.c_str(),
              result.reason.c_str(), f.attempts, result.error.c_str());
    }
    ready.push_back(Ready{f.id, std::move(f.done), std::move(result)});
    fetches.erase(f.id);  // f is gone from here on
    arm_delivery();
  }
  void fail(Fetch &f, std::string reason, std::string error) {
    FetchResult r;
    r.reason = std::move(reason);
    r.error = std::move(error);
    finish(f, std::move(r));
  }
  // A failure with a stale answer at hand serves the stale answer (stale-if-error).
  bool serve_stale(Fetch &f, const std::string &why) {
    if (!f.stale) return false;
    cache.note_stale_served();
    ++counters.stale_served;
    IVR_LOG(options.logger, info, "http", "%s: served a stale answer (%s)", f.label.c_str(),
            why.c_str());
    FetchResult r;
    r.response = *f.stale;
    r.cached = r.stale = true;
    r.error = "stale answer served: " + why;
    finish(f, std::move(r));
    return true;
  }
  void budget_spent(Fetch &f, BreakerOutcome outcome) {
    settle(f, outcome, steady_now());
    std::string why = "the lookup's budget of " + std::to_string(f.budget.count()) +
                      " ms is spent after " + std::to_string(f.attempts) + " attempt(s)";
    if (!serve_stale(f, "budget: " + why)) fail(f, "budget", why);
  }

  // ---- one lookup ----

  uint64_t fetch(FetchRequest req, Callback done) {
    ++counters.fetches;
    auto owned = std::make_unique<Fetch>();
    Fetch &f = *owned;
    f.id = next_id++;
    f.req = std::move(req);
    f.done = done ? std::move(done) : [](FetchResult &&) {};
    f.budget = std::clamp(f.req.budget, Millis{0}, kMaxPolicyDuration);
    const SteadyTime now = steady_now();
    f.deadline = now + f.budget;
    f.label = cache_key_label(f.req.request);
    f.ctx = {this, f.id};
    const uint64_t id = f.id;
    fetches.emplace(id, std::move(owned));

    auto origin = origin_of(f.req.request.url);
    if (!origin.ok()) {
      fail(f, "protocol", origin.error().message);  // erases f
      return id;
    }
    f.origin = *origin;
    RetryOptions ro = options.retry;
    ro.max_attempts = std::max<uint32_t>(1, f.req.max_attempts);
    // A retry must leave room for a whole attempt; with no per-attempt limit that is the
    // budget, so no retry fits.
    ro.attempt_timeout = f.req.request.timeout_ms
                             ? std::min(Millis{f.req.request.timeout_ms}, kMaxPolicyDuration)
                             : f.budget;
    auto policy = RetryPolicy::create(ro, [this] { return splitmix(rng_state); });
    if (!policy.ok()) {
      fail(f, "protocol", "retry." + policy.error().message);
      return id;
    }
    f.retry.emplace(std::move(policy).value());

    if (f.req.cache_ttl.count() > 0 || f.req.stale_if_error.count() > 0) {
      // Computed before any authorization (signatures carry a timestamp); the profile is
      // part of the key, so two profiles (two tenants) never share an answer.
      f.key = cache_key(f.req.request, options.cache_key);
      if (!f.req.auth.empty()) f.key = sha256_hex(f.key + "\nauth profile\n" + f.req.auth);
      CacheLookup hit = cache.lookup(f.key, now);
      if (hit.state == CacheState::fresh) {
        ++counters.cache_hits;
        IVR_LOG(options.logger, debug, "http", "%s: fresh from the cache", f.label.c_str());
        FetchResult r;
        r.response = *hit.response;
        r.cached = true;
        finish(f, std::move(r));
        return id;
      }
      if (hit.state == CacheState::stale) f.stale = hit.response;
    }

    f.deadline_timer.reset(evtimer_new(
        base,
        [](evutil_socket_t, short, void *arg) {
          auto *ctx = static_cast<TimerCtx *>(arg);
          auto it = ctx->self->fetches.find(ctx->id);
          if (it != ctx->self->fetches.end()) ctx->self->on_deadline(*it->second);
        },
        &f.ctx));
    const timeval tv = to_timeval(f.budget);
    evtimer_add(f.deadline_timer.get(), &tv);
    attempt(f);
    return id;
  }

  void on_deadline(Fetch &f) {
    if (f.client_id && !f.in_grace) {  // curl ends a clamped attempt by itself
      f.in_grace = true;
      const timeval tv = to_timeval(kDeadlineGrace);
      evtimer_add(f.deadline_timer.get(), &tv);
      return;
    }
    // Waiting for the authorizer, or an attempt overran: the host did not answer in time.
    budget_spent(f, f.client_id ? BreakerOutcome::failure : BreakerOutcome::neutral);
  }

  // Asks the breaker, then the authorizer, then sends. May finish (and erase) f.
  void attempt(Fetch &f) {
    const SteadyTime now = steady_now();
    if (now >= f.deadline) return budget_spent(f, BreakerOutcome::neutral);
    Admission adm = breakers.allow(f.origin, now);
    if (!adm.allowed) {
      ++counters.circuit_rejections;
      std::string why = f.origin + " failed repeatedly; not asked again for " +
                        std::to_string(adm.retry_after.count()) + " ms";
      if (!serve_stale(f, "circuit_open: " + why)) fail(f, "circuit_open", why);
      return;
    }
    f.admission = adm.generation;
    auto req = std::make_shared<HttpRequest>(f.req.request);
    if (f.req.auth.empty()) return send(f, std::move(req));
    if (!authorizer || !authorizer->has_profile(f.req.auth))
      return fail(f, "auth", "no auth profile named '" + f.req.auth + "'");

    const uint64_t id = f.id, seq = next_auth_seq++;
    f.auth_seq = seq;
    std::weak_ptr<char> alive = life;
    try {
      // The callback may run before authorize() returns; f is not touched after the call.
      authorizer->authorize(f.req.auth, *req, [this, alive, id, seq, req](Status st) {
        if (alive.expired()) return;  // the service is gone
        auto it = fetches.find(id);
        if (it == fetches.end() || it->second->auth_seq != seq) return;  // over, or twice
        Fetch &g = *it->second;
        g.auth_seq = 0;
        if (!st.ok())
          return fail(g, "auth", "auth profile '" + g.req.auth + "': " + st.error().message);
        send(g, req);
      });
    } catch (...) {
      auto it = fetches.find(id);
      if (it != fetches.end() && it->second->auth_seq == seq)
        fail(*it->second, "auth", "auth profile '" + it->second->req.auth + "': it threw");
    }
  }

  void send(Fetch &f, std::shared_ptr<HttpRequest> req) {
    const SteadyTime now = steady_now();
    if (now >= f.deadline) return budget_spent(f, BreakerOutcome::neutral);
    // The attempt's timeout is cut to what is left of the budget (computed now, after any
    // wait for the authorizer), rounded up so curl never ends it before the deadline.
    const int64_t left = std::chrono::ceil<Millis>(f.deadline - now).count();
    const uint32_t configured = f.req.request.timeout_ms;
    f.clamped = configured == 0 || left < static_cast<int64_t>(configured);
    req->timeout_ms =
        f.clamped
            ? static_cast<uint32_t>(std::min<int64_t>(left, std::numeric_limits<uint32_t>::max()))
            : configured;
    if (req->connect_timeout_ms > req->timeout_ms) req->connect_timeout_ms = req->timeout_ms;
    ++f.attempts;
    ++counters.requests;
    const uint64_t id = f.id;
    f.client_id = client.start(*req, [this, id, req](HttpResponse &&resp) {
      auto it = fetches.find(id);
      if (it == fetches.end()) return;  // finished meanwhile; its admission was settled then
      Fetch &g = *it->second;
      g.client_id = 0;
      const SteadyTime at = steady_now();
      settle(g, breakers.classify(resp.error, resp.status), at);
      on_response(g, *req, std::move(resp), at);
    });
  }

  void on_response(Fetch &f, const HttpRequest &req, HttpResponse &&resp, SteadyTime now) {
    IVR_LOG(options.logger, debug, "http", "%s: attempt %u: %s in %.0f ms", f.label.c_str(),
            f.attempts, outcome_text(resp).c_str(), resp.elapsed_ms);
    if (resp.error == HttpErrc::none && resp.status == 401 && !f.req.auth.empty() &&
        !f.reauthorized && authorizer && authorizer->unauthorized(f.req.auth, req)) {
      f.reauthorized = true;  // a stale token: once more with a fresh one
      return attempt(f);
    }
    AttemptOutcome outcome =
        AttemptOutcome::of(req, resp, std::chrono::system_clock::now(), f.req.retry_non_idempotent);
    // The extra attempt after a 401 is not one of the policy's.
    const uint32_t policy_attempts = f.attempts - (f.reauthorized ? 1 : 0);
    RetryDecision d = f.retry->next(policy_attempts, outcome, now, f.deadline);
    if (d.retry) {
      ++counters.retries;
      IVR_LOG(options.logger, debug, "http", "%s: retry in %lld ms%s", f.label.c_str(),
              static_cast<long long>(d.delay.count()), d.from_retry_after ? " (Retry-After)" : "");
      return schedule_retry(f, d.delay);
    }
    if (resp.error != HttpErrc::none || resp.status >= 400)
      f.give_up = give_up_reason_name(d.reason);
    if (failed_answer(resp) && serve_stale(f, outcome_text(resp))) return;
    if (resp.error != HttpErrc::none) {
      if (resp.error == HttpErrc::timeout && f.clamped)
        return fail(f, "budget",
                    "the lookup's budget of " + std::to_string(f.budget.count()) +
                        " ms ran out during attempt " + std::to_string(f.attempts) + " (" +
                        resp.error_text + ")");
      return fail(f, fetch_reason(resp.error), resp.error_text);
    }
    if (!f.key.empty())
      (void)cache.store(f.key, resp, CacheLifetime{f.req.cache_ttl, f.req.stale_if_error}, now);
    FetchResult r;
    r.response = std::move(resp);
    finish(f, std::move(r));
  }

  void schedule_retry(Fetch &f, Millis delay) {
    if (!f.retry_timer) {
      f.retry_timer.reset(evtimer_new(
          base,
          [](evutil_socket_t, short, void *arg) {
            auto *ctx = static_cast<TimerCtx *>(arg);
            auto it = ctx->self->fetches.find(ctx->id);
            if (it != ctx->self->fetches.end()) ctx->self->attempt(*it->second);
          },
          &f.ctx));
    }
    const timeval tv = to_timeval(delay);
    evtimer_add(f.retry_timer.get(), &tv);
  }

  void cancel(uint64_t id) {
    if (auto it = fetches.find(id); it != fetches.end())
      return fail(*it->second, "cancelled", "cancelled by the caller");
    for (Ready &r : ready) {  // completed, not yet delivered: delivered as cancelled
      if (r.id != id || r.result.reason == "cancelled") continue;
      FetchResult c;
      c.reason = c.error = "cancelled";
      c.error += " by the caller";
      c.attempts = r.result.attempts;
      r.result = std::move(c);
    }
  }
};

Result<std::unique_ptr<HttpService>> HttpService::create(event_base *base,
                                                         HttpServiceOptions options,
                                                         RequestAuthorizer *authorizer) {
  if (!base) return Error{Errc::invalid_argument, "base: no event loop"};
  auto cache = ResponseCache::create(options.cache);
  if (!cache.ok()) return Error{cache.error().code, "cache." + cache.error().message};
  if (auto st = options.retry.validate(); !st.ok())
    return Error{st.error().code, "retry." + st.error().message};
  // The breaker's callback forwards to whatever on_breaker_change() sets later.
  auto forward = std::make_shared<CircuitBreakers::StateCallback>();
  auto breakers = CircuitBreakers::create(options.breaker, [forward](const BreakerTransition &t) {
    if (*forward) (*forward)(t);
  });
  if (!breakers.ok()) return Error{breakers.error().code, "breaker." + breakers.error().message};
  auto impl = std::make_unique<Impl>(base, std::move(options), authorizer, std::move(cache).value(),
                                     std::move(breakers).value());
  impl->breaker_forward = forward;
  return std::unique_ptr<HttpService>(new HttpService(std::move(impl)));
}

HttpService::HttpService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpService::~HttpService() = default;

uint64_t HttpService::fetch(FetchRequest request, Callback done) {
  return impl_->fetch(std::move(request), std::move(done));
}
void HttpService::cancel(uint64_t id) {
  impl_->cancel(id);
}
void HttpService::on_breaker_change(CircuitBreakers::StateCallback cb) {
  *impl_->breaker_forward = std::move(cb);
}
const HttpServiceCounters &HttpService::counters() const {
  return impl_->counters;
}
const CacheCounters &HttpService::cache_counters() const {
  return impl_->cache.counters();
}
const BreakerCounters &HttpService::breaker_counters() const {
  return impl_->breakers.counters();
}
std::optional<BreakerSnapshot> HttpService::breaker(std::string_view origin) const {
  return impl_->breakers.snapshot(origin);
}
size_t HttpService::in_flight() const {
  return impl_->fetches.size();
}

}  // namespace ivr::net
