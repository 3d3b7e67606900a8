// HttpService: what one lookup of a call goes through. The response cache first (fresh
// answers need no request; stale ones are kept as a fallback), then the origin's circuit
// breaker, the auth profile, the client; failed attempts are retried per the retry policy
// as long as the call's budget allows, and a failure falls back to a stale answer when
// there is one.
//
// Threading: belongs to the thread running its event_base (the engine loop). fetch() and
// cancel() are called there and completions run there, never inside fetch().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "net/circuit_breaker.h"
#include "net/http_client.h"
#include "net/response_cache.h"
#include "net/retry_policy.h"

struct event_base;

namespace ivr::net {

// Applies a named auth profile to a request, possibly asynchronously (an OAuth2 token
// fetch). done(status) runs exactly once, on the loop; an error fails the lookup with
// reason "auth". unauthorized() tells the profile a request it authorized got a 401, so a
// cached token is dropped (the service then retries once with a fresh one).
class RequestAuthorizer {
 public:
  virtual ~RequestAuthorizer() = default;
  virtual bool has_profile(const std::string &profile) const = 0;
  virtual void authorize(const std::string &profile, HttpRequest &request,
                         std::function<void(Status)> done) = 0;
  virtual bool unauthorized(const std::string &profile) = 0;  // true: worth one more try
};

struct FetchRequest {
  HttpRequest request;
  std::string auth;                   // profile name, "" for none
  uint32_t max_attempts = 1;          // the first attempt included
  bool retry_non_idempotent = false;  // allow retrying e.g. a POST
  Millis cache_ttl{0};                // 0: not cached
  Millis stale_if_error{0};
  Millis budget{10000};  // from now: no attempt or retry may end later
};

struct FetchResult {
  // "" when a response arrived (any status: the caller judges it), else timeout, connect,
  // tls, too_large, protocol, circuit_open, budget, auth or cancelled.
  std::string reason;
  std::string error;
  HttpResponse response;
  bool cached = false, stale = false;
  unsigned attempts = 0;  // requests sent
};

struct HttpServiceOptions {
  HttpClientOptions client;
  ResponseCacheOptions cache;
  CircuitBreakerOptions breaker;
  RetryOptions retry;  // delays and retryable outcomes; attempts and timeouts per request
  CacheKeyOptions cache_key;
  uint64_t seed = 0;  // jitter; 0 = from std::random_device
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
  static Result<std::unique_ptr<HttpService>> create(event_base *base,
                                                     HttpServiceOptions options = {},
                                                     RequestAuthorizer *authorizer = nullptr);
  ~HttpService();  // drops what is in flight; its callbacks are never called
  HttpService(const HttpService &) = delete;
  HttpService &operator=(const HttpService &) = delete;

  uint64_t fetch(FetchRequest request, Callback done);
  void cancel(uint64_t id);  // completes with reason "cancelled", later

  // Breaker state changes, for events and logs (set before the first fetch).
  void on_breaker_change(CircuitBreakers::StateCallback cb);
  const HttpServiceCounters &counters() const;
  const CacheCounters &cache_counters() const;
  size_t in_flight() const;

 private:
  struct Impl;
  explicit HttpService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// HttpErrc -> the reason a flow sees ("timeout", "connect", ...).
const char *fetch_reason(HttpErrc e);

}  // namespace ivr::net
