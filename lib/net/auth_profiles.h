// AuthProfiles: the engine's RequestAuthorizer. Named profiles, each one scheme from auth.h
// (basic, bearer, API key, HMAC, SigV4) or OAuth2 client credentials (a token manager whose
// token requests go through an HttpClient on the engine loop), with secrets resolved by name
// from a SecretStore at every use. Plus the parser of the JSON that configures them, the
// shape the daemon and the C ABI use:
//
//   {"crm": {"type": "bearer", "token_secret": "crm.token"},
//    "idp": {"type": "oauth2", "token_url": "https://idp.example/token",
//            "client_id": "ivr", "client_secret_secret": "idp.secret",
//            "tls": {"ca_file": "/etc/ivr/idp-ca.pem"}}}
//
// Any profile may carry "tls" (a private CA, a client certificate for mutual TLS); it is
// applied to every request the profile authorizes and to OAuth2 token requests.
// docs/net.md ("Auth profiles") lists every field.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/json.h"
#include "common/log.h"
#include "common/result.h"
#include "net/auth.h"
#include "net/http_client.h"
#include "net/http_service.h"
#include "net/oauth2.h"

struct event_base;

namespace ivr::net {

// One profile: a scheme applied in place, or OAuth2 client credentials, plus the TLS
// options of its requests. Derived from the variant so std::get, std::get_if and std::visit
// work on it as before.
struct AuthProfileConfig : std::variant<AuthConfig, OAuth2Config> {
  using variant::variant;
  // Replaces a request's own TLS options when has_tls_settings(tls) (the profile knows the
  // server it authenticates to); with the defaults the request's options are left alone.
  TlsOptions tls;
};
using AuthProfileMap = std::map<std::string, AuthProfileConfig, std::less<>>;

// A profile name is an identifier: 1-64 characters of A-Z a-z 0-9 _, not starting with a
// digit (the same rule as a flow's http "auth" field).
bool valid_profile_name(std::string_view name);

// Reads {"<name>": {"type": ..., fields...}, ...}. Errors (Errc::parse for bad JSON,
// Errc::invalid_argument otherwise) name the field path under `path`:
// "auth.crm.token_secret: missing", "auth.aws.region: must be a string". Secret names are
// checked but never echoed (a value pasted where a name belongs must not reach a log).
Result<AuthProfileMap> parse_auth_profiles(std::string_view json_text,
                                           std::string_view path = "auth");
Result<AuthProfileMap> parse_auth_profiles(const json::Value &profiles,
                                           std::string_view path = "auth");

// Whether any TLS option differs from the defaults (a CA, a client certificate, verify off).
bool has_tls_settings(const TlsOptions &tls);

// Checks a profile without its secrets' values (field rules of auth.h and oauth2.h), and
// that its TLS files exist and are readable (a file-system check, so call it off the loop
// when they may sit on slow storage). Errors read "<field>: <reason>":
// "tls.ca_file: cannot read /x/ca.pem: No such file or directory".
Status validate_auth_profile(const AuthProfileConfig &config);

// One line for logs, naming secrets by name only and TLS files by path (never contents).
std::string describe_auth_profile(const AuthProfileConfig &config);

struct AuthProfilesOptions {
  // Where secret names are looked up; null: environment variables IVR_SECRET_<NAME>.
  std::shared_ptr<const SecretStore> secrets;
  HttpClientOptions token_client;  // the client OAuth2 token requests go through
  // The signing time of HMAC and SigV4, read when a request is authorized; null: the
  // system clock.
  std::function<std::chrono::system_clock::time_point()> clock;
  LoggerPtr logger;  // "auth" lines: profile names, token fetch failures; never a secret
};

class AuthProfiles final : public RequestAuthorizer {
 public:
  // base: the engine loop's event_base; it must outlive the profiles.
  static Result<std::unique_ptr<AuthProfiles>> create(event_base *base,
                                                      AuthProfilesOptions options = {});
  // Token fetches in flight are dropped: the requests waiting for them are never
  // authorized (an HttpService using the profiles must be destroyed first).
  ~AuthProfiles() override;
  AuthProfiles(const AuthProfiles &) = delete;
  AuthProfiles &operator=(const AuthProfiles &) = delete;

  // Configuration, callable from any thread. A profile is replaced as a whole: requests
  // already being authorized finish with the profile they started with, later ones use the
  // new one (an OAuth2 profile starts with no token). Errors name the profile and the field.
  // A profile with TLS verification off is logged as a warning.
  Status set(std::string name, AuthProfileConfig config);
  // Replaces every profile at once, or (on any error) none.
  Status replace_all(AuthProfileMap profiles);
  bool remove(std::string_view name);
  std::vector<std::string> names() const;
  std::optional<std::string> describe(std::string_view name) const;
  // Token statistics of an OAuth2 profile (nullopt for other schemes and unknown names).
  std::optional<OAuth2TokenManager::Stats> oauth2_stats(std::string_view name) const;

  // RequestAuthorizer, on the loop thread. authorize() first sets request.tls to the
  // profile's TLS options when it has any (see AuthProfileConfig::tls), then applies the
  // scheme.
  bool has_profile(const std::string &profile) const override;
  void authorize(const std::string &profile, HttpRequest &request,
                 std::function<void(Status)> done) override;
  // For an OAuth2 profile: forgets the token `rejected` carried (if still the cached one) and
  // answers true; other schemes answer false (their credentials would not change).
  bool unauthorized(const std::string &profile, const HttpRequest &rejected) override;

 private:
  struct Profile;
  using Table = std::map<std::string, std::shared_ptr<const Profile>, std::less<>>;

  AuthProfiles(event_base *base, AuthProfilesOptions options);
  Result<std::shared_ptr<const Profile>> make_profile(const std::string &name,
                                                      AuthProfileConfig config);
  std::shared_ptr<const Profile> find(std::string_view name) const;

  AuthProfilesOptions options_;
  std::unique_ptr<HttpClient> token_client_;  // declared before table_: outlives the managers
  mutable std::mutex mu_;
  std::shared_ptr<const Table> table_;  // copy on write, guarded by mu_
};

}  // namespace ivr::net
