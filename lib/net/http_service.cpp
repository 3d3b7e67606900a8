#include "net/http_service.h"

#include <event2/event.h>

#include <deque>
#include <random>
#include <unordered_map>

namespace ivr::net {

const char *fetch_reason(HttpErrc e) {
  switch (e) {
    case HttpErrc::none:
      return "";
    case HttpErrc::timeout:
      return "timeout";
    case HttpErrc::connect:
      return "connect";
    case HttpErrc::tls:
      return "tls";
    case HttpErrc::too_large:
      return "too_large";
    case HttpErrc::protocol:
      return "protocol";
    case HttpErrc::cancelled:
      return "cancelled";
  }
  return "protocol";
}

namespace {

struct EventDeleter {
  void operator()(event *ev) const { event_free(ev); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

SteadyTime steady_now() {
  return std::chrono::steady_clock::now();
}

// Splits the 64-bit stream of one seed between the fetches' retry policies.
uint64_t splitmix(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

struct HttpService::Impl {
  struct RetryCtx {
    Impl *self = nullptr;
    uint64_t id = 0;
  };
  struct Fetch {
    uint64_t id = 0;
    FetchRequest req;
    Callback done;
    std::string key, origin;
    std::shared_ptr<const HttpResponse> stale;  // served if the live request fails
    SteadyTime deadline;
    std::optional<RetryPolicy> retry;
    unsigned attempts = 0;
    bool reauthorized = false;
    uint64_t client_id = 0;
    RetryCtx retry_ctx;    // the retry timer's argument: lives as long as the fetch
    EventPtr retry_timer;  // freed with the fetch, which disarms it
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
  uint64_t rng_state;
  std::unordered_map<uint64_t, std::unique_ptr<Fetch>> fetches;
  std::deque<std::pair<Callback, FetchResult>> ready;
  EventPtr deliver_ev;

  Impl(event_base *b, HttpServiceOptions o, RequestAuthorizer *a, ResponseCache c,
       CircuitBreakers br)
      : base(b),
        options(std::move(o)),
        authorizer(a),
        client(b, options.client),
        cache(std::move(c)),
        breakers(std::move(br)),
        rng_state(options.seed ? options.seed : std::random_device{}()) {
    deliver_ev.reset(event_new(
        base, -1, 0,
        [](evutil_socket_t, short, void *self) { static_cast<Impl *>(self)->deliver(); }, this));
  }

  // Completions run from their own event, never inside fetch() or a client callback.
  void deliver() {
    while (!ready.empty()) {
      auto [cb, result] = std::move(ready.front());
      ready.pop_front();
      cb(std::move(result));
    }
  }
  void finish(Fetch &f, FetchResult result) {
    result.attempts = f.attempts;
    if (!result.reason.empty() && result.reason != "cancelled") ++counters.failures;
    ready.emplace_back(std::move(f.done), std::move(result));
    if (f.client_id) client.cancel(f.client_id);
    fetches.erase(f.id);  // f is gone from here on
    event_active(deliver_ev.get(), 0, 0);
  }
  void fail(Fetch &f, std::string reason, std::string error) {
    FetchResult r;
    r.reason = std::move(reason);
    r.error = std::move(error);
    finish(f, std::move(r));
  }
  // A failure with a stale answer at hand serves the stale answer (stale-if-error).
  bool serve_stale(Fetch &f) {
    if (!f.stale) return false;
    cache.note_stale_served();
    ++counters.stale_served;
    FetchResult r;
    r.response = *f.stale;
    r.cached = r.stale = true;
    finish(f, std::move(r));
    return true;
  }

  uint64_t fetch(FetchRequest req, Callback done) {
    ++counters.fetches;
    auto f = std::make_unique<Fetch>();
    Fetch &fr = *f;
    f->id = next_id++;
    f->req = std::move(req);
    f->done = std::move(done);
    f->deadline = steady_now() + f->req.budget;
    const uint64_t id = f->id;
    fetches.emplace(id, std::move(f));
    auto origin = origin_of(fr.req.request.url);
    if (!origin.ok()) {
      fail(fr, "protocol", origin.error().message);  // erases fr
      return id;
    }
    fr.origin = *origin;
    RetryOptions ro = options.retry;
    ro.max_attempts = std::max<uint32_t>(1, fr.req.max_attempts);
    ro.attempt_timeout = Millis{fr.req.request.timeout_ms};
    ro.max_delay = std::max(ro.max_delay, ro.base_delay);
    auto policy = RetryPolicy::create(ro, [this]() { return splitmix(rng_state); });
    if (!policy.ok()) {
      fail(fr, "protocol", policy.error().message);
      return id;
    }
    fr.retry.emplace(std::move(policy).value());
    if (fr.req.cache_ttl.count() > 0 || fr.req.stale_if_error.count() > 0) {
      fr.key = cache_key(fr.req.request, options.cache_key);
      CacheLookup hit = cache.lookup(fr.key, steady_now());
      if (hit.state == CacheState::fresh) {
        ++counters.cache_hits;
        FetchResult r;
        r.response = *hit.response;
        r.cached = true;
        finish(fr, std::move(r));
        return id;
      }
      if (hit.state == CacheState::stale) fr.stale = hit.response;
    }
    attempt(fr);
    return id;
  }

  void attempt(Fetch &f) {
    SteadyTime now = steady_now();
    auto left = std::chrono::duration_cast<Millis>(f.deadline - now);
    if (left.count() <= 0) {
      if (!serve_stale(f)) fail(f, "budget", "the call's lookup budget is spent");
      return;
    }
    Admission adm = breakers.allow(f.origin, now);
    if (!adm.allowed) {
      ++counters.circuit_rejections;
      if (!serve_stale(f))
        fail(f, "circuit_open",
             f.origin + " failed repeatedly; not asked again for " +
                 std::to_string(adm.retry_after.count()) + " ms");
      return;
    }
    auto req = std::make_shared<HttpRequest>(f.req.request);
    req->timeout_ms = static_cast<uint32_t>(std::min<int64_t>(req->timeout_ms, left.count()));
    req->connect_timeout_ms = std::min(req->connect_timeout_ms, req->timeout_ms);
    uint64_t id = f.id;
    std::string origin = f.origin;
    if (f.req.auth.empty()) return send(f, std::move(req), adm);
    if (!authorizer || !authorizer->has_profile(f.req.auth)) {
      breakers.record(origin, BreakerOutcome::neutral, now, adm.generation);
      return fail(f, "auth", "no auth profile named '" + f.req.auth + "'");
    }
    authorizer->authorize(f.req.auth, *req, [this, id, req, adm, origin](Status st) {
      auto it = fetches.find(id);
      if (it == fetches.end() || !st.ok()) {
        breakers.record(origin, BreakerOutcome::neutral, steady_now(), adm.generation);
        if (it != fetches.end()) fail(*it->second, "auth", st.error().message);
        return;
      }
      send(*it->second, req, adm);
    });
  }

  void send(Fetch &f, std::shared_ptr<HttpRequest> req, Admission adm) {
    ++f.attempts;
    ++counters.requests;
    uint64_t id = f.id;
    std::string origin = f.origin;
    f.client_id = client.start(*req, [this, id, req, adm, origin](HttpResponse &&resp) {
      SteadyTime now = steady_now();
      breakers.record(origin, resp, now, adm.generation);
      auto it = fetches.find(id);
      if (it == fetches.end()) return;  // cancelled meanwhile
      it->second->client_id = 0;
      on_response(*it->second, *req, std::move(resp), now);
    });
  }

  void on_response(Fetch &f, const HttpRequest &req, HttpResponse &&resp, SteadyTime now) {
    if (resp.error == HttpErrc::none && resp.status == 401 && !f.req.auth.empty() &&
        !f.reauthorized && authorizer && authorizer->unauthorized(f.req.auth)) {
      f.reauthorized = true;  // a stale token: once more with a fresh one
      return attempt(f);
    }
    AttemptOutcome outcome =
        AttemptOutcome::of(req, resp, std::chrono::system_clock::now(), f.req.retry_non_idempotent);
    if (f.retry->retryable(outcome)) {
      RetryDecision d = f.retry->next(f.attempts, outcome, now, f.deadline);
      if (d.retry) {
        ++counters.retries;
        schedule_retry(f, d.delay);
        return;
      }
    }
    bool failed = resp.error != HttpErrc::none || resp.status >= 500;
    if (failed && serve_stale(f)) return;
    if (resp.error != HttpErrc::none) {
      std::string reason = fetch_reason(resp.error);
      return fail(f, reason, resp.error_text);
    }
    if (!f.key.empty())
      (void)cache.store(f.key, resp, CacheLifetime{f.req.cache_ttl, f.req.stale_if_error}, now);
    FetchResult r;
    r.response = std::move(resp);
    finish(f, std::move(r));
  }

  void schedule_retry(Fetch &f, Millis delay) {
    if (!f.retry_timer) {
      f.retry_ctx = {this, f.id};
      f.retry_timer.reset(evtimer_new(
          base,
          [](evutil_socket_t, short, void *arg) {
            auto *ctx = static_cast<RetryCtx *>(arg);
            auto it = ctx->self->fetches.find(ctx->id);
            if (it != ctx->self->fetches.end()) ctx->self->attempt(*it->second);
          },
          &f.retry_ctx));
    }
    timeval tv{static_cast<time_t>(delay.count() / 1000),
               static_cast<suseconds_t>((delay.count() % 1000) * 1000)};
    evtimer_add(f.retry_timer.get(), &tv);
  }

  void cancel(uint64_t id) {
    auto it = fetches.find(id);
    if (it == fetches.end()) return;
    fail(*it->second, "cancelled", "cancelled");
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
size_t HttpService::in_flight() const {
  return impl_->fetches.size();
}

}  // namespace ivr::net
