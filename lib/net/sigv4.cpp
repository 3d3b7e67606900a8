#include "net/sigv4.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <utility>

#include "common/text.h"
#include "net/crypto.h"

namespace ivr::net {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

using text::iequals;
using text::to_lower;

// RFC 3986 section 5.2.4 over the path as sent, plus the collapsing of empty segments that
// AWS applies ("//a//" signs as "/a/").
std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    bool last = end == path.size();
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
      if (last) trailing_slash = true;
    } else if (seg == ".") {
      if (last) trailing_slash = true;
    } else if (seg.empty()) {
      if (last) trailing_slash = true;
    } else {
      segments.push_back(seg);
    }
    start = end + 1;
  }
  std::string out = "/";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i) out += '/';
    out += segments[i];
  }
  if (trailing_slash && !segments.empty()) out += '/';
  return out;
}

Result<std::string> canonical_uri(std::string_view path, const SigV4Options &options) {
  std::string p = path.empty() ? std::string("/") : std::string(path);
  if (options.normalize_path) p = normalize_path(p);
  if (options.double_encode_path) return percent_encode(p, /*keep_slash=*/true);
  // Encoded once (S3): escapes already in the path stay escapes (so %2F stays a byte of the key,
  // not a separator), with uppercase hex; other bytes are encoded as needed.
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '%') {
      out += percent_encode(std::string_view(&p[i], 1), /*keep_slash=*/true);
      continue;
    }
    if (i + 2 >= p.size() || !hex(p[i + 1]) || !hex(p[i + 2]))
      return Error{Errc::parse, "sigv4: url path: '%' not followed by two hex digits at offset " +
                                    std::to_string(i)};
    out += '%';
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(p[i + 1])));
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(p[i + 2])));
    i += 2;
  }
  return out;
}

Result<std::string> canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view item = query.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    auto key = percent_decode(item.substr(0, eq));
    auto value =
        percent_decode(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1));
    if (!key.ok()) return Error{Errc::parse, "sigv4: url query: " + key.error().message};
    if (!value.ok()) return Error{Errc::parse, "sigv4: url query: " + value.error().message};
    pairs.emplace_back(percent_encode(key.value()), percent_encode(value.value()));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto &[k, v] : pairs) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

// Trims the ends and folds every run of spaces and tabs into one space.
std::string canonical_header_value(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

Status check_scope_field(std::string_view field, std::string_view value) {
  if (value.empty())
    return Status{Errc::invalid_argument, "sigv4." + std::string(field) + ": empty"};
  for (char c : value)
    if (c == '/' || c == ' ' || c == '\n' || c == '\r' || c == '\t')
      return Status{Errc::invalid_argument,
                    "sigv4." + std::string(field) + ": contains '/' or white space"};
  return {};
}

}  // namespace

SigV4Options SigV4Options::for_service(std::string region, std::string service) {
  SigV4Options o;
  bool s3 = service == "s3";
  o.region = std::move(region);
  o.service = std::move(service);
  o.normalize_path = !s3;
  o.double_encode_path = !s3;
  o.content_sha256_header = s3;
  return o;
}

std::string sigv4_signing_key(std::string_view secret_access_key, std::string_view date,
                              std::string_view region, std::string_view service) {
  std::string k_secret = "AWS4";
  k_secret += secret_access_key;
  std::string k_date = hmac_sha256(k_secret, date);
  std::string k_region = hmac_sha256(k_date, region);
  std::string k_service = hmac_sha256(k_region, service);
  return hmac_sha256(k_service, "aws4_request");
}

std::string sigv4_amz_date(std::chrono::system_clock::time_point t) {
  std::time_t secs =
      std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Result<SigV4Signature> compute_sigv4(const HttpRequest &request,
                                     const SigV4Credentials &credentials,
                                     const SigV4Options &options,
                                     std::chrono::system_clock::time_point signing_time) {
  if (credentials.access_key_id.empty())
    return Error{Errc::invalid_argument, "sigv4.access_key_id: empty"};
  if (credentials.secret_access_key.empty())
    return Error{Errc::invalid_argument, "sigv4.secret_access_key: empty"};
  if (auto s = check_scope_field("region", options.region); !s) return s.error();
  if (auto s = check_scope_field("service", options.service); !s) return s.error();
  if (request.method.empty())
    return Error{Errc::invalid_argument, "sigv4: request method is empty"};
  if (credentials.session_token.find_first_of("\r\n") != std::string::npos)
    return Error{Errc::invalid_argument, "sigv4.session_token: contains a line break"};

  auto url = split_url(request.url);
  if (!url.ok()) return Error{Errc::parse, "sigv4: " + url.error().message};

  SigV4Signature sig;
  sig.amz_date = sigv4_amz_date(signing_time);
  std::string date = sig.amz_date.substr(0, 8);
  sig.credential_scope = date + "/" + options.region + "/" + options.service + "/aws4_request";
  sig.payload_hash = options.payload_hash.empty() ? sha256_hex(request.body) : options.payload_hash;

  // Headers this signer sets replace what the request carries.
  auto replaced = [&](std::string_view lname) {
    return lname == "authorization" || lname == "x-amz-date" ||
           (lname == "x-amz-security-token" && !credentials.session_token.empty()) ||
           (lname == "x-amz-content-sha256" && options.content_sha256_header);
  };
  auto unsigned_header = [&](std::string_view lname) {
    for (const auto &u : options.unsigned_headers)
      if (iequals(u, lname)) return true;
    return false;
  };

  std::map<std::string, std::string> headers;  // lowercase name -> canonical value(s)
  for (const auto &[name, value] : request.headers) {
    if (name.empty()) return Error{Errc::invalid_argument, "sigv4: a request header has no name"};
    std::string lname = to_lower(name);
    if (replaced(lname) || unsigned_header(lname)) continue;
    if (value.find_first_of("\r\n") != std::string::npos)
      return Error{Errc::invalid_argument,
                   "sigv4: header " + name + ": value contains a line break"};
    auto [it, fresh] = headers.try_emplace(lname);
    if (!fresh) it->second += ',';
    it->second += canonical_header_value(value);
  }
  if (!headers.count("host")) headers["host"] = url->host_header();
  headers["x-amz-date"] = sig.amz_date;
  if (!credentials.session_token.empty())
    headers["x-amz-security-token"] = canonical_header_value(credentials.session_token);
  if (options.content_sha256_header) headers["x-amz-content-sha256"] = sig.payload_hash;

  auto uri = canonical_uri(url->path, options);
  if (!uri.ok()) return uri.error();
  auto query = canonical_query(url->query);
  if (!query.ok()) return query.error();

  std::string canonical_headers;
  for (const auto &[name, value] : headers) {
    canonical_headers += name;
    canonical_headers += ':';
    canonical_headers += value;
    canonical_headers += '\n';
    if (!sig.signed_headers.empty()) sig.signed_headers += ';';
    sig.signed_headers += name;
  }

  sig.canonical_request = request.method + "\n" + uri.value() + "\n" + query.value() + "\n" +
                          canonical_headers + "\n" + sig.signed_headers + "\n" + sig.payload_hash;
  sig.string_to_sign = std::string(kAlgorithm) + "\n" + sig.amz_date + "\n" + sig.credential_scope +
                       "\n" + sha256_hex(sig.canonical_request);
  std::string key =
      sigv4_signing_key(credentials.secret_access_key, date, options.region, options.service);
  sig.signature = hmac_sha256_hex(key, sig.string_to_sign);
  sig.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                      sig.credential_scope + ", SignedHeaders=" + sig.signed_headers +
                      ", Signature=" + sig.signature;
  return sig;
}

Status sign_sigv4(HttpRequest &request, const SigV4Credentials &credentials,
                  const SigV4Options &options, std::chrono::system_clock::time_point signing_time) {
  auto sig = compute_sigv4(request, credentials, options, signing_time);
  if (!sig.ok()) return sig.error();
  auto drop = [&](std::string_view name) {
    std::erase_if(request.headers, [&](const auto &h) { return iequals(h.first, name); });
  };
  drop("authorization");
  drop("x-amz-date");
  request.headers.emplace_back("X-Amz-Date", sig->amz_date);
  if (options.content_sha256_header) {
    drop("x-amz-content-sha256");
    request.headers.emplace_back("x-amz-content-sha256", sig->payload_hash);
  }
  if (!credentials.session_token.empty()) {
    drop("x-amz-security-token");
    request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  request.headers.emplace_back("Authorization", sig->authorization);
  return {};
}

}  // namespace ivr::net
