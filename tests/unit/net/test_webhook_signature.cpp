// Webhook signatures: known answers computed outside libivr, and verification.
#include <doctest/doctest.h>

#include <cctype>
#include <string>
#include <vector>

#include "net/webhook_signature.h"

using namespace ivr::net;

namespace {

// Known answers computed with Python's hmac module and checked with
// `printf '%s' '1700000000.<body>' | openssl dgst -sha256 -hmac whsec_test_1`.
const std::string kBody = R"({"event":"call.ended","call_id":"c-42","duration_s":37})";
constexpr int64_t kT = 1700000000;
const std::string kMac1 = "a6e75591690e4f600f968956fdafba49353c02b2552f467eca7b333f4592915c";
const std::string kMac2 = "61dcdbd4baf7a8b0f14523eb69f2a5c693c31d763c09c7a153d7090637fe435c";

}  // namespace

TEST_CASE("webhook signature: known answers") {
  auto one = webhook_signature_v1("whsec_test_1", kT, kBody);
  REQUIRE(one.ok());
  CHECK(*one == kMac1);
  auto two = webhook_signature_v1("whsec_test_2", kT, kBody);
  REQUIRE(two.ok());
  CHECK(*two == kMac2);
  auto tiny = webhook_signature_v1("k", 0, "");
  REQUIRE(tiny.ok());
  CHECK(*tiny == "6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7");

  std::vector<std::string> secrets{"whsec_test_1", "whsec_test_2"};
  auto header = webhook_signature_header(secrets, kT, kBody);
  REQUIRE(header.ok());
  CHECK(*header == "t=1700000000,v1=" + kMac1 + ",v1=" + kMac2);
}

TEST_CASE("webhook signature: the delivery headers") {
  std::vector<std::string> secrets{"whsec_test_1"};
  auto headers =
      webhook_headers("0190a1b2c3d4e5f60718293a4b5c6d7e", "call.ended", kT, kBody, secrets);
  REQUIRE(headers.ok());
  Headers want{{"Content-Type", "application/json"},
               {"X-Ivr-Event-Id", "0190a1b2c3d4e5f60718293a4b5c6d7e"},
               {"X-Ivr-Event-Type", "call.ended"},
               {"X-Ivr-Signature", "t=1700000000,v1=" + kMac1}};
  CHECK(*headers == want);
}

TEST_CASE("webhook signature: bad signing input") {
  std::vector<std::string> none;
  auto h = webhook_signature_header(none, kT, kBody);
  REQUIRE_FALSE(h.ok());
  CHECK(h.error().code == ivr::Errc::invalid_argument);
  std::vector<std::string> with_empty{"ok", ""};
  auto h2 = webhook_signature_header(with_empty, kT, kBody);
  REQUIRE_FALSE(h2.ok());
  CHECK(h2.error().message.find("secrets[1]") != std::string::npos);
  CHECK_FALSE(webhook_signature_v1("", kT, kBody).ok());
}

TEST_CASE("webhook signature: verify accepts and rejects") {
  std::vector<std::string> secret1{"whsec_test_1"};
  std::string header = "t=1700000000,v1=" + kMac1;

  SUBCASE("accepts the right secret within the tolerance, either side of now") {
    CHECK(verify_webhook_signature(header, kBody, secret1, kT));
    CHECK(verify_webhook_signature(header, kBody, secret1, kT + 300));
    CHECK(verify_webhook_signature(header, kBody, secret1, kT - 300));
    CHECK(verify_webhook_signature(" t=1700000000 , v1=" + kMac1 + " ", kBody, secret1, kT));
    std::string upper = kMac1;
    for (char &c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(verify_webhook_signature("t=1700000000,v1=" + upper, kBody, secret1, kT));
  }
  SUBCASE("wrong secret") {
    std::vector<std::string> other{"whsec_other"};
    auto r = verify_webhook_signature(header, kBody, other, kT);
    CHECK(r.error == SignatureErrc::mismatch);
  }
  SUBCASE("stale or future timestamp") {
    auto late = verify_webhook_signature(header, kBody, secret1, kT + 301);
    CHECK(late.error == SignatureErrc::stale);
    CHECK(late.message.find("t:") == 0);
    auto early = verify_webhook_signature(header, kBody, secret1, kT - 301);
    CHECK(early.error == SignatureErrc::stale);
    CHECK(verify_webhook_signature(header, kBody, secret1, kT + 1000, 1000));
  }
  SUBCASE("tampered body or timestamp") {
    std::string body = kBody;
    body[body.size() - 2] = '8';
    CHECK(verify_webhook_signature(header, body, secret1, kT).error == SignatureErrc::mismatch);
    CHECK(verify_webhook_signature("t=1700000001,v1=" + kMac1, kBody, secret1, kT).error ==
          SignatureErrc::mismatch);
  }
  SUBCASE("secret rotation: several v1 values and several secrets") {
    std::string both = "t=1700000000,v1=" + kMac1 + ",v1=" + kMac2;
    std::vector<std::string> only_new{"whsec_test_2"};
    std::vector<std::string> only_old{"whsec_test_1"};
    std::vector<std::string> receiver_both{"whsec_unrelated", "whsec_test_2"};
    CHECK(verify_webhook_signature(both, kBody, only_new, kT));
    CHECK(verify_webhook_signature(both, kBody, only_old, kT));
    CHECK(verify_webhook_signature(header, kBody, receiver_both, kT).error ==
          SignatureErrc::mismatch);
    CHECK(verify_webhook_signature("t=1700000000,v1=" + kMac2, kBody, receiver_both, kT));
    // Unknown schemes are skipped.
    CHECK(verify_webhook_signature("t=1700000000,v2=zzz,v1=" + kMac1, kBody, secret1, kT));
  }
  SUBCASE("malformed headers name the field") {
    struct Case {
      std::string header;
      std::string field;
    };
    std::vector<Case> cases{
        {"", "X-Ivr-Signature"},
        {"v1=" + kMac1, "t:"},
        {"t=1700000000", "v1:"},
        {"t=1700000000,v2=abc", "v1:"},
        {"t=abc,v1=" + kMac1, "t:"},
        {"t=-5,v1=" + kMac1, "t:"},
        {"t=1,t=2,v1=" + kMac1, "t:"},
        {"t=1700000000,v1=abc", "v1:"},
        {"t=1700000000,v1=" + kMac1.substr(0, 63) + "g", "v1:"},
        {"t=1700000000,,v1=" + kMac1, "X-Ivr-Signature"},
        {"t=1700000000,v1", "X-Ivr-Signature"},
        {"t=99999999999999999999,v1=" + kMac1, "t:"},
        {std::string(9000, 'a'), "X-Ivr-Signature"},
    };
    for (const auto &c : cases) {
      auto r = verify_webhook_signature(c.header, kBody, secret1, kT);
      INFO(c.header.substr(0, 80));
      CHECK(r.error == SignatureErrc::malformed);
      CHECK(r.message.find(c.field) == 0);
    }
  }
  SUBCASE("no secrets configured") {
    std::vector<std::string> none;
    CHECK(verify_webhook_signature(header, kBody, none, kT).error == SignatureErrc::mismatch);
  }
}
