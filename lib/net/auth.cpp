#include "net/auth.h"

#include <algorithm>
#include <cstdlib>
#include <type_traits>

#include "common/text.h"
#include "net/crypto.h"

namespace ivr::net {
namespace {

using text::ascii_lower;
using text::iequals;

bool is_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// RFC 9110 token characters: what a header name may be made of.
bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!is_alnum(c) && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos)
      return false;
  return true;
}

bool has_control(std::string_view value) {
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t') return true;
    if (u == 0x7F) return true;
  }
  return false;
}

int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

Error with_prefix(std::string_view prefix, const Error &e) {
  return Error{e.code, std::string(prefix) + e.message};
}

constexpr std::string_view kDefaultSensitiveHeaders[] = {
    "authorization", "proxy-authorization",  "cookie",     "set-cookie",
    "x-api-key",     "x-amz-security-token", "x-signature"};

// Query parameters that carry credentials in common APIs.
constexpr std::string_view kDefaultSensitiveParams[] = {
    "access_token", "api_key", "apikey",    "client_secret",        "key",
    "password",     "token",   "signature", "x-amz-security-token", "x-amz-signature"};

std::vector<std::string> extra_header_names(const AuthConfig &config) {
  std::vector<std::string> names;
  if (const auto *k = std::get_if<ApiKeyAuth>(&config);
      k && k->placement == ApiKeyPlacement::header)
    names.push_back(k->name);
  if (const auto *h = std::get_if<HmacAuth>(&config)) names.push_back(h->options.header);
  return names;
}

}  // namespace

// ---- secrets ----

bool valid_secret_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name)
    if (!is_alnum(c) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

std::string EnvSecretStore::variable_for(std::string_view name) const {
  std::string var = prefix_;
  for (char c : name) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    var += is_alnum(c) ? c : '_';
  }
  return var;
}

std::optional<std::string> EnvSecretStore::find(std::string_view name) const {
  const char *v = std::getenv(variable_for(name).c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

std::string EnvSecretStore::where(std::string_view name) const {
  return "environment variable " + variable_for(name);
}

std::optional<std::string> MapSecretStore::find(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string MapSecretStore::where(std::string_view) const {
  return "the secret map";
}

std::optional<std::string> ChainSecretStore::find(std::string_view name) const {
  for (const auto &s : stores_)
    if (s)
      if (auto v = s->find(name)) return v;
  return std::nullopt;
}

std::string ChainSecretStore::where(std::string_view name) const {
  std::string out;
  for (const auto &s : stores_) {
    if (!s) continue;
    if (!out.empty()) out += ", then ";
    out += s->where(name);
  }
  return out.empty() ? "no secret store" : out;
}

Result<std::string> resolve_secret(const SecretStore &store, std::string_view name,
                                   std::string_view field) {
  // An invalid name is often a value pasted where a name belongs: do not echo it.
  if (!valid_secret_name(name))
    return Error{
        Errc::invalid_argument,
        std::string(field) + ": not a valid secret name (1-128 characters of A-Z a-z 0-9 _ . -)"};
  auto value = store.find(name);
  if (!value)
    return Error{Errc::not_found, std::string(field) + ": secret '" + std::string(name) +
                                      "' not found (looked in " + store.where(name) + ")"};
  if (value->empty())
    return Error{Errc::not_found, std::string(field) + ": secret '" + std::string(name) +
                                      "' is empty (" + store.where(name) + ")"};
  return std::move(*value);
}

// ---- request helpers ----

void set_header(Headers &headers, std::string_view name, std::string value) {
  std::erase_if(headers, [&](const auto &h) { return iequals(h.first, name); });
  headers.emplace_back(std::string(name), std::move(value));
}

Status set_query_param(std::string &url, std::string_view name, std::string_view value) {
  if (name.empty()) return Status{Errc::invalid_argument, "query parameter name is empty"};
  auto parts = split_url(url);
  if (!parts.ok()) return parts.error();
  std::string_view text = url;
  // Everything before the query (or the fragment when there is no query).
  size_t head_end = text.size();
  if (parts->has_query)
    head_end = static_cast<size_t>(parts->query.data() - text.data()) - 1;
  else if (size_t hash = text.find('#'); hash != std::string_view::npos)
    head_end = hash;
  std::string out(text.substr(0, head_end));
  std::string query;
  std::string_view q = parts->query;
  size_t start = 0;
  while (!q.empty() && start <= q.size()) {
    size_t end = q.find('&', start);
    if (end == std::string_view::npos) end = q.size();
    std::string_view item = q.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    std::string_view raw_name = item.substr(0, item.find('='));
    auto decoded = percent_decode(raw_name);
    if (decoded.ok() ? decoded.value() == name : raw_name == name) continue;
    if (!query.empty()) query += '&';
    query += item;
  }
  if (!query.empty()) query += '&';
  query += percent_encode(name);
  query += '=';
  query += percent_encode(value);
  out += '?';
  out += query;
  if (size_t hash = text.find('#'); hash != std::string_view::npos) out += text.substr(hash);
  url = std::move(out);
  return {};
}

// ---- schemes over values ----

Status set_basic_auth(HttpRequest &request, std::string_view username, std::string_view password) {
  if (username.find(':') != std::string_view::npos)
    return Status{Errc::invalid_argument, "auth.basic.username: contains ':' (RFC 7617)"};
  std::string credentials(username);
  credentials += ':';
  credentials += password;
  set_header(request.headers, "Authorization", "Basic " + base64_encode(credentials));
  return {};
}

Status set_bearer_token(HttpRequest &request, std::string_view token) {
  if (token.empty()) return Status{Errc::invalid_argument, "auth.bearer.token: empty"};
  for (char c : token)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F)
      return Status{Errc::invalid_argument,
                    "auth.bearer.token: contains a space or a control character"};
  set_header(request.headers, "Authorization", "Bearer " + std::string(token));
  return {};
}

Status set_api_key(HttpRequest &request, const ApiKeyAuth &config, std::string_view key) {
  if (key.empty()) return Status{Errc::invalid_argument, "auth.api_key.key: empty"};
  if (config.placement == ApiKeyPlacement::query) {
    if (config.name.empty())
      return Status{Errc::invalid_argument, "auth.api_key.name: empty query parameter name"};
    if (auto s = set_query_param(request.url, config.name, key); !s)
      return with_prefix("auth.api_key: ", s.error());
    return {};
  }
  if (!valid_header_name(config.name))
    return Status{Errc::invalid_argument, "auth.api_key.name: not a valid header name"};
  if (has_control(key) || has_control(config.prefix))
    return Status{Errc::invalid_argument,
                  "auth.api_key: the key or its prefix contains a control character"};
  set_header(request.headers, config.name, config.prefix + std::string(key));
  return {};
}

// ---- HMAC ----

std::string hmac_signed_string(const HttpRequest &request, const HmacOptions &options,
                               int64_t unix_seconds) {
  std::string out = std::to_string(unix_seconds);
  out += '.';
  if (options.payload == HmacPayload::request) {
    auto parts = split_url(request.url);
    out += request.method;
    out += '\n';
    // An unparsable URL signs as written; the client will refuse to send it anyway.
    out += parts.ok() ? parts->target() : request.url;
    out += '\n';
  }
  out += request.body;
  return out;
}

Result<std::string> hmac_signature_header(const HttpRequest &request, std::string_view secret,
                                          const HmacOptions &options,
                                          std::chrono::system_clock::time_point now) {
  if (secret.empty()) return Error{Errc::invalid_argument, "auth.hmac.secret: empty"};
  if (!valid_header_name(options.header))
    return Error{Errc::invalid_argument, "auth.hmac.header: not a valid header name"};
  if (options.payload == HmacPayload::request) {
    auto parts = split_url(request.url);
    if (!parts.ok()) return with_prefix("auth.hmac: ", parts.error());
  }
  int64_t t = unix_seconds(now);
  return "t=" + std::to_string(t) +
         ",v1=" + hmac_sha256_hex(secret, hmac_signed_string(request, options, t));
}

Status sign_hmac(HttpRequest &request, std::string_view secret, const HmacOptions &options,
                 std::chrono::system_clock::time_point now) {
  auto value = hmac_signature_header(request, secret, options, now);
  if (!value.ok()) return value.error();
  set_header(request.headers, options.header, std::move(value).value());
  return {};
}

Status verify_hmac(const HttpRequest &request, std::string_view header_value,
                   std::string_view secret, const HmacOptions &options,
                   std::chrono::system_clock::time_point now, std::chrono::seconds tolerance) {
  if (secret.empty()) return Status{Errc::invalid_argument, "hmac: the secret is empty"};
  std::optional<int64_t> t;
  std::vector<std::string> candidates;
  size_t start = 0;
  while (start <= header_value.size()) {
    size_t end = header_value.find(',', start);
    if (end == std::string_view::npos) end = header_value.size();
    std::string_view item = header_value.substr(start, end - start);
    start = end + 1;
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "t") {
      if (value.empty() || value.size() > 12 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return Status{Errc::invalid_argument, "hmac: t= is not a unix time in seconds"};
      t = std::stoll(std::string(value));
    } else if (key == "v1") {
      std::string lowered(value);
      for (char &c : lowered) c = ascii_lower(c);
      candidates.push_back(std::move(lowered));
    }
  }
  if (!t) return Status{Errc::invalid_argument, "hmac: no t= timestamp in the signature header"};
  if (candidates.empty())
    return Status{Errc::invalid_argument, "hmac: no v1= signature in the signature header"};
  int64_t skew = unix_seconds(now) - *t;
  if (skew < 0) skew = -skew;
  if (skew > tolerance.count())
    return Status{Errc::invalid_argument, "hmac: timestamp is " + std::to_string(skew) +
                                              " s away from now (tolerance " +
                                              std::to_string(tolerance.count()) + " s)"};
  std::string expected = hmac_sha256_hex(secret, hmac_signed_string(request, options, *t));
  bool match = false;
  for (const auto &c : candidates) match |= constant_time_equal(c, expected);
  if (!match) return Status{Errc::invalid_argument, "hmac: signature does not match"};
  return {};
}

// ---- configured schemes ----

namespace {

Status apply_resolved(HttpRequest &request, const AuthConfig &config, const SecretStore &store,
                      std::chrono::system_clock::time_point now,
                      std::vector<std::string> &resolved) {
  auto secret = [&](std::string_view name, std::string_view field) {
    auto v = resolve_secret(store, name, field);
    if (v.ok()) resolved.push_back(v.value());
    return v;
  };
  return std::visit(
      [&](const auto &c) -> Status {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, NoAuth>) {
          return {};
        } else if constexpr (std::is_same_v<T, BasicAuth>) {
          auto pw = secret(c.password_secret, "auth.basic.password_secret");
          if (!pw.ok()) return pw.error();
          return set_basic_auth(request, c.username, pw.value());
        } else if constexpr (std::is_same_v<T, BearerAuth>) {
          auto token = secret(c.token_secret, "auth.bearer.token_secret");
          if (!token.ok()) return token.error();
          return set_bearer_token(request, token.value());
        } else if constexpr (std::is_same_v<T, ApiKeyAuth>) {
          auto key = secret(c.key_secret, "auth.api_key.key_secret");
          if (!key.ok()) return key.error();
          return set_api_key(request, c, key.value());
        } else if constexpr (std::is_same_v<T, HmacAuth>) {
          auto key = secret(c.secret_name, "auth.hmac.secret_name");
          if (!key.ok()) return key.error();
          return sign_hmac(request, key.value(), c.options, now);
        } else {
          static_assert(std::is_same_v<T, SigV4Auth>);
          SigV4Credentials creds;
          creds.access_key_id = c.access_key_id;
          auto sk = secret(c.secret_access_key_secret, "auth.sigv4.secret_access_key_secret");
          if (!sk.ok()) return sk.error();
          creds.secret_access_key = std::move(sk).value();
          if (!c.session_token_secret.empty()) {
            auto st = secret(c.session_token_secret, "auth.sigv4.session_token_secret");
            if (!st.ok()) return st.error();
            creds.session_token = std::move(st).value();
          }
          auto s = sign_sigv4(request, creds, c.options, now);
          if (!s) return with_prefix("auth.", s.error());
          return {};
        }
      },
      config);
}

}  // namespace

Status apply_auth(HttpRequest &request, const AuthConfig &config, const SecretStore &store,
                  std::chrono::system_clock::time_point now) {
  std::vector<std::string> resolved;
  Status s = apply_resolved(request, config, store, now, resolved);
  if (s) return s;
  // Messages never quote secrets; scrubbing makes sure of it even for a username that happens to
  // hold the password.
  Error e = s.error();
  for (const auto &v : resolved) e.message = scrub_secret(std::move(e.message), v);
  return e;
}

std::string describe_auth(const AuthConfig &config) {
  return std::visit(
      [](const auto &c) -> std::string {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, NoAuth>) {
          return "none";
        } else if constexpr (std::is_same_v<T, BasicAuth>) {
          return "basic (username " + c.username + ", password from secret '" + c.password_secret +
                 "')";
        } else if constexpr (std::is_same_v<T, BearerAuth>) {
          return "bearer (token from secret '" + c.token_secret + "')";
        } else if constexpr (std::is_same_v<T, ApiKeyAuth>) {
          return std::string("api key in ") +
                 (c.placement == ApiKeyPlacement::header ? "header " : "query parameter ") +
                 c.name + " (from secret '" + c.key_secret + "')";
        } else if constexpr (std::is_same_v<T, HmacAuth>) {
          return "hmac-sha256 in header " + c.options.header + " over " +
                 (c.options.payload == HmacPayload::request ? "the request" : "the body") +
                 " (secret '" + c.secret_name + "')";
        } else {
          return "aws sigv4 (access key " + c.access_key_id + ", region " + c.options.region +
                 ", service " + c.options.service + ", secret key from secret '" +
                 c.secret_access_key_secret + "'" +
                 (c.session_token_secret.empty()
                      ? std::string()
                      : ", session token from secret '" + c.session_token_secret + "'") +
                 ")";
        }
      },
      config);
}

// ---- redaction ----

bool is_sensitive_header(std::string_view name, std::span<const std::string> extra_names) {
  for (auto n : kDefaultSensitiveHeaders)
    if (iequals(n, name)) return true;
  for (const auto &n : extra_names)
    if (iequals(n, name)) return true;
  return false;
}

Headers redact_headers(const Headers &headers, std::span<const std::string> extra_names) {
  Headers out;
  out.reserve(headers.size());
  for (const auto &[name, value] : headers) {
    if (!is_sensitive_header(name, extra_names)) {
      out.emplace_back(name, value);
      continue;
    }
    std::string redacted(kRedacted);
    if (iequals(name, "authorization") || iequals(name, "proxy-authorization")) {
      size_t space = value.find(' ');
      if (space != std::string::npos && space > 0)
        redacted = value.substr(0, space) + " " + std::string(kRedacted);
    }
    out.emplace_back(name, std::move(redacted));
  }
  return out;
}

Headers redact_headers(const Headers &headers, const AuthConfig &config) {
  auto extra = extra_header_names(config);
  return redact_headers(headers, extra);
}

std::string redact_url(std::string_view url, std::span<const std::string> query_params) {
  auto parts = split_url(url);
  if (!parts.ok()) return std::string(kRedacted);
  std::string out(parts->scheme);
  out += "://";
  std::string_view authority = parts->authority;
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    size_t colon = userinfo.find(':');
    out += userinfo.substr(0, colon);
    if (colon != std::string_view::npos) {
      out += ':';
      out += kRedacted;
    }
    out += authority.substr(at);
  } else {
    out += authority;
  }
  out += parts->path;
  auto sensitive = [&](std::string_view raw_name) {
    auto decoded = percent_decode(raw_name);
    std::string_view name = decoded.ok() ? std::string_view(decoded.value()) : raw_name;
    for (auto n : kDefaultSensitiveParams)
      if (iequals(n, name)) return true;
    for (const auto &n : query_params)
      if (iequals(n, name)) return true;
    return false;
  };
  if (parts->has_query) {
    out += '?';
    std::string_view q = parts->query;
    size_t start = 0;
    bool first = true;
    while (start <= q.size()) {
      size_t end = q.find('&', start);
      if (end == std::string_view::npos) end = q.size();
      std::string_view item = q.substr(start, end - start);
      start = end + 1;
      if (!first) out += '&';
      first = false;
      size_t eq = item.find('=');
      if (eq != std::string_view::npos && sensitive(item.substr(0, eq))) {
        out += item.substr(0, eq + 1);
        out += kRedacted;
      } else {
        out += item;
      }
    }
  }
  if (!parts->fragment.empty()) {
    out += '#';
    out += parts->fragment;
  }
  return out;
}

std::string redact_url(std::string_view url, const AuthConfig &config) {
  std::vector<std::string> params;
  if (const auto *k = std::get_if<ApiKeyAuth>(&config); k && k->placement == ApiKeyPlacement::query)
    params.push_back(k->name);
  return redact_url(url, params);
}

std::string scrub_secret(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  size_t pos = 0;
  while ((pos = text.find(secret, pos)) != std::string::npos) {
    text.replace(pos, secret.size(), kRedacted);
    pos += kRedacted.size();
  }
  return text;
}

}  // namespace ivr::net
