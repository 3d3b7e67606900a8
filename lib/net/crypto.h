// Hashing, MAC and text encodings for request signing, over OpenSSL libcrypto 3.0.
// Byte strings travel as std::string (any bytes, not only text).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace ivr::net {

// SHA-256 of data: 32 raw bytes, or 64 lowercase hex digits.
std::string sha256(std::string_view data);
std::string sha256_hex(std::string_view data);

// HMAC-SHA256(key, data): 32 raw bytes, lowercase hex, or standard base64 with padding.
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
std::string hmac_sha256_base64(std::string_view key, std::string_view data);

// Lowercase hex of any bytes, and back (either case accepted; odd length or a non-hex digit is
// an Errc::parse error naming the offset).
std::string hex_encode(std::string_view bytes);
Result<std::string> hex_decode(std::string_view hex);

// Standard base64 (RFC 4648 section 4) with '=' padding. Decoding is strict: the length must be
// a multiple of 4, padding only at the end, no whitespace, and unused bits zero.
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

// Compares in time that depends only on the lengths, never on where the bytes differ: use it for
// signatures and tokens.
bool constant_time_equal(std::string_view a, std::string_view b);

// RFC 3986 percent-encoding as AWS signs it: every byte but A-Z a-z 0-9 - _ . ~ becomes %XX
// (uppercase hex). With keep_slash, '/' also stays as is (paths).
std::string percent_encode(std::string_view bytes, bool keep_slash = false);
// Decodes %XX (either case); '+' stays '+'. A '%' not followed by two hex digits is an
// Errc::parse error naming the offset.
Result<std::string> percent_decode(std::string_view text);
// application/x-www-form-urlencoded (HTML, RFC 6749 appendix B): like percent_encode, but a
// space becomes '+'.
std::string form_urlencode(std::string_view bytes);

// The parts of an http(s) URL that signing needs, as views into the URL text.
struct UrlParts {
  std::string_view scheme;     // "http" or "https", as written
  std::string_view authority;  // userinfo@host:port as written
  std::string_view host;       // host without userinfo and port; IPv6 keeps its brackets
  std::string_view port;       // "" when absent
  std::string_view path;       // "" or starting with '/'
  std::string_view query;      // after '?', without it; "" when absent
  bool has_query = false;      // a '?' was present (even with an empty query)
  std::string_view fragment;   // after '#', without it
  // host[:port] as a client sends it in the Host header: the port is left out when it is the
  // scheme's default (80, 443).
  std::string host_header() const;
  // path (or "/") plus "?query" when has_query: the request target on the request line.
  std::string target() const;
};
// Splits an absolute http:// or https:// URL (scheme case-insensitive). Errors (Errc::parse)
// name the reason: no scheme, another scheme, an empty host, a bad port.
Result<UrlParts> split_url(std::string_view url);

}  // namespace ivr::net
