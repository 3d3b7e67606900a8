#include "net/auth_profiles.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <initializer_list>
#include <system_error>
#include <utility>
#include <vector>

#include "net/crypto.h"

namespace ivr::net {

namespace {

using json::Kind;

bool is_tchar(char c) {  // RFC 9110 token characters
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Reads the fields of one profile object, each error naming "<path>.<field>".
class Fields {
 public:
  Fields(const json::Value &object, std::string path) : object_(object), path_(std::move(path)) {}

  std::string at(std::string_view name) const { return path_ + "." + std::string(name); }
  Error bad(std::string_view name, std::string_view why) const {
    return Error{Errc::invalid_argument, at(name) + ": " + std::string(why)};
  }

  // Every member must be one of `allowed`, or "type", or "tls" (which every profile may
  // have).
  Status only(std::initializer_list<std::string_view> allowed) const {
    std::vector<std::string_view> known(allowed);
    known.push_back("tls");
    return members_of(known, "this type", "type");
  }
  // Every member must be one of `known`; `implicit` is allowed too but not listed.
  Status members_of(const std::vector<std::string_view> &known, std::string_view owner,
                    std::string_view implicit = {}) const {
    for (const json::Member &m : object_.members) {
      if (!implicit.empty() && m.key == implicit) continue;
      if (std::find(known.begin(), known.end(), m.key) != known.end()) continue;
      std::string shown =
          m.key.size() <= 64 && std::all_of(m.key.begin(), m.key.end(),
                                            [](char c) { return c > 0x20 && c < 0x7f; })
              ? m.key
              : "(a member)";
      std::string list;
      for (std::string_view a : known) list += (list.empty() ? "" : ", ") + std::string(a);
      return Error{Errc::invalid_argument,
                   at(shown) + ": unknown field (" + std::string(owner) + " has: " + list + ")"};
    }
    return {};
  }

  // A string member; `out` is left alone when it is absent and not required.
  Status text(std::string_view name, std::string &out, bool required) const {
    const json::Value *v = object_.find(name);
    if (!v) return required ? Status(bad(name, "missing")) : Status();
    if (!v->is(Kind::string)) return bad(name, "must be a string");
    if (required && v->string.empty()) return bad(name, "must not be empty");
    out = v->string;
    return {};
  }
  // A secret name (checked, never echoed).
  Status secret_name(std::string_view name, std::string &out, bool required) const {
    if (Status s = text(name, out, required); !s) return s;
    if (!out.empty() && !valid_secret_name(out))
      return bad(name,
                 "not a valid secret name (1-128 characters of A-Z a-z 0-9 _ . -; it names the "
                 "secret, it is not the secret)");
    return {};
  }
  // One of `choices`, or absent.
  Status choice(std::string_view name, std::initializer_list<std::string_view> choices,
                std::string &out) const {
    if (Status s = text(name, out, false); !s) return s;
    if (out.empty() && !object_.find(name)) return {};
    if (std::find(choices.begin(), choices.end(), out) != choices.end()) return {};
    std::string list;
    for (std::string_view c : choices) list += (list.empty() ? "" : " or ") + std::string(c);
    return bad(name, "must be " + list);
  }
  // A file path, or absent ("" is refused: leave the field out for the default).
  Status file_path(std::string_view name, std::string &out) const {
    if (Status s = text(name, out, false); !s) return s;
    if (object_.find(name) && out.empty()) return bad(name, "must not be empty");
    return {};
  }
  Status boolean(std::string_view name, bool &out) const {
    const json::Value *v = object_.find(name);
    if (!v) return {};
    if (!v->is(Kind::boolean)) return bad(name, "must be true or false");
    out = v->boolean;
    return {};
  }
  Status integer(std::string_view name, int64_t lo, int64_t hi, int64_t &out) const {
    const json::Value *v = object_.find(name);
    if (!v) return {};
    if (!v->is(Kind::number) || !v->integral || v->number < static_cast<double>(lo) ||
        v->number > static_cast<double>(hi))
      return bad(name,
                 "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    out = static_cast<int64_t>(v->number);
    return {};
  }
  const json::Value *find(std::string_view name) const { return object_.find(name); }

 private:
  const json::Value &object_;
  std::string path_;
};

#define IVR_TRY(expr)              \
  do {                             \
    if (Status s_ = (expr); !s_) { \
      return s_.error();           \
    }                              \
  } while (0)

Result<AuthProfileConfig> parse_basic(const Fields &f) {
  IVR_TRY(f.only({"username", "password_secret"}));
  BasicAuth a;
  IVR_TRY(f.text("username", a.username, true));
  if (a.username.find(':') != std::string::npos) return f.bad("username", "contains ':'");
  IVR_TRY(f.secret_name("password_secret", a.password_secret, true));
  return AuthProfileConfig{AuthConfig{a}};
}

Result<AuthProfileConfig> parse_bearer(const Fields &f) {
  IVR_TRY(f.only({"token_secret"}));
  BearerAuth a;
  IVR_TRY(f.secret_name("token_secret", a.token_secret, true));
  return AuthProfileConfig{AuthConfig{a}};
}

Result<AuthProfileConfig> parse_api_key(const Fields &f) {
  IVR_TRY(f.only({"key_secret", "placement", "name", "prefix"}));
  ApiKeyAuth a;
  IVR_TRY(f.secret_name("key_secret", a.key_secret, true));
  std::string placement;
  IVR_TRY(f.choice("placement", {"header", "query"}, placement));
  a.placement = placement == "query" ? ApiKeyPlacement::query : ApiKeyPlacement::header;
  IVR_TRY(f.text("name", a.name, false));
  if (a.placement == ApiKeyPlacement::header && !is_token(a.name))
    return f.bad("name", "not a valid header name");
  if (a.name.empty()) return f.bad("name", "must not be empty");
  if (f.find("prefix") && a.placement == ApiKeyPlacement::query)
    return f.bad("prefix", "only with placement \"header\"");
  IVR_TRY(f.text("prefix", a.prefix, false));
  return AuthProfileConfig{AuthConfig{a}};
}

Result<AuthProfileConfig> parse_hmac(const Fields &f) {
  IVR_TRY(f.only({"key_secret", "header", "payload"}));
  HmacAuth a;
  IVR_TRY(f.secret_name("key_secret", a.secret_name, true));
  IVR_TRY(f.text("header", a.options.header, false));
  if (!is_token(a.options.header)) return f.bad("header", "not a valid header name");
  std::string payload;
  IVR_TRY(f.choice("payload", {"request", "body"}, payload));
  a.options.payload = payload == "body" ? HmacPayload::body : HmacPayload::request;
  return AuthProfileConfig{AuthConfig{a}};
}

Result<AuthProfileConfig> parse_sigv4(const Fields &f) {
  IVR_TRY(f.only(
      {"access_key_id", "secret_access_key_secret", "session_token_secret", "region", "service"}));
  SigV4Auth a;
  IVR_TRY(f.text("access_key_id", a.access_key_id, true));
  IVR_TRY(f.secret_name("secret_access_key_secret", a.secret_access_key_secret, true));
  IVR_TRY(f.secret_name("session_token_secret", a.session_token_secret, false));
  std::string region, service;
  IVR_TRY(f.text("region", region, true));
  IVR_TRY(f.text("service", service, true));
  a.options = SigV4Options::for_service(std::move(region), std::move(service));
  return AuthProfileConfig{AuthConfig{a}};
}

Result<AuthProfileConfig> parse_oauth2(const Fields &f) {
  IVR_TRY(
      f.only({"token_url", "client_id", "client_secret_secret", "client_auth", "scope", "audience",
              "extra_params", "refresh_margin_s", "default_lifetime_s", "timeout_ms"}));
  OAuth2Config c;
  IVR_TRY(f.text("token_url", c.token_url, true));
  if (!split_url(c.token_url).ok()) return f.bad("token_url", "not an http:// or https:// URL");
  IVR_TRY(f.text("client_id", c.client_id, true));
  IVR_TRY(f.secret_name("client_secret_secret", c.client_secret_name, true));
  std::string client_auth;
  IVR_TRY(f.choice("client_auth", {"basic", "body"}, client_auth));
  c.client_auth = client_auth == "body" ? OAuth2ClientAuth::body : OAuth2ClientAuth::basic;
  IVR_TRY(f.text("scope", c.scope, false));
  IVR_TRY(f.text("audience", c.audience, false));
  if (const json::Value *extra = f.find("extra_params")) {
    if (!extra->is(Kind::object)) return f.bad("extra_params", "must be an object of strings");
    for (const json::Member &m : extra->members) {
      const std::string field = "extra_params." + m.key;
      if (!m.value.is(Kind::string)) return f.bad(field, "must be a string");
      if (m.key.empty()) return f.bad("extra_params", "a parameter name is empty");
      if (m.key == "grant_type" || m.key == "client_secret" || m.key == "client_id")
        return f.bad(field, "is set by the client credentials grant itself");
      c.extra_params.emplace_back(m.key, m.value.string);
    }
  }
  int64_t margin = c.refresh_margin.count(), lifetime = c.default_lifetime.count(),
          timeout = c.timeout_ms;
  IVR_TRY(f.integer("refresh_margin_s", 0, 86400, margin));
  IVR_TRY(f.integer("default_lifetime_s", 1, 86400, lifetime));
  IVR_TRY(f.integer("timeout_ms", 100, 60000, timeout));
  c.refresh_margin = std::chrono::seconds{margin};
  c.default_lifetime = std::chrono::seconds{lifetime};
  c.timeout_ms = static_cast<uint32_t>(timeout);
  return AuthProfileConfig{std::move(c)};
}

// The optional "tls" member of any profile.
Status parse_tls(const Fields &profile, const std::string &path, TlsOptions &out) {
  const json::Value *v = profile.find("tls");
  if (!v) return {};
  if (!v->is(Kind::object)) return profile.bad("tls", "must be an object");
  Fields f(*v, path + ".tls");
  IVR_TRY(f.members_of({"ca_file", "client_cert", "client_key", "verify"}, "tls"));
  IVR_TRY(f.file_path("ca_file", out.ca_file));
  IVR_TRY(f.file_path("client_cert", out.client_cert));
  IVR_TRY(f.file_path("client_key", out.client_key));
  IVR_TRY(f.boolean("verify", out.verify));
  if (!out.client_cert.empty() && out.client_key.empty())
    return f.bad("client_key", "missing (client_cert needs its private key)");
  if (out.client_cert.empty() && !out.client_key.empty())
    return f.bad("client_cert", "missing (client_key goes with a client certificate)");
  return {};
}

Result<AuthProfileConfig> parse_scheme(const Fields &f) {
  std::string type;
  IVR_TRY(f.text("type", type, true));
  if (type == "none") {
    IVR_TRY(f.only({}));
    return AuthProfileConfig{AuthConfig{NoAuth{}}};
  }
  if (type == "basic") return parse_basic(f);
  if (type == "bearer") return parse_bearer(f);
  if (type == "api_key") return parse_api_key(f);
  if (type == "hmac") return parse_hmac(f);
  if (type == "sigv4") return parse_sigv4(f);
  if (type == "oauth2") return parse_oauth2(f);
  return f.bad("type", "must be basic, bearer, api_key, hmac, sigv4, oauth2 or none");
}

Result<AuthProfileConfig> parse_profile(const json::Value &v, const std::string &path) {
  if (!v.is(Kind::object)) return Error{Errc::invalid_argument, path + ": must be an object"};
  Fields f(v, path);
  auto config = parse_scheme(f);
  if (!config.ok()) return config;
  IVR_TRY(parse_tls(f, path, config->tls));
  return config;
}

#undef IVR_TRY

// Answers every valid name with a stand-in value: validation runs the real code paths
// (apply_auth, build_token_request) without needing the secrets.
class PlaceholderSecrets final : public SecretStore {
 public:
  std::optional<std::string> find(std::string_view) const override { return "placeholder"; }
  std::string where(std::string_view) const override { return "validation"; }
};

bool equals_ci(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

const std::string *find_header_ci(const Headers &headers, std::string_view name) {
  for (const auto &[n, v] : headers)
    if (equals_ci(n, name)) return &v;
  return nullptr;
}

// A TLS file must be a readable file when the profile is set (curl reads it only when it
// connects, so a typo would otherwise surface only as failed lookups). Only the path is ever shown,
// never the content.
Status readable_file(std::string_view field, const std::string &path) {
  if (path.empty()) return {};
  auto cannot = [&](const std::string &why) {
    return Error{Errc::invalid_argument,
                 "tls." + std::string(field) + ": cannot read " + path + ": " + why};
  };
  if (path.find('\0') != std::string::npos) return cannot("contains a NUL byte");
  if (::access(path.c_str(), R_OK) != 0) return cannot(std::generic_category().message(errno));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return cannot(std::generic_category().message(errno));
  if (S_ISDIR(st.st_mode)) return cannot("is a directory");
  return {};
}

Status validate_tls(const TlsOptions &tls) {
  if (!tls.client_cert.empty() && tls.client_key.empty())
    return Error{Errc::invalid_argument,
                 "tls.client_key: missing (client_cert needs its private key)"};
  if (tls.client_cert.empty() && !tls.client_key.empty())
    return Error{Errc::invalid_argument,
                 "tls.client_cert: missing (client_key goes with a client certificate)"};
  if (Status s = readable_file("ca_file", tls.ca_file); !s) return s;
  if (Status s = readable_file("client_cert", tls.client_cert); !s) return s;
  return readable_file("client_key", tls.client_key);
}

// Verification off is allowed (a lab, a device with a self-signed certificate) but should
// never go unnoticed.
void warn_if_unverified(const LoggerPtr &logger, const std::string &name, const TlsOptions &tls) {
  if (!tls.verify)
    IVR_LOG(logger, warn, "auth", "auth profile '%s': TLS verification is off", name.c_str());
}

// "; tls ca /etc/ivr/ca.pem, client cert /etc/ivr/ivr.crt", or "" without TLS settings.
std::string describe_tls(const TlsOptions &tls) {
  if (!has_tls_settings(tls)) return "";
  std::string parts;
  auto add = [&](const std::string &part) { parts += (parts.empty() ? "" : ", ") + part; };
  if (!tls.ca_file.empty()) add("ca " + tls.ca_file);
  if (!tls.client_cert.empty()) add("client cert " + tls.client_cert);
  if (!tls.verify) add("verification off");
  return "; tls " + parts;
}

}  // namespace

bool valid_profile_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

Result<AuthProfileMap> parse_auth_profiles(const json::Value &profiles, std::string_view path) {
  const std::string base(path);
  if (!profiles.is(Kind::object))
    return Error{Errc::invalid_argument, base + ": must be an object of named auth profiles"};
  AuthProfileMap out;
  for (const json::Member &m : profiles.members) {
    if (!valid_profile_name(m.key)) {
      bool printable = m.key.size() <= 64 && std::all_of(m.key.begin(), m.key.end(), [](char c) {
                         return c >= 0x20 && c < 0x7f;
                       });
      return Error{Errc::invalid_argument,
                   base + ": " + (printable ? "\"" + m.key + "\"" : std::string("a name")) +
                       " is not a valid profile name (an identifier: letters, digits, '_', not "
                       "starting with a digit, at most 64)"};
    }
    auto profile = parse_profile(m.value, base + "." + m.key);
    if (!profile.ok()) return profile.error();
    out.emplace(m.key, std::move(profile).value());  // keys are unique (json::parse)
  }
  return out;
}

Result<AuthProfileMap> parse_auth_profiles(std::string_view json_text, std::string_view path) {
  auto doc = json::parse(json_text);
  if (!doc.ok()) return Error{Errc::parse, std::string(path) + ": " + doc.error().message};
  return parse_auth_profiles(doc->root(), path);
}

bool has_tls_settings(const TlsOptions &tls) {
  return !tls.ca_file.empty() || !tls.client_cert.empty() || !tls.client_key.empty() || !tls.verify;
}

Status validate_auth_profile(const AuthProfileConfig &config) {
  if (Status s = validate_tls(config.tls); !s) return s;
  if (const auto *scheme = std::get_if<AuthConfig>(&config)) {
    HttpRequest probe;
    probe.url = "https://validation.invalid/";
    return apply_auth(probe, *scheme, PlaceholderSecrets{}, std::chrono::system_clock::now());
  }
  const auto &c = std::get<OAuth2Config>(config);
  if (!valid_secret_name(c.client_secret_name))
    return Error{Errc::invalid_argument, "oauth2.client_secret_name: not a valid secret name"};
  if (c.refresh_margin.count() < 0)
    return Error{Errc::invalid_argument, "oauth2.refresh_margin: negative"};
  if (c.default_lifetime.count() <= 0)
    return Error{Errc::invalid_argument, "oauth2.default_lifetime: must be positive"};
  if (c.timeout_ms == 0)
    return Error{Errc::invalid_argument, "oauth2.timeout_ms: must be positive"};
  auto request = build_token_request(c, "placeholder");
  if (!request.ok()) return request.error();
  return {};
}

std::string describe_auth_profile(const AuthProfileConfig &config) {
  if (const auto *scheme = std::get_if<AuthConfig>(&config))
    return describe_auth(*scheme) + describe_tls(config.tls);
  const auto &c = std::get<OAuth2Config>(config);
  std::string out = "oauth2 client credentials (token url " + redact_url(c.token_url) +
                    ", client id " + c.client_id + ", secret '" + c.client_secret_name + "')";
  return out + describe_tls(config.tls);
}

// ---- AuthProfiles ----

struct AuthProfiles::Profile {
  std::string name;
  AuthProfileConfig config;
  std::string description;
  std::unique_ptr<OAuth2TokenManager> oauth2;  // OAuth2 profiles only
};

AuthProfiles::AuthProfiles(event_base *base, AuthProfilesOptions options)
    : options_(std::move(options)),
      token_client_(std::make_unique<HttpClient>(base, options_.token_client)),
      table_(std::make_shared<const Table>()) {
  if (!options_.secrets) options_.secrets = std::make_shared<EnvSecretStore>();
  if (!options_.clock) options_.clock = [] { return std::chrono::system_clock::now(); };
}

AuthProfiles::~AuthProfiles() = default;

Result<std::unique_ptr<AuthProfiles>> AuthProfiles::create(event_base *base,
                                                           AuthProfilesOptions options) {
  if (!base) return Error{Errc::invalid_argument, "base: no event loop"};
  return std::unique_ptr<AuthProfiles>(new AuthProfiles(base, std::move(options)));
}

Result<std::shared_ptr<const AuthProfiles::Profile>> AuthProfiles::make_profile(
    const std::string &name, AuthProfileConfig config) {
  if (!valid_profile_name(name))
    return Error{Errc::invalid_argument,
                 "auth profile name: not an identifier (letters, digits, '_', not starting "
                 "with a digit, at most 64)"};
  if (Status s = validate_auth_profile(config); !s)
    return Error{s.error().code, "auth profile '" + name + "': " + s.error().message};
  auto p = std::make_shared<Profile>();
  p->name = name;
  p->description = describe_auth_profile(config);
  if (const auto *c = std::get_if<OAuth2Config>(&config)) {
    // Token requests go through the profiles' own client, on the loop (get_token is only
    // called from authorize(), which runs there), with the profile's TLS options: the token
    // endpoint may sit behind the same private CA or ask for the same client certificate.
    HttpClient *client = token_client_.get();
    p->oauth2 = std::make_unique<OAuth2TokenManager>(
        *c, options_.secrets,
        [client, tls = config.tls](HttpRequest request, OAuth2TokenManager::ResponseCallback done) {
          if (has_tls_settings(tls)) request.tls = tls;
          client->start(std::move(request), std::move(done));
        });
  }
  p->config = std::move(config);
  return std::shared_ptr<const Profile>(std::move(p));
}

Status AuthProfiles::set(std::string name, AuthProfileConfig config) {
  auto p = make_profile(name, std::move(config));
  if (!p.ok()) return p.error();
  IVR_LOG(options_.logger, info, "auth", "auth profile '%s': %s", name.c_str(),
          p.value()->description.c_str());
  warn_if_unverified(options_.logger, name, p.value()->config.tls);
  std::shared_ptr<const Table> old;  // released outside the lock
  {
    std::lock_guard lock(mu_);
    auto next = std::make_shared<Table>(*table_);
    (*next)[name] = std::move(p).value();
    old = std::exchange(table_, std::move(next));
  }
  return {};
}

Status AuthProfiles::replace_all(AuthProfileMap profiles) {
  auto next = std::make_shared<Table>();
  for (auto &[name, config] : profiles) {
    auto p = make_profile(name, std::move(config));
    if (!p.ok()) return p.error();
    next->emplace(name, std::move(p).value());
  }
  const std::shared_ptr<const Table> configured = next;
  std::shared_ptr<const Table> old;
  {
    std::lock_guard lock(mu_);
    old = std::exchange(table_, std::move(next));
  }
  IVR_LOG(options_.logger, info, "auth", "%zu auth profile(s) configured", profiles.size());
  for (const auto &[name, p] : *configured)
    warn_if_unverified(options_.logger, name, p->config.tls);
  return {};
}

bool AuthProfiles::remove(std::string_view name) {
  std::shared_ptr<const Table> old;
  std::lock_guard lock(mu_);
  if (table_->find(name) == table_->end()) return false;
  auto next = std::make_shared<Table>(*table_);
  next->erase(next->find(name));
  old = std::exchange(table_, std::move(next));
  return true;
}

std::shared_ptr<const AuthProfiles::Profile> AuthProfiles::find(std::string_view name) const {
  std::shared_ptr<const Table> table;
  {
    std::lock_guard lock(mu_);
    table = table_;
  }
  auto it = table->find(name);
  return it == table->end() ? nullptr : it->second;
}

std::vector<std::string> AuthProfiles::names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto &entry : *table_) out.push_back(entry.first);
  return out;
}

std::optional<std::string> AuthProfiles::describe(std::string_view name) const {
  auto p = find(name);
  if (!p) return std::nullopt;
  return p->description;
}

std::optional<OAuth2TokenManager::Stats> AuthProfiles::oauth2_stats(std::string_view name) const {
  auto p = find(name);
  if (!p || !p->oauth2) return std::nullopt;
  return p->oauth2->stats();
}

bool AuthProfiles::has_profile(const std::string &profile) const {
  return find(profile) != nullptr;
}

void AuthProfiles::authorize(const std::string &profile, HttpRequest &request,
                             std::function<void(Status)> done) {
  auto p = find(profile);
  if (!p) {
    done(Error{Errc::not_found, "no such auth profile"});
    return;
  }
  // The profile's TLS options replace the request's as a whole (a mix of the two could pair
  // one server's CA with another's client certificate).
  if (has_tls_settings(p->config.tls)) request.tls = p->config.tls;
  if (const auto *scheme = std::get_if<AuthConfig>(&p->config)) {
    // The signing time is read now, for this attempt (a retry is signed again).
    Status s = apply_auth(request, *scheme, *options_.secrets, options_.clock());
    if (!s)
      IVR_LOG(options_.logger, warn, "auth", "auth profile '%s': %s", profile.c_str(),
              s.error().message.c_str());
    done(std::move(s));
    return;
  }
  // The callback holds nothing of the profile: the manager keeps it until its fetch ends.
  p->oauth2->get_token([&request, done = std::move(done), logger = options_.logger,
                        name = profile](Result<std::string> token) {
    if (!token.ok()) {
      IVR_LOG(logger, warn, "auth", "auth profile '%s': %s", name.c_str(),
              token.error().message.c_str());
      done(token.error());
      return;
    }
    done(set_bearer_token(request, token.value()));
  });
}

bool AuthProfiles::unauthorized(const std::string &profile, const HttpRequest &rejected) {
  auto p = find(profile);
  if (!p || !p->oauth2) return false;
  const std::string *auth = find_header_ci(rejected.headers, "Authorization");
  if (auth && auth->size() > 7 && equals_ci(std::string_view(*auth).substr(0, 7), "bearer ")) {
    p->oauth2->invalidate(std::string_view(*auth).substr(7));
  } else {
    p->oauth2->invalidate();
  }
  IVR_LOG(options_.logger, info, "auth", "auth profile '%s': token rejected (401); fetching anew",
          profile.c_str());
  return true;
}

}  // namespace ivr::net
