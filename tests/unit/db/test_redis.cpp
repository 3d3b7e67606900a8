// The Redis connector against real redis-server processes (tests/net/redis_server.py) on
// 127.0.0.1, driven by a real event_base on the test thread. Every wait is bounded.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../net/script_process.h"
#include "db/redis.h"
#include "loop_fixture.h"

using namespace ivr::db;
using ivr::test::ScriptProcess;
using ivr::test::TestLoop;
using namespace std::chrono_literals;

namespace {

const std::string kScript = std::string(IVR_SOURCE_DIR) + "/tests/net/redis_server.py";

std::unique_ptr<ScriptProcess> start_redis(std::vector<std::string> args = {}) {
  args.insert(args.begin(), kScript);
  return std::make_unique<ScriptProcess>(std::move(args));
}

// The server most tests share (no password; started on first use, stopped at exit).
ScriptProcess &shared_server() {
  static std::unique_ptr<ScriptProcess> server = start_redis({"--unix"});
  return *server;
}

std::string url_of(const ScriptProcess &server, const std::string &path = "/0") {
  return "redis://127.0.0.1:" + std::to_string(server.port("port")) + path;
}

std::unique_ptr<Connector> open(TestLoop &loop, ConnectorConfig config) {
  auto c = open_redis(config, loop.context());
  REQUIRE_MESSAGE(c.ok(), c.error().message);
  return std::move(c.value());
}

std::unique_ptr<Connector> open(TestLoop &loop, const std::string &url) {
  ConnectorConfig config;
  config.url = url;
  return open(loop, config);
}

QueryRequest request(std::string statement, std::vector<std::optional<std::string>> params = {},
                     uint32_t timeout_ms = 5000) {
  QueryRequest r;
  r.statement = std::move(statement);
  r.params = std::move(params);
  r.timeout_ms = timeout_ms;
  return r;
}

uint64_t next_id() {
  static uint64_t id = 0;
  return ++id;
}

// Runs one query to completion (bounded) and checks it did not complete inside query().
QueryResult run(TestLoop &loop, Connector &c, QueryRequest r) {
  std::optional<QueryResult> out;
  c.query(next_id(), std::move(r), [&](QueryResult &&res) { out = std::move(res); });
  REQUIRE_FALSE(out.has_value());
  REQUIRE(loop.run_until([&] { return out.has_value(); }));
  return std::move(*out);
}

QueryResult run(TestLoop &loop, Connector &c, std::string statement,
                std::vector<std::optional<std::string>> params = {}) {
  return run(loop, c, request(std::move(statement), std::move(params)));
}

void require_ok(const QueryResult &r) {
  REQUIRE_MESSAGE(r.error == DbErrc::none, db_errc_name(r.error), ": ", r.message);
}

std::string text(const Cell &c) {
  const auto *s = std::get_if<std::string>(&c);
  REQUIRE_MESSAGE(s != nullptr, "cell is not text");
  return *s;
}

// A key no other test (or earlier run against the shared server) uses.
std::string key(const std::string &name) {
  return "test:" + name + ":" + std::to_string(next_id());
}

// A TCP port nothing listens on.
uint16_t closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("redis: bad URLs are refused with the field and the reason") {
  TestLoop loop;
  auto error_of = [&](const std::string &url, const std::string &password = "") {
    ConnectorConfig config;
    config.url = url;
    config.password = password;
    auto c = open_redis(config, loop.context());
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == ivr::Errc::invalid_argument);
    CHECK(c.error().message.rfind("url: ", 0) == 0);
    return c.error().message;
  };
  CHECK(error_of("redis://127.0.0.1:0/0").find("bad port") != std::string::npos);
  CHECK(error_of("redis://127.0.0.1:70000").find("bad port") != std::string::npos);
  CHECK(error_of("redis://127.0.0.1:x").find("bad port") != std::string::npos);
  CHECK(error_of("redis://127.0.0.1:6379/x").find("bad db number") != std::string::npos);
  CHECK(error_of("unix:///tmp/r.sock?db=-1").find("bad db number") != std::string::npos);
  CHECK(error_of("redis://redis.example.com:6379").find("not an IP address") != std::string::npos);
  CHECK(error_of("redis://:6379").find("no host") != std::string::npos);
  CHECK(error_of("redis://app@127.0.0.1").find("without a password") != std::string::npos);
  CHECK(error_of("unix://relative.sock").find("absolute") != std::string::npos);
  CHECK(error_of("unix:///tmp/r.sock?timeout=1").find("unknown parameter") != std::string::npos);
  CHECK(error_of("http://127.0.0.1").find("not a Redis URL") != std::string::npos);

  // Accepted forms (connecting happens later, in the background).
  for (std::string ok : {"redis://localhost", "redis://127.0.0.1:6390/3", "redis://[::1]:6390",
                         "redis://u:p%40ss@127.0.0.1:6390", "unix:///tmp/r.sock?db=2"}) {
    ConnectorConfig config;
    config.url = ok;
    auto c = open_redis(config, loop.context());
    CHECK_MESSAGE(c.ok(), ok);
    if (c.ok()) CHECK(std::string(c.value()->kind()) == "redis");
  }
}

TEST_CASE("redis: strings, missing keys and integers") {
  TestLoop loop;
  auto c = open(loop, url_of(shared_server()));
  const std::string k = key("get");
  require_ok(run(loop, *c, "SET", {k, "hello"}));

  QueryResult got = run(loop, *c, "GET", {k});
  require_ok(got);
  REQUIRE(got.rows.columns == std::vector<std::string>{"value"});
  REQUIRE(got.rows.rows.size() == 1);
  CHECK(text(got.rows.rows[0][0]) == "hello");

  QueryResult missing = run(loop, *c, "GET", {key("missing")});
  require_ok(missing);
  CHECK(missing.rows.rows.empty());

  QueryResult n = run(loop, *c, "INCR", {key("counter")});
  require_ok(n);
  REQUIRE(n.rows.rows.size() == 1);
  CHECK(std::get<int64_t>(n.rows.rows[0][0]) == 1);

  QueryResult status = run(loop, *c, "PING");
  require_ok(status);
  CHECK(text(status.rows.rows.at(0).at(0)) == "PONG");
}

TEST_CASE("redis: hashes: HGETALL is one row of fields, HMGET names its columns") {
  TestLoop loop;
  auto c = open(loop, url_of(shared_server()));
  const std::string h = key("hash");
  require_ok(run(loop, *c, "HSET", {h, "name", "Ada", "tier", "gold"}));

  QueryResult all = run(loop, *c, "hgetall", {h});
  require_ok(all);
  REQUIRE(all.rows.rows.size() == 1);
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i < all.rows.columns.size(); ++i)
    fields[all.rows.columns[i]] = text(all.rows.rows[0][i]);
  CHECK(fields == std::map<std::string, std::string>{{"name", "Ada"}, {"tier", "gold"}});

  QueryResult none = run(loop, *c, "HGETALL", {key("nohash")});
  require_ok(none);
  CHECK(none.rows.rows.empty());

  QueryResult some = run(loop, *c, "HMGET", {h, "tier", "missing", "name"});
  require_ok(some);
  CHECK(some.rows.columns == std::vector<std::string>{"tier", "missing", "name"});
  REQUIRE(some.rows.rows.size() == 1);
  CHECK(text(some.rows.rows[0][0]) == "gold");
  CHECK(std::holds_alternative<std::monostate>(some.rows.rows[0][1]));
  CHECK(text(some.rows.rows[0][2]) == "Ada");

  // Literal words in the statement name columns too; all missing is still one row.
  QueryResult absent = run(loop, *c, "HMGET " + key("nohash") + " a b");
  require_ok(absent);
  CHECK(absent.rows.columns == std::vector<std::string>{"a", "b"});
  REQUIRE(absent.rows.rows.size() == 1);
  CHECK(std::holds_alternative<std::monostate>(absent.rows.rows[0][0]));
}

TEST_CASE("redis: arrays are one row per element, truncated at max_rows") {
  TestLoop loop;
  auto c = open(loop, url_of(shared_server()));
  const std::string l = key("list");
  require_ok(run(loop, *c, "RPUSH", {l, "a", "b", "c", "d", "e"}));

  QueryResult all = run(loop, *c, "LRANGE", {l, "0", "-1"});
  require_ok(all);
  REQUIRE(all.rows.rows.size() == 5);
  CHECK(text(all.rows.rows[4][0]) == "e");
  CHECK_FALSE(all.rows.truncated);

  QueryRequest r = request("LRANGE", {l, "0", "-1"});
  r.max_rows = 3;
  QueryResult some = run(loop, *c, std::move(r));
  require_ok(some);
  REQUIRE(some.rows.rows.size() == 3);
  CHECK(text(some.rows.rows[2][0]) == "c");
  CHECK(some.rows.truncated);

  const std::string z = key("zset");
  require_ok(run(loop, *c, "ZADD", {z, "1", "x", "2", "y"}));
  QueryResult scores = run(loop, *c, "ZRANGE", {z, "0", "-1", "WITHSCORES"});
  require_ok(scores);
  REQUIRE(scores.rows.rows.size() == 4);
  CHECK(text(scores.rows.rows[1][0]) == "1");
}

TEST_CASE("redis: a parameter is always exactly one argument") {
  TestLoop loop;
  auto c = open(loop, url_of(shared_server()));
  const std::string k = key("inject");
  const std::string nasty = "two words \"quoted\" 'single'\r\nSET pwned 1\r\n*3\r\n$3\r\nSET\r\n";
  require_ok(run(loop, *c, "SET", {k, nasty}));
  QueryResult back = run(loop, *c, "GET", {k});
  require_ok(back);
  REQUIRE(back.rows.rows.size() == 1);
  CHECK(text(back.rows.rows[0][0]) == nasty);
  QueryResult pwned = run(loop, *c, "GET", {"pwned"});
  require_ok(pwned);
  CHECK(pwned.rows.rows.empty());

  // A key with spaces is one key.
  require_ok(run(loop, *c, "SET", {"a key with spaces", "v"}));
  QueryResult spaced = run(loop, *c, "GET", {"a key with spaces"});
  require_ok(spaced);
  CHECK(text(spaced.rows.rows.at(0).at(0)) == "v");
}

TEST_CASE("redis: server errors and refused statements are query errors") {
  TestLoop loop;
  auto &server = shared_server();
  auto c = open(loop, url_of(server));
  const std::string k = key("str");
  require_ok(run(loop, *c, "SET", {k, "x"}));

  QueryResult wrong = run(loop, *c, "LPUSH", {k, "y"});
  CHECK(wrong.error == DbErrc::query);
  CHECK(wrong.message == "redis 127.0.0.1:" + server.value("port") +
                             ": WRONGTYPE Operation against a key holding the wrong kind of value");

  QueryResult unknown = run(loop, *c, "NOSUCHCOMMAND", {"x"});
  CHECK(unknown.error == DbErrc::query);
  CHECK(unknown.message.find("unknown command") != std::string::npos);

  QueryResult empty = run(loop, *c, "  \t ");
  CHECK(empty.error == DbErrc::query);
  CHECK(empty.message == "statement: empty");

  QueryResult null = run(loop, *c, "SET", {k, std::nullopt});
  CHECK(null.error == DbErrc::query);
  CHECK(null.message == "params/1: Redis has no NULL");

  QueryResult multi = run(loop, *c, "MULTI");
  CHECK(multi.error == DbErrc::query);
  CHECK(multi.message.find("MULTI is not allowed") != std::string::npos);
  QueryResult blpop = run(loop, *c, "blpop", {k, "0"});
  CHECK(blpop.error == DbErrc::query);

  // The connection is still fine (no MULTI, no block took effect).
  require_ok(run(loop, *c, "GET", {k}));
}

TEST_CASE("redis: db number and Unix socket") {
  TestLoop loop;
  auto &server = shared_server();
  auto db1 = open(loop, url_of(server, "/1"));
  auto db0 = open(loop, "unix://" + server.value("socket"));
  auto unix1 = open(loop, "unix://" + server.value("socket") + "?db=1");
  const std::string k = key("db1");
  require_ok(run(loop, *db1, "SET", {k, "one"}));
  QueryResult in0 = run(loop, *db0, "GET", {k});
  require_ok(in0);
  CHECK(in0.rows.rows.empty());
  QueryResult in1 = run(loop, *unix1, "GET", {k});
  require_ok(in1);
  CHECK(text(in1.rows.rows.at(0).at(0)) == "one");

  auto bad_db = open(loop, url_of(server, "/99999"));
  QueryResult r = run(loop, *bad_db, "PING");
  CHECK(r.error == DbErrc::connect);
  CHECK(r.message.find(": select: ") != std::string::npos);
}

TEST_CASE("redis: AUTH with the password secret; a wrong one fails with connect") {
  TestLoop loop;
  auto server = start_redis({"--password", "s3cret"});
  const std::string port = server->value("port");

  ConnectorConfig config;
  config.url = url_of(*server);
  config.password = "s3cret";
  auto good = open(loop, config);
  require_ok(run(loop, *good, "SET", {"k", "v"}));

  auto in_url = open(loop, "redis://:s3cret@127.0.0.1:" + port);
  require_ok(run(loop, *in_url, "GET", {"k"}));

  // The secret wins over the URL's password.
  config.url = "redis://:wrong@127.0.0.1:" + port;
  auto secret_wins = open(loop, config);
  require_ok(run(loop, *secret_wins, "GET", {"k"}));

  config.url = url_of(*server);
  config.password = "nope";
  auto bad = open(loop, config);
  QueryResult r = run(loop, *bad, "GET", {"k"});
  CHECK(r.error == DbErrc::connect);
  CHECK(r.message.rfind("redis 127.0.0.1:" + port + ": auth: ", 0) == 0);
  // Later queries fail at once with the same reason (the connector retries meanwhile).
  QueryResult again = run(loop, *bad, "GET", {"k"});
  CHECK(again.error == DbErrc::connect);
  CHECK(again.message.find("auth: ") != std::string::npos);

  auto none = open(loop, url_of(*server));
  QueryResult noauth = run(loop, *none, "GET", {"k"});
  CHECK(noauth.error == DbErrc::connect);  // the handshake's PING was refused
  CHECK(noauth.message.find("NOAUTH") != std::string::npos);
}

TEST_CASE("redis: a server that is down fails queries promptly with connect") {
  TestLoop loop;
  const uint16_t port = closed_port();
  auto c = open(loop, "redis://127.0.0.1:" + std::to_string(port));
  for (int i = 0; i < 3; ++i) {
    QueryResult r = run(loop, *c, request("GET", {"k"}, 20000));
    CHECK(r.error == DbErrc::connect);  // not timeout: it did not wait 20 s
    CHECK(r.message.rfind("redis 127.0.0.1:" + std::to_string(port) + ": ", 0) == 0);
    CHECK(r.message.find("refused") != std::string::npos);
  }
}

TEST_CASE("redis: a server that accepts but never answers: connect deadline") {
  TestLoop loop;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
  REQUIRE(listen(fd, 8) == 0);  // the kernel completes handshakes; nobody ever reads
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  ConnectorConfig config;
  config.url = "redis://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  config.connect_timeout_ms = 200;
  auto c = open(loop, config);
  QueryResult r = run(loop, *c, request("GET", {"k"}, 20000));
  CHECK(r.error == DbErrc::connect);
  CHECK(r.message.find("connect: timed out after 200 ms") != std::string::npos);
  c.reset();
  close(fd);
}

TEST_CASE("redis: a slow command times out; the next query works") {
  TestLoop loop;
  auto server = start_redis();  // DEBUG SLEEP stalls the whole server: not the shared one
  auto c = open(loop, url_of(*server));
  QueryResult slow = run(loop, *c, request("DEBUG SLEEP", {"0.5"}, 100));
  CHECK(slow.error == DbErrc::timeout);
  CHECK(slow.message.find("timed out after 100 ms") != std::string::npos);
  QueryResult next = run(loop, *c, "PING");
  require_ok(next);
  CHECK(text(next.rows.rows.at(0).at(0)) == "PONG");
}

TEST_CASE("redis: cancel means no completion; busy beyond max_waiting") {
  TestLoop loop;
  auto server = start_redis();
  ConnectorConfig config;
  config.url = url_of(*server);
  config.max_waiting = 3;
  auto c = open(loop, config);
  require_ok(run(loop, *c, "PING"));  // connected

  int called = 0;
  std::optional<QueryResult> slow, a, b, busy;
  c->query(1001, request("DEBUG SLEEP", {"0.3"}), [&](QueryResult &&r) { slow = std::move(r); });
  c->query(1002, request("PING"), [&](QueryResult &&r) { a = std::move(r); });
  c->query(1003, request("PING"), [&](QueryResult &&) { ++called; });
  c->query(1004, request("PING"), [&](QueryResult &&r) { busy = std::move(r); });
  c->query(1005, request("PING"), [&](QueryResult &&) { ++called; });  // busy too, cancelled
  c->query(1006, request("SET", {"k", std::nullopt}), [&](QueryResult &&) { ++called; });
  c->cancel(1003);
  c->cancel(1005);
  c->cancel(1006);
  c->cancel(424242);  // unknown: nothing happens
  REQUIRE_FALSE(busy.has_value());
  REQUIRE(loop.run_until([&] { return slow && a && busy; }));
  require_ok(*slow);
  require_ok(*a);
  CHECK(busy->error == DbErrc::busy);
  CHECK(busy->message.find("max_waiting 3") != std::string::npos);
  loop.run_for(100ms);
  CHECK(called == 0);

  // The slots freed: three more fit again.
  require_ok(run(loop, *c, "PING"));
}

TEST_CASE("redis: killed and restarted on the same port: connect errors, then success") {
  TestLoop loop;
  auto server = start_redis();
  const std::string port = server->value("port");
  ConnectorConfig config;
  config.url = url_of(*server);
  auto c = open(loop, config);
  require_ok(run(loop, *c, "SET", {"k", "v"}));

  // Commands in flight when the server goes away fail with connect.
  std::vector<QueryResult> in_flight;
  for (int i = 0; i < 5; ++i)
    c->query(next_id(), request("GET", {"k"}), [&](QueryResult &&r) { in_flight.push_back(r); });
  server->stop();  // the loop did not run: hiredis has not even written them yet
  REQUIRE(loop.run_until([&] { return in_flight.size() == 5; }));
  for (const QueryResult &r : in_flight) {
    CHECK(r.error == DbErrc::connect);
    CHECK(r.message.rfind("redis 127.0.0.1:" + port + ": ", 0) == 0);
  }

  loop.run_for(400ms);  // reconnect attempts (backoff 100, 200 ms) find nobody listening
  QueryResult down = run(loop, *c, "PING");
  CHECK(down.error == DbErrc::connect);
  CHECK(down.message.find("refused") != std::string::npos);

  server = start_redis({"--port", port});
  bool ok = false;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!ok && std::chrono::steady_clock::now() < deadline) {
    QueryResult r = run(loop, *c, "PING");
    ok = r.error == DbErrc::none;
    if (!ok) {
      CHECK(r.error == DbErrc::connect);
      loop.run_for(50ms);
    }
  }
  CHECK(ok);
}

TEST_CASE("redis: 1000 concurrent GETs all complete") {
  TestLoop loop;
  auto c = open(loop, url_of(shared_server()));
  const std::string k = key("many");
  require_ok(run(loop, *c, "SET", {k, "v"}));
  int ok = 0, failed = 0;
  for (int i = 0; i < 1000; ++i)
    c->query(next_id(), request("GET", {k}), [&](QueryResult &&r) {
      if (r.error == DbErrc::none && r.rows.rows.size() == 1 && text(r.rows.rows[0][0]) == "v")
        ++ok;
      else
        ++failed;
    });
  REQUIRE(loop.run_until([&] { return ok + failed == 1000; }, 20s));
  CHECK(ok == 1000);
}

TEST_CASE("redis: destroying the connector with queries in flight calls nothing") {
  TestLoop loop;
  auto &server = shared_server();
  int called = 0;
  {
    auto c = open(loop, url_of(server));
    require_ok(run(loop, *c, "PING"));
    for (int i = 0; i < 50; ++i)
      c->query(next_id(), request("GET", {"x"}), [&](QueryResult &&) { ++called; });
    c->query(next_id(), request("SET", {"k", std::nullopt}), [&](QueryResult &&) { ++called; });
  }
  {
    auto c = open(loop, url_of(server));  // still connecting: the queries are held
    for (int i = 0; i < 10; ++i)
      c->query(next_id(), request("GET", {"x"}), [&](QueryResult &&) { ++called; });
  }
  loop.run_for(200ms);
  CHECK(called == 0);

  // Destroyed from inside a completion while others are in flight on the same connection.
  std::unique_ptr<Connector> c = open(loop, url_of(server));
  require_ok(run(loop, *c, "PING"));
  int first = 0;
  c->query(next_id(), request("PING"), [&](QueryResult &&) {
    ++first;
    c.reset();
  });
  for (int i = 0; i < 20; ++i)
    c->query(next_id(), request("PING"), [&](QueryResult &&) { ++called; });
  REQUIRE(loop.run_until([&] { return first == 1; }));
  loop.run_for(200ms);
  CHECK(called == 0);
  CHECK(c == nullptr);
}
