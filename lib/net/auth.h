// Authentication of outgoing HTTP requests: secrets by name, the schemes that change a request
// in place (basic, bearer, API key, HMAC signature, AWS SigV4) and redaction for logs. OAuth2
// client credentials, which needs a token fetch, is in oauth2.h.
//
// No error message or description made here contains a secret value: errors name the field and
// the secret's name, never its value.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "net/http_client.h"
#include "net/sigv4.h"

namespace ivr::net {

// ---------------------------------------------------------------------------------------------
// Secrets, referenced by name so configuration files never hold them.

// A secret name: 1-128 characters of A-Z a-z 0-9 _ . -
bool valid_secret_name(std::string_view name);

class SecretStore {
 public:
  virtual ~SecretStore() = default;
  // The value of the named secret, or nullopt when this store does not have it.
  virtual std::optional<std::string> find(std::string_view name) const = 0;
  // Where the store looks for name, for "not found" errors ("environment variable IVR_SECRET_X").
  virtual std::string where(std::string_view name) const = 0;
};

// Environment variables: name "twilio.token" is read from IVR_SECRET_TWILIO_TOKEN (the name
// uppercased, every character other than A-Z and 0-9 turned into '_').
class EnvSecretStore final : public SecretStore {
 public:
  explicit EnvSecretStore(std::string prefix = "IVR_SECRET_") : prefix_(std::move(prefix)) {}
  std::optional<std::string> find(std::string_view name) const override;
  std::string where(std::string_view name) const override;
  std::string variable_for(std::string_view name) const;

 private:
  std::string prefix_;
};

// An in-memory map (tests, hosts that fetch secrets from a vault). Fill it before use: set() is
// not synchronized with find().
class MapSecretStore final : public SecretStore {
 public:
  MapSecretStore() = default;
  MapSecretStore(std::initializer_list<std::pair<const std::string, std::string>> values)
      : values_(values) {}
  void set(std::string name, std::string value) { values_[std::move(name)] = std::move(value); }
  std::optional<std::string> find(std::string_view name) const override;
  std::string where(std::string_view name) const override;

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

// Asks each store in turn; the first that has the name wins.
class ChainSecretStore final : public SecretStore {
 public:
  explicit ChainSecretStore(std::vector<std::shared_ptr<const SecretStore>> stores)
      : stores_(std::move(stores)) {}
  std::optional<std::string> find(std::string_view name) const override;
  std::string where(std::string_view name) const override;

 private:
  std::vector<std::shared_ptr<const SecretStore>> stores_;
};

// The secret's value. Errors (Errc::invalid_argument for a bad name, Errc::not_found for a
// missing or empty secret) read "<field>: secret '<name>' ..." and say where it was looked for.
Result<std::string> resolve_secret(const SecretStore &store, std::string_view name,
                                   std::string_view field);

// ---------------------------------------------------------------------------------------------
// Request helpers.

// Replaces every header named name (any case) with one name: value.
void set_header(Headers &headers, std::string_view name, std::string value);
// Sets one query parameter of url: earlier parameters with that name are removed, then
// name=value is appended (both percent-encoded as RFC 3986 unreserved) after '?' or '&',
// before any fragment. Errors name the reason, never the URL (it may already hold a key).
Status set_query_param(std::string &url, std::string_view name, std::string_view value);

// ---------------------------------------------------------------------------------------------
// Schemes. Each holds configuration and secret names, never secret values.

struct NoAuth {};

// Authorization: Basic base64(username ":" password) (RFC 7617, UTF-8).
struct BasicAuth {
  std::string username;  // may not contain ':'
  std::string password_secret;
};

// Authorization: Bearer <token> (RFC 6750).
struct BearerAuth {
  std::string token_secret;
};

enum class ApiKeyPlacement { header, query };

// An API key in a header (name: prefix + key) or in the query string (name=key).
struct ApiKeyAuth {
  std::string key_secret;
  ApiKeyPlacement placement = ApiKeyPlacement::header;
  std::string name = "X-Api-Key";  // header name or query parameter name
  std::string prefix;              // header only, e.g. "ApiKey " or "Token "
};

// What an HMAC signature covers, after "<t>.":
enum class HmacPayload {
  request,  // METHOD "\n" target "\n" body   (target: path?query as on the request line)
  body,     // body only (webhook style)
};

struct HmacOptions {
  std::string header = "X-Signature";
  HmacPayload payload = HmacPayload::request;
};

// header: "t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, signed string)>".
struct HmacAuth {
  std::string secret_name;
  HmacOptions options;
};

struct SigV4Auth {
  std::string access_key_id;
  std::string secret_access_key_secret;
  std::string session_token_secret;  // "" = long-term credentials
  SigV4Options options;              // region, service, S3 rules (SigV4Options::for_service)
};

using AuthConfig = std::variant<NoAuth, BasicAuth, BearerAuth, ApiKeyAuth, HmacAuth, SigV4Auth>;

// Applies the scheme to request (headers, or the URL for a query API key), reading secrets from
// store. now is the signing time of HMAC and SigV4 (never read from a clock here). On error the
// request may be partly changed; errors name the scheme and field ("auth.basic.username: ...").
Status apply_auth(HttpRequest &request, const AuthConfig &config, const SecretStore &store,
                  std::chrono::system_clock::time_point now);

// One line for logs and diagnostics, naming secrets by name: "basic (username alice, password
// from secret 'pbx.password')".
std::string describe_auth(const AuthConfig &config);

// The same schemes over secret values, for callers that hold them.
Status set_basic_auth(HttpRequest &request, std::string_view username, std::string_view password);
Status set_bearer_token(HttpRequest &request, std::string_view token);
Status set_api_key(HttpRequest &request, const ApiKeyAuth &config, std::string_view key);

// HMAC request signing. The signed string is "<t>." followed by the payload chosen in options;
// target is path?query of request.url exactly as written ("/" when the path is empty).
std::string hmac_signed_string(const HttpRequest &request, const HmacOptions &options,
                               int64_t unix_seconds);
Result<std::string> hmac_signature_header(const HttpRequest &request, std::string_view secret,
                                          const HmacOptions &options,
                                          std::chrono::system_clock::time_point now);
Status sign_hmac(HttpRequest &request, std::string_view secret, const HmacOptions &options,
                 std::chrono::system_clock::time_point now);
// The receiver's side: checks a header value against the request that carried it. Accepts any
// of several v1= entries (key rotation) and a timestamp within tolerance of now, either way.
// Errors (Errc::invalid_argument) say what failed, never the expected signature.
Status verify_hmac(const HttpRequest &request, std::string_view header_value,
                   std::string_view secret, const HmacOptions &options,
                   std::chrono::system_clock::time_point now,
                   std::chrono::seconds tolerance = std::chrono::seconds(300));

// ---------------------------------------------------------------------------------------------
// Redaction for logs.

inline constexpr std::string_view kRedacted = "[redacted]";

// Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, X-Amz-Security-Token and
// X-Signature, plus extra_names (any case).
bool is_sensitive_header(std::string_view name, std::span<const std::string> extra_names = {});
// A copy with sensitive values replaced by "[redacted]"; (Proxy-)Authorization keeps its scheme
// word ("Bearer [redacted]").
Headers redact_headers(const Headers &headers, std::span<const std::string> extra_names = {});
// The same, adding the header names the scheme configures (API key header, HMAC header).
Headers redact_headers(const Headers &headers, const AuthConfig &config);
// A copy of url with the values of the named query parameters and any userinfo password
// replaced by "[redacted]". Text that is not an http(s) URL comes back as "[redacted]".
std::string redact_url(std::string_view url, std::span<const std::string> query_params = {});
std::string redact_url(std::string_view url, const AuthConfig &config);
// Replaces every occurrence of secret in text (last line of defence for messages that quote
// outside input, such as an error_description from a server).
std::string scrub_secret(std::string text, std::string_view secret);

}  // namespace ivr::net
