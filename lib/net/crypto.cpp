#include "net/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdint>
#include <cstdlib>

#include "common/text.h"

namespace ivr::net {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kHexUpper[] = "0123456789ABCDEF";
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

using text::ascii_lower;

std::string encode_bytes(std::string_view bytes, bool keep_slash, bool space_as_plus) {
  std::string out;
  out.reserve(bytes.size() * 3);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out += ch;
    } else if (space_as_plus && c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHexUpper[c >> 4];
      out += kHexUpper[c & 0xF];
    }
  }
  return out;
}

}  // namespace

std::string sha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  // EVP_Digest with the built-in SHA-256 cannot fail short of memory exhaustion.
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) abort();
  return std::string(reinterpret_cast<const char *>(md.data()), len);
}

std::string sha256_hex(std::string_view data) {
  return hex_encode(sha256(data));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  // HMAC() wants a non-null key pointer even for an empty key.
  static const unsigned char kEmpty[1] = {0};
  const void *key_ptr = key.empty() ? static_cast<const void *>(kEmpty) : key.data();
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  const auto *in = reinterpret_cast<const unsigned char *>(data.empty() ? "" : data.data());
  if (HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()), in, data.size(), md.data(), &len) ==
      nullptr)
    abort();
  return std::string(reinterpret_cast<const char *>(md.data()), len);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  return hex_encode(hmac_sha256(key, data));
}

std::string hmac_sha256_base64(std::string_view key, std::string_view data) {
  return base64_encode(hmac_sha256(key, data));
}

std::string hex_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    out += kHexDigits[c >> 4];
    out += kHexDigits[c & 0xF];
  }
  return out;
}

Result<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0)
    return Error{Errc::parse, "hex: odd length " + std::to_string(hex.size())};
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_value(hex[i]);
    int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return Error{Errc::parse,
                   "hex: not a hex digit at offset " + std::to_string(hi < 0 ? i : i + 1)};
    out += static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                 (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out += kBase64Alphabet[(n >> 18) & 63];
    out += kBase64Alphabet[(n >> 12) & 63];
    out += kBase64Alphabet[(n >> 6) & 63];
    out += kBase64Alphabet[n & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    out += kBase64Alphabet[(n >> 18) & 63];
    out += kBase64Alphabet[(n >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                 (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kBase64Alphabet[(n >> 18) & 63];
    out += kBase64Alphabet[(n >> 12) & 63];
    out += kBase64Alphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return Error{Errc::parse,
                 "base64: length " + std::to_string(text.size()) + " is not a multiple of 4"};
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    size_t pad = 0;
    if (last) pad = text[i + 3] == '=' ? (text[i + 2] == '=' ? 2 : 1) : 0;
    uint32_t n = 0;
    for (size_t k = 0; k < 4; ++k) {
      int v = 0;
      if (k >= 4 - pad) {
        v = 0;  // padding
      } else {
        v = base64_value(text[i + k]);
        if (v < 0)
          return Error{Errc::parse, "base64: invalid character at offset " + std::to_string(i + k)};
      }
      n = (n << 6) | static_cast<uint32_t>(v);
    }
    out += static_cast<char>((n >> 16) & 0xFF);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(n & 0xFF);
    // Canonical encodings leave the bits below the last character zero.
    if ((pad == 1 && (n & 0xFF) != 0) || (pad == 2 && (n & 0xFFFF) != 0))
      return Error{Errc::parse, "base64: non-zero padding bits at offset " + std::to_string(i)};
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string percent_encode(std::string_view bytes, bool keep_slash) {
  return encode_bytes(bytes, keep_slash, false);
}

std::string form_urlencode(std::string_view bytes) {
  return encode_bytes(bytes, false, true);
}

Result<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size() || hex_value(text[i + 1]) < 0 || hex_value(text[i + 2]) < 0)
      return Error{Errc::parse, "percent-encoding: '%' not followed by two hex digits at offset " +
                                    std::to_string(i)};
    out += static_cast<char>((hex_value(text[i + 1]) << 4) | hex_value(text[i + 2]));
    i += 2;
  }
  return out;
}

std::string UrlParts::host_header() const {
  std::string out(host);
  bool default_port =
      port.empty() || (scheme.size() == 4 && port == "80") || (scheme.size() == 5 && port == "443");
  if (!default_port) {
    out += ':';
    out += port;
  }
  return out;
}

std::string UrlParts::target() const {
  std::string out = path.empty() ? std::string("/") : std::string(path);
  if (has_query) {
    out += '?';
    out += query;
  }
  return out;
}

Result<UrlParts> split_url(std::string_view url) {
  UrlParts parts;
  size_t colon = url.find("://");
  if (colon == std::string_view::npos)
    return Error{Errc::parse, "url: no scheme (http:// or https://)"};
  std::string scheme;
  for (char c : url.substr(0, colon)) scheme += ascii_lower(c);
  if (scheme != "http" && scheme != "https")
    return Error{Errc::parse, "url: scheme must be http or https"};
  parts.scheme = url.substr(0, colon);
  std::string_view rest = url.substr(colon + 3);
  size_t hash = rest.find('#');
  if (hash != std::string_view::npos) {
    parts.fragment = rest.substr(hash + 1);
    rest = rest.substr(0, hash);
  }
  size_t auth_end = rest.find_first_of("/?");
  parts.authority = rest.substr(0, auth_end);
  if (auth_end != std::string_view::npos) {
    std::string_view tail = rest.substr(auth_end);
    size_t q = tail.find('?');
    parts.path = tail.substr(0, q);
    if (q != std::string_view::npos) {
      parts.has_query = true;
      parts.query = tail.substr(q + 1);
    }
  }
  std::string_view hostport = parts.authority;
  if (size_t at = hostport.rfind('@'); at != std::string_view::npos)
    hostport = hostport.substr(at + 1);
  if (!hostport.empty() && hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return Error{Errc::parse, "url: unterminated IPv6 host"};
    parts.host = hostport.substr(0, close + 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error{Errc::parse, "url: junk after the IPv6 host"};
      parts.port = after.substr(1);
    }
  } else {
    size_t c = hostport.rfind(':');
    parts.host = hostport.substr(0, c);
    if (c != std::string_view::npos) parts.port = hostport.substr(c + 1);
  }
  if (parts.host.empty() || parts.host == "[]") return Error{Errc::parse, "url: empty host"};
  if (parts.port.size() > 5) return Error{Errc::parse, "url: port is not a number 0-65535"};
  for (char c : parts.port)
    if (c < '0' || c > '9') return Error{Errc::parse, "url: port is not a number 0-65535"};
  if (!parts.port.empty() && std::atoi(std::string(parts.port).c_str()) > 65535)
    return Error{Errc::parse, "url: port is not a number 0-65535"};
  return parts;
}

}  // namespace ivr::net
