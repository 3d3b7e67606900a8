// Webhook signatures (see webhook_signature.h and docs/net.md).
#include "net/webhook_signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <memory>
#include <vector>

#include "common/text.h"

namespace ivr::net {

namespace {

constexpr size_t kMacBytes = 32;
constexpr size_t kMaxHeaderBytes = 8192;  // a hostile header costs little
constexpr size_t kMaxSignatures = 16;

using Mac = std::array<unsigned char, kMacBytes>;

struct MacDeleter {
  void operator()(EVP_MAC *m) const { EVP_MAC_free(m); }
};
struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX *c) const { EVP_MAC_CTX_free(c); }
};

// HMAC-SHA256(secret, "<t>." + body), streamed so the body is not copied.
Result<Mac> hmac_v1(std::string_view secret, int64_t timestamp, std::string_view body) {
  if (secret.empty()) return Error{Errc::invalid_argument, "secret: must not be empty"};
  std::unique_ptr<EVP_MAC, MacDeleter> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return Error{Errc::internal, "webhook signature: OpenSSL has no HMAC"};
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return Error{Errc::no_memory, "webhook signature: EVP_MAC_CTX_new failed"};
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  std::string prefix = std::to_string(timestamp) + ".";
  Mac out{};
  size_t out_len = 0;
  bool ok = EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char *>(secret.data()),
                         secret.size(), params) == 1 &&
            EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char *>(prefix.data()),
                           prefix.size()) == 1 &&
            EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char *>(body.data()),
                           body.size()) == 1 &&
            EVP_MAC_final(ctx.get(), out.data(), &out_len, out.size()) == 1 && out_len == kMacBytes;
  if (!ok) return Error{Errc::internal, "webhook signature: HMAC-SHA256 failed"};
  return out;
}

std::string to_hex(const Mac &mac) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * mac.size());
  for (unsigned char b : mac) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

using text::trim;

SignatureCheck fail(SignatureErrc e, std::string message) {
  return {e, std::move(message)};
}

}  // namespace

Result<std::string> webhook_signature_v1(std::string_view secret, int64_t timestamp,
                                         std::string_view body) {
  auto mac = hmac_v1(secret, timestamp, body);
  if (!mac) return mac.error();
  return to_hex(*mac);
}

Result<std::string> webhook_signature_header(std::span<const std::string> secrets,
                                             int64_t timestamp, std::string_view body) {
  if (secrets.empty()) return Error{Errc::invalid_argument, "secrets: at least one is needed"};
  std::string header = "t=" + std::to_string(timestamp);
  for (size_t i = 0; i < secrets.size(); ++i) {
    auto mac = hmac_v1(secrets[i], timestamp, body);
    if (!mac) {
      Error e = mac.error();
      e.message = "secrets[" + std::to_string(i) + "]: " + e.message;
      return e;
    }
    header += ",v1=" + to_hex(*mac);
  }
  return header;
}

Result<Headers> webhook_headers(std::string_view event_id, std::string_view event_type,
                                int64_t timestamp, std::string_view body,
                                std::span<const std::string> secrets) {
  auto signature = webhook_signature_header(secrets, timestamp, body);
  if (!signature) return signature.error();
  return Headers{
      {"Content-Type", "application/json"},
      {std::string(kWebhookEventIdHeader), std::string(event_id)},
      {std::string(kWebhookEventTypeHeader), std::string(event_type)},
      {std::string(kWebhookSignatureHeader), std::move(*signature)},
  };
}

const char *signature_errc_name(SignatureErrc e) {
  switch (e) {
    case SignatureErrc::none:
      return "none";
    case SignatureErrc::malformed:
      return "malformed";
    case SignatureErrc::stale:
      return "stale";
    case SignatureErrc::mismatch:
      return "mismatch";
  }
  return "unknown";
}

SignatureCheck verify_webhook_signature(std::string_view header_value, std::string_view body,
                                        std::span<const std::string> secrets, int64_t now_seconds,
                                        int64_t tolerance_seconds) {
  if (secrets.empty()) return fail(SignatureErrc::mismatch, "secrets: none configured");
  if (header_value.size() > kMaxHeaderBytes)
    return fail(SignatureErrc::malformed, "X-Ivr-Signature: longer than 8192 bytes");

  bool have_t = false;
  int64_t t = 0;
  std::vector<Mac> signatures;
  std::string_view rest = header_value;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    size_t eq = item.find('=');
    if (item.empty() || eq == std::string_view::npos || eq == 0)
      return fail(SignatureErrc::malformed,
                  "X-Ivr-Signature: expected key=value items separated by commas");
    std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "t") {
      if (have_t) return fail(SignatureErrc::malformed, "t: given more than once");
      if (value.empty() || value.size() > 18)
        return fail(SignatureErrc::malformed, "t: must be 1 to 18 decimal digits");
      for (char c : value) {
        if (c < '0' || c > '9')
          return fail(SignatureErrc::malformed, "t: must be 1 to 18 decimal digits");
        t = t * 10 + (c - '0');
      }
      have_t = true;
    } else if (key == "v1") {
      if (signatures.size() >= kMaxSignatures)
        return fail(SignatureErrc::malformed, "v1: more than 16 signatures");
      if (value.size() != 2 * kMacBytes)
        return fail(SignatureErrc::malformed, "v1: must be 64 hex digits");
      Mac mac{};
      for (size_t i = 0; i < kMacBytes; ++i) {
        int hi = hex_digit(value[2 * i]), lo = hex_digit(value[2 * i + 1]);
        if (hi < 0 || lo < 0) return fail(SignatureErrc::malformed, "v1: must be 64 hex digits");
        mac[i] = static_cast<unsigned char>(hi << 4 | lo);
      }
      signatures.push_back(mac);
    }  // other schemes: ignored
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (!have_t) return fail(SignatureErrc::malformed, "t: missing");
  if (signatures.empty()) return fail(SignatureErrc::malformed, "v1: missing");

  int64_t skew = now_seconds > t ? now_seconds - t : t - now_seconds;
  if (skew > tolerance_seconds)
    return fail(SignatureErrc::stale, "t: " + std::to_string(skew) +
                                          " s away from now, tolerance " +
                                          std::to_string(tolerance_seconds) + " s");

  bool match = false;
  for (size_t i = 0; i < secrets.size(); ++i) {
    auto expected = hmac_v1(secrets[i], t, body);
    if (!expected) {
      return fail(SignatureErrc::mismatch,
                  "secrets[" + std::to_string(i) + "]: " + expected.error().message);
    }
    for (const Mac &got : signatures)  // no early exit: the time does not depend on which
      match |= CRYPTO_memcmp(expected->data(), got.data(), kMacBytes) == 0;
  }
  if (!match) return fail(SignatureErrc::mismatch, "v1: no signature matches the secrets");
  return {};
}

}  // namespace ivr::net
