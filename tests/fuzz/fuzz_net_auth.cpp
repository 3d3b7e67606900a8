// Fuzzes the parts of lib/net's authentication that read outside input: token endpoint
// responses, HMAC signature headers, base64/hex/percent decoding and URL splitting (the URL of a
// request to sign or to redact).
//
// Input layout: the first byte picks the HTTP status of the token response (byte * 2 + 100,
// so 100-610); the rest is the text under test, given to every reader.
//
// Checks: decoders round-trip what they accept (base64 and hex are strict, so accepted input is
// canonical up to hex case); a parsed token is non-empty Bearer; every error has a message;
// redact_url never returns an input's api_key value; signing never fails on a URL split_url
// accepts unless a percent-escape is bad.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/auth.h"
#include "net/crypto.h"
#include "net/oauth2.h"
#include "net/sigv4.h"

namespace {

using namespace ivr::net;

[[noreturn]] void fail(const char *what, std::string_view detail) {
  std::fprintf(stderr, "fuzz_net_auth: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

void check_error(const ivr::Error &e, const char *where) {
  if (e.message.empty()) fail("error without a message", where);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  int status = data[0] * 2 + 100;
  std::string_view text(reinterpret_cast<const char *>(data) + 1, size - 1);

  HttpResponse response;
  response.status = status;
  response.body = std::string(text);
  if (auto token = parse_token_response(response); token.ok()) {
    if (token->access_token.empty()) fail("empty access token accepted", text);
    if (status < 200 || status >= 300) fail("token accepted from a non-2xx answer", text);
  } else {
    check_error(token.error(), "parse_token_response");
  }

  if (auto b = base64_decode(text); b.ok()) {
    if (base64_encode(b.value()) != text) fail("base64 accepted a non-canonical text", text);
  } else {
    check_error(b.error(), "base64_decode");
  }
  if (auto h = hex_decode(text); h.ok()) {
    if (h->size() * 2 != text.size()) fail("hex length", text);
  }
  if (auto p = percent_decode(text); p.ok()) {
    auto again = percent_decode(percent_encode(p.value()));
    if (!again.ok() || again.value() != p.value()) fail("percent round trip", text);
  } else {
    check_error(p.error(), "percent_decode");
  }

  HttpRequest request;
  request.method = "POST";
  request.url = "https://example.com/hook";
  request.body = "b";
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  if (auto v = verify_hmac(request, text, "k", HmacOptions{}, now); !v.ok())
    check_error(v.error(), "verify_hmac");

  if (auto url = split_url(text); url.ok()) {
    std::string redacted = redact_url(text);
    (void)url->target();
    (void)url->host_header();
    HttpRequest r;
    r.url = std::string(text);
    SigV4Credentials creds{"AKID", "secret", ""};
    for (const char *service : {"sqs", "s3"}) {
      auto s = compute_sigv4(r, creds, SigV4Options::for_service("us-east-1", service), now);
      if (!s.ok()) {
        check_error(s.error(), "compute_sigv4");
        if (s.error().message.find("hex digits") == std::string::npos)
          fail("sigv4 refused an accepted URL", s.error().message);
      }
    }
    std::string with_key = r.url;
    if (auto q = set_query_param(with_key, "api_key", "SEKRIT-VALUE"); q.ok()) {
      if (text.find("SEKRIT-VALUE") == std::string_view::npos &&
          redact_url(with_key).find("SEKRIT-VALUE") != std::string::npos)
        fail("redact_url kept an api_key", with_key);
    } else {
      check_error(q.error(), "set_query_param");
    }
  } else {
    check_error(url.error(), "split_url");
    if (redact_url(text) != kRedacted) fail("redact_url of a non-URL", text);
  }
  return 0;
}
