// HttpService: what one lookup of a call goes through. The response cache first (fresh
// answers need no request; stale ones are kept as a fallback), then the origin's circuit
// breaker, the auth profile, the client; failed attempts are retried per the retry policy
// as long as the call's budget allows, and a failure falls back to a stale answer when
// there is one. docs/net.md, "HTTP service", has the steps, the reasons and the limits.
//
// Threading: belongs to the thread running its event_base (the engine loop). fetch() and
// cancel() are called there and completions run there, never inside fetch() or cancel().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.h"
#include "common/result.h"
#include "net/circuit_breaker.h"
#include "net/http_client.h"
#include "net/response_cache.h"
#include "net/retry_policy.h"

struct event_base;

namespace ivr::net {

// Applies a named auth profile to a request, possibly asynchronously (an OAuth2 token
// fetch). The service calls it on the loop, once per attempt, after the cache key was
// computed (so timestamped signatures never reach the key). done(status) runs exactly once,
// on the loop, before or after authorize() returns; `request` stays valid until then and
// must be changed only before done runs. An error fails the lookup with reason "auth"; its
// message must not contain a secret. unauthorized() tells the profile that `rejected`, a
// request it authorized, got a 401, so a cached token can be dropped; true means a new
// attempt may succeed (the service then tries once more with a fresh authorization).
// AuthProfiles (auth_profiles.h) is the engine's implementation.
class RequestAuthorizer {
 public:
  virtual ~RequestAuthorizer() = default;
  virtual bool has_profile(const std::string &profile) const = 0;
  virtual void authorize(const std::string &profile, HttpRequest &request,
                         std::function<void(Status)> done) = 0;
  virtual bool unauthorized(const std::string &profile, const HttpRequest &rejected) = 0;
};

struct FetchRequest {
  HttpRequest request;        // request.timeout_ms is one attempt's limit (0: only the budget)
  std::string auth;           // profile name, "" for none
  uint32_t max_attempts = 1;  // the first attempt included (0 counts as 1)
  bool retry_non_idempotent = false;  // allow retrying e.g. a POST
  Millis cache_ttl{0};                // 0 (and no stale_if_error): not cached
  Millis stale_if_error{0};
  Millis budget{10000};  // from now: no attempt or retry may end later (at most 24 h)
};

struct FetchResult {
  // "" when a response arrived (any status: the caller judges it), else timeout, connect,
  // tls, too_large, protocol, circuit_open, budget, auth or cancelled.
  std::string reason;
  std::string error;      // for logs; never a secret
  HttpResponse response;  // when reason is ""
  bool cached = false;    // from the cache (fresh, or stale below)
  bool stale = false;     // the live request failed; this is the stale-if-error copy
  unsigned attempts = 0;  // requests sent
  // Why no further attempt was made after the last one: "" (none was needed, or no request
  // was sent), not_retryable, not_idempotent, attempts_exhausted or budget_exhausted.
  std::string give_up;
};

struct HttpServiceOptions {
  HttpClientOptions client;
  ResponseCacheOptions cache;
  CircuitBreakerOptions breaker;
  // Delays and retryable outcomes. max_attempts and attempt_timeout are ignored: they come
  // from each FetchRequest (max_attempts, request.timeout_ms).
  RetryOptions retry;
  CacheKeyOptions cache_key;
  uint64_t seed = 0;  // jitter; 0 = from std::random_device
  LoggerPtr logger;   // "http" lines: URLs without query or userinfo, never a secret
};

struct HttpServiceCounters {
  uint64_t fetches = 0, requests = 0, retries = 0, cache_hits = 0, stale_served = 0,
           circuit_rejections = 0, failures = 0;
};

class HttpService {
 public:
  using Callback = std::function<void(FetchResult &&)>;

  // Errors name the bad option. The event_base and the authorizer (may be null: then any
  // auth profile fails with reason "auth") must outlive the service.
  // A callback may call fetch() and cancel(), and may destroy the service (the callbacks
  // still queued are then dropped). Callbacks must not throw (an exception is dropped).
  static Result<std::unique_ptr<HttpService>> create(event_base *base,
                                                     HttpServiceOptions options = {},
                                                     RequestAuthorizer *authorizer = nullptr);
  ~HttpService();  // drops what is in flight; its callbacks are never called
  HttpService(const HttpService &) = delete;
  HttpService &operator=(const HttpService &) = delete;

  // Starts a lookup; `done` runs exactly once, later, on the loop, unless the service is
  // destroyed first. Returns an id for cancel().
  uint64_t fetch(FetchRequest request, Callback done);
  // Completes the lookup with reason "cancelled", later, if it has not completed yet (its
  // outcome may already be queued: then that outcome is replaced); unknown ids are ignored.
  void cancel(uint64_t id);

  // Breaker state changes, for events and logs. The callback runs inside the service: it may
  // log, but must not call fetch() or cancel() or destroy the service.
  void on_breaker_change(CircuitBreakers::StateCallback cb);
  const HttpServiceCounters &counters() const;
  const CacheCounters &cache_counters() const;
  const BreakerCounters &breaker_counters() const;
  std::optional<BreakerSnapshot> breaker(std::string_view origin) const;  // "http://h:80"
  size_t in_flight() const;  // lookups whose callback has not been queued yet

 private:
  struct Impl;
  explicit HttpService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// HttpErrc -> the reason a flow sees ("timeout", "connect", ...).
const char *fetch_reason(HttpErrc e);

}  // namespace ivr::net
