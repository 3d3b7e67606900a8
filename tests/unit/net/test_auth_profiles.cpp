// AuthProfiles: the JSON configuration parser, profile management, and every scheme applied
// to real requests through HttpService against the test server (/echo shows the headers it
// received; /oauth/token and /protected run OAuth2 client credentials end to end).
#include <doctest/doctest.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "common/json.h"
#include "net/auth_profiles.h"
#include "net/crypto.h"
#include "net/http_service.h"
#include "test_server.h"

using namespace ivr::net;
using ivr::Errc;
using ivr::Status;
using ivr::test::TestHttpServer;
using ivr::test::TestLoop;
using namespace std::chrono_literals;

namespace {

TestHttpServer &server() {
  static TestHttpServer shared;
  return shared;
}

// Serves HTTPS (test CA) and HTTPS that requires a client certificate, besides HTTP.
TestHttpServer &tls_server() {
  static TestHttpServer shared({.tls = true, .mtls = true});
  return shared;
}

const std::string kClientSecret = "ivr-test-secret";  // what the test server expects

// A temporary directory of small files, removed at the end of the test.
class TempFiles {
 public:
  TempFiles() {
    char dir_template[] = "/tmp/ivr-auth-tls-XXXXXX";
    if (!mkdtemp(dir_template)) throw std::runtime_error("mkdtemp failed");
    dir_ = dir_template;
  }
  ~TempFiles() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TempFiles(const TempFiles &) = delete;
  TempFiles &operator=(const TempFiles &) = delete;
  std::string write(const std::string &name, const std::string &content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }
  const std::string &dir() const { return dir_; }

 private:
  std::string dir_;
};

// Log lines at warn and above.
struct CapturedLog {
  std::mutex mu;
  std::vector<std::string> lines;
  ivr::LoggerPtr logger() {
    return std::make_shared<ivr::Logger>(ivr::LogLevel::warn,
                                         [this](ivr::LogLevel, const char *, const char *m) {
                                           std::lock_guard lock(mu);
                                           lines.emplace_back(m);
                                         });
  }
  size_t count(const std::string &line) {
    std::lock_guard lock(mu);
    return static_cast<size_t>(std::count(lines.begin(), lines.end(), line));
  }
};

std::shared_ptr<MapSecretStore> test_secrets() {
  auto s = std::make_shared<MapSecretStore>();
  s->set("crm.password", "pa:ss word");
  s->set("crm.token", "bearer-token-123");
  s->set("crm.key", "api-key-456");
  s->set("hook.key", "hmac-key-789");
  s->set("aws.secret", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
  s->set("aws.session", "session-token-abc");
  s->set("idp.secret", kClientSecret);
  s->set("idp.wrong", "not-the-secret-xyz");
  return s;
}

AuthProfilesOptions options_with(std::shared_ptr<const ivr::net::SecretStore> secrets) {
  AuthProfilesOptions o;
  o.secrets = std::move(secrets);
  return o;
}

AuthProfileMap parse_ok(const std::string &text) {
  auto parsed = parse_auth_profiles(text);
  REQUIRE_MESSAGE(parsed.ok(), parsed.error().message);
  return std::move(parsed).value();
}

std::string parse_error(const std::string &text) {
  auto parsed = parse_auth_profiles(text);
  REQUIRE_FALSE(parsed.ok());
  return parsed.error().message;
}

// Profiles plus a service that uses them, on one loop.
struct Rig {
  TestLoop loop;
  std::unique_ptr<AuthProfiles> profiles;
  std::unique_ptr<HttpService> service;  // destroyed before the profiles
  int clock_reads = 0;
  std::chrono::system_clock::time_point signing_time =
      std::chrono::system_clock::time_point{} + std::chrono::seconds{1700000000};

  explicit Rig(std::shared_ptr<const ivr::net::SecretStore> secrets = test_secrets(),
               bool fixed_clock = false) {
    AuthProfilesOptions o;
    o.secrets = std::move(secrets);
    if (fixed_clock)
      o.clock = [this] {
        ++clock_reads;
        return signing_time;
      };
    auto made = AuthProfiles::create(loop.base(), o);
    REQUIRE(made.ok());
    profiles = std::move(made).value();
    HttpServiceOptions so;
    so.seed = 7;
    so.retry.base_delay = 10ms;
    so.retry.max_delay = 50ms;
    auto svc = HttpService::create(loop.base(), so, profiles.get());
    REQUIRE(svc.ok());
    service = std::move(svc).value();
  }
  ~Rig() { service.reset(); }

  void configure(const std::string &json) { REQUIRE(profiles->replace_all(parse_ok(json)).ok()); }

  FetchResult fetch(const std::string &profile, std::string url, int max_attempts = 1) {
    FetchRequest req;
    req.request.url = std::move(url);
    req.request.timeout_ms = 3000;
    req.auth = profile;
    req.max_attempts = static_cast<uint32_t>(max_attempts);
    std::optional<FetchResult> result;
    service->fetch(req, [&](FetchResult &&r) { result = std::move(r); });
    REQUIRE(loop.run_until([&] { return result.has_value(); }, 20s));
    return std::move(*result);
  }
  int hits(const std::string &path) {
    HttpClient client(loop.base());
    HttpRequest req;
    req.url = server().url("/hits?path=" + path);
    std::optional<HttpResponse> got;
    client.start(req, [&](HttpResponse &&r) { got = std::move(r); });
    REQUIRE(loop.run_until([&] { return got.has_value(); }));
    auto doc = ivr::json::parse(got->body);
    REQUIRE(doc.ok());
    return static_cast<int>(doc->root().find("count")->number);
  }
  void expire_tokens() {
    HttpClient client(loop.base());
    HttpRequest req;
    req.url = server().url("/oauth/expire");
    bool done = false;
    client.start(req, [&](HttpResponse &&) { done = true; });
    REQUIRE(loop.run_until([&] { return done; }));
  }
};

// The value of request header `name` as /echo saw it, or "" if absent.
std::string echoed(const FetchResult &r, std::string_view name) {
  REQUIRE_MESSAGE(r.reason == "", std::string(r.reason + ": " + r.error));
  REQUIRE(r.response.status == 200);
  auto doc = ivr::json::parse(r.response.body);
  REQUIRE(doc.ok());
  for (const auto &pair : doc->root().find("headers")->items)
    if (pair.items[0].string == name) return pair.items[1].string;
  return "";
}
std::string echoed_query(const FetchResult &r) {
  auto doc = ivr::json::parse(r.response.body);
  REQUIRE(doc.ok());
  return doc->root().find("query")->string;
}

std::string oauth2_json(const std::string &token_url, const std::string &secret = "idp.secret",
                        const std::string &more = "") {
  return R"({"idp": {"type": "oauth2", "token_url": ")" + token_url +
         R"(", "client_id": "ivr-test-client", "client_secret_secret": ")" + secret + "\"" + more +
         "}}";
}

}  // namespace

TEST_CASE("auth profiles: the JSON shape parses into schemes") {
  AuthProfileMap m = parse_ok(R"({
    "crm": {"type": "bearer", "token_secret": "crm.token"},
    "pbx": {"type": "basic", "username": "alice", "password_secret": "crm.password"},
    "key_h": {"type": "api_key", "key_secret": "crm.key", "name": "Authorization",
              "prefix": "ApiKey "},
    "key_q": {"type": "api_key", "key_secret": "crm.key", "placement": "query", "name": "k"},
    "hook": {"type": "hmac", "key_secret": "hook.key", "header": "X-Sig", "payload": "body"},
    "aws": {"type": "sigv4", "access_key_id": "AKIDEXAMPLE",
            "secret_access_key_secret": "aws.secret", "session_token_secret": "aws.session",
            "region": "us-east-1", "service": "execute-api"},
    "s3": {"type": "sigv4", "access_key_id": "AKID", "secret_access_key_secret": "aws.secret",
           "region": "eu-west-1", "service": "s3"},
    "idp": {"type": "oauth2", "token_url": "https://idp.example/token", "client_id": "ivr",
            "client_secret_secret": "idp.secret", "scope": "a b", "audience": "api",
            "client_auth": "body", "extra_params": {"resource": "r1"},
            "refresh_margin_s": 30, "default_lifetime_s": 600, "timeout_ms": 2000},
    "open": {"type": "none"}
  })");
  REQUIRE(m.size() == 9);
  auto scheme = [&](const char *name) -> const AuthConfig & {
    return std::get<AuthConfig>(m.at(name));
  };
  CHECK(std::get<BearerAuth>(scheme("crm")).token_secret == "crm.token");
  CHECK(std::get<BasicAuth>(scheme("pbx")).username == "alice");
  const auto &kh = std::get<ApiKeyAuth>(scheme("key_h"));
  CHECK(kh.placement == ApiKeyPlacement::header);
  CHECK(kh.name == "Authorization");
  CHECK(kh.prefix == "ApiKey ");
  const auto &kq = std::get<ApiKeyAuth>(scheme("key_q"));
  CHECK(kq.placement == ApiKeyPlacement::query);
  CHECK(kq.name == "k");
  const auto &h = std::get<HmacAuth>(scheme("hook"));
  CHECK(h.secret_name == "hook.key");
  CHECK(h.options.header == "X-Sig");
  CHECK(h.options.payload == HmacPayload::body);
  const auto &aws = std::get<SigV4Auth>(scheme("aws"));
  CHECK(aws.access_key_id == "AKIDEXAMPLE");
  CHECK(aws.session_token_secret == "aws.session");
  CHECK(aws.options.region == "us-east-1");
  CHECK(aws.options.service == "execute-api");
  CHECK(aws.options.normalize_path);
  CHECK_FALSE(std::get<SigV4Auth>(scheme("s3")).options.normalize_path);  // S3's rules
  const auto &idp = std::get<OAuth2Config>(m.at("idp"));
  CHECK(idp.token_url == "https://idp.example/token");
  CHECK(idp.client_id == "ivr");
  CHECK(idp.client_secret_name == "idp.secret");
  CHECK(idp.client_auth == OAuth2ClientAuth::body);
  CHECK(idp.scope == "a b");
  CHECK(idp.audience == "api");
  REQUIRE(idp.extra_params.size() == 1);
  CHECK(idp.extra_params[0] == std::pair<std::string, std::string>{"resource", "r1"});
  CHECK(idp.refresh_margin == 30s);
  CHECK(idp.default_lifetime == 600s);
  CHECK(idp.timeout_ms == 2000);
  CHECK(std::holds_alternative<NoAuth>(scheme("open")));

  // Defaults.
  AuthProfileMap d = parse_ok(R"({"k": {"type": "api_key", "key_secret": "x"},
    "h": {"type": "hmac", "key_secret": "x"},
    "o": {"type": "oauth2", "token_url": "http://127.0.0.1:1/t", "client_id": "c",
          "client_secret_secret": "s"}})");
  CHECK(std::get<ApiKeyAuth>(std::get<AuthConfig>(d.at("k"))).name == "X-Api-Key");
  CHECK(std::get<HmacAuth>(std::get<AuthConfig>(d.at("h"))).options.header == "X-Signature");
  const auto &o = std::get<OAuth2Config>(d.at("o"));
  CHECK(o.client_auth == OAuth2ClientAuth::basic);
  CHECK(o.refresh_margin == 60s);
  CHECK(o.timeout_ms == 5000);
  CHECK(parse_ok("{}").empty());
}

TEST_CASE("auth profiles: configuration errors name the field path") {
  struct Case {
    const char *json, *message;
  };
  const Case cases[] = {
      {R"({"crm": {"type": "bearer"}})", "auth.crm.token_secret: missing"},
      {R"({"crm": {"type": "bearer", "token_secret": 5}})",
       "auth.crm.token_secret: must be a string"},
      {R"({"crm": {"type": "bearer", "token_secret": ""}})",
       "auth.crm.token_secret: must not be empty"},
      {R"({"crm": {"token_secret": "a"}})", "auth.crm.type: missing"},
      {R"({"crm": {"type": "kerberos"}})",
       "auth.crm.type: must be basic, bearer, api_key, hmac, sigv4, oauth2 or none"},
      {R"({"crm": {"type": "bearer", "token_secret": "a", "tokn": 1}})",
       "auth.crm.tokn: unknown field (this type has: token_secret, tls)"},
      {R"({"crm": {"type": "none", "x": 1}})", "auth.crm.x: unknown field (this type has: tls)"},
      {R"({"crm": {"type": "bearer", "token_secret": "a", "tls": true}})",
       "auth.crm.tls: must be an object"},
      {R"({"crm": {"type": "bearer", "token_secret": "a", "tls": {"cafile": "/x"}}})",
       "auth.crm.tls.cafile: unknown field (tls has: ca_file, client_cert, client_key, verify)"},
      {R"({"crm": {"type": "none", "tls": {"ca_file": 5}}})",
       "auth.crm.tls.ca_file: must be a string"},
      {R"({"crm": {"type": "none", "tls": {"ca_file": ""}}})",
       "auth.crm.tls.ca_file: must not be empty"},
      {R"({"crm": {"type": "none", "tls": {"verify": "no"}}})",
       "auth.crm.tls.verify: must be true or false"},
      {R"({"crm": {"type": "none", "tls": {"client_cert": "/c.pem"}}})",
       "auth.crm.tls.client_key: missing (client_cert needs its private key)"},
      {R"({"crm": {"type": "none", "tls": {"client_key": "/c.key"}}})",
       "auth.crm.tls.client_cert: missing (client_key goes with a client certificate)"},
      {R"({"crm": {"type": "bearer", "tls": {"ca_file": "/x"}}})",
       "auth.crm.token_secret: missing"},
      {R"({"crm": "bearer"})", "auth.crm: must be an object"},
      {R"(["crm"])", "auth: must be an object of named auth profiles"},
      {R"({"9crm": {"type": "none"}})",
       "auth: \"9crm\" is not a valid profile name (an identifier: letters, digits, '_', not "
       "starting with a digit, at most 64)"},
      {R"({"pbx": {"type": "basic", "username": "a:b", "password_secret": "p"}})",
       "auth.pbx.username: contains ':'"},
      {R"({"pbx": {"type": "basic", "username": "a"}})", "auth.pbx.password_secret: missing"},
      {R"({"k": {"type": "api_key", "key_secret": "x", "placement": "cookie"}})",
       "auth.k.placement: must be header or query"},
      {R"({"k": {"type": "api_key", "key_secret": "x", "name": "X Key"}})",
       "auth.k.name: not a valid header name"},
      {R"({"k": {"type": "api_key", "key_secret": "x", "placement": "query", "prefix": "p"}})",
       "auth.k.prefix: only with placement \"header\""},
      {R"({"h": {"type": "hmac", "key_secret": "x", "payload": "all"}})",
       "auth.h.payload: must be request or body"},
      {R"({"aws": {"type": "sigv4", "access_key_id": "A", "secret_access_key_secret": "s",
                   "service": "s3"}})",
       "auth.aws.region: missing"},
      {R"({"idp": {"type": "oauth2", "token_url": "ftp://x/t", "client_id": "c",
                   "client_secret_secret": "s"}})",
       "auth.idp.token_url: not an http:// or https:// URL"},
      {R"({"idp": {"type": "oauth2", "token_url": "https://x/t", "client_secret_secret": "s"}})",
       "auth.idp.client_id: missing"},
      {R"({"idp": {"type": "oauth2", "token_url": "https://x/t", "client_id": "c"}})",
       "auth.idp.client_secret_secret: missing"},
      {R"({"idp": {"type": "oauth2", "token_url": "https://x/t", "client_id": "c",
                   "client_secret_secret": "s", "extra_params": {"grant_type": "password"}}})",
       "auth.idp.extra_params.grant_type: is set by the client credentials grant itself"},
      {R"({"idp": {"type": "oauth2", "token_url": "https://x/t", "client_id": "c",
                   "client_secret_secret": "s", "timeout_ms": 10}})",
       "auth.idp.timeout_ms: must be an integer from 100 to 60000"},
      {R"({"idp": {"type": "oauth2", "token_url": "https://x/t", "client_id": "c",
                   "client_secret_secret": "s", "refresh_margin_s": 1.5}})",
       "auth.idp.refresh_margin_s: must be an integer from 0 to 86400"},
      {R"({"idp": {"type": "oauth2", "token_url": "https://x/t", "client_id": "c",
                   "client_secret_secret": "s", "client_auth": "jwt"}})",
       "auth.idp.client_auth: must be basic or body"},
  };
  for (const Case &c : cases) {
    CAPTURE(c.json);
    CHECK(parse_error(c.json) == c.message);
  }

  // Bad JSON: Errc::parse with the position.
  auto bad = parse_auth_profiles(R"({"crm": {"type": })");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::parse);
  CHECK(bad.error().message.rfind("auth: line 1, column", 0) == 0);

  // Another root path for another document.
  auto nested = parse_auth_profiles(R"({"x": {"type": "bearer"}})", "config.auth");
  REQUIRE_FALSE(nested.ok());
  CHECK(nested.error().message == "config.auth.x.token_secret: missing");

  // A secret value pasted where its name belongs is refused and never echoed.
  std::string pasted =
      parse_error(R"({"crm": {"type": "bearer", "token_secret": "sk_live_abc def/+="}})");
  CHECK(pasted.rfind("auth.crm.token_secret: not a valid secret name", 0) == 0);
  CHECK(pasted.find("sk_live") == std::string::npos);
}

TEST_CASE("auth profiles: names, replacement and validation") {
  TestLoop loop;
  auto made = AuthProfiles::create(loop.base(), options_with(test_secrets()));
  REQUIRE(made.ok());
  AuthProfiles &p = **made;
  CHECK_FALSE(AuthProfiles::create(nullptr).ok());

  CHECK(p.set("crm", AuthConfig{BearerAuth{"crm.token"}}).ok());
  CHECK(p.has_profile("crm"));
  CHECK(*p.describe("crm") == "bearer (token from secret 'crm.token')");

  // The same name again replaces the profile.
  CHECK(p.set("crm", AuthConfig{BasicAuth{"bob", "crm.password"}}).ok());
  CHECK(*p.describe("crm") == "basic (username bob, password from secret 'crm.password')");
  CHECK(p.names() == std::vector<std::string>{"crm"});

  for (const char *bad : {"", "9x", "a-b", "a.b", "x y"}) {
    CAPTURE(bad);
    Status s = p.set(bad, AuthConfig{NoAuth{}});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.rfind("auth profile name: not an identifier", 0) == 0);
  }
  CHECK(p.set(std::string(64, 'a'), AuthConfig{NoAuth{}}).ok());
  CHECK_FALSE(p.set(std::string(65, 'a'), AuthConfig{NoAuth{}}).ok());
  CHECK(p.remove(std::string(64, 'a')));
  CHECK_FALSE(p.remove("nope"));

  // A profile is checked as a whole (without its secrets' values).
  Status colon = p.set("pbx", AuthConfig{BasicAuth{"a:b", "crm.password"}});
  REQUIRE_FALSE(colon.ok());
  CHECK(colon.error().message ==
        "auth profile 'pbx': auth.basic.username: contains ':' (RFC 7617)");
  OAuth2Config bad_oauth;
  bad_oauth.token_url = "https://idp/t";
  bad_oauth.client_id = "c";
  bad_oauth.client_secret_name = "no way";
  CHECK_FALSE(p.set("idp", bad_oauth).ok());

  // replace_all: everything or nothing.
  AuthProfileMap next = parse_ok(R"({"a": {"type": "none"}, "b": {"type": "none"}})");
  next.emplace("c", AuthConfig{BasicAuth{"x:y", "crm.password"}});
  CHECK_FALSE(p.replace_all(next).ok());
  CHECK(p.names() == std::vector<std::string>{"crm"});
  next.erase("c");
  CHECK(p.replace_all(next).ok());
  CHECK(p.names() == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(p.has_profile("crm"));
  CHECK_FALSE(p.oauth2_stats("a").has_value());
}

TEST_CASE("auth profiles: tls parses on every type") {
  AuthProfileMap m = parse_ok(R"({
    "crm": {"type": "bearer", "token_secret": "crm.token",
            "tls": {"ca_file": "/etc/ivr/crm-ca.pem", "client_cert": "/etc/ivr/ivr.crt",
                    "client_key": "/etc/ivr/ivr.key", "verify": true}},
    "idp": {"type": "oauth2", "token_url": "https://idp.example/token", "client_id": "ivr",
            "client_secret_secret": "idp.secret", "tls": {"ca_file": "/etc/ivr/idp-ca.pem"}},
    "lab": {"type": "none", "tls": {"verify": false}},
    "empty": {"type": "none", "tls": {}},
    "plain": {"type": "basic", "username": "a", "password_secret": "p"}
  })");
  const TlsOptions &crm = m.at("crm").tls;
  CHECK(std::get<BearerAuth>(std::get<AuthConfig>(m.at("crm"))).token_secret == "crm.token");
  CHECK(crm.ca_file == "/etc/ivr/crm-ca.pem");
  CHECK(crm.client_cert == "/etc/ivr/ivr.crt");
  CHECK(crm.client_key == "/etc/ivr/ivr.key");
  CHECK(crm.verify);
  CHECK(has_tls_settings(crm));
  CHECK(std::get<OAuth2Config>(m.at("idp")).client_id == "ivr");
  CHECK(m.at("idp").tls.ca_file == "/etc/ivr/idp-ca.pem");
  CHECK(m.at("idp").tls.client_cert.empty());
  CHECK(m.at("idp").tls.verify);  // the default
  CHECK_FALSE(m.at("lab").tls.verify);
  CHECK(has_tls_settings(m.at("lab").tls));
  CHECK_FALSE(has_tls_settings(m.at("empty").tls));
  CHECK_FALSE(has_tls_settings(m.at("plain").tls));
  // std::visit still sees the scheme variant.
  CHECK(std::visit(
      [](const auto &c) { return std::is_same_v<std::decay_t<decltype(c)>, AuthConfig>; },
      m.at("plain")));
  CHECK(std::holds_alternative<OAuth2Config>(m.at("idp")));
}

TEST_CASE("auth profiles: tls files are checked when a profile is set") {
  TestLoop loop;
  CapturedLog log;
  AuthProfilesOptions o = options_with(test_secrets());
  o.logger = log.logger();
  auto made = AuthProfiles::create(loop.base(), o);
  REQUIRE(made.ok());
  AuthProfiles &p = **made;
  TempFiles files;
  const std::string ca = files.write("ca.pem", "not really a CA\n");
  const std::string cert = files.write("ivr.crt", "not really a certificate\n");
  const std::string key = files.write("ivr.key", "PRIVATE-KEY-MATERIAL-123\n");

  AuthProfileConfig good = AuthConfig{BearerAuth{"crm.token"}};
  good.tls = {ca, cert, key, true};
  REQUIRE(p.set("crm", good).ok());
  CHECK(*p.describe("crm") ==
        "bearer (token from secret 'crm.token'); tls ca " + ca + ", client cert " + cert);
  CHECK(p.describe("crm")->find("PRIVATE-KEY-MATERIAL") == std::string::npos);
  CHECK(log.lines.empty());

  auto refused = [&](AuthProfileConfig config) {
    Status s = p.set("bad", std::move(config));
    REQUIRE_FALSE(s.ok());
    CHECK_FALSE(p.has_profile("bad"));
    return s.error().message;
  };
  AuthProfileConfig missing = AuthConfig{NoAuth{}};
  missing.tls.ca_file = files.dir() + "/absent.pem";
  CHECK(refused(missing) == "auth profile 'bad': tls.ca_file: cannot read " + files.dir() +
                                "/absent.pem: No such file or directory");
  AuthProfileConfig dir = AuthConfig{NoAuth{}};
  dir.tls.ca_file = files.dir();
  CHECK(refused(dir) ==
        "auth profile 'bad': tls.ca_file: cannot read " + files.dir() + ": is a directory");
  AuthProfileConfig no_key = AuthConfig{NoAuth{}};
  no_key.tls.client_cert = cert;
  CHECK(refused(no_key) ==
        "auth profile 'bad': tls.client_key: missing (client_cert needs its private key)");
  AuthProfileConfig no_cert = AuthConfig{NoAuth{}};
  no_cert.tls.client_key = key;
  CHECK(refused(no_cert) ==
        "auth profile 'bad': tls.client_cert: missing (client_key goes with a client "
        "certificate)");
  AuthProfileConfig gone_key = AuthConfig{NoAuth{}};
  gone_key.tls = {"", cert, files.dir() + "/gone.key", true};
  const std::string gone = refused(gone_key);
  CHECK(gone == "auth profile 'bad': tls.client_key: cannot read " + files.dir() +
                    "/gone.key: No such file or directory");
  // OAuth2 profiles are checked the same way.
  OAuth2Config oauth;
  oauth.token_url = "https://idp.example/token";
  oauth.client_id = "ivr";
  oauth.client_secret_name = "idp.secret";
  AuthProfileConfig idp = oauth;
  idp.tls.client_cert = files.dir() + "/absent.crt";
  idp.tls.client_key = key;
  CHECK(refused(idp) == "auth profile 'bad': tls.client_cert: cannot read " + files.dir() +
                            "/absent.crt: No such file or directory");
  // replace_all refuses the whole set.
  AuthProfileMap set;
  set.emplace("ok", AuthConfig{NoAuth{}});
  set.emplace("bad", missing);
  CHECK_FALSE(p.replace_all(set).ok());
  CHECK(p.names() == std::vector<std::string>{"crm"});
  // Without permission (root reads everything, so only as another user).
  if (geteuid() != 0) {
    const std::string locked = files.write("locked.key", "x");
    REQUIRE(chmod(locked.c_str(), 0) == 0);
    AuthProfileConfig denied = AuthConfig{NoAuth{}};
    denied.tls = {"", cert, locked, true};
    CHECK(refused(denied) ==
          "auth profile 'bad': tls.client_key: cannot read " + locked + ": Permission denied");
  }
  // The parsed shape goes through the same checks.
  CHECK(validate_auth_profile(parse_ok(R"({"x": {"type": "none", "tls": {"ca_file": ")" +
                                       files.dir() + R"(/nope.pem"}}})")
                                  .at("x"))
            .error()
            .message ==
        "tls.ca_file: cannot read " + files.dir() + "/nope.pem: No such file or directory");

  // Verification off is allowed, and said loudly.
  AuthProfileConfig lab = AuthConfig{NoAuth{}};
  lab.tls.verify = false;
  REQUIRE(p.set("lab", lab).ok());
  CHECK(*p.describe("lab") == "none; tls verification off");
  CHECK(log.count("auth profile 'lab': TLS verification is off") == 1);
  REQUIRE(p.replace_all(parse_ok(R"({"lab2": {"type": "none", "tls": {"verify": false}},
                                     "ok": {"type": "none"}})"))
              .ok());
  CHECK(log.count("auth profile 'lab2': TLS verification is off") == 1);
  CHECK(log.lines.size() == 2);
}

TEST_CASE("auth profiles: authorize() sets the request's TLS options") {
  TestLoop loop;
  auto made = AuthProfiles::create(loop.base(), options_with(test_secrets()));
  REQUIRE(made.ok());
  AuthProfiles &p = **made;
  TempFiles files;
  const std::string ca = files.write("ca.pem", "ca\n");
  const std::string cert = files.write("ivr.crt", "cert\n");
  const std::string key = files.write("ivr.key", "key\n");
  AuthProfileConfig crm = AuthConfig{BearerAuth{"crm.token"}};
  crm.tls = {ca, cert, key, true};
  REQUIRE(p.set("crm", crm).ok());
  AuthProfileConfig open = AuthConfig{NoAuth{}};
  open.tls.ca_file = ca;
  REQUIRE(p.set("open", open).ok());
  REQUIRE(p.set("plain", AuthConfig{BearerAuth{"crm.token"}}).ok());

  auto authorize = [&](const char *profile, HttpRequest &req) {
    std::optional<Status> st;
    p.authorize(profile, req, [&](Status s) { st = std::move(s); });
    REQUIRE(st.has_value());  // static schemes answer at once
    CHECK(st->ok());
  };
  HttpRequest own;  // the request's own settings
  own.url = "https://crm.example/x";
  own.tls = {"/own/ca.pem", "/own/c.crt", "/own/c.key", false};

  HttpRequest a = own;
  authorize("crm", a);
  CHECK(a.tls.ca_file == ca);
  CHECK(a.tls.client_cert == cert);
  CHECK(a.tls.client_key == key);
  CHECK(a.tls.verify);
  CHECK(a.headers == Headers{{"Authorization", "Bearer bearer-token-123"}});

  // The profile's options replace the request's as a whole.
  HttpRequest b = own;
  authorize("open", b);
  CHECK(b.tls.ca_file == ca);
  CHECK(b.tls.client_cert.empty());
  CHECK(b.tls.client_key.empty());
  CHECK(b.tls.verify);
  CHECK(b.headers.empty());

  // A profile without TLS settings leaves them alone.
  HttpRequest c = own;
  authorize("plain", c);
  CHECK(c.tls.ca_file == "/own/ca.pem");
  CHECK(c.tls.client_cert == "/own/c.crt");
  CHECK_FALSE(c.tls.verify);
}

TEST_CASE("auth profiles: each scheme reaches the server") {
  Rig rig(test_secrets(), /*fixed_clock=*/true);
  rig.configure(R"({
    "crm": {"type": "bearer", "token_secret": "crm.token"},
    "pbx": {"type": "basic", "username": "alice", "password_secret": "crm.password"},
    "key_h": {"type": "api_key", "key_secret": "crm.key", "prefix": "ApiKey "},
    "key_q": {"type": "api_key", "key_secret": "crm.key", "placement": "query",
              "name": "api_key"},
    "hook": {"type": "hmac", "key_secret": "hook.key"},
    "aws": {"type": "sigv4", "access_key_id": "AKIDEXAMPLE",
            "secret_access_key_secret": "aws.secret", "session_token_secret": "aws.session",
            "region": "us-east-1", "service": "execute-api"},
    "open": {"type": "none"}
  })");
  const std::string echo = server().url("/echo");

  CHECK(echoed(rig.fetch("crm", echo), "Authorization") == "Bearer bearer-token-123");
  CHECK(echoed(rig.fetch("pbx", echo), "Authorization") ==
        "Basic " + base64_encode("alice:pa:ss word"));
  CHECK(echoed(rig.fetch("key_h", echo), "X-Api-Key") == "ApiKey api-key-456");
  FetchResult q = rig.fetch("key_q", server().url("/echo?x=1"));
  CHECK(echoed_query(q) == "x=1&api_key=api-key-456");
  CHECK(echoed(rig.fetch("open", echo), "Authorization") == "");

  // HMAC: the server's view verifies with the secret at the signing time.
  FetchResult h = rig.fetch("hook", server().url("/echo?a=b"));
  std::string sig = echoed(h, "X-Signature");
  CHECK(sig.rfind("t=1700000000,v1=", 0) == 0);
  HttpRequest as_sent;
  as_sent.method = "GET";
  as_sent.url = server().url("/echo?a=b");
  CHECK(verify_hmac(as_sent, sig, "hmac-key-789", {}, rig.signing_time).ok());
  CHECK_FALSE(verify_hmac(as_sent, sig, "other-key", {}, rig.signing_time).ok());

  // SigV4: signed for the profile's scope at the signing time.
  FetchResult a = rig.fetch("aws", echo);
  std::string authz = echoed(a, "Authorization");
  CHECK(authz.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/execute-api/"
                    "aws4_request, SignedHeaders=",
                    0) == 0);
  CHECK(echoed(a, "X-Amz-Date") == "20231114T221320Z");
  CHECK(echoed(a, "X-Amz-Security-Token") == "session-token-abc");
  // The same request signed locally gives the same signature.
  HttpRequest local;
  local.url = echo;
  SigV4Credentials creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                         "session-token-abc"};
  auto expected = compute_sigv4(local, creds, SigV4Options::for_service("us-east-1", "execute-api"),
                                rig.signing_time);
  REQUIRE(expected.ok());
  CHECK(authz == expected->authorization);
}

TEST_CASE("auth profiles: signing time is read per attempt, after the cache key") {
  Rig rig(test_secrets(), /*fixed_clock=*/true);
  rig.configure(R"({"hook": {"type": "hmac", "key_secret": "hook.key"}})");
  // Two attempts (a 503, then a 200): each is signed anew.
  static int n = 0;
  const std::string key = "sign-" + std::to_string(++n);
  FetchRequest req;
  req.request.url = server().url("/sequence?key=" + key + "&codes=503,200");
  req.auth = "hook";
  req.max_attempts = 2;
  req.cache_ttl = 60s;
  std::optional<FetchResult> r;
  rig.service->fetch(req, [&](FetchResult &&x) { r = std::move(x); });
  REQUIRE(rig.loop.run_until([&] { return r.has_value(); }));
  CHECK(r->response.status == 200);
  CHECK(r->attempts == 2);
  CHECK(rig.clock_reads == 2);
  // Cached under a key made before signing: the next lookup is a hit (no new signature).
  r.reset();
  rig.service->fetch(req, [&](FetchResult &&x) { r = std::move(x); });
  REQUIRE(rig.loop.run_until([&] { return r.has_value(); }));
  CHECK(r->cached);
  CHECK(rig.clock_reads == 2);
}

TEST_CASE("auth profiles: secrets come from the environment by default") {
  TestLoop loop;
  REQUIRE(setenv("IVR_SECRET_ENVTEST_TOKEN", "from-env-42", 1) == 0);
  auto made = AuthProfiles::create(loop.base());
  REQUIRE(made.ok());
  auto profiles = std::move(made).value();
  REQUIRE(profiles
              ->replace_all(parse_ok(R"({"env": {"type": "bearer",
      "token_secret": "envtest.token"}, "gone": {"type": "bearer",
      "token_secret": "envtest.missing"}})"))
              .ok());
  auto svc = HttpService::create(loop.base(), {}, profiles.get());
  REQUIRE(svc.ok());
  auto run = [&](const char *profile) {
    FetchRequest req;
    req.request.url = server().url("/echo");
    req.auth = profile;
    std::optional<FetchResult> r;
    (*svc)->fetch(req, [&](FetchResult &&x) { r = std::move(x); });
    REQUIRE(loop.run_until([&] { return r.has_value(); }));
    return std::move(*r);
  };
  CHECK(echoed(run("env"), "Authorization") == "Bearer from-env-42");
  FetchResult missing = run("gone");
  CHECK(missing.reason == "auth");
  CHECK(missing.attempts == 0);
  CHECK(missing.error.find("auth profile 'gone'") != std::string::npos);
  CHECK(missing.error.find("IVR_SECRET_ENVTEST_MISSING") != std::string::npos);
  unsetenv("IVR_SECRET_ENVTEST_TOKEN");
  svc->reset();
}

TEST_CASE("auth profiles: an unknown profile fails the lookup with reason auth") {
  Rig rig;
  rig.configure(R"({"crm": {"type": "bearer", "token_secret": "crm.token"}})");
  FetchResult r = rig.fetch("nope", server().url("/echo"));
  CHECK(r.reason == "auth");
  CHECK(r.attempts == 0);
  CHECK(r.error == "no auth profile named 'nope'");
}

TEST_CASE("auth profiles: a 401 with a static scheme is not retried") {
  Rig rig;
  rig.configure(R"({"crm": {"type": "bearer", "token_secret": "crm.token"}})");
  FetchResult r = rig.fetch("crm", server().url("/protected"), 3);
  CHECK(r.reason == "");
  CHECK(r.response.status == 401);
  CHECK(r.attempts == 1);
}

TEST_CASE("auth profiles: OAuth2 client credentials end to end") {
  Rig rig;
  const int token_hits = rig.hits("/oauth/token");
  SUBCASE("client authentication with HTTP Basic") {
    rig.configure(oauth2_json(server().url("/oauth/token")));
  }
  SUBCASE("client authentication in the body") {
    rig.configure(oauth2_json(server().url("/oauth/token"), "idp.secret",
                              R"(, "client_auth": "body", "scope": "calls")"));
  }
  CHECK(rig.profiles->describe("idp")->find(kClientSecret) == std::string::npos);

  // The token is fetched once and reused.
  FetchResult first = rig.fetch("idp", server().url("/protected"));
  REQUIRE_MESSAGE(first.reason == "", first.error);
  CHECK(first.response.status == 200);
  CHECK(first.attempts == 1);
  FetchResult second = rig.fetch("idp", server().url("/protected"));
  CHECK(second.response.status == 200);
  CHECK(second.response.body == first.response.body);  // the same token
  CHECK(rig.hits("/oauth/token") == token_hits + 1);
  auto stats = rig.profiles->oauth2_stats("idp");
  REQUIRE(stats.has_value());
  CHECK(stats->fetches == 1);
  CHECK(stats->cache_hits == 1);

  // The server expires it: 401, the token is dropped, fetched anew, the request repeated.
  rig.expire_tokens();
  FetchResult renewed = rig.fetch("idp", server().url("/protected"));
  CHECK(renewed.reason == "");
  CHECK(renewed.response.status == 200);
  CHECK(renewed.attempts == 2);
  CHECK(renewed.response.body != first.response.body);
  CHECK(rig.hits("/oauth/token") == token_hits + 2);
  CHECK(rig.profiles->oauth2_stats("idp")->fetches == 2);

  // Only once per lookup: a fresh token refused too is the caller's 401.
  FetchResult refused = rig.fetch("idp", server().url("/protected?deny=1"), 3);
  CHECK(refused.reason == "");
  CHECK(refused.response.status == 401);
  CHECK(refused.attempts == 2);
  CHECK(rig.hits("/oauth/token") == token_hits + 3);
}

TEST_CASE("auth profiles: OAuth2 failures are reason auth without secrets") {
  Rig rig;
  SUBCASE("token endpoint down") {
    std::string url;
    {
      TestHttpServer doomed;
      url = doomed.url("/oauth/token");
    }
    rig.configure(oauth2_json(url));
    FetchResult r = rig.fetch("idp", server().url("/protected"));
    CHECK(r.reason == "auth");
    CHECK(r.attempts == 0);
    CHECK(r.error.rfind("auth profile 'idp': oauth2 (127.0.0.1): ", 0) == 0);
    CHECK(r.error.find("connect") != std::string::npos);
    CHECK(r.error.find(kClientSecret) == std::string::npos);
  }
  SUBCASE("token endpoint answers 503") {
    rig.configure(oauth2_json(server().url("/oauth/token?fail=503")));
    FetchResult r = rig.fetch("idp", server().url("/protected"));
    CHECK(r.reason == "auth");
    CHECK(r.attempts == 0);
    CHECK(r.error.find("temporarily_unavailable") != std::string::npos);
    CHECK(r.error.find(kClientSecret) == std::string::npos);
  }
  SUBCASE("wrong client secret") {
    rig.configure(oauth2_json(server().url("/oauth/token"), "idp.wrong"));
    FetchResult r = rig.fetch("idp", server().url("/protected"));
    CHECK(r.reason == "auth");
    CHECK(r.attempts == 0);
    CHECK(r.error.find("invalid_client") != std::string::npos);
    CHECK(r.error.find("not-the-secret-xyz") == std::string::npos);
  }
  SUBCASE("secret missing from the store") {
    rig.configure(oauth2_json(server().url("/oauth/token"), "idp.absent"));
    FetchResult r = rig.fetch("idp", server().url("/protected"));
    CHECK(r.reason == "auth");
    CHECK(r.attempts == 0);
    CHECK(r.error.find("idp.absent") != std::string::npos);
  }
  CHECK(rig.profiles->oauth2_stats("idp")->failures == 1);
}

TEST_CASE("auth profiles: a token fetch in flight when everything is destroyed") {
  TestLoop loop;
  int calls = 0;
  {
    auto profiles =
        std::move(AuthProfiles::create(loop.base(), options_with(test_secrets()))).value();
    REQUIRE(profiles->replace_all(parse_ok(oauth2_json(server().url("/slow?ms=1000")))).ok());
    auto svc = std::move(HttpService::create(loop.base(), {}, profiles.get())).value();
    FetchRequest req;
    req.request.url = server().url("/protected");
    req.auth = "idp";
    svc->fetch(req, [&](FetchResult &&) { ++calls; });
    loop.run_for(100ms);
    CHECK(svc->in_flight() == 1);
    svc.reset();
  }
  loop.run_for(200ms);
  CHECK(calls == 0);
}

TEST_CASE("auth profiles: a private CA and a client certificate end to end") {
  const TestHttpServer &s = tls_server();
  Rig rig;
  const std::string tls_of_ca = R"("tls": {"ca_file": ")" + s.ca_file() + R"("})";
  const std::string tls_of_client = R"("tls": {"ca_file": ")" + s.ca_file() +
                                    R"(", "client_cert": ")" + s.client_cert() +
                                    R"(", "client_key": ")" + s.client_key() + R"("})";
  rig.configure(R"({
    "private_ca": {"type": "bearer", "token_secret": "crm.token", )" +
                tls_of_ca + R"(},
    "system_ca": {"type": "bearer", "token_secret": "crm.token"},
    "mtls": {"type": "bearer", "token_secret": "crm.token", )" +
                tls_of_client + R"(},
    "unverified": {"type": "none", "tls": {"verify": false}}
  })");

  // HTTPS signed by the test CA: trusted only by the profile that names it.
  CHECK(echoed(rig.fetch("private_ca", s.tls_url("/echo")), "Authorization") ==
        "Bearer bearer-token-123");
  FetchResult untrusted = rig.fetch("system_ca", s.tls_url("/echo"));
  CHECK(untrusted.reason == "tls");
  CHECK(untrusted.response.status == 0);
  CHECK(echoed(rig.fetch("unverified", s.tls_url("/echo")), "Authorization") == "");

  // The mTLS port: the client certificate gets in, the CA alone does not.
  CHECK(echoed(rig.fetch("mtls", s.mtls_url("/echo")), "Authorization") ==
        "Bearer bearer-token-123");
  FetchResult refused = rig.fetch("private_ca", s.mtls_url("/echo"));
  CHECK(refused.reason == "tls");
  CHECK(refused.response.status == 0);
  // And again with the certificate after the refusal (no state carried over either way).
  CHECK(rig.fetch("mtls", s.mtls_url("/status/200")).response.status == 200);
}

TEST_CASE("auth profiles: an OAuth2 token endpoint behind mutual TLS") {
  const TestHttpServer &s = tls_server();
  Rig rig;
  const std::string token_url = s.mtls_url("/oauth/token");
  SUBCASE("the token request presents the profile's client certificate") {
    rig.configure(oauth2_json(token_url, "idp.secret",
                              R"(, "tls": {"ca_file": ")" + s.ca_file() + R"(", "client_cert": ")" +
                                  s.client_cert() + R"(", "client_key": ")" + s.client_key() +
                                  R"("})"));
    FetchResult r = rig.fetch("idp", s.mtls_url("/protected"));
    REQUIRE_MESSAGE(r.reason == "", r.error);
    CHECK(r.response.status == 200);
    CHECK(rig.profiles->oauth2_stats("idp")->fetches == 1);
  }
  SUBCASE("without it the token request fails: reason auth") {
    rig.configure(
        oauth2_json(token_url, "idp.secret", R"(, "tls": {"ca_file": ")" + s.ca_file() + R"("})"));
    FetchResult r = rig.fetch("idp", s.mtls_url("/protected"));
    CHECK(r.reason == "auth");
    CHECK(r.attempts == 0);
    CHECK(r.error.rfind("auth profile 'idp': oauth2 (127.0.0.1): ", 0) == 0);
    CHECK(r.error.find(kClientSecret) == std::string::npos);
  }
}
