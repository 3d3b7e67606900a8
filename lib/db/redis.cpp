// The Redis connector: one hiredis asynchronous connection on the engine loop, pipelined
// (many commands in flight, answers in order).
//
// Lifetime: the connector owns a shared State. hiredis holds raw callback data until it calls
// a callback or frees the context (then with reply NULL, possibly after the connector is
// gone when the connector was destroyed inside a completion), so each command carries its
// own heap Sent with a weak_ptr to the State, and every context we free ourselves is first
// detached (ac->data = nullptr) so its late connect/disconnect callbacks find nothing.
// User completions run from a reply callback, a timer or a zero-delay event; never inside
// query() or cancel(), and never while hiredis frees a context (those failures are queued).
//
// Decisions (see also docs/db.md, "Redis"):
// - Only IP literals and "localhost" (127.0.0.1) as hosts: hiredis 0.14's async connect
//   resolves names with a blocking getaddrinfo, which must not run on the engine loop.
// - A NULL parameter is refused (Redis has no NULL); a parameter is always one argument.
// - Commands that change or hold the shared connection are refused (transactions, pub/sub,
//   MONITOR, SELECT/AUTH/HELLO/RESET/QUIT, CLIENT REPLY/TRACKING, blocking pops, WAIT,
//   XREAD... BLOCK): one flow's step must not change what the next flow's step sees.
// - Reaching "ready" needs an answer from the server (AUTH, SELECT, else PING) within
//   connect_timeout_ms, so a port that accepts but never answers counts as down.
// - Queries issued while connecting wait for the connection; while down they fail at once.
// - timeout_ms 0: no connector timer (the engine's own deadline still applies).
// - busy counts queries waiting for the connection plus commands whose answer the server
//   still owes, timed-out and cancelled ones included: a stalled server fills the pipeline,
//   and max_waiting bounds it.
// - connect_timeout_ms 0 means the default, 2000 ms.
#include "db/redis.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <deque>
#include <string_view>
#include <unordered_map>

namespace ivr::db {
namespace {

constexpr uint32_t kBackoffFirstMs = 100;
constexpr uint32_t kBackoffMaxMs = 5000;

// ---- configuration ----

struct Endpoint {
  bool unix_socket = false;
  std::string host;  // an IP literal
  int port = 6379;
  std::string path;  // the socket, for unix://
  std::string user;
  std::string password;
  long db = 0;
  std::string label;  // "127.0.0.1:6379", "[::1]:6379", "unix:/run/redis.sock"
};

Result<std::string> percent_decode(std::string_view s, const char *what) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !isxdigit(static_cast<unsigned char>(s[i + 2])))
      return {Errc::invalid_argument, std::string("url: bad percent escape in the ") + what};
    out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<long> parse_db(std::string_view s) {
  if (!all_digits(s) || s.size() > 9)
    return {Errc::invalid_argument, "url: bad db number \"" + std::string(s) + "\""};
  return std::stol(std::string(s));
}

Result<Endpoint> parse_unix(std::string_view rest) {
  Endpoint ep;
  ep.unix_socket = true;
  const size_t q = rest.find('?');
  ep.path = std::string(rest.substr(0, q));
  if (ep.path.size() < 2 || ep.path[0] != '/')
    return {Errc::invalid_argument,
            "url: the socket path must be absolute (unix:///path/redis.sock[?db=N])"};
  if (q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      const std::string_view item = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (item.rfind("db=", 0) != 0)
        return {Errc::invalid_argument,
                "url: unknown parameter \"" + std::string(item) + "\" (unix:// takes db=N)"};
      auto db = parse_db(item.substr(3));
      if (!db) return db.error();
      ep.db = *db;
    }
  }
  ep.label = "unix:" + ep.path;
  return ep;
}

Result<Endpoint> parse_tcp(std::string_view rest) {
  Endpoint ep;
  if (rest.find_first_of("?#") != std::string_view::npos)
    return {
        Errc::invalid_argument,
        "url: redis:// takes no query or fragment (redis://[user[:password]@]host[:port][/db])"};
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const size_t colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon), "user");
    if (!user) return user.error();
    ep.user = *user;
    if (colon != std::string_view::npos) {
      auto password = percent_decode(userinfo.substr(colon + 1), "password");
      if (!password) return password.error();
      ep.password = *password;
    }
  }
  std::string_view host, port;
  bool has_port = false;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return {Errc::invalid_argument, "url: unclosed '[' in the host"};
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':')
      return {Errc::invalid_argument, "url: unexpected text after the IPv6 address"};
    has_port = !after.empty();
    if (has_port) port = after.substr(1);
    in6_addr a6;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1)
      return {Errc::invalid_argument, "url: bad IPv6 address \"" + std::string(host) + "\""};
    ep.host = std::string(host);
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port = authority.substr(colon + 1);
      if (port.find(':') != std::string_view::npos)
        return {Errc::invalid_argument, "url: bad host (IPv6 addresses go in brackets)"};
    }
    if (host.empty()) return {Errc::invalid_argument, "url: no host"};
    std::string h(host);
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
    in_addr a4;
    if (h == "localhost") {
      ep.host = "127.0.0.1";
    } else if (inet_pton(AF_INET, h.c_str(), &a4) == 1) {
      ep.host = h;
    } else {
      return {Errc::invalid_argument,
              "url: host \"" + std::string(host) +
                  "\" is not an IP address (hiredis resolves names with a blocking lookup, which "
                  "would stall the engine loop; use an IP address or localhost)"};
    }
  }
  if (has_port) {
    if (!all_digits(port) || port.size() > 5 || std::stoi(std::string(port)) < 1 ||
        std::stoi(std::string(port)) > 65535)
      return {Errc::invalid_argument, "url: bad port \"" + std::string(port) + "\""};
    ep.port = std::stoi(std::string(port));
  }
  if (path.size() > 1) {
    auto db = parse_db(path.substr(1));
    if (!db) return db.error();
    ep.db = *db;
  }
  const bool v6 = ep.host.find(':') != std::string::npos;
  ep.label = (v6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
  return ep;
}

Result<Endpoint> parse_url(const ConnectorConfig &config) {
  const std::string &url = config.url;
  Result<Endpoint> ep = Error{};
  if (url.rfind("redis://", 0) == 0) {
    ep = parse_tcp(std::string_view(url).substr(8));
  } else if (url.rfind("unix://", 0) == 0) {
    ep = parse_unix(std::string_view(url).substr(7));
  } else {
    return {Errc::invalid_argument,
            "url: not a Redis URL (redis://host[:port][/db] or unix:///path/redis.sock)"};
  }
  if (!ep) return ep;
  if (!config.password.empty()) ep->password = config.password;  // the secret wins
  if (!ep->user.empty() && ep->password.empty())
    return {Errc::invalid_argument,
            "url: user \"" + ep->user + "\" given without a password (URL or secret)"};
  return ep;
}

// ---- commands ----

std::string upper(std::string_view s) {
  std::string out(s);
  for (char &c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Why a command may not run on the shared connection, or "" when it may.
std::string refused_command(const std::vector<std::string> &argv) {
  static const char *const kStateful[] = {
      "MULTI",        "EXEC",       "DISCARD",    "WATCH",       "UNWATCH",
      "SUBSCRIBE",    "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE",
      "SUNSUBSCRIBE", "MONITOR",    "SELECT",     "AUTH",        "HELLO",
      "RESET",        "QUIT",       "SYNC",       "PSYNC",       "REPLCONF"};
  static const char *const kBlocking[] = {"BLPOP",  "BRPOP",    "BRPOPLPUSH", "BLMOVE",
                                          "BLMPOP", "BZPOPMIN", "BZPOPMAX",   "BZMPOP",
                                          "WAIT",   "WAITAOF"};
  const std::string cmd = upper(argv[0]);
  for (const char *c : kStateful)
    if (cmd == c) return cmd + " is not allowed (it changes the shared connection's state)";
  for (const char *c : kBlocking)
    if (cmd == c) return cmd + " is not allowed (it blocks the shared connection)";
  if (cmd == "CLIENT" && argv.size() > 1) {
    const std::string sub = upper(argv[1]);
    if (sub == "REPLY" || sub == "TRACKING" || sub == "CACHING")
      return "CLIENT " + sub + " is not allowed (it changes the shared connection's state)";
  }
  if (cmd == "XREAD" || cmd == "XREADGROUP") {
    for (size_t i = 1; i < argv.size(); ++i) {
      const std::string word = upper(argv[i]);
      if (word == "STREAMS") break;
      if (word == "BLOCK") return cmd + " BLOCK is not allowed (it blocks the shared connection)";
    }
  }
  return "";
}

// How a reply becomes rows.
enum class Shape : uint8_t {
  generic,  // one row per array element, column "value"
  pairs,    // HGETALL, CONFIG GET: one row, field names as columns
  fields,   // HMGET: one row, the requested fields as columns
};

void append_json(std::string &out, const redisReply *r) {
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out += std::to_string(r->integer);
      return;
    case REDIS_REPLY_NIL:
      out += "null";
      return;
    case REDIS_REPLY_ARRAY:
      out += '[';
      for (size_t i = 0; i < r->elements; ++i) {
        if (i) out += ',';
        append_json(out, r->element[i]);
      }
      out += ']';
      return;
    default: {  // string, status, error: bytes >= 0x20 are copied as they are
      static const char kHex[] = "0123456789abcdef";
      out += '"';
      for (size_t i = 0; i < r->len; ++i) {
        const auto c = static_cast<unsigned char>(r->str[i]);
        if (c == '"' || c == '\\') {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
      }
      out += '"';
    }
  }
}

Cell to_cell(const redisReply *r) {
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      return static_cast<int64_t>(r->integer);
    case REDIS_REPLY_NIL:
      return std::monostate{};
    case REDIS_REPLY_ARRAY: {
      std::string json;
      append_json(json, r);
      return json;
    }
    default:
      return std::string(r->str, r->len);
  }
}

std::string cell_text(const redisReply *r) {
  Cell c = to_cell(r);
  if (auto *s = std::get_if<std::string>(&c)) return *s;
  if (auto *i = std::get_if<int64_t>(&c)) return std::to_string(*i);
  return "";
}

// ---- the connection ----

struct Pending;

class State : public std::enable_shared_from_this<State> {
 public:
  State(Endpoint ep, const ConnectorConfig &config, event_base *base)
      : ep_(std::move(ep)),
        base_(base),
        connect_timeout_ms_(config.connect_timeout_ms ? config.connect_timeout_ms : 2000),
        max_waiting_(config.max_waiting) {}
  ~State() { shutdown(); }
  State(const State &) = delete;
  State &operator=(const State &) = delete;

  void start();
  void shutdown();
  void query(uint64_t id, QueryRequest request, QueryDone done);
  void cancel(uint64_t id);

  // hiredis and libevent callbacks
  static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
  static void on_connect(const redisAsyncContext *ac, int status);
  static void on_disconnect(const redisAsyncContext *ac, int status);
  static void on_query_timeout(evutil_socket_t, short, void *arg);

 private:
  enum class Link : uint8_t { down, connecting, ready };
  enum class SentKind : uint8_t { user, handshake };
  struct Sent {
    std::weak_ptr<State> state;
    uint64_t id;
    SentKind kind;
    const char *step;  // handshake: "auth", "select", "ping"
  };

  std::string prefix() const { return "redis " + ep_.label + ": "; }
  void start_connect();
  void send_handshake(const char *step, std::vector<std::string> argv);
  bool send(uint64_t id, const std::vector<std::string> &argv, Sent *sent);
  void handle_reply(redisAsyncContext *ac, const Sent &sent, redisReply *reply);
  void become_ready();
  void go_down(std::string message);
  void drop_connection(std::string message);
  void fail_later(uint64_t id, DbErrc error, std::string message);
  void flush_ready();
  QueryResult convert(const Pending &p, const redisReply *reply) const;
  void arm(event *ev, uint32_t ms) {
    const timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
    evtimer_add(ev, &tv);
  }

  Endpoint ep_;
  event_base *base_;
  uint32_t connect_timeout_ms_;
  size_t max_waiting_;
  bool closed_ = false;

  Link link_ = Link::down;
  redisAsyncContext *ac_ = nullptr;  // the current connection, attached (ac_->data == this)
  int handshake_left_ = 0;
  std::string last_error_ = "not connected yet";
  uint32_t backoff_ms_ = kBackoffFirstMs;
  event *connect_timer_ = nullptr;
  event *reconnect_timer_ = nullptr;
  event *flush_event_ = nullptr;  // zero-delay: delivers queued answers

  std::unordered_map<uint64_t, std::unique_ptr<Pending>> queries_;
  std::deque<uint64_t> held_ids_;   // waiting for the connection (stale ids are skipped)
  std::deque<uint64_t> ready_ids_;  // answered, waiting for flush_event_
  size_t held_ = 0;                 // queries held for the connection
  size_t unanswered_ = 0;           // user commands sent whose reply hiredis still owes

  friend struct Pending;
};

struct Pending {
  State *owner = nullptr;
  uint64_t id = 0;
  QueryDone done;
  event *timer = nullptr;
  std::vector<std::string> argv;  // kept until sent
  Shape shape = Shape::generic;
  std::vector<std::string> fields;  // Shape::fields: the column names
  size_t max_rows = 0;
  bool held = false;
  std::optional<QueryResult> result;  // answered; delivered by flush_event_
  uint32_t timeout_ms = 0;

  ~Pending() {
    if (timer) event_free(timer);
  }
};

void State::start() {
  connect_timer_ = evtimer_new(
      base_,
      [](evutil_socket_t, short, void *arg) {
        auto *self = static_cast<State *>(arg);
        if (self->link_ != Link::connecting) return;
        self->drop_connection(self->prefix() + "connect: timed out after " +
                              std::to_string(self->connect_timeout_ms_) + " ms");
      },
      this);
  reconnect_timer_ = evtimer_new(
      base_, [](evutil_socket_t, short, void *arg) { static_cast<State *>(arg)->start_connect(); },
      this);
  flush_event_ = event_new(
      base_, -1, 0,
      [](evutil_socket_t, short, void *arg) { static_cast<State *>(arg)->flush_ready(); }, this);
  start_connect();
}

void State::shutdown() {
  if (closed_) return;
  closed_ = true;
  if (ac_) {  // hiredis calls the pending callbacks now (or after the current one): no-ops
    redisAsyncContext *ac = ac_;
    ac_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);
  }
  for (event **ev : {&connect_timer_, &reconnect_timer_, &flush_event_}) {
    if (*ev) event_free(*ev);
    *ev = nullptr;
  }
  auto queries = std::move(queries_);
  queries_.clear();
  queries.clear();  // done callbacks are destroyed, never called
}

void State::start_connect() {
  if (closed_ || ac_) return;
  redisAsyncContext *ac = ep_.unix_socket ? redisAsyncConnectUnix(ep_.path.c_str())
                                          : redisAsyncConnect(ep_.host.c_str(), ep_.port);
  if (!ac) {
    go_down(prefix() + "connect: out of memory");
    return;
  }
  if (ac->c.err) {
    std::string why = ac->c.errstr;
    redisAsyncFree(ac);
    go_down(prefix() + "connect: " + why);
    return;
  }
  ac->data = this;
  if (redisLibeventAttach(ac, base_) != REDIS_OK) {
    redisAsyncFree(ac);
    go_down(prefix() + "connect: cannot attach to the event loop");
    return;
  }
  redisAsyncSetConnectCallback(ac, &State::on_connect);
  redisAsyncSetDisconnectCallback(ac, &State::on_disconnect);
  ac_ = ac;
  link_ = Link::connecting;
  handshake_left_ = 0;
  arm(connect_timer_, connect_timeout_ms_);
  // Pipelined ahead of every query; ready once the server answered the last of them.
  if (!ep_.password.empty()) {
    if (ep_.user.empty())
      send_handshake("auth", {"AUTH", ep_.password});
    else
      send_handshake("auth", {"AUTH", ep_.user, ep_.password});
  }
  if (ep_.db != 0) send_handshake("select", {"SELECT", std::to_string(ep_.db)});
  if (handshake_left_ == 0) send_handshake("ping", {"PING"});
}

void State::send_handshake(const char *step, std::vector<std::string> argv) {
  auto *sent = new Sent{weak_from_this(), 0, SentKind::handshake, step};
  if (send(0, argv, sent)) ++handshake_left_;
}

bool State::send(uint64_t id, const std::vector<std::string> &argv, Sent *sent) {
  std::vector<const char *> ptrs;
  std::vector<size_t> lens;
  for (const auto &a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  if (redisAsyncCommandArgv(ac_, &State::on_reply, sent, static_cast<int>(argv.size()), ptrs.data(),
                            lens.data()) != REDIS_OK) {
    delete sent;  // hiredis did not keep it
    if (id) fail_later(id, DbErrc::connect, prefix() + "the connection is closing");
    return false;
  }
  if (sent->kind == SentKind::user) ++unanswered_;
  return true;
}

void State::on_connect(const redisAsyncContext *ac, int status) {
  auto *self = static_cast<State *>(ac->data);
  if (!self || self->ac_ != ac || status == REDIS_OK) return;  // ready comes with the handshake
  // hiredis frees the context after this returns (failed handshake callbacks get NULL).
  self->ac_ = nullptr;
  self->go_down(self->prefix() + "connect: " + ac->c.errstr);
}

void State::on_disconnect(const redisAsyncContext *ac, int) {
  auto *self = static_cast<State *>(ac->data);
  if (!self || self->ac_ != ac) return;
  self->ac_ = nullptr;
  self->go_down(self->prefix() + "connection lost: " + (ac->c.errstr[0] ? ac->c.errstr : "closed"));
}

void State::on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  std::unique_ptr<Sent> sent(static_cast<Sent *>(privdata));
  std::shared_ptr<State> self = sent->state.lock();  // alive until we return
  if (!self) return;
  if (sent->kind == SentKind::user) --self->unanswered_;
  if (self->closed_) return;
  self->handle_reply(ac, *sent, static_cast<redisReply *>(reply));
}

void State::handle_reply(redisAsyncContext *ac, const Sent &sent, redisReply *reply) {
  if (sent.kind == SentKind::handshake) {
    if (!reply || ac != ac_) return;  // the context is going away: its callbacks tell why
    if (reply->type == REDIS_REPLY_ERROR) {
      drop_connection(prefix() + sent.step + ": " + std::string(reply->str, reply->len));
      return;
    }
    if (--handshake_left_ == 0) become_ready();
    return;
  }
  auto it = queries_.find(sent.id);
  if (it == queries_.end()) return;  // timed out or cancelled: the late answer is dropped
  if (!reply) {                      // hiredis is freeing the context: no user code now
    fail_later(sent.id, DbErrc::connect,
               prefix() + "connection lost: " + (ac->c.errstr[0] ? ac->c.errstr : "closed"));
    return;
  }
  std::unique_ptr<Pending> p = std::move(it->second);
  queries_.erase(it);
  QueryResult result = convert(*p, reply);
  QueryDone done = std::move(p->done);
  p.reset();
  done(std::move(result));  // may re-enter query()/cancel() or destroy the connector
}

void State::become_ready() {
  link_ = Link::ready;
  backoff_ms_ = kBackoffFirstMs;
  evtimer_del(connect_timer_);
  auto held = std::move(held_ids_);
  held_ids_.clear();
  for (uint64_t id : held) {
    auto it = queries_.find(id);
    if (it == queries_.end() || !it->second->held) continue;
    Pending &p = *it->second;
    p.held = false;
    --held_;
    if (send(id, p.argv, new Sent{weak_from_this(), id, SentKind::user, ""})) p.argv.clear();
  }
}

void State::drop_connection(std::string message) {
  if (ac_) {  // safe inside a reply callback: hiredis then frees after it returns
    redisAsyncContext *ac = ac_;
    ac_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);
  }
  go_down(std::move(message));
}

void State::go_down(std::string message) {
  if (closed_) return;
  link_ = Link::down;
  evtimer_del(connect_timer_);
  last_error_ = std::move(message);
  auto held = std::move(held_ids_);
  held_ids_.clear();
  for (uint64_t id : held) {
    auto it = queries_.find(id);
    if (it == queries_.end() || !it->second->held) continue;
    it->second->held = false;
    --held_;
    fail_later(id, DbErrc::connect, last_error_);
  }
  arm(reconnect_timer_, backoff_ms_);
  backoff_ms_ = std::min(backoff_ms_ * 2, kBackoffMaxMs);
}

void State::fail_later(uint64_t id, DbErrc error, std::string message) {
  auto it = queries_.find(id);
  if (it == queries_.end()) return;
  Pending &p = *it->second;
  if (p.timer) {
    event_free(p.timer);
    p.timer = nullptr;
  }
  p.result = QueryResult{error, std::move(message), {}};
  ready_ids_.push_back(id);
  event_active(flush_event_, 0, 0);
}

void State::flush_ready() {
  std::shared_ptr<State> self = shared_from_this();  // a completion may destroy the connector
  auto ids = std::move(ready_ids_);
  ready_ids_.clear();
  for (uint64_t id : ids) {
    if (closed_) return;
    auto it = queries_.find(id);
    if (it == queries_.end() || !it->second->result) continue;  // cancelled meanwhile
    std::unique_ptr<Pending> p = std::move(it->second);
    queries_.erase(it);
    QueryResult result = std::move(*p->result);
    QueryDone done = std::move(p->done);
    p.reset();
    done(std::move(result));
  }
}

void State::on_query_timeout(evutil_socket_t, short, void *arg) {
  auto *pending = static_cast<Pending *>(arg);
  State *owner = pending->owner;
  std::shared_ptr<State> self = owner->shared_from_this();
  auto it = owner->queries_.find(pending->id);
  if (it == owner->queries_.end()) return;
  std::unique_ptr<Pending> p = std::move(it->second);
  owner->queries_.erase(it);
  if (p->held) --owner->held_;  // its held_ids_ entry is now stale
  // A sent command keeps its hiredis slot: the late answer finds no query and is dropped.
  QueryDone done = std::move(p->done);
  QueryResult result{DbErrc::timeout,
                     owner->prefix() + "timed out after " + std::to_string(p->timeout_ms) + " ms",
                     {}};
  p.reset();
  done(std::move(result));
}

void State::query(uint64_t id, QueryRequest request, QueryDone done) {
  if (closed_) return;
  auto p = std::make_unique<Pending>();
  p->owner = this;
  p->id = id;
  p->done = std::move(done);
  p->max_rows = request.max_rows;
  p->timeout_ms = request.timeout_ms;
  Pending &pending = *p;
  queries_[id] = std::move(p);

  // The statement's words, then every parameter as exactly one argument.
  const std::string &st = request.statement;
  static constexpr std::string_view kSpace = " \t\r\n\v\f";
  for (size_t pos = st.find_first_not_of(kSpace); pos != std::string::npos;) {
    const size_t end = st.find_first_of(kSpace, pos);
    pending.argv.push_back(st.substr(pos, end - pos));
    pos = end == std::string::npos ? end : st.find_first_not_of(kSpace, end);
  }
  if (pending.argv.empty()) return fail_later(id, DbErrc::query, "statement: empty");
  for (size_t i = 0; i < request.params.size(); ++i) {
    if (!request.params[i])
      return fail_later(id, DbErrc::query, "params/" + std::to_string(i) + ": Redis has no NULL");
    pending.argv.push_back(std::move(*request.params[i]));
  }
  if (std::string why = refused_command(pending.argv); !why.empty())
    return fail_later(id, DbErrc::query, "statement: " + why);
  const std::string cmd = upper(pending.argv[0]);
  if (cmd == "HGETALL" ||
      (cmd == "CONFIG" && pending.argv.size() > 1 && upper(pending.argv[1]) == "GET")) {
    pending.shape = Shape::pairs;
  } else if (cmd == "HMGET" && pending.argv.size() > 2) {
    pending.shape = Shape::fields;
    pending.fields.assign(pending.argv.begin() + 2, pending.argv.end());
  }

  if (held_ + unanswered_ >= max_waiting_)
    return fail_later(id, DbErrc::busy,
                      prefix() + "busy: " + std::to_string(held_ + unanswered_) +
                          " queries in flight (max_waiting " + std::to_string(max_waiting_) + ")");
  if (link_ == Link::down) return fail_later(id, DbErrc::connect, last_error_);

  if (request.timeout_ms > 0) {
    pending.timer = evtimer_new(base_, &State::on_query_timeout, &pending);
    arm(pending.timer, request.timeout_ms);
  }
  if (link_ == Link::connecting) {
    pending.held = true;
    ++held_;
    held_ids_.push_back(id);
    return;
  }
  if (send(id, pending.argv, new Sent{weak_from_this(), id, SentKind::user, ""}))
    pending.argv.clear();
}

void State::cancel(uint64_t id) {
  auto it = queries_.find(id);
  if (it == queries_.end()) return;
  if (it->second->held) --held_;
  queries_.erase(it);  // a sent command's late answer is dropped; a queued answer is skipped
}

QueryResult State::convert(const Pending &p, const redisReply *reply) const {
  QueryResult out;
  Rows &rows = out.rows;
  switch (reply->type) {
    case REDIS_REPLY_ERROR:
      out.error = DbErrc::query;
      out.message = prefix() + std::string(reply->str, reply->len);
      return out;
    case REDIS_REPLY_NIL:
      rows.columns = {"value"};
      return out;
    case REDIS_REPLY_ARRAY:
      break;
    default:
      rows.columns = {"value"};
      rows.rows.push_back({to_cell(reply)});
      return out;
  }
  if (p.shape == Shape::pairs) {
    if (reply->elements % 2 != 0) {
      out.error = DbErrc::query;
      out.message = prefix() + "reply: " + std::to_string(reply->elements) +
                    " elements, expected field/value pairs";
      return out;
    }
    if (reply->elements == 0) return out;
    std::vector<Cell> row;
    for (size_t i = 0; i < reply->elements; i += 2) {
      rows.columns.push_back(cell_text(reply->element[i]));
      row.push_back(to_cell(reply->element[i + 1]));
    }
    rows.rows.push_back(std::move(row));
  } else if (p.shape == Shape::fields && reply->elements == p.fields.size()) {
    rows.columns = p.fields;  // one row even when every field is missing (all NULL)
    std::vector<Cell> row;
    for (size_t i = 0; i < reply->elements; ++i) row.push_back(to_cell(reply->element[i]));
    rows.rows.push_back(std::move(row));
  } else {
    rows.columns = {"value"};
    for (size_t i = 0; i < reply->elements && i <= p.max_rows; ++i)
      rows.rows.push_back({to_cell(reply->element[i])});
  }
  if (rows.rows.size() > p.max_rows) {
    rows.rows.resize(p.max_rows);
    rows.truncated = true;
  }
  return out;
}

class RedisConnector final : public Connector {
 public:
  explicit RedisConnector(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~RedisConnector() override { state_->shutdown(); }
  void query(uint64_t id, QueryRequest request, QueryDone done) override {
    state_->query(id, std::move(request), std::move(done));
  }
  void cancel(uint64_t id) override { state_->cancel(id); }
  const char *kind() const override { return "redis"; }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

Status check_redis_url(const std::string &url) {
  // The form only: the password may still come from a secret when the connector is made.
  Result<Endpoint> ep =
      url.rfind("redis://", 0) == 0 ? parse_tcp(std::string_view(url).substr(8))
      : url.rfind("unix://", 0) == 0
          ? parse_unix(std::string_view(url).substr(7))
          : Result<Endpoint>(Error{Errc::invalid_argument, "url: not a Redis URL"});
  if (!ep) return ep.error();
  return {};
}

Result<std::unique_ptr<Connector>> open_redis(const ConnectorConfig &config,
                                              const LoopContext &loop) {
  if (!loop.base) return {Errc::invalid_argument, "db: no engine loop"};
  auto ep = parse_url(config);
  if (!ep) return ep.error();
  auto state = std::make_shared<State>(std::move(*ep), config, loop.base);
  state->start();  // connecting is asynchronous; a failure now is retried with backoff
  return std::unique_ptr<Connector>(std::make_unique<RedisConnector>(std::move(state)));
}

}  // namespace ivr::db
