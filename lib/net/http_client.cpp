// HttpClient over libcurl's multi interface, driven by libevent.
//
// curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one persistent event per
// socket) and when to call it back (CURLMOPT_TIMERFUNCTION: one evtimer); we hand every
// readiness and timeout to curl_multi_socket_action and then read finished transfers with
// curl_multi_info_read. User callbacks never run inside curl: finished transfers queue up
// and a zero-delay timer delivers them, so a callback may start or cancel requests freely,
// and a callback that keeps starting requests that fail at once cannot starve the loop.
#include "net/http_client.h"

#include <curl/curl.h>
#include <event2/event.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "common/text.h"

namespace ivr::net {

namespace {

using Clock = std::chrono::steady_clock;

struct EasyDeleter {
  void operator()(CURL *easy) const { curl_easy_cleanup(easy); }
};
struct MultiDeleter {
  void operator()(CURLM *multi) const { curl_multi_cleanup(multi); }
};
struct ShareDeleter {
  void operator()(CURLSH *share) const { curl_share_cleanup(share); }
};
struct SlistDeleter {
  void operator()(curl_slist *list) const { curl_slist_free_all(list); }
};
struct UrlDeleter {
  void operator()(CURLU *url) const { curl_url_cleanup(url); }
};
struct EventDeleter {
  void operator()(event *ev) const { event_free(ev); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using EventPtr = std::unique_ptr<event, EventDeleter>;

// Idle easy handles kept for reuse; connections live in the multi handle, not in these.
constexpr size_t kMaxIdleHandles = 32;
// Response headers (of one response) beyond this fail the request with too_large.
constexpr size_t kMaxHeaderBytes = 256 * 1024;

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// RFC 9110 token characters (methods and header names).
bool is_token(std::string_view s) {
  constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           kExtra.find(c) != std::string_view::npos;
  });
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n", 0) != s.npos || s.find('\0') != s.npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

const char *http_errc_name(HttpErrc e) {
  switch (e) {
    case HttpErrc::none:
      return "none";
    case HttpErrc::timeout:
      return "timeout";
    case HttpErrc::connect:
      return "connect";
    case HttpErrc::tls:
      return "tls";
    case HttpErrc::too_large:
      return "too_large";
    case HttpErrc::protocol:
      return "protocol";
    case HttpErrc::cancelled:
      return "cancelled";
  }
  return "unknown";
}

const std::string *HttpResponse::header(std::string_view name) const {
  for (const auto &[key, value] : headers)
    if (text::iequals(key, name)) return &value;
  return nullptr;
}

namespace {

struct Transfer {
  uint64_t id = 0;
  HttpRequest request;
  HttpClient::Callback done;
  Clock::time_point started;
  EasyHandle easy;  // set while curl owns the transfer
  bool in_multi = false;
  std::unique_ptr<curl_slist, SlistDeleter> header_list;
  std::array<char, CURL_ERROR_SIZE> error_buffer{};
  HttpResponse response;
  size_t header_bytes = 0;  // of the current response
  bool saw_status_line = false;
  bool too_large = false;
  bool finished = false;  // response is final and queued for delivery
};

// Maps a failed transfer's curl code to an error kind. `saw_status_line`: a response had
// started when the transfer broke.
HttpErrc classify(CURLcode code, bool saw_status_line, bool too_large, std::string_view text) {
  switch (code) {
    case CURLE_OK:
      return HttpErrc::none;
    case CURLE_OPERATION_TIMEDOUT:
      return HttpErrc::timeout;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_INTERFACE_FAILED:
    case CURLE_PROXY:
      return HttpErrc::connect;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return HttpErrc::tls;
    case CURLE_WRITE_ERROR:
      return too_large ? HttpErrc::too_large : HttpErrc::protocol;
    case CURLE_FILESIZE_EXCEEDED:
      return HttpErrc::too_large;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
      if (saw_status_line) return HttpErrc::protocol;
      // A TLS 1.3 server that refuses our (missing) client certificate says so with an
      // alert that arrives on the first read, after curl considers the handshake done.
      // OpenSSL names such failures "SSL routines"; a plain reset or EOF does not.
      if (text.find("SSL routines") != text.npos) return HttpErrc::tls;
      return HttpErrc::connect;
    default:
      // TOO_MANY_REDIRECTS, UNSUPPORTED_PROTOCOL (also HTTP/0.9 garbage), URL_MALFORMAT,
      // WEIRD_SERVER_REPLY, GOT_NOTHING, PARTIAL_FILE, HTTP2, BAD_CONTENT_ENCODING, ...
      return HttpErrc::protocol;
  }
}

int http_version_number(long curl_version) {
  switch (curl_version) {
    case CURL_HTTP_VERSION_1_0:
      return 10;
    case CURL_HTTP_VERSION_1_1:
      return 11;
    case CURL_HTTP_VERSION_2_0:
      return 20;
    case CURL_HTTP_VERSION_3:
      return 30;
    default:
      return 0;
  }
}

size_t on_body(char *data, size_t size, size_t count, void *userp) {
  auto &t = *static_cast<Transfer *>(userp);
  const size_t n = size * count;
  std::string &body = t.response.body;
  if (n > t.request.max_response_bytes - std::min(body.size(), t.request.max_response_bytes)) {
    t.too_large = true;
    return 0;  // anything but n aborts the transfer (CURLE_WRITE_ERROR)
  }
  body.append(data, n);
  return n;
}

size_t on_header(char *data, size_t size, size_t count, void *userp) {
  auto &t = *static_cast<Transfer *>(userp);
  const size_t n = size * count;
  const std::string_view line(data, n);
  Headers &headers = t.response.headers;
  if (line.starts_with("HTTP/")) {  // a new response (1xx, redirect, final): start over
    headers.clear();
    t.header_bytes = 0;
    t.saw_status_line = true;
    return n;
  }
  t.header_bytes += n;
  if (t.header_bytes > kMaxHeaderBytes) {
    t.too_large = true;
    return 0;
  }
  if (line.empty() || line.front() == '\r' || line.front() == '\n') return n;  // end of headers
  if ((line.front() == ' ' || line.front() == '\t') && !headers.empty()) {
    // Obsolete line folding: the line continues the previous header's value.
    std::string &value = headers.back().second;
    value.append(" ").append(trim(line));
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == line.npos) return n;  // not a header line; curl already vetted the response
  headers.emplace_back(std::string(trim(line.substr(0, colon))),
                       std::string(trim(line.substr(colon + 1))));
  return n;
}

}  // namespace

struct HttpClient::Impl {
  event_base *base;
  HttpClientOptions options;
  std::unique_ptr<CURLSH, ShareDeleter> share;
  std::unique_ptr<CURLM, MultiDeleter> multi;
  EventPtr timer;    // curl's one timeout
  EventPtr deliver;  // zero-delay timer that runs queued completions
  std::unordered_map<curl_socket_t, EventPtr> sockets;
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> transfers;  // until delivered
  std::deque<uint64_t> ready;                                         // finished, in order
  std::vector<EasyHandle> idle;
  uint64_t next_id = 1;
  // Cleared by the destructor, so delivery notices a client destroyed by a callback.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  Impl(event_base *b, HttpClientOptions opts) : base(b), options(std::move(opts)) {
    global_init_once();
    timer.reset(evtimer_new(base, &Impl::on_timer_event, this));
    deliver.reset(evtimer_new(base, &Impl::on_deliver_event, this));
    share.reset(curl_share_init());
    if (share) {
      curl_share_setopt(share.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
      curl_share_setopt(share.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    multi.reset(curl_multi_init());
    if (!multi) return;
    CURLM *m = multi.get();
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &Impl::on_curl_socket);
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &Impl::on_curl_timer);
    curl_multi_setopt(m, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(m, CURLMOPT_PIPELINING, long{CURLPIPE_MULTIPLEX});
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS,
                      static_cast<long>(options.max_connections_per_host));
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      static_cast<long>(options.max_total_connections));
    // The idle-connection cache: without this curl sizes it by the handles currently
    // added, which is zero between requests.
    const size_t cache = options.max_total_connections ? options.max_total_connections : 256;
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, static_cast<long>(cache));
  }

  ~Impl() {
    *alive = false;
    for (auto &[id, t] : transfers) detach(*t, /*keep_handle=*/false);
    transfers.clear();
    idle.clear();
    multi.reset();  // may still call on_curl_socket / on_curl_timer to close connections
    sockets.clear();
    timer.reset();
    deliver.reset();
    share.reset();  // after every easy handle that used it
  }

  // ---- curl -> libevent ----

  static int on_curl_socket(CURL *, curl_socket_t fd, int what, void *userp, void *) {
    auto &self = *static_cast<Impl *>(userp);
    if (what == CURL_POLL_REMOVE) {
      self.sockets.erase(fd);
      return 0;
    }
    const short flags = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                        ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    EventPtr &ev = self.sockets[fd];
    ev.reset(event_new(self.base, fd, flags, &Impl::on_socket_event, &self));
    if (!ev || event_add(ev.get(), nullptr) != 0) return -1;
    return 0;
  }

  static int on_curl_timer(CURLM *, long timeout_ms, void *userp) {
    auto &self = *static_cast<Impl *>(userp);
    if (timeout_ms < 0) {
      evtimer_del(self.timer.get());
      return 0;
    }
    // curl asks not to be driven from inside this callback: a zero timeout fires from the
    // loop on its next turn.
    const timeval tv{static_cast<time_t>(timeout_ms / 1000),
                     static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
    return evtimer_add(self.timer.get(), &tv) == 0 ? 0 : -1;
  }

  static void on_socket_event(evutil_socket_t fd, short what, void *arg) {
    auto &self = *static_cast<Impl *>(arg);
    const int mask =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(self.multi.get(), fd, mask, &running);
    self.collect();
  }

  static void on_timer_event(evutil_socket_t, short, void *arg) {
    auto &self = *static_cast<Impl *>(arg);
    int running = 0;
    curl_multi_socket_action(self.multi.get(), CURL_SOCKET_TIMEOUT, 0, &running);
    self.collect();
  }

  // Reads every finished transfer out of curl and queues it for delivery.
  void collect() {
    int left = 0;
    while (CURLMsg *msg = curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      const CURLcode code = msg->data.result;
      char *priv = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      auto *t = reinterpret_cast<Transfer *>(priv);
      if (t) complete(*t, code);
    }
  }

  void complete(Transfer &t, CURLcode code) {
    CURL *easy = t.easy.get();
    HttpResponse &r = t.response;
    const char *url = nullptr;
    if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url)
      r.effective_url = url;
    const std::string_view text(t.error_buffer.data());
    r.error = classify(code, t.saw_status_line, t.too_large, text);
    if (r.error == HttpErrc::none) {
      long status = 0, version = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
      r.status = static_cast<int>(status);
      r.http_version = http_version_number(version);
    } else {
      if (r.error == HttpErrc::too_large)
        r.error_text = "response exceeds max_response_bytes (" +
                       std::to_string(t.request.max_response_bytes) + " body, " +
                       std::to_string(kMaxHeaderBytes) + " headers)";
      else
        r.error_text = text.empty() ? curl_easy_strerror(code) : std::string(text);
      r.headers.clear();
      r.body.clear();
    }
    finish(t);
  }

  // Marks the response final, hands the easy handle back and queues the callback.
  void finish(Transfer &t) {
    t.response.elapsed_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - t.started).count();
    detach(t, /*keep_handle=*/true);
    if (!t.finished) ready.push_back(t.id);
    t.finished = true;
    schedule_delivery();
  }

  // A timer rather than event_active: it runs after the loop has polled its sockets again.
  void schedule_delivery() {
    static constexpr timeval kNow{0, 0};
    if (!evtimer_pending(deliver.get(), nullptr)) evtimer_add(deliver.get(), &kNow);
  }

  void detach(Transfer &t, bool keep_handle) {
    if (!t.easy) return;
    if (t.in_multi) curl_multi_remove_handle(multi.get(), t.easy.get());
    t.in_multi = false;
    t.header_list.reset();
    EasyHandle easy = std::move(t.easy);
    if (keep_handle && idle.size() < kMaxIdleHandles) {
      curl_easy_reset(easy.get());
      idle.push_back(std::move(easy));
    }
  }

  // ---- delivery ----

  static void on_deliver_event(evutil_socket_t, short, void *arg) {
    auto &self = *static_cast<Impl *>(arg);
    const std::shared_ptr<bool> alive = self.alive;
    // Only what was queued before this run: completions queued by these callbacks wait for
    // the next turn of the loop (finish() has scheduled it).
    for (size_t batch = self.ready.size(); batch > 0 && !self.ready.empty(); --batch) {
      const uint64_t id = self.ready.front();
      self.ready.pop_front();
      auto it = self.transfers.find(id);
      if (it == self.transfers.end()) continue;
      Callback done = std::move(it->second->done);
      HttpResponse response = std::move(it->second->response);
      self.transfers.erase(it);
      if (done) {
        try {
          done(std::move(response));
        } catch (...) {
          // A callback must not throw; nothing may unwind through libevent.
        }
      }
      if (!*alive) return;  // the callback destroyed the client
    }
  }

  // ---- requests ----

  // Everything that can be wrong with a request before curl sees it; "" when fine.
  // Sets `tls` when the URL is https.
  static std::string validate(const HttpRequest &req, bool &tls) {
    std::unique_ptr<CURLU, UrlDeleter> url(curl_url());
    if (!url) return "url: out of memory";
    const CURLUcode rc =
        curl_url_set(url.get(), CURLUPART_URL, req.url.c_str(), CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK)
      return "url: " + std::string(curl_url_strerror(rc)) + " ('" + req.url + "')";
    char *scheme = nullptr;
    if (curl_url_get(url.get(), CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || !scheme)
      return "url: no scheme ('" + req.url + "')";
    const std::string s(scheme);
    curl_free(scheme);
    if (s != "http" && s != "https") return "url: scheme '" + s + "' is not http or https";
    tls = s == "https";
    if (!is_token(req.method)) return "method: '" + req.method + "' is not an HTTP token";
    for (size_t i = 0; i < req.headers.size(); ++i) {
      const auto &[name, value] = req.headers[i];
      const std::string where = "headers[" + std::to_string(i) + "]";
      if (!is_token(name)) return where + ": name '" + name + "' is not an HTTP token";
      if (has_line_break(value)) return where + ": value of '" + name + "' has CR, LF or NUL";
    }
    return {};
  }

  EasyHandle take_handle() {
    if (idle.empty()) return EasyHandle(curl_easy_init());
    EasyHandle easy = std::move(idle.back());
    idle.pop_back();
    return easy;
  }

  // Applies the request to a fresh easy handle; "" when curl took everything.
  std::string configure(Transfer &t, bool tls_url) {
    t.easy = take_handle();
    if (!t.easy) return "curl: cannot create a transfer handle";
    CURL *e = t.easy.get();
    const HttpRequest &req = t.request;
    bool ok = true;
    auto set = [&](CURLoption opt, auto value) {
      ok = ok && curl_easy_setopt(e, opt, value) == CURLE_OK;
    };

    set(CURLOPT_PRIVATE, static_cast<void *>(&t));
    set(CURLOPT_URL, req.url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_NOPROGRESS, 1L);
    set(CURLOPT_VERBOSE, 0L);
    set(CURLOPT_ERRORBUFFER, t.error_buffer.data());
    set(CURLOPT_WRITEFUNCTION, &on_body);
    set(CURLOPT_WRITEDATA, static_cast<void *>(&t));
    set(CURLOPT_HEADERFUNCTION, &on_header);
    set(CURLOPT_HEADERDATA, static_cast<void *>(&t));
    if (share) set(CURLOPT_SHARE, share.get());
    set(CURLOPT_DNS_CACHE_TIMEOUT, static_cast<long>(options.dns_cache_seconds));
    if (!options.user_agent.empty()) set(CURLOPT_USERAGENT, options.user_agent.c_str());
    set(CURLOPT_ACCEPT_ENCODING, "");  // whatever curl decodes; the cap applies decoded
    set(CURLOPT_HTTP_VERSION, long{CURL_HTTP_VERSION_2TLS});
    // Over TLS, wait for ALPN on a connection being set up rather than open a second one:
    // it may turn out to be HTTP/2 and carry this request too. Not for plain http, where
    // curl 7.88 would wait for a whole HTTP/1.1 response before deciding.
    set(CURLOPT_PIPEWAIT, tls_url ? 1L : 0L);

    set(CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout_ms));
    uint32_t connect_ms = req.connect_timeout_ms;
    if (req.timeout_ms > 0 && (connect_ms == 0 || connect_ms > req.timeout_ms))
      connect_ms = req.timeout_ms;
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_ms));
    set(CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
    set(CURLOPT_MAXREDIRS, static_cast<long>(req.max_redirects));

    const bool has_body = !req.body.empty() || req.method == "POST";
    if (has_body) {
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      set(CURLOPT_POSTFIELDS, req.body.data());
      if (req.method != "POST") set(CURLOPT_CUSTOMREQUEST, req.method.c_str());
    } else if (req.method == "GET") {
      set(CURLOPT_HTTPGET, 1L);
    } else if (req.method == "HEAD") {
      set(CURLOPT_NOBODY, 1L);
    } else {
      set(CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }

    curl_slist *list = nullptr;
    bool has_expect = false;
    for (const auto &[name, value] : req.headers) {
      has_expect = has_expect || text::iequals(name, "Expect");
      // "Name;" is curl's way to send a header with an empty value.
      const std::string line = value.empty() ? name + ";" : name + ": " + value;
      curl_slist *next = curl_slist_append(list, line.c_str());
      if (!next) {
        curl_slist_free_all(list);
        return "headers: out of memory";
      }
      list = next;
    }
    // No "Expect: 100-continue" round trip for large bodies unless asked for.
    if (!has_expect) {
      curl_slist *next = curl_slist_append(list, "Expect:");
      if (!next) {
        curl_slist_free_all(list);
        return "headers: out of memory";
      }
      list = next;
    }
    t.header_list.reset(list);
    set(CURLOPT_HTTPHEADER, list);

    const TlsOptions &tls = req.tls;
    if (!tls.ca_file.empty()) set(CURLOPT_CAINFO, tls.ca_file.c_str());
    if (!tls.client_cert.empty()) {
      set(CURLOPT_SSLCERT, tls.client_cert.c_str());
      set(CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (!tls.client_key.empty()) set(CURLOPT_SSLKEY, tls.client_key.c_str());
    set(CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
    set(CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);

    if (!ok) return "curl: an option was refused";
    return {};
  }

  void fail_early(Transfer &t, std::string text) {
    t.response.error = HttpErrc::protocol;
    t.response.error_text = std::move(text);
    finish(t);
  }

  uint64_t start(HttpRequest request, Callback done) {
    const uint64_t id = next_id++;
    auto owned = std::make_unique<Transfer>();
    Transfer &t = *owned;
    t.id = id;
    t.request = std::move(request);
    t.done = std::move(done);
    t.started = Clock::now();
    transfers.emplace(id, std::move(owned));

    bool tls_url = false;
    if (!multi) {
      fail_early(t, "curl: no multi handle");
    } else if (std::string problem = validate(t.request, tls_url); !problem.empty()) {
      fail_early(t, std::move(problem));
    } else if (std::string problem = configure(t, tls_url); !problem.empty()) {
      fail_early(t, std::move(problem));
    } else if (CURLMcode rc = curl_multi_add_handle(multi.get(), t.easy.get()); rc != CURLM_OK) {
      fail_early(t, std::string("curl: ") + curl_multi_strerror(rc));
    } else {
      t.in_multi = true;
    }
    return id;
  }

  void cancel(uint64_t id) {
    auto it = transfers.find(id);
    if (it == transfers.end()) return;
    Transfer &t = *it->second;
    t.response = HttpResponse{};
    t.response.error = HttpErrc::cancelled;
    t.response.error_text = "cancelled";
    finish(t);
  }
};

HttpClient::HttpClient(event_base *base, HttpClientOptions options)
    : impl_(std::make_unique<Impl>(base, std::move(options))) {}

HttpClient::~HttpClient() = default;

uint64_t HttpClient::start(HttpRequest request, Callback done) {
  return impl_->start(std::move(request), std::move(done));
}

void HttpClient::cancel(uint64_t id) {
  impl_->cancel(id);
}

size_t HttpClient::in_flight() const {
  return impl_->transfers.size();
}

}  // namespace ivr::net
