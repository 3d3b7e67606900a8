#include "net/oauth2.h"

#include <algorithm>
#include <mutex>
#include <optional>

#include "common/json.h"
#include "common/text.h"
#include "net/crypto.h"

namespace ivr::net {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

// The largest lifetime taken from a server; anything longer is clamped (a day is plenty for a
// client-credentials token and keeps the arithmetic far from overflow).
constexpr int64_t kMaxLifetimeSeconds = 24 * 3600;

using text::iequals;

// Server-provided text in our messages: printable ASCII only, bounded.
std::string printable(std::string_view text, size_t limit) {
  std::string out;
  for (char c : text) {
    if (out.size() >= limit) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7F) ? c : '?';
  }
  return out;
}

// "invalid_client (Client authentication failed)" from an RFC 6749 section 5.2 error body, or
// nullopt when the body is not such an object.
std::optional<std::string> rfc6749_error(const json::Value &root) {
  const json::Value *error = root.find("error");
  if (!error || !error->is(json::Kind::string)) return std::nullopt;
  std::string out = printable(error->string, 64);
  const json::Value *desc = root.find("error_description");
  if (desc && desc->is(json::Kind::string) && !desc->string.empty())
    out += " (" + printable(desc->string, 200) + ")";
  return out;
}

bool valid_token_chars(std::string_view token) {
  for (char c : token)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7F)
      return false;
  return true;
}

void append_form(std::string &body, std::string_view name, std::string_view value) {
  if (!body.empty()) body += '&';
  body += form_urlencode(name);
  body += '=';
  body += form_urlencode(value);
}

}  // namespace

Result<HttpRequest> build_token_request(const OAuth2Config &config,
                                        std::string_view client_secret) {
  auto url = split_url(config.token_url);
  if (!url.ok()) return Error{Errc::invalid_argument, "oauth2.token_url: " + url.error().message};
  if (config.client_id.empty()) return Error{Errc::invalid_argument, "oauth2.client_id: empty"};
  if (client_secret.empty())
    return Error{Errc::invalid_argument, "oauth2.client_secret_name: the secret is empty"};
  for (const auto &[name, value] : config.extra_params)
    if (name.empty() || name == "grant_type" || name == "client_secret")
      return Error{Errc::invalid_argument,
                   "oauth2.extra_params: '" + printable(name, 64) + "' may not be set here"};

  HttpRequest request;
  request.method = "POST";
  request.url = config.token_url;
  request.timeout_ms = config.timeout_ms;
  request.connect_timeout_ms = std::min(request.connect_timeout_ms, config.timeout_ms);
  request.max_response_bytes = 64 * 1024;  // a token response is small
  request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  request.headers.emplace_back("Accept", "application/json");
  append_form(request.body, "grant_type", "client_credentials");
  if (!config.scope.empty()) append_form(request.body, "scope", config.scope);
  if (!config.audience.empty()) append_form(request.body, "audience", config.audience);
  for (const auto &[name, value] : config.extra_params) append_form(request.body, name, value);
  if (config.client_auth == OAuth2ClientAuth::basic) {
    // RFC 6749 2.3.1: both parts are form-urlencoded before the Basic encoding.
    std::string credentials =
        form_urlencode(config.client_id) + ":" + form_urlencode(client_secret);
    request.headers.emplace_back("Authorization", "Basic " + base64_encode(credentials));
  } else {
    append_form(request.body, "client_id", config.client_id);
    append_form(request.body, "client_secret", client_secret);
  }
  return request;
}

Result<OAuth2Token> parse_token_response(const HttpResponse &response) {
  if (response.error != HttpErrc::none)
    return Error{Errc::io, std::string("oauth2 token request failed: ") +
                               http_errc_name(response.error) + ": " +
                               printable(response.error_text, 200)};
  auto doc = json::parse(response.body);
  bool success = response.status >= 200 && response.status < 300;
  if (!success) {
    std::string msg = "oauth2 token endpoint answered " + std::to_string(response.status);
    if (doc.ok())
      if (auto e = rfc6749_error(doc->root())) msg += ": " + *e;
    return Error{
        response.status >= 400 && response.status < 500 ? Errc::invalid_argument : Errc::io, msg};
  }
  if (!doc.ok())
    return Error{Errc::parse, "oauth2 token response: not JSON: " + doc.error().message};
  const json::Value &root = doc->root();
  if (!root.is(json::Kind::object))
    return Error{Errc::parse, std::string("oauth2 token response: expected an object, found ") +
                                  json::kind_name(root.kind)};
  if (auto e = rfc6749_error(root))
    return Error{Errc::invalid_argument, "oauth2 token endpoint answered " +
                                             std::to_string(response.status) + " with error " + *e};

  OAuth2Token token;
  const json::Value *access = root.find("access_token");
  if (!access) return Error{Errc::parse, "oauth2 token response: access_token: missing"};
  if (!access->is(json::Kind::string))
    return Error{Errc::parse, std::string("oauth2 token response: access_token: expected a "
                                          "string, found ") +
                                  json::kind_name(access->kind)};
  if (access->string.empty())
    return Error{Errc::parse, "oauth2 token response: access_token: empty"};
  if (!valid_token_chars(access->string))
    return Error{Errc::parse,
                 "oauth2 token response: access_token: contains a space, a control or a "
                 "non-ASCII character"};
  token.access_token = access->string;

  const json::Value *type = root.find("token_type");
  if (!type) return Error{Errc::parse, "oauth2 token response: token_type: missing"};
  if (!type->is(json::Kind::string))
    return Error{Errc::parse, std::string("oauth2 token response: token_type: expected a string, "
                                          "found ") +
                                  json::kind_name(type->kind)};
  if (!iequals(type->string, "bearer"))
    return Error{Errc::unsupported, "oauth2 token response: token_type: '" +
                                        printable(type->string, 32) +
                                        "' is not supported (only Bearer)"};
  token.token_type = type->string;

  if (const json::Value *expires = root.find("expires_in")) {
    int64_t seconds = -1;
    if (expires->is(json::Kind::number) && expires->integral && expires->number >= 0 &&
        expires->number < 1e12) {
      seconds = static_cast<int64_t>(expires->number);
    } else if (expires->is(json::Kind::string) && !expires->string.empty() &&
               expires->string.size() <= 12 &&
               std::all_of(expires->string.begin(), expires->string.end(),
                           [](char c) { return c >= '0' && c <= '9'; })) {
      seconds = std::stoll(expires->string);  // some servers send "3600"
    }
    if (seconds <= 0)
      return Error{Errc::parse,
                   "oauth2 token response: expires_in: expected a positive whole number of "
                   "seconds"};
    token.expires_in = std::chrono::seconds(std::min(seconds, kMaxLifetimeSeconds));
    token.expires_in_given = true;
  }
  if (const json::Value *scope = root.find("scope"); scope && scope->is(json::Kind::string))
    token.scope = scope->string;
  return token;
}

// ---- the manager ----

struct OAuth2TokenManager::State {
  State(OAuth2Config c, std::shared_ptr<const SecretStore> s, Fetcher f, Clock k)
      : config(std::move(c)), secrets(std::move(s)), fetcher(std::move(f)), clock(std::move(k)) {}

  const OAuth2Config config;
  const std::shared_ptr<const SecretStore> secrets;
  const Fetcher fetcher;
  const Clock clock;

  mutable std::mutex mu;
  std::optional<std::string> token;  // guarded by mu
  SteadyTime refresh_at{};           // token is served while now < refresh_at
  bool in_flight = false;
  uint64_t generation = 0;  // of the fetch in flight
  std::vector<TokenCallback> waiters;
  Stats stats;

  std::string where() const {
    auto url = split_url(config.token_url);
    return url.ok() ? std::string(url->host) : std::string("token endpoint");
  }

  // Removes every secret this fetch used from text.
  std::string scrub(std::string text, std::string_view secret) const {
    text = scrub_secret(std::move(text), secret);
    text = scrub_secret(std::move(text), form_urlencode(secret));
    text = scrub_secret(std::move(text), base64_encode(form_urlencode(config.client_id) + ":" +
                                                       form_urlencode(secret)));
    return text;
  }

  // Ends the fetch of this generation: caches a token, then answers every waiter outside mu.
  void complete(uint64_t gen, SteadyTime started, Result<OAuth2Token> result,
                std::string_view secret) {
    std::vector<TokenCallback> callbacks;
    Result<std::string> answer = Error{Errc::internal, ""};
    {
      std::lock_guard lock(mu);
      if (!in_flight || gen != generation) return;  // a second callback from a bad fetcher
      in_flight = false;
      callbacks.swap(waiters);
      if (result.ok()) {
        auto lifetime = result->expires_in_given ? result->expires_in : config.default_lifetime;
        auto margin = std::min(config.refresh_margin, lifetime / 2);
        token = result->access_token;
        // Counted from when the request left: the server's clock started no earlier.
        refresh_at = started + lifetime - margin;
        answer = result->access_token;
      } else {
        ++stats.failures;
        answer = Error{result.error().code,
                       "oauth2 (" + where() + "): " + scrub(result.error().message, secret)};
      }
    }
    for (auto &cb : callbacks)
      if (cb) cb(answer);
  }
};

OAuth2TokenManager::OAuth2TokenManager(OAuth2Config config,
                                       std::shared_ptr<const SecretStore> secrets, Fetcher fetcher,
                                       Clock clock)
    : state_(std::make_shared<State>(
          std::move(config), std::move(secrets), std::move(fetcher),
          clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); }))) {}

OAuth2TokenManager::~OAuth2TokenManager() = default;

const OAuth2Config &OAuth2TokenManager::config() const {
  return state_->config;
}

void OAuth2TokenManager::get_token(TokenCallback done) {
  State &s = *state_;
  uint64_t gen = 0;
  SteadyTime now = s.clock();
  {
    std::unique_lock lock(s.mu);
    if (s.token && now < s.refresh_at) {
      ++s.stats.cache_hits;
      std::string token = *s.token;
      lock.unlock();
      if (done) done(std::move(token));
      return;
    }
    s.waiters.push_back(std::move(done));
    if (s.in_flight) {
      ++s.stats.coalesced;
      return;
    }
    s.in_flight = true;
    gen = ++s.generation;
  }

  std::string secret;
  Result<HttpRequest> request = Error{Errc::internal, ""};
  if (!s.secrets) {
    request = Error{Errc::invalid_argument, "oauth2.client_secret_name: no secret store"};
  } else if (auto v = resolve_secret(*s.secrets, s.config.client_secret_name,
                                     "oauth2.client_secret_name");
             !v.ok()) {
    request = v.error();
  } else {
    secret = std::move(v).value();
    request = build_token_request(s.config, secret);
  }
  if (!request.ok() || !s.fetcher) {
    Error e = request.ok() ? Error{Errc::bad_state, "oauth2: no fetcher"} : request.error();
    s.complete(gen, now, e, secret);
    return;
  }

  std::weak_ptr<State> weak = state_;
  auto on_response = [weak, gen, now, secret](HttpResponse &&response) {
    if (auto st = weak.lock()) st->complete(gen, now, parse_token_response(response), secret);
  };
  {
    std::lock_guard lock(s.mu);
    ++s.stats.fetches;
  }
  try {
    s.fetcher(std::move(request).value(), std::move(on_response));
  } catch (const std::exception &e) {
    s.complete(gen, now, Error{Errc::internal, std::string("the fetcher threw: ") + e.what()},
               secret);
  } catch (...) {
    s.complete(gen, now, Error{Errc::internal, "the fetcher threw"}, secret);
  }
}

void OAuth2TokenManager::authorize(HttpRequest request,
                                   std::function<void(Result<HttpRequest>)> done) {
  get_token(
      [request = std::move(request), done = std::move(done)](Result<std::string> token) mutable {
        if (!token.ok()) {
          if (done) done(token.error());
          return;
        }
        if (auto s = set_bearer_token(request, token.value()); !s) {
          if (done) done(s.error());
          return;
        }
        if (done) done(std::move(request));
      });
}

void OAuth2TokenManager::invalidate(std::string_view rejected_token) {
  std::lock_guard lock(state_->mu);
  if (state_->token && constant_time_equal(*state_->token, rejected_token)) state_->token.reset();
}

void OAuth2TokenManager::invalidate() {
  std::lock_guard lock(state_->mu);
  state_->token.reset();
}

OAuth2TokenManager::Stats OAuth2TokenManager::stats() const {
  std::lock_guard lock(state_->mu);
  return state_->stats;
}

std::string OAuth2TokenManager::describe() const {
  const OAuth2Config &c = state_->config;
  std::string out = "oauth2 client credentials (token url " + redact_url(c.token_url) +
                    ", client id " + c.client_id + ", secret '" + c.client_secret_name +
                    "', client auth " +
                    (c.client_auth == OAuth2ClientAuth::basic ? "basic" : "body");
  if (!c.scope.empty()) out += ", scope " + c.scope;
  if (!c.audience.empty()) out += ", audience " + c.audience;
  return out + ")";
}

}  // namespace ivr::net
