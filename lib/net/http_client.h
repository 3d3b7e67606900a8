// Asynchronous HTTP client: libcurl's multi interface driven by a libevent loop (socket and
// timer callbacks), so no request ever blocks the loop. Connections, TLS sessions and DNS
// answers are shared between requests; HTTP/2 is used where the server offers it.
//
// Threading: an HttpClient belongs to the thread running its event_base. Every method must
// be called on that thread, and completions run there (from inside the loop, never from
// inside start() or cancel()). A callback may start and cancel requests and may destroy the
// client (the other callbacks are then dropped); it must not throw. See docs/net.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct event_base;

namespace ivr::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct TlsOptions {
  std::string ca_file;      // PEM bundle to verify the server with; "" = the system's
  std::string client_cert;  // PEM client certificate (mutual TLS); "" = none
  std::string client_key;   // PEM private key of client_cert
  bool verify = true;       // verify the server's certificate and host name
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // http:// or https:// only
  Headers headers;
  std::string body;
  uint32_t timeout_ms = 5000;          // whole request, connect included; 0 = no limit
  uint32_t connect_timeout_ms = 2000;  // at most timeout_ms
  bool follow_redirects = false;
  uint32_t max_redirects = 5;
  size_t max_response_bytes = 1 << 20;  // a larger body fails with too_large
  TlsOptions tls;
};

// Why a request produced no HTTP response. A response with any status (404, 503) is not a
// transport error: error == none and status says what the server answered.
enum class HttpErrc : uint8_t {
  none,
  timeout,    // timeout_ms passed (connect or transfer)
  connect,    // refused, unreachable, DNS failure
  tls,        // handshake or certificate verification failed
  too_large,  // the body exceeded max_response_bytes
  protocol,   // malformed response, too many redirects, unsupported scheme
  cancelled,  // cancel()
};
const char *http_errc_name(HttpErrc e);  // "timeout", "connect", ...

struct HttpResponse {
  HttpErrc error = HttpErrc::none;
  std::string error_text;  // human-readable detail when error != none
  int status = 0;          // 0 when error != none
  Headers headers;         // of the final response, names as received
  std::string body;
  std::string effective_url;  // after redirects
  int http_version = 0;       // 10, 11, 20
  double elapsed_ms = 0;      // start() to completion
  // First header with this name (case-insensitive), or nullptr.
  const std::string *header(std::string_view name) const;
};

struct HttpClientOptions {
  size_t max_connections_per_host = 16;
  size_t max_total_connections = 256;
  uint32_t dns_cache_seconds = 60;
  std::string user_agent = "libivr";
};

class HttpClient {
 public:
  using Callback = std::function<void(HttpResponse &&)>;

  // The event_base must outlive the client.
  HttpClient(event_base *base, HttpClientOptions options = {});
  ~HttpClient();  // aborts what is in flight; their callbacks are dropped, never called
  HttpClient(const HttpClient &) = delete;
  HttpClient &operator=(const HttpClient &) = delete;

  // Starts a request; the callback runs exactly once, later, on the loop. Returns an id
  // for cancel(). A request that cannot start (bad URL, unsupported scheme) also completes
  // through the callback (HttpErrc::protocol), never synchronously.
  uint64_t start(HttpRequest request, Callback done);
  // Completes the request with HttpErrc::cancelled (later, on the loop) if its callback has
  // not run yet, even when its outcome was already known; otherwise, and for unknown ids,
  // does nothing.
  void cancel(uint64_t id);
  size_t in_flight() const;  // requests whose callback has not run yet

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ivr::net
