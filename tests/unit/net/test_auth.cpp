// Crypto helpers, secrets, the request schemes (basic, bearer, API key, HMAC) and redaction.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "net/auth.h"
#include "net/crypto.h"

using namespace ivr::net;
using std::chrono::seconds;
using std::chrono::system_clock;

namespace {

system_clock::time_point at(int64_t unix_seconds) {
  return system_clock::time_point(seconds(unix_seconds));
}

const std::string *find_header(const Headers &headers, std::string_view name) {
  const std::string *found = nullptr;
  for (const auto &[n, v] : headers) {
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < n.size(); ++i)
      same &= std::tolower(static_cast<unsigned char>(n[i])) ==
              std::tolower(static_cast<unsigned char>(name[i]));
    if (same) {
      REQUIRE_MESSAGE(found == nullptr, "header appears twice: ", name);
      found = &v;
    }
  }
  return found;
}

HttpRequest request(std::string method, std::string url, std::string body = {}) {
  HttpRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  r.body = std::move(body);
  return r;
}

}  // namespace

// ---- SHA-256, HMAC-SHA256 ----

TEST_CASE("sha256: FIPS 180-2 known answers") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK(sha256("abc").size() == 32);
  CHECK(hex_encode(sha256("abc")) == sha256_hex("abc"));
}

TEST_CASE("hmac_sha256: RFC 4231 test cases") {
  SUBCASE("1: 20-byte key") {
    CHECK(hmac_sha256_hex(std::string(20, '\x0b'), "Hi There") ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  }
  SUBCASE("2: short key") {
    CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(hmac_sha256_base64("Jefe", "what do ya want for nothing?") ==
          "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    CHECK(hmac_sha256("Jefe", "what do ya want for nothing?").size() == 32);
  }
  SUBCASE("3: 50 bytes of 0xdd") {
    CHECK(hmac_sha256_hex(std::string(20, '\xaa'), std::string(50, '\xdd')) ==
          "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  }
  SUBCASE("6: key larger than the block") {
    CHECK(hmac_sha256_hex(std::string(131, '\xaa'),
                          "Test Using Larger Than Block-Size Key - Hash Key First") ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  }
  SUBCASE("empty key and data") {
    CHECK(hmac_sha256_hex("", "") ==
          "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  }
}

// ---- encodings ----

TEST_CASE("base64: RFC 4648 section 10 vectors, both ways") {
  const std::pair<const char *, const char *> vectors[] = {{"", ""},
                                                           {"f", "Zg=="},
                                                           {"fo", "Zm8="},
                                                           {"foo", "Zm9v"},
                                                           {"foob", "Zm9vYg=="},
                                                           {"fooba", "Zm9vYmE="},
                                                           {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : vectors) {
    CAPTURE(plain);
    CHECK(base64_encode(plain) == encoded);
    auto d = base64_decode(encoded);
    REQUIRE(d.ok());
    CHECK(d.value() == plain);
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  auto round = base64_decode(base64_encode(all));
  REQUIRE(round.ok());
  CHECK(round.value() == all);
  CHECK(base64_encode("\xfb\xff") == "+/8=");
}

TEST_CASE("base64: strict decoding names the problem") {
  auto bad = [](std::string_view text) {
    auto r = base64_decode(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ivr::Errc::parse);
    return r.error().message;
  };
  CHECK(bad("Zg=").find("multiple of 4") != std::string::npos);
  CHECK(bad("Zm9v\nZg==").find("multiple of 4") != std::string::npos);
  CHECK(bad("Zm9*").find("offset 3") != std::string::npos);
  CHECK(bad("Zg==Zg==").find("invalid character") != std::string::npos);  // padding mid-way
  CHECK(bad("Z===").find("invalid character") != std::string::npos);
  CHECK(bad("Zh==").find("non-zero padding bits") != std::string::npos);
  CHECK(bad("Zm9=").find("non-zero padding bits") != std::string::npos);
  CHECK(bad("Zm=v").find("invalid character") != std::string::npos);
}

TEST_CASE("hex: encode lowercase, decode either case") {
  CHECK(hex_encode(std::string("\x00\x01\xab\xff", 4)) == "0001abff");
  auto d = hex_decode("0001ABff");
  REQUIRE(d.ok());
  CHECK(d.value() == std::string("\x00\x01\xab\xff", 4));
  CHECK_FALSE(hex_decode("abc").ok());
  auto bad = hex_decode("0g");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("offset 1") != std::string::npos);
}

TEST_CASE("constant_time_equal") {
  CHECK(constant_time_equal("", ""));
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
  CHECK_FALSE(constant_time_equal("", "a"));
}

TEST_CASE("percent_encode: RFC 3986 unreserved set, uppercase hex") {
  const std::string unreserved =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
  CHECK(percent_encode(unreserved) == unreserved);
  CHECK(percent_encode("a b") == "a%20b");
  CHECK(percent_encode("a+b=c&d") == "a%2Bb%3Dc%26d");
  CHECK(percent_encode("*!'()") == "%2A%21%27%28%29");
  CHECK(percent_encode("100%") == "100%25");
  CHECK(percent_encode("/a/b") == "%2Fa%2Fb");
  CHECK(percent_encode("/a b/c", /*keep_slash=*/true) == "/a%20b/c");
  CHECK(percent_encode("\xe1\x88\xb4") == "%E1%88%B4");  // U+1234
  CHECK(percent_encode(std::string("\x00\xff", 2)) == "%00%FF");
  CHECK(form_urlencode("a b+c/d") == "a+b%2Bc%2Fd");
}

TEST_CASE("percent_decode") {
  auto d = percent_decode("%e1%88%B4+x%20y");
  REQUIRE(d.ok());
  CHECK(d.value() == "\xe1\x88\xb4+x y");
  for (std::string_view bad : {"%", "%4", "a%zz", "%g0"}) {
    CAPTURE(bad);
    auto r = percent_decode(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("offset") != std::string::npos);
  }
}

TEST_CASE("split_url") {
  auto u = split_url("HTTPS://user:pw@Example.com:8443/a/b?x=1&y#frag");
  REQUIRE(u.ok());
  CHECK(u->scheme == "HTTPS");
  CHECK(u->authority == "user:pw@Example.com:8443");
  CHECK(u->host == "Example.com");
  CHECK(u->port == "8443");
  CHECK(u->path == "/a/b");
  CHECK(u->has_query);
  CHECK(u->query == "x=1&y");
  CHECK(u->fragment == "frag");
  CHECK(u->host_header() == "Example.com:8443");
  CHECK(u->target() == "/a/b?x=1&y");

  auto bare = split_url("http://example.com");
  REQUIRE(bare.ok());
  CHECK(bare->path.empty());
  CHECK_FALSE(bare->has_query);
  CHECK(bare->target() == "/");
  CHECK(bare->host_header() == "example.com");

  auto q = split_url("http://example.com?a=1");
  REQUIRE(q.ok());
  CHECK(q->target() == "/?a=1");

  auto v6 = split_url("https://[::1]:443/x");
  REQUIRE(v6.ok());
  CHECK(v6->host == "[::1]");
  CHECK(v6->host_header() == "[::1]");
  CHECK(split_url("http://h:80/")->host_header() == "h");
  CHECK(split_url("https://h:80/")->host_header() == "h:80");

  for (std::string_view bad : {"example.com/x", "ftp://h/x", "http:///x", "http://h:99999/",
                               "http://h:8a/", "http://[::1/", "http://[::1]x/"}) {
    CAPTURE(bad);
    auto r = split_url(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ivr::Errc::parse);
    CHECK(r.error().message.rfind("url: ", 0) == 0);
  }
}

// ---- secrets ----

TEST_CASE("secrets: map, environment and chain stores; resolve errors name where") {
  MapSecretStore map{{"pbx.password", "s3cr3t-value"}, {"empty", ""}};
  CHECK(map.find("pbx.password").value() == "s3cr3t-value");
  CHECK_FALSE(map.find("other").has_value());

  EnvSecretStore env;
  CHECK(env.variable_for("twilio.auth-token") == "IVR_SECRET_TWILIO_AUTH_TOKEN");
  ::setenv("IVR_SECRET_UNIT_NET_AUTH_X", "from-env", 1);
  CHECK(env.find("unit_net.auth-x").value() == "from-env");
  CHECK_FALSE(env.find("unit_net.absent").has_value());

  ChainSecretStore chain(
      {std::make_shared<MapSecretStore>(map), std::make_shared<EnvSecretStore>()});
  CHECK(chain.find("pbx.password").value() == "s3cr3t-value");
  CHECK(chain.find("unit_net.auth-x").value() == "from-env");

  auto ok = resolve_secret(chain, "unit_net.auth-x", "field");
  REQUIRE(ok.ok());
  CHECK(ok.value() == "from-env");

  auto missing = resolve_secret(chain, "nope", "auth.bearer.token_secret");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ivr::Errc::not_found);
  CHECK(missing.error().message ==
        "auth.bearer.token_secret: secret 'nope' not found (looked in the secret map, then "
        "environment variable IVR_SECRET_NOPE)");

  auto empty = resolve_secret(map, "empty", "f");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().message.find("is empty") != std::string::npos);

  // A value pasted where a name belongs is not echoed back.
  auto pasted = resolve_secret(map, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "f");
  REQUIRE_FALSE(pasted.ok());
  CHECK(pasted.error().code == ivr::Errc::invalid_argument);
  CHECK(pasted.error().message.find("wJalr") == std::string::npos);
  CHECK_FALSE(valid_secret_name(""));
  CHECK_FALSE(valid_secret_name(std::string(129, 'a')));
  CHECK(valid_secret_name(std::string(128, 'a')));
  ::unsetenv("IVR_SECRET_UNIT_NET_AUTH_X");
}

// ---- request helpers ----

TEST_CASE("set_header replaces every header of that name, any case") {
  Headers h{{"authorization", "old"}, {"X-A", "1"}, {"AUTHORIZATION", "older"}};
  set_header(h, "Authorization", "new");
  REQUIRE(h.size() == 2);
  CHECK(h[0] == std::pair<std::string, std::string>{"X-A", "1"});
  CHECK(h[1] == std::pair<std::string, std::string>{"Authorization", "new"});
}

TEST_CASE("set_query_param: '?' or '&', encoding, replacement, fragment kept") {
  std::string url = "https://api.example.com/v1/items";
  REQUIRE(set_query_param(url, "api_key", "a b/c+d=&é").ok());
  CHECK(url == "https://api.example.com/v1/items?api_key=a%20b%2Fc%2Bd%3D%26%C3%A9");

  url = "https://api.example.com/v1/items?limit=5&api_key=old&x";
  REQUIRE(set_query_param(url, "api_key", "k1").ok());
  CHECK(url == "https://api.example.com/v1/items?limit=5&x&api_key=k1");
  REQUIRE(set_query_param(url, "api_key", "k1").ok());  // idempotent
  CHECK(url == "https://api.example.com/v1/items?limit=5&x&api_key=k1");

  url = "http://h/p?#top";
  REQUIRE(set_query_param(url, "k", "v").ok());
  CHECK(url == "http://h/p?k=v#top");
  url = "http://h#top";
  REQUIRE(set_query_param(url, "k", "v").ok());
  CHECK(url == "http://h?k=v#top");
  url = "http://h/p?a%5Fkey=1";  // the same name, encoded
  REQUIRE(set_query_param(url, "a_key", "2").ok());
  CHECK(url == "http://h/p?a_key=2");

  url = "not a url";
  CHECK_FALSE(set_query_param(url, "k", "v").ok());
  CHECK(url == "not a url");
}

// ---- schemes ----

TEST_CASE("basic: RFC 7617 example") {
  auto r = request("GET", "https://example.com/");
  r.headers.emplace_back("authorization", "stale");
  REQUIRE(set_basic_auth(r, "Aladdin", "open sesame").ok());
  REQUIRE(find_header(r.headers, "Authorization"));
  CHECK(*find_header(r.headers, "Authorization") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  auto bad = set_basic_auth(r, "a:b", "pw");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "auth.basic.username: contains ':' (RFC 7617)");
}

TEST_CASE("bearer: RFC 6750 example") {
  auto r = request("GET", "https://example.com/resource");
  REQUIRE(set_bearer_token(r, "mF_9.B5f-4.1JqM").ok());
  CHECK(*find_header(r.headers, "Authorization") == "Bearer mF_9.B5f-4.1JqM");
  CHECK_FALSE(set_bearer_token(r, "").ok());
  CHECK_FALSE(set_bearer_token(r, "a b").ok());
  CHECK_FALSE(set_bearer_token(r, "a\r\nX-Evil: 1").ok());
}

TEST_CASE("api key in a header or in the query") {
  auto r = request("GET", "https://api.example.com/v1/x?y=1");
  ApiKeyAuth header_key{"k", ApiKeyPlacement::header, "X-Api-Key", ""};
  REQUIRE(set_api_key(r, header_key, "abc123").ok());
  CHECK(*find_header(r.headers, "x-api-key") == "abc123");
  ApiKeyAuth prefixed{"k", ApiKeyPlacement::header, "Authorization", "ApiKey "};
  REQUIRE(set_api_key(r, prefixed, "abc123").ok());
  CHECK(*find_header(r.headers, "Authorization") == "ApiKey abc123");
  CHECK(r.url == "https://api.example.com/v1/x?y=1");

  ApiKeyAuth query_key{"k", ApiKeyPlacement::query, "api_key", ""};
  REQUIRE(set_api_key(r, query_key, "a/b+c").ok());
  CHECK(r.url == "https://api.example.com/v1/x?y=1&api_key=a%2Fb%2Bc");

  CHECK_FALSE(set_api_key(r, ApiKeyAuth{"k", ApiKeyPlacement::header, "Bad Name", ""}, "v").ok());
  CHECK_FALSE(set_api_key(r, ApiKeyAuth{"k", ApiKeyPlacement::query, "", ""}, "v").ok());
  CHECK_FALSE(set_api_key(r, header_key, "line\nbreak").ok());
}

TEST_CASE("hmac: the documented signed string and header, computed independently") {
  // Expected values computed with Python's hmac module over the documented format.
  auto r = request("POST", "https://hooks.example.com/v1/events?x=1#ignored", R"({"a":1})");
  HmacOptions opts;
  CHECK(hmac_signed_string(r, opts, 1700000000) == "1700000000.POST\n/v1/events?x=1\n{\"a\":1}");
  REQUIRE(sign_hmac(r, "whsec_test", opts, at(1700000000)).ok());
  CHECK(*find_header(r.headers, "X-Signature") ==
        "t=1700000000,v1=4fb19337d02648b5f11f19af528900bec1ef2de78ae0b36fc28e7c2994a7bb9b");

  HmacOptions body_only{"X-Hub-Signature", HmacPayload::body};
  CHECK(hmac_signed_string(r, body_only, 1700000000) == "1700000000.{\"a\":1}");
  REQUIRE(sign_hmac(r, "whsec_test", body_only, at(1700000000)).ok());
  CHECK(*find_header(r.headers, "X-Hub-Signature") ==
        "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");

  auto g = request("GET", "http://example.com");
  CHECK(hmac_signed_string(g, opts, 1700000000) == "1700000000.GET\n/\n");
  auto header = hmac_signature_header(g, "whsec_test", opts, at(1700000000));
  REQUIRE(header.ok());
  CHECK(header.value() ==
        "t=1700000000,v1=a66695e10b06248bc2fe72e56bbc872082d1328760e186041655adb50741abc5");

  // Signing again replaces the header; sub-second time floors.
  REQUIRE(sign_hmac(r, "whsec_test", opts, at(1700000000) + std::chrono::milliseconds(999)).ok());
  CHECK(find_header(r.headers, "X-Signature")->rfind("t=1700000000,", 0) == 0);
}

TEST_CASE("hmac: verify accepts the signer's header and rejects tampering") {
  auto r = request("POST", "https://hooks.example.com/v1/events", "payload");
  HmacOptions opts;
  REQUIRE(sign_hmac(r, "k1", opts, at(1700000000)).ok());
  std::string header = *find_header(r.headers, "X-Signature");

  CHECK(verify_hmac(r, header, "k1", opts, at(1700000100)).ok());
  CHECK(verify_hmac(r, header, "k1", opts, at(1699999900)).ok());  // clock behind
  // Several v1 entries (rotation), spaces after commas, uppercase hex, unknown keys.
  std::string v1 = header.substr(header.find("v1=") + 3);
  std::string upper = v1;
  for (char &c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(
      verify_hmac(r, "t=1700000000, v1=00ff, v0=x, v1=" + upper, "k1", opts, at(1700000000)).ok());

  auto fails = [&](const HttpRequest &req, std::string_view h, std::string_view secret,
                   int64_t now) {
    auto s = verify_hmac(req, h, secret, opts, at(now));
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find(v1) == std::string::npos);  // never the expected value
    return s.error().message;
  };
  CHECK(fails(r, header, "k2", 1700000000) == "hmac: signature does not match");
  CHECK(fails(r, header, "k1", 1700000301).find("301 s away") != std::string::npos);
  auto tampered = r;
  tampered.body = "payload!";
  CHECK(fails(tampered, header, "k1", 1700000000) == "hmac: signature does not match");
  auto other_path = r;
  other_path.url = "https://hooks.example.com/v1/events?x";
  CHECK(fails(other_path, header, "k1", 1700000000) == "hmac: signature does not match");
  CHECK(fails(r, "v1=" + v1, "k1", 1700000000).find("no t=") != std::string::npos);
  CHECK(fails(r, "t=1700000000", "k1", 1700000000).find("no v1=") != std::string::npos);
  CHECK(fails(r, "t=-5,v1=" + v1, "k1", 1700000000).find("unix time") != std::string::npos);
  CHECK(fails(r, "", "k1", 1700000000).find("no t=") != std::string::npos);
}

TEST_CASE("apply_auth: every scheme from configuration and a secret store") {
  MapSecretStore secrets{{"pw", "open sesame"},
                         {"tok", "mF_9.B5f-4.1JqM"},
                         {"key", "k/1"},
                         {"hook", "whsec_test"},
                         {"aws", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}};
  auto now = at(1700000000);
  auto r = request("POST", "https://hooks.example.com/v1/events?x=1", R"({"a":1})");

  auto apply = [&](const AuthConfig &c) {
    auto copy = r;
    auto s = apply_auth(copy, c, secrets, now);
    REQUIRE_MESSAGE(s.ok(), s.error().message);
    return copy;
  };
  CHECK(apply(NoAuth{}).headers.empty());
  CHECK(*find_header(apply(BasicAuth{"Aladdin", "pw"}).headers, "Authorization") ==
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  CHECK(*find_header(apply(BearerAuth{"tok"}).headers, "Authorization") ==
        "Bearer mF_9.B5f-4.1JqM");
  CHECK(*find_header(apply(ApiKeyAuth{"key", ApiKeyPlacement::header, "X-Api-Key", ""}).headers,
                     "X-Api-Key") == "k/1");
  CHECK(apply(ApiKeyAuth{"key", ApiKeyPlacement::query, "api_key", ""}).url ==
        "https://hooks.example.com/v1/events?x=1&api_key=k%2F1");
  CHECK(*find_header(apply(HmacAuth{"hook", {}}).headers, "X-Signature") ==
        "t=1700000000,v1=4fb19337d02648b5f11f19af528900bec1ef2de78ae0b36fc28e7c2994a7bb9b");
  auto signed_request =
      apply(SigV4Auth{"AKIDEXAMPLE", "aws", "", SigV4Options::for_service("us-east-1", "sqs")});
  REQUIRE(find_header(signed_request.headers, "Authorization"));
  CHECK(find_header(signed_request.headers, "Authorization")
            ->rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/sqs/aws4_request, "
                    "SignedHeaders=host;x-amz-date, Signature=",
                    0) == 0);
  CHECK(*find_header(signed_request.headers, "X-Amz-Date") == "20231114T221320Z");

  auto missing = r;
  auto s = apply_auth(missing, BearerAuth{"absent"}, secrets, now);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == ivr::Errc::not_found);
  CHECK(s.error().message.find("auth.bearer.token_secret: secret 'absent'") == 0);
}

TEST_CASE("no error text or description ever contains a secret value") {
  const std::string secret = "Sup3r-S3cret-Value";
  MapSecretStore secrets{
      {"s", secret}, {"spaced", "has space " + secret}, {"nl", secret + "\nX-Injected: 1"}};
  auto now = at(1700000000);
  auto check_error = [&](HttpRequest r, const AuthConfig &config) {
    auto s = apply_auth(r, config, secrets, now);
    REQUIRE_MESSAGE(!s.ok(), describe_auth(config));
    CAPTURE(s.error().message);
    CHECK(s.error().message.find(secret) == std::string::npos);
    CHECK(s.error().message.find("Sup3r") == std::string::npos);
    CHECK_FALSE(s.error().message.empty());
  };
  auto good = request("GET", "https://api.example.com/x");
  auto bad_url = request("GET", "ftp://api.example.com/" + secret);
  auto bad_escape = request("GET", "https://s3.amazonaws.com/b/%zz");

  // basic: a username that holds the password and a ':'.
  check_error(good, BasicAuth{"user:" + secret, "s"});
  // bearer: a token with a space or a line break.
  check_error(good, BearerAuth{"spaced"});
  check_error(good, BearerAuth{"nl"});
  // api key: a bad header name, a control character, a bad URL for the query form.
  check_error(good, ApiKeyAuth{"s", ApiKeyPlacement::header, "Bad Header", ""});
  check_error(good, ApiKeyAuth{"nl", ApiKeyPlacement::header, "X-Api-Key", ""});
  check_error(bad_url, ApiKeyAuth{"s", ApiKeyPlacement::query, "api_key", ""});
  // hmac: a bad header name, a bad URL.
  check_error(good, HmacAuth{"s", {"Bad Header", HmacPayload::request}});
  check_error(bad_url, HmacAuth{"s", {}});
  // sigv4: an empty region, a bad URL, a bad escape under S3 rules, a token with a line break.
  check_error(good, SigV4Auth{"AKID", "s", "", SigV4Options::for_service("", "sqs")});
  check_error(bad_url, SigV4Auth{"AKID", "s", "", SigV4Options::for_service("us-east-1", "sqs")});
  check_error(bad_escape, SigV4Auth{"AKID", "s", "", SigV4Options::for_service("us-east-1", "s3")});
  check_error(good, SigV4Auth{"AKID", "s", "nl", SigV4Options::for_service("us-east-1", "sqs")});
  auto bad_header = good;
  bad_header.headers.emplace_back("X-Note", secret + "\r\n");
  check_error(bad_header,
              SigV4Auth{"AKID", "s", "", SigV4Options::for_service("us-east-1", "sqs")});

  // Descriptions name secrets, never resolve them.
  const AuthConfig configs[] = {
      BasicAuth{"alice", "s"}, BearerAuth{"s"},
      ApiKeyAuth{"s", ApiKeyPlacement::header, "X-Api-Key", ""}, HmacAuth{"s", {}},
      SigV4Auth{"AKID", "s", "s", SigV4Options::for_service("us-east-1", "s3")}};
  for (const auto &c : configs) {
    std::string d = describe_auth(c);
    CAPTURE(d);
    CHECK(d.find(secret) == std::string::npos);
    CHECK(d.find("'s'") != std::string::npos);
  }
  CHECK(describe_auth(BasicAuth{"alice", "pbx.password"}) ==
        "basic (username alice, password from secret 'pbx.password')");
}

// ---- redaction ----

TEST_CASE("redact_headers: defaults, extra names, the scheme's headers") {
  Headers h{{"Authorization", "Bearer abc.def"},
            {"Proxy-Authorization", "Basic Zm9v"},
            {"cookie", "sid=1"},
            {"X-API-KEY", "k"},
            {"X-Amz-Security-Token", "t"},
            {"X-Signature", "t=1,v1=aa"},
            {"Content-Type", "application/json"},
            {"X-Custom-Key", "ck"},
            {"Authorization", "opaque"}};
  Headers r = redact_headers(h);
  REQUIRE(r.size() == h.size());
  CHECK(r[0].second == "Bearer [redacted]");
  CHECK(r[1].second == "Basic [redacted]");
  CHECK(r[2].second == "[redacted]");
  CHECK(r[3].second == "[redacted]");
  CHECK(r[4].second == "[redacted]");
  CHECK(r[5].second == "[redacted]");
  CHECK(r[6].second == "application/json");
  CHECK(r[7].second == "ck");
  CHECK(r[8].second == "[redacted]");
  CHECK(r[0].first == "Authorization");

  std::vector<std::string> extra{"x-custom-key"};
  CHECK(redact_headers(h, extra)[7].second == "[redacted]");
  CHECK(
      redact_headers(h, AuthConfig{ApiKeyAuth{"k", ApiKeyPlacement::header, "X-Custom-Key", ""}})[7]
          .second == "[redacted]");
  Headers sig{{"X-Hub-Signature", "t=1,v1=aa"}};
  CHECK(redact_headers(sig, AuthConfig{HmacAuth{"k", {"X-Hub-Signature", HmacPayload::body}}})[0]
            .second == "[redacted]");
  CHECK(redact_headers(sig)[0].second == "t=1,v1=aa");
}

TEST_CASE("redact_url: credential parameters and userinfo passwords") {
  CHECK(redact_url("https://user:pw@h.example.com:8443/p?a=1&api_key=K&Token=T&x#f") ==
        "https://user:[redacted]@h.example.com:8443/p?a=1&api_key=[redacted]&Token=[redacted]&x#f");
  std::vector<std::string> names{"appid"};
  CHECK(redact_url("http://h/p?appid=1&b=2", names) == "http://h/p?appid=[redacted]&b=2");
  CHECK(redact_url("http://h/p?my_key=1&b=2",
                   AuthConfig{ApiKeyAuth{"k", ApiKeyPlacement::query, "my_key", ""}}) ==
        "http://h/p?my_key=[redacted]&b=2");
  CHECK(redact_url("http://h/p?api%5Fkey=1") == "http://h/p?api%5Fkey=[redacted]");
  CHECK(redact_url("http://h/p") == "http://h/p");
  CHECK(redact_url("no url with secret") == "[redacted]");
  CHECK(scrub_secret("a xyz b xyz", "xyz") == "a [redacted] b [redacted]");
  CHECK(scrub_secret("abc", "") == "abc");
}
