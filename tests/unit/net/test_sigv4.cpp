// AWS Signature Version 4 against AWS's published vectors:
// - the SigV4 test suite (aws-sig-v4-test-suite), transcribed under tests/data/net/sigv4/ from
//   awslabs/aws-c-auth tests/aws-signing-test-suite/v4 (see the README there);
// - the signing-key derivation example of the AWS General Reference ("Examples of how to derive
//   a signing key for Signature Version 4": 20120215 / us-east-1 / iam);
// - the S3 examples of "Signature Calculations for the Authorization Header: Transferring
//   Payload in a Single Chunk" (AmazonS3/latest/API/sig-v4-header-based-auth.html).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/json.h"
#include "net/crypto.h"
#include "net/sigv4.h"

using namespace ivr::net;
using namespace std::chrono;

namespace {

std::string read_text(const std::filesystem::path &p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read ", p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string *find_header(const Headers &headers, std::string_view name) {
  for (const auto &[n, v] : headers) {
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < n.size(); ++i)
      same &= std::tolower(static_cast<unsigned char>(n[i])) ==
              std::tolower(static_cast<unsigned char>(name[i]));
    if (same) return &v;
  }
  return nullptr;
}

size_t count_header(const Headers &headers, std::string_view name) {
  size_t n = 0;
  for (const auto &h : headers)
    if (h.first.size() == name.size() &&
        std::equal(h.first.begin(), h.first.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        }))
      ++n;
  return n;
}

// A request file of the suite: "METHOD path HTTP/1.1", "Name:value" lines, a blank line, body.
struct SuiteRequest {
  std::string method, path;
  Headers headers;
  std::string body;
};

SuiteRequest parse_suite_request(const std::string &text) {
  SuiteRequest r;
  size_t eol = text.find('\n');
  std::string line = text.substr(0, eol);
  size_t sp = line.find(' ');
  size_t proto = line.rfind(" HTTP/1.1");
  REQUIRE(sp != std::string::npos);
  REQUIRE(proto != std::string::npos);
  r.method = line.substr(0, sp);
  r.path = line.substr(sp + 1, proto - sp - 1);
  size_t pos = eol == std::string::npos ? text.size() : eol + 1;
  while (pos < text.size()) {
    eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty()) {
      if (pos < text.size()) r.body = text.substr(pos);
      break;
    }
    size_t colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  return r;
}

system_clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s};
}

}  // namespace

TEST_CASE("sigv4: signing key derivation, AWS General Reference example") {
  const std::string secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  // Each step of kSecret -> kDate -> kRegion -> kService -> kSigning as AWS prints it.
  std::string k_date = hmac_sha256("AWS4" + secret, "20120215");
  CHECK(hex_encode(k_date) == "969fbb94feb542b71ede6f87fe4d5fa29c789342b0f407474670f0c2489e0a0d");
  std::string k_region = hmac_sha256(k_date, "us-east-1");
  CHECK(hex_encode(k_region) == "69daa0209cd9c5ff5c8ced464a696fd4252e981430b10e3d3fd8e2f197d7a70c");
  std::string k_service = hmac_sha256(k_region, "iam");
  CHECK(hex_encode(k_service) ==
        "f72cfd46f26bc4643f06a11eabb6c0ba18780c19a8da0c31ace671265e3c87fa");
  CHECK(hex_encode(sigv4_signing_key(secret, "20120215", "us-east-1", "iam")) ==
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST_CASE("sigv4: X-Amz-Date format") {
  CHECK(sigv4_amz_date(utc(2015, 8, 30, 12, 36, 0)) == "20150830T123600Z");
  CHECK(sigv4_amz_date(utc(2015, 8, 30, 12, 36, 0) + milliseconds(999)) == "20150830T123600Z");
  CHECK(sigv4_amz_date(utc(2000, 1, 2, 3, 4, 5)) == "20000102T030405Z");
}

TEST_CASE("sigv4: AWS SigV4 test suite, every stage") {
  const std::filesystem::path root = std::filesystem::path(IVR_TEST_DATA_DIR) / "net" / "sigv4";
  std::vector<std::filesystem::path> cases;
  for (const auto &entry : std::filesystem::directory_iterator(root))
    if (entry.is_directory()) cases.push_back(entry.path());
  std::sort(cases.begin(), cases.end());
  REQUIRE(cases.size() >= 30);

  for (const auto &dir : cases) {
    const std::string name = dir.filename().string();
    CAPTURE(name);
    auto context = ivr::json::parse(read_text(dir / "context.json"));
    REQUIRE(context.ok());
    const auto &ctx = context->root();
    const auto *creds = ctx.find("credentials");
    REQUIRE(creds);

    SigV4Credentials credentials;
    credentials.access_key_id = creds->find("access_key_id")->string;
    credentials.secret_access_key = creds->find("secret_access_key")->string;
    if (const auto *token = creds->find("token")) credentials.session_token = token->string;
    SigV4Options options =
        SigV4Options::for_service(ctx.find("region")->string, ctx.find("service")->string);
    options.normalize_path = ctx.find("normalize")->boolean;
    options.content_sha256_header = ctx.find("sign_body")->boolean;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    REQUIRE(std::sscanf(ctx.find("timestamp")->string.c_str(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d,
                        &h, &mi, &s) == 6);
    auto when = utc(y, static_cast<unsigned>(mo), static_cast<unsigned>(d), h, mi, s);

    SuiteRequest suite = parse_suite_request(read_text(dir / "request.txt"));
    HttpRequest request;
    request.method = suite.method;
    request.body = suite.body;
    std::string host;
    for (const auto &[n, v] : suite.headers) {
      if (n == "Host")
        host = v;
      else
        request.headers.emplace_back(n, v);
    }
    REQUIRE_FALSE(host.empty());
    request.url = "https://" + host + suite.path;

    auto sig = compute_sigv4(request, credentials, options, when);
    REQUIRE_MESSAGE(sig.ok(), sig.error().message);
    CHECK(sig->canonical_request == read_text(dir / "header-canonical-request.txt"));
    CHECK(sig->string_to_sign == read_text(dir / "header-string-to-sign.txt"));
    CHECK(sig->signature == read_text(dir / "header-signature.txt"));

    // A Host header in the request signs the same as the one derived from the URL.
    HttpRequest with_host = request;
    with_host.headers.emplace_back("Host", host);
    auto sig2 = compute_sigv4(with_host, credentials, options, when);
    REQUIRE(sig2.ok());
    CHECK(sig2->signature == sig->signature);

    // The signed request carries the headers AWS lists, with the same values.
    REQUIRE(sign_sigv4(request, credentials, options, when).ok());
    SuiteRequest expected = parse_suite_request(read_text(dir / "header-signed-request.txt"));
    for (std::string_view added :
         {"X-Amz-Date", "Authorization", "X-Amz-Security-Token", "x-amz-content-sha256"}) {
      CAPTURE(added);
      const std::string *want = find_header(expected.headers, added);
      const std::string *got = find_header(request.headers, added);
      REQUIRE((want == nullptr) == (got == nullptr));
      if (want) CHECK(*got == *want);
    }
    CHECK(*find_header(request.headers, "Authorization") == sig->authorization);
  }
}

TEST_CASE("sigv4: S3 examples from the S3 API reference") {
  SigV4Credentials creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  SigV4Options s3 = SigV4Options::for_service("us-east-1", "s3");
  CHECK_FALSE(s3.normalize_path);
  CHECK_FALSE(s3.double_encode_path);
  CHECK(s3.content_sha256_header);
  auto when = utc(2013, 5, 24, 0, 0, 0);
  const std::string empty_hash = sha256_hex("");

  SUBCASE("GET Object with a Range header") {
    HttpRequest r;
    r.url = "https://examplebucket.s3.amazonaws.com/test.txt";
    r.headers.emplace_back("Range", "bytes=0-9");
    auto sig = compute_sigv4(r, creds, s3, when);
    REQUIRE(sig.ok());
    CHECK(sig->canonical_request ==
          "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
          "x-amz-content-sha256:" +
              empty_hash + "\nx-amz-date:20130524T000000Z\n\n" +
              "host;range;x-amz-content-sha256;x-amz-date\n" + empty_hash);
    CHECK(sha256_hex(sig->canonical_request) ==
          "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    CHECK(sig->signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CHECK(sig->authorization ==
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
          "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
          "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  }
  SUBCASE("PUT Object: '$' in the key, a body, more headers") {
    HttpRequest r;
    r.method = "PUT";
    r.url = "https://examplebucket.s3.amazonaws.com/test$file.text";
    r.body = "Welcome to Amazon S3.";
    r.headers.emplace_back("Date", "Fri, 24 May 2013 00:00:00 GMT");
    r.headers.emplace_back("x-amz-storage-class", "REDUCED_REDUNDANCY");
    auto sig = compute_sigv4(r, creds, s3, when);
    REQUIRE(sig.ok());
    CHECK(sig->payload_hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    CHECK(sig->canonical_request.rfind("PUT\n/test%24file.text\n\n", 0) == 0);
    CHECK(sig->signed_headers == "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
    CHECK(sig->signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  }
  SUBCASE("GET Bucket lifecycle: a query key without a value") {
    HttpRequest r;
    r.url = "https://examplebucket.s3.amazonaws.com/?lifecycle";
    auto sig = compute_sigv4(r, creds, s3, when);
    REQUIRE(sig.ok());
    CHECK(sig->canonical_request.rfind("GET\n/\nlifecycle=\n", 0) == 0);
    CHECK(sig->signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  }
  SUBCASE("GET Bucket (list objects): query parameters sorted") {
    HttpRequest r;
    r.url = "https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2";
    auto sig = compute_sigv4(r, creds, s3, when);
    REQUIRE(sig.ok());
    CHECK(sig->canonical_request.rfind("GET\n/\nmax-keys=2&prefix=J\n", 0) == 0);
    CHECK(sig->signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  }
}

TEST_CASE("sigv4: canonical URI and query rules beyond the suite") {
  SigV4Credentials creds{"AKID", "secret", ""};
  auto when = utc(2015, 8, 30, 12, 36, 0);
  auto creq = [&](const std::string &url, const SigV4Options &o) {
    HttpRequest r;
    r.url = url;
    auto sig = compute_sigv4(r, creds, o, when);
    REQUIRE_MESSAGE(sig.ok(), sig.error().message);
    std::string c = sig->canonical_request;
    size_t a = c.find('\n');
    size_t b = c.find('\n', a + 1);
    size_t e = c.find('\n', b + 1);
    return std::make_pair(c.substr(a + 1, b - a - 1), c.substr(b + 1, e - b - 1));
  };
  SigV4Options api = SigV4Options::for_service("us-east-1", "execute-api");
  SigV4Options s3 = SigV4Options::for_service("us-east-1", "s3");
  // Double encoding outside S3: the path as sent is encoded once more.
  CHECK(creq("https://h/documents%20and%20settings/", api).first ==
        "/documents%2520and%2520settings/");
  CHECK(creq("https://h/documents%20and%20settings/", s3).first == "/documents%20and%20settings/");
  CHECK(creq("https://h/a%2fb", s3).first == "/a%2Fb");  // an escaped '/' stays escaped
  CHECK(creq("https://h/a b/$", s3).first == "/a%20b/%24");
  CHECK(creq("https://h/a/./b/../c/", api).first == "/a/c/");
  CHECK(creq("https://h/a/./b/../c/", s3).first == "/a/./b/../c/");
  CHECK(creq("https://h", api).first == "/");
  CHECK(creq("https://h/a/b/.", api).first == "/a/b/");
  CHECK(creq("https://h/..", api).first == "/");
  // Query: decoded then encoded, sorted by name then value, '+' is a literal plus.
  CHECK(creq("https://h/?b=2&a=2&a=1&c", api).second == "a=1&a=2&b=2&c=");
  CHECK(creq("https://h/?q=a+b&r=a%20b&s=%7e*", api).second == "q=a%2Bb&r=a%20b&s=~%2A");
  CHECK(creq("https://h/?&&x=1&", api).second == "x=1");
  CHECK(creq("https://h/?", api).second.empty());
  CHECK(creq("https://h/?x=1#frag", api).second == "x=1");
}

TEST_CASE("sigv4: headers, re-signing, host derivation, payload options") {
  SigV4Credentials creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok"};
  SigV4Options o = SigV4Options::for_service("us-east-1", "service");
  auto when = utc(2015, 8, 30, 12, 36, 0);
  HttpRequest r;
  r.method = "POST";
  r.url = "http://localhost:8080/x";
  r.body = "{}";
  r.headers = {{"User-Agent", "libivr"},
               {"Content-Type", "application/json"},
               {"X-Amz-Date", "19990101T000000Z"},
               {"authorization", "old"},
               {"X-Amz-Security-Token", "old"},
               {"X-Multi", " a  b "},
               {"x-multi", "c"}};
  auto sig = compute_sigv4(r, creds, o, when);
  REQUIRE(sig.ok());
  CHECK(sig->signed_headers == "content-type;host;x-amz-date;x-amz-security-token;x-multi");
  CHECK(sig->canonical_request.find("host:localhost:8080\n") != std::string::npos);
  CHECK(sig->canonical_request.find("x-multi:a b,c\n") != std::string::npos);
  CHECK(sig->canonical_request.find("x-amz-security-token:tok\n") != std::string::npos);
  CHECK(sig->payload_hash == sha256_hex("{}"));
  CHECK(sig->canonical_request.find(creds.secret_access_key) == std::string::npos);
  CHECK(sig->string_to_sign.find(creds.secret_access_key) == std::string::npos);

  REQUIRE(sign_sigv4(r, creds, o, when).ok());
  REQUIRE(sign_sigv4(r, creds, o, when).ok());  // a retry signs again
  CHECK(count_header(r.headers, "authorization") == 1);
  CHECK(count_header(r.headers, "x-amz-date") == 1);
  CHECK(count_header(r.headers, "x-amz-security-token") == 1);
  CHECK(*find_header(r.headers, "x-amz-date") == "20150830T123600Z");
  CHECK(*find_header(r.headers, "x-amz-security-token") == "tok");
  CHECK(*find_header(r.headers, "authorization") == sig->authorization);
  CHECK(count_header(r.headers, "x-amz-content-sha256") == 0);

  // Default ports are left out of the signed host.
  HttpRequest d;
  d.url = "https://example.amazonaws.com:443/";
  auto ds = compute_sigv4(d, creds, o, when);
  REQUIRE(ds.ok());
  CHECK(ds->canonical_request.find("host:example.amazonaws.com\n") != std::string::npos);

  SigV4Options unsigned_payload = o;
  unsigned_payload.payload_hash = "UNSIGNED-PAYLOAD";
  unsigned_payload.content_sha256_header = true;
  auto us = compute_sigv4(d, creds, unsigned_payload, when);
  REQUIRE(us.ok());
  CHECK(us->canonical_request.find("x-amz-content-sha256:UNSIGNED-PAYLOAD\n") != std::string::npos);
  CHECK(us->canonical_request.substr(us->canonical_request.size() - 16) == "UNSIGNED-PAYLOAD");
}

TEST_CASE("sigv4: errors name the field") {
  SigV4Credentials creds{"AKID", "secret", ""};
  auto when = utc(2015, 8, 30, 12, 36, 0);
  HttpRequest r;
  r.url = "https://h/";
  auto err = [&](const HttpRequest &req, SigV4Credentials c, SigV4Options o) {
    auto s = compute_sigv4(req, c, o, when);
    REQUIRE_FALSE(s.ok());
    return s.error().message;
  };
  auto o = SigV4Options::for_service("us-east-1", "sqs");
  CHECK(err(r, {"", "secret", ""}, o) == "sigv4.access_key_id: empty");
  CHECK(err(r, {"AKID", "", ""}, o) == "sigv4.secret_access_key: empty");
  CHECK(err(r, creds, SigV4Options::for_service("", "sqs")) == "sigv4.region: empty");
  CHECK(err(r, creds, SigV4Options::for_service("us/east", "sqs")) ==
        "sigv4.region: contains '/' or white space");
  CHECK(err(r, creds, SigV4Options::for_service("us-east-1", "")) == "sigv4.service: empty");
  HttpRequest bad = r;
  bad.url = "ftp://h/";
  CHECK(err(bad, creds, o) == "sigv4: url: scheme must be http or https");
  bad = r;
  bad.url = "https://h/?a=%zz";
  CHECK(err(bad, creds, o).find("sigv4: url query: ") == 0);
  bad = r;
  bad.headers.emplace_back("X-A", "1\r\nX-B: 2");
  CHECK(err(bad, creds, o) == "sigv4: header X-A: value contains a line break");
  bad = r;
  bad.headers.emplace_back("", "v");
  CHECK(err(bad, creds, o) == "sigv4: a request header has no name");
}
