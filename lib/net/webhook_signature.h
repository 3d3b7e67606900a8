// Webhook signatures: how a receiver knows a request came from us and was not replayed.
//
//   X-Ivr-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>[,v1=...]
//   X-Ivr-Event-Id:  <spool record id>   (the idempotency id: the same on every retry)
//   X-Ivr-Event-Type: <event type>
//
// While a secret is being rotated the sender signs with the old and the new one, so the
// header carries one v1 per secret; a receiver accepts the request when any v1 matches any
// of its secrets. Unknown schemes (v2=...) are ignored, so a later scheme can be added
// beside v1 without breaking receivers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/http_client.h"

namespace ivr::net {

inline constexpr std::string_view kWebhookSignatureHeader = "X-Ivr-Signature";
inline constexpr std::string_view kWebhookEventIdHeader = "X-Ivr-Event-Id";
inline constexpr std::string_view kWebhookEventTypeHeader = "X-Ivr-Event-Type";
inline constexpr int64_t kWebhookDefaultToleranceSeconds = 300;

// Lowercase hex HMAC-SHA256(secret, "<timestamp>." + body). invalid_argument for an empty
// secret; internal if OpenSSL fails.
Result<std::string> webhook_signature_v1(std::string_view secret, int64_t timestamp,
                                         std::string_view body);

// "t=<timestamp>,v1=<hex>" with one v1 per secret, in the order given.
Result<std::string> webhook_signature_header(std::span<const std::string> secrets,
                                             int64_t timestamp, std::string_view body);

// Every header a delivery carries: Content-Type (application/json), X-Ivr-Event-Id,
// X-Ivr-Event-Type and X-Ivr-Signature.
Result<Headers> webhook_headers(std::string_view event_id, std::string_view event_type,
                                int64_t timestamp, std::string_view body,
                                std::span<const std::string> secrets);

enum class SignatureErrc : uint8_t {
  none,
  malformed,  // the header does not parse (the message names the field)
  stale,      // t is further than the tolerance from now (a replay, or a wrong clock)
  mismatch,   // no v1 matches any secret (wrong secret or a modified body)
};
const char *signature_errc_name(SignatureErrc e);  // "none", "malformed", ...

struct SignatureCheck {
  SignatureErrc error = SignatureErrc::none;
  std::string message;
  explicit operator bool() const { return error == SignatureErrc::none; }
};

// Checks an X-Ivr-Signature value against the raw body as received. Accepts when
// |now - t| <= tolerance and some v1 equals HMAC-SHA256(secret, "<t>." + body) for some
// secret; MACs are compared in constant time.
SignatureCheck verify_webhook_signature(
    std::string_view header_value, std::string_view body, std::span<const std::string> secrets,
    int64_t now_seconds, int64_t tolerance_seconds = kWebhookDefaultToleranceSeconds);

}  // namespace ivr::net
