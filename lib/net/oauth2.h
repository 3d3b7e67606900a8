// OAuth 2.0 client credentials grant (RFC 6749 section 4.4): fetches an access token from a
// token endpoint, caches it until shortly before it expires, and shares one fetch among every
// caller that asks while it is in flight.
//
// The manager never talks to HttpClient itself: it is given a fetcher that sends an HttpRequest
// and calls back with the HttpResponse, so it runs over the real client or a fake in tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "net/auth.h"
#include "net/http_client.h"

namespace ivr::net {

// How the client authenticates to the token endpoint.
enum class OAuth2ClientAuth {
  basic,  // Authorization: Basic base64(urlencode(id) ":" urlencode(secret))  (RFC 6749 2.3.1)
  body,   // client_id and client_secret as form fields of the body
};

struct OAuth2Config {
  std::string token_url;  // https://auth.example.com/oauth2/token
  std::string client_id;
  std::string client_secret_name;  // a secret name, resolved at each fetch
  OAuth2ClientAuth client_auth = OAuth2ClientAuth::basic;
  std::string scope;     // space-separated; "" = not sent
  std::string audience;  // "" = not sent (Auth0, Okta and others want it)
  std::vector<std::pair<std::string, std::string>> extra_params;  // more form fields ("resource")
  // A token is refreshed this long before it expires (at most half its lifetime).
  std::chrono::seconds refresh_margin{60};
  // The lifetime of a token whose response has no expires_in.
  std::chrono::seconds default_lifetime{300};
  uint32_t timeout_ms = 5000;  // of the token request
};

struct OAuth2Token {
  std::string access_token;
  std::string token_type;  // as sent ("Bearer", "bearer")
  std::chrono::seconds expires_in{0};
  bool expires_in_given = false;  // false: default_lifetime applies
  std::string scope;              // as granted, when the server says
};

// The token request: POST token_url, Content-Type application/x-www-form-urlencoded, Accept
// application/json, body grant_type=client_credentials plus scope, audience, extra_params and,
// for OAuth2ClientAuth::body, client_id and client_secret. Errors name the config field.
Result<HttpRequest> build_token_request(const OAuth2Config &config, std::string_view client_secret);

// Reads a token endpoint's answer. A transport error, a non-2xx status or a 2xx body with an
// "error" member fails with the RFC 6749 error code and description when the body has them
// (Errc::io for transport and 5xx, Errc::invalid_argument for 4xx). A 2xx body must be a JSON
// object with access_token (string) and token_type (string, Bearer in any case); expires_in
// (integer, or a string of digits) is optional. Field errors (Errc::parse) name the field.
// Error texts never contain the access token.
Result<OAuth2Token> parse_token_response(const HttpResponse &response);

class OAuth2TokenManager {
 public:
  using ResponseCallback = std::function<void(HttpResponse &&)>;
  // Sends the request and calls back exactly once with the response (any thread).
  using Fetcher = std::function<void(HttpRequest, ResponseCallback)>;
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  using TokenCallback = std::function<void(Result<std::string>)>;  // the access token

  struct Stats {
    uint64_t fetches = 0;     // token requests sent
    uint64_t cache_hits = 0;  // get_token answered from the cache
    uint64_t coalesced = 0;   // get_token calls that joined a fetch already in flight
    uint64_t failures = 0;    // fetches that ended in an error
  };

  // secrets must hold config.client_secret_name (looked up at each fetch, so a rotated secret
  // is picked up at the next refresh). clock defaults to steady_clock::now.
  OAuth2TokenManager(OAuth2Config config, std::shared_ptr<const SecretStore> secrets,
                     Fetcher fetcher, Clock clock = {});
  // Callbacks of a fetch still in flight are dropped, never called.
  ~OAuth2TokenManager();
  OAuth2TokenManager(const OAuth2TokenManager &) = delete;
  OAuth2TokenManager &operator=(const OAuth2TokenManager &) = delete;

  // Calls done with a valid access token: before returning when one is cached, otherwise when
  // the fetch completes (on the fetcher's thread). Callers arriving while a fetch is in flight
  // wait for that fetch. A failed fetch fails every waiter and is not cached: the next call
  // fetches again. Thread-safe; done never runs under the manager's lock.
  void get_token(TokenCallback done);

  // get_token, then sets "Authorization: Bearer <token>" on request and passes it on.
  void authorize(HttpRequest request, std::function<void(Result<HttpRequest>)> done);

  // After a 401 from a resource server: forgets rejected_token if it is still the cached one,
  // so the next get_token fetches anew (a token already refreshed by another caller is kept).
  void invalidate(std::string_view rejected_token);
  // Forgets the cached token, whatever it is.
  void invalidate();

  Stats stats() const;
  const OAuth2Config &config() const;
  // For logs: token URL, client id, secret name, client auth, scope; never a secret.
  std::string describe() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ivr::net
