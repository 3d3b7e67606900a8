// AWS Signature Version 4, header form (Authorization header; presigned URLs are not offered).
// Reference: AWS IAM user guide, "Create a signed AWS API request", and the SigV4 test suite
// (tests/data/net/sigv4/).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/http_client.h"

namespace ivr::net {

struct SigV4Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials (STS): sent as X-Amz-Security-Token
};

struct SigV4Options {
  std::string region;   // "us-east-1"
  std::string service;  // "execute-api", "connect", "s3"...
  // Canonical URI rules. Every service but S3: remove "." and ".." segments, collapse repeated
  // slashes, then percent-encode the path as sent once more (AWS calls this "encoding twice").
  // S3: the path as sent, with only its encoding made canonical.
  bool normalize_path = true;
  bool double_encode_path = true;
  // Add x-amz-content-sha256 (S3 requires it) and sign it.
  bool content_sha256_header = false;
  // The payload hash: "" hashes the body; S3 also accepts "UNSIGNED-PAYLOAD".
  std::string payload_hash;
  // Header names (any case) never signed: proxies and clients may change them in flight.
  std::vector<std::string> unsigned_headers = {"authorization", "user-agent", "expect",
                                               "x-amzn-trace-id", "connection"};

  // The options AWS's SDKs use for a service: S3 turns path normalization and double encoding
  // off and content_sha256_header on.
  static SigV4Options for_service(std::string region, std::string service);
};

// Every stage of a signature, for tests and for debugging a SignatureDoesNotMatch. The canonical
// request holds the values of the signed headers (X-Amz-Security-Token included): treat it as
// sensitive. The secret key appears in none of these.
struct SigV4Signature {
  std::string amz_date;          // 20150830T123600Z
  std::string credential_scope;  // 20150830/us-east-1/service/aws4_request
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // host;x-amz-date
  std::string payload_hash;
  std::string signature;      // lowercase hex
  std::string authorization;  // the Authorization header value
};

// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"), raw.
std::string sigv4_signing_key(std::string_view secret_access_key, std::string_view date,
                              std::string_view region, std::string_view service);

// YYYYMMDDTHHMMSSZ in UTC.
std::string sigv4_amz_date(std::chrono::system_clock::time_point t);

// Computes the signature of request as sign_sigv4 would send it (with X-Amz-Date, and
// X-Amz-Security-Token / x-amz-content-sha256 when configured, as if already set). Errors
// (Errc::invalid_argument / Errc::parse) name the field: an empty access key, secret, region or
// service, a URL that is not http(s), a bad percent-escape in the URL, a header value with a line
// break.
Result<SigV4Signature> compute_sigv4(const HttpRequest &request,
                                     const SigV4Credentials &credentials,
                                     const SigV4Options &options,
                                     std::chrono::system_clock::time_point signing_time);

// Signs request in place: sets X-Amz-Date, X-Amz-Security-Token (when a session token is given),
// x-amz-content-sha256 (when configured) and Authorization, replacing earlier values of these
// headers so a retried request can be signed again. The URL and body are not changed; the Host
// header is signed from the URL (host[:port], the port left out when it is the default) unless
// the request carries one.
Status sign_sigv4(HttpRequest &request, const SigV4Credentials &credentials,
                  const SigV4Options &options, std::chrono::system_clock::time_point signing_time);

}  // namespace ivr::net
