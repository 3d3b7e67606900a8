// The PostgreSQL connector against a real server on loopback (tests/net/postgres_server.py,
// SCRAM password auth): typed rows, bound parameters, errors with SQLSTATE, timeouts,
// cancel, busy, a server that is down, stopped and restarted, many concurrent queries, and
// destruction with queries in flight. Runs on a real libevent loop on the test thread.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../net/script_process.h"
#include "db/postgresql.h"
#include "loop_fixture.h"

using namespace ivr;
using namespace ivr::db;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<test::ScriptProcess> start_postgres(bool with_data) {
  std::vector<std::string> args = {IVR_SOURCE_DIR "/tests/net/postgres_server.py"};
  if (with_data) {
    args.emplace_back("--init");
    args.emplace_back(IVR_TEST_DATA_DIR "/db/postgres_init.sql");
  }
  return std::make_unique<test::ScriptProcess>(args);
}

// One server for the cases that do not stop it; stopped at exit (or by the script itself
// when this process dies: its stdin closes).
test::ScriptProcess &shared_server() {
  static std::unique_ptr<test::ScriptProcess> server = start_postgres(true);
  return *server;
}

// A command to the script's control port ("stop", "start"); its answer ("ok" or "error ...").
std::string control(const test::ScriptProcess &server, const std::string &command) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  timeval tv{60, 0};  // start waits for the server: bounded by the script (30 s)
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(server.port("control"));
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) {
    const std::string line = command + "\n";
    if (write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
      char c;
      while (read(fd, &c, 1) == 1 && c != '\n') answer += c;
    }
  }
  close(fd);
  return answer;
}

uint16_t closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0);
  close(fd);  // nobody listens there now
  return ntohs(addr.sin_port);
}

ConnectorConfig config_for(const test::ScriptProcess &server, unsigned pool = 2) {
  ConnectorConfig c;
  c.name = "pg";
  c.url = server.value("url");
  c.password = server.value("password");
  c.pool_size = pool;
  c.connect_timeout_ms = 5000;
  return c;
}

QueryRequest sql(std::string statement, std::vector<std::optional<std::string>> params = {},
                 uint32_t timeout_ms = 20000) {
  QueryRequest r;
  r.statement = std::move(statement);
  r.params = std::move(params);
  r.timeout_ms = timeout_ms;
  return r;
}

// A connector on a test loop, and the answers it gave, by query id.
struct Fixture {
  test::TestLoop loop;
  std::unique_ptr<Connector> db;
  std::map<uint64_t, QueryResult> results;
  uint64_t next_id = 1;

  explicit Fixture(const ConnectorConfig &config) {
    auto opened = open_postgresql(config, loop.context());
    REQUIRE_MESSAGE(opened.ok(), (opened.ok() ? "" : opened.error().message));
    db = std::move(*opened);
  }

  uint64_t start(QueryRequest request) {
    const uint64_t id = next_id++;
    db->query(id, std::move(request), [this, id](QueryResult &&r) {
      CHECK_MESSAGE(results.count(id) == 0, "a second completion for query ", id);
      results[id] = std::move(r);
    });
    CHECK_MESSAGE(results.count(id) == 0, "completed inside query()");
    return id;
  }

  bool wait(uint64_t id, std::chrono::milliseconds limit = 30s) {
    return loop.run_until([&] { return results.count(id) > 0; }, limit);
  }

  QueryResult run(QueryRequest request) {
    const uint64_t id = start(std::move(request));
    REQUIRE_MESSAGE(wait(id), "no answer to query ", id);
    return std::move(results[id]);
  }
};

void require_ok(const QueryResult &r) {
  REQUIRE_MESSAGE(r.error == DbErrc::none, (std::string(db_errc_name(r.error)) + ": " + r.message));
}

}  // namespace

TEST_CASE("postgresql: configuration is checked when opened") {
  test::TestLoop loop;
  ConnectorConfig c;
  c.url = "postgresql://ivr@127.0.0.1:1/x";
  for (unsigned bad : {0u, 17u}) {
    c.pool_size = bad;
    auto r = open_postgresql(c, loop.context());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_argument);
    CHECK(r.error().message.rfind("pool_size: ", 0) == 0);
  }
  c.pool_size = 1;
  c.url = "postgresql://ivr@127.0.0.1:1/x?nonsense=1";
  auto r = open_postgresql(c, loop.context());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.rfind("url: ", 0) == 0);
  CHECK(r.error().message.find("nonsense") != std::string::npos);
  c.url = "redis://127.0.0.1";
  CHECK_FALSE(open_postgresql(c, loop.context()).ok());
  c.url = "postgres://ivr@127.0.0.1:1/x";
  auto good = open_postgresql(c, loop.context());
  REQUIRE(good.ok());
  CHECK(std::string((*good)->kind()) == "postgresql");
}

TEST_CASE("postgresql: typed rows") {
  Fixture f(config_for(shared_server()));
  QueryResult r =
      f.run(sql("SELECT true AS yes, false AS no, 42::int2 AS small, 7::int4 AS mid,"
                " 9007199254740993::int8 AS big, 1.5::float8 AS f8, 2.5::float4 AS f4,"
                " 'Infinity'::float8 AS inf, 'héllo'::text AS t, NULL::int AS n,"
                " 12345678901234567890.125::numeric AS num, DATE '2024-02-29' AS d,"
                " '{\"a\": 1}'::jsonb AS j"));
  require_ok(r);
  REQUIRE(r.rows.columns == std::vector<std::string>{"yes", "no", "small", "mid", "big", "f8", "f4",
                                                     "inf", "t", "n", "num", "d", "j"});
  REQUIRE(r.rows.rows.size() == 1);
  CHECK_FALSE(r.rows.truncated);
  const auto &row = r.rows.rows[0];
  CHECK(row[0] == Cell{true});
  CHECK(row[1] == Cell{false});
  CHECK(row[2] == Cell{int64_t{42}});
  CHECK(row[3] == Cell{int64_t{7}});
  CHECK(row[4] == Cell{int64_t{9007199254740993}});  // past 2^53: still exact
  CHECK(row[5] == Cell{1.5});
  CHECK(row[6] == Cell{2.5});
  REQUIRE(std::holds_alternative<double>(row[7]));
  CHECK(std::isinf(std::get<double>(row[7])));
  CHECK(row[8] == Cell{std::string("héllo")});
  CHECK(std::holds_alternative<std::monostate>(row[9]));
  CHECK(row[10] == Cell{std::string("12345678901234567890.125")});  // numeric stays exact text
  CHECK(row[11] == Cell{std::string("2024-02-29")});
  CHECK(row[12] == Cell{std::string("{\"a\": 1}")});

  QueryResult items = f.run(sql("SELECT id, name, price, in_stock FROM items ORDER BY id"));
  require_ok(items);
  REQUIRE(items.rows.rows.size() == 3);
  CHECK(items.rows.rows[0] ==
        std::vector<Cell>{int64_t{1}, std::string("apple"), std::string("1.25"), true});
  CHECK(std::holds_alternative<std::monostate>(items.rows.rows[2][2]));
}

TEST_CASE("postgresql: bound parameters are data, never SQL") {
  Fixture f(config_for(shared_server()));
  const std::string evil = "x'; DROP TABLE items; --";
  QueryResult r =
      f.run(sql("SELECT $1::text AS a, $2::text AS b, $2::text IS NULL AS b_null,"
                " $3::int + 1 AS c",
                {evil, std::nullopt, "41"}));
  require_ok(r);
  REQUIRE(r.rows.rows.size() == 1);
  CHECK(r.rows.rows[0][0] == Cell{evil});
  CHECK(std::holds_alternative<std::monostate>(r.rows.rows[0][1]));
  CHECK(r.rows.rows[0][2] == Cell{true});
  CHECK(r.rows.rows[0][3] == Cell{int64_t{42}});

  QueryResult found = f.run(sql("SELECT name FROM items WHERE name = $1", {evil}));
  require_ok(found);
  CHECK(found.rows.rows.empty());
  QueryResult still = f.run(sql("SELECT count(*) AS n FROM items WHERE id <= 3"));
  require_ok(still);
  CHECK(still.rows.rows.at(0).at(0) == Cell{int64_t{3}});
}

TEST_CASE("postgresql: max_rows truncates, zero rows and writes are not errors") {
  Fixture f(config_for(shared_server()));
  QueryRequest many = sql("SELECT generate_series(1, 1000) AS n");
  many.max_rows = 3;
  QueryResult r = f.run(many);
  require_ok(r);
  REQUIRE(r.rows.rows.size() == 3);
  CHECK(r.rows.truncated);
  CHECK(r.rows.rows[2][0] == Cell{int64_t{3}});

  QueryRequest exact = sql("SELECT generate_series(1, 3) AS n");
  exact.max_rows = 3;
  QueryResult e = f.run(exact);
  require_ok(e);
  CHECK(e.rows.rows.size() == 3);
  CHECK_FALSE(e.rows.truncated);

  QueryResult none = f.run(sql("SELECT id, name FROM items WHERE false"));
  require_ok(none);
  CHECK(none.rows.columns == std::vector<std::string>{"id", "name"});
  CHECK(none.rows.rows.empty());
  CHECK_FALSE(none.rows.truncated);

  QueryResult insert =
      f.run(sql("INSERT INTO items (name, price) VALUES ($1, $2)", {"quince", "3.10"}));
  require_ok(insert);
  CHECK(insert.rows.rows.empty());
  QueryResult returning =
      f.run(sql("UPDATE items SET price = price + 1 WHERE name = $1 RETURNING price", {"quince"}));
  require_ok(returning);
  REQUIRE(returning.rows.rows.size() == 1);
  CHECK(returning.rows.rows[0][0] == Cell{std::string("4.10")});
  require_ok(f.run(sql("DELETE FROM items WHERE name = $1", {"quince"})));
}

TEST_CASE("postgresql: the server's errors are query errors with their SQLSTATE") {
  const auto &server = shared_server();
  Fixture f(config_for(server));
  const std::string prefix = "postgresql 127.0.0.1:" + server.value("port") + ": query: ";

  QueryResult syntax = f.run(sql("SELEC 1"));
  CHECK(syntax.error == DbErrc::query);
  CHECK(syntax.message.rfind(prefix, 0) == 0);
  CHECK(syntax.message.find("(42601)") != std::string::npos);
  CHECK(syntax.rows.rows.empty());

  QueryResult missing = f.run(sql("SELECT * FROM nowhere"));
  CHECK(missing.error == DbErrc::query);
  CHECK(missing.message == prefix + "relation \"nowhere\" does not exist (42P01)");

  QueryResult two = f.run(sql("SELECT 1; SELECT 2"));  // one statement per query
  CHECK(two.error == DbErrc::query);

  QueryResult params = f.run(sql("SELECT $1::int, $2::int", {"1"}));  // a parameter short
  CHECK(params.error == DbErrc::query);

  QueryResult midway = f.run(sql("SELECT 10 / (3 - n) FROM generate_series(1, 5) AS n"));
  CHECK(midway.error == DbErrc::query);
  CHECK(midway.message.find("(22012)") != std::string::npos);
  CHECK(midway.rows.rows.empty());

  require_ok(f.run(sql("SELECT 1")));  // the connection is fine after all that
}

TEST_CASE("postgresql: a unix socket directory and a host name") {
  const auto &server = shared_server();
  for (const std::string &url :
       {"postgresql://ivr@/ivrtest?host=" + server.value("sockets") +
            "&port=" + server.value("port"),
        "postgres://ivr@localhost:" + server.value("port") + "/ivrtest?sslmode=disable"}) {
    CAPTURE(url);
    auto config = config_for(server, 1);
    config.url = url;
    Fixture f(config);
    QueryResult r = f.run(sql("SELECT current_database() AS db"));
    require_ok(r);
    CHECK(r.rows.rows.at(0).at(0) == Cell{std::string("ivrtest")});
  }
}

TEST_CASE("postgresql: a wrong password is a connect error") {
  auto config = config_for(shared_server(), 1);
  config.password = "wrong";
  Fixture f(config);
  QueryResult r = f.run(sql("SELECT 1"));
  CHECK(r.error == DbErrc::connect);
  CHECK(r.message.find("password authentication failed") != std::string::npos);
  CHECK(r.message.find("wrong") == std::string::npos);
}

TEST_CASE("postgresql: a server that is not running fails queries with connect") {
  ConnectorConfig config;
  const uint16_t port = closed_port();
  config.url = "postgresql://ivr@127.0.0.1:" + std::to_string(port) + "/ivrtest";
  config.pool_size = 2;
  config.connect_timeout_ms = 20000;
  Fixture f(config);
  for (int i = 0; i < 2; ++i) {  // while connecting, then while backing off
    QueryResult r = f.run(sql("SELECT 1", {}, 20000));
    CHECK(r.error == DbErrc::connect);
    CHECK(r.message.rfind("postgresql 127.0.0.1:" + std::to_string(port) + ": connect: ", 0) == 0);
    CHECK(r.message.find("refused") != std::string::npos);
  }
}

TEST_CASE("postgresql: a server that accepts but never answers: the connect deadline") {
  // A listening socket nobody accepts on: the kernel completes the TCP handshake, libpq
  // sends its startup packet and waits for an answer that never comes.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
  REQUIRE(listen(fd, 16) == 0);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0);
  ConnectorConfig config;
  config.url = "postgresql://ivr@127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/ivrtest";
  config.pool_size = 1;
  config.connect_timeout_ms = 200;
  {
    Fixture f(config);
    QueryResult r = f.run(sql("SELECT 1", {}, 20000));
    CHECK(r.error == DbErrc::connect);
    CHECK(r.message.find("no connection after 200 ms") != std::string::npos);
  }
  close(fd);
}

TEST_CASE("postgresql: a parameter larger than the socket buffers") {
  Fixture f(config_for(shared_server(), 1));
  const std::string big(8 << 20, 'x');  // written over several write events (PQflush)
  QueryResult r = f.run(sql("SELECT length($1) AS n, md5($1) = md5(repeat('x', $2::int)) AS same",
                            {big, std::to_string(big.size())}));
  require_ok(r);
  CHECK(r.rows.rows.at(0).at(0) == Cell{int64_t{8 << 20}});
  CHECK(r.rows.rows.at(0).at(1) == Cell{true});
}

TEST_CASE("postgresql: a query past its timeout; the pool still works") {
  Fixture f(config_for(shared_server(), 1));
  require_ok(f.run(sql("SELECT 1")));
  QueryResult slow = f.run(sql("SELECT pg_sleep(3)", {}, 300));
  CHECK(slow.error == DbErrc::timeout);
  CHECK(slow.message.find("timeout") != std::string::npos);
  QueryResult next = f.run(sql("SELECT 2 AS two"));
  require_ok(next);
  CHECK(next.rows.rows.at(0).at(0) == Cell{int64_t{2}});

  // A query that waits for the one connection times out in the queue.
  const uint64_t busy = f.start(sql("SELECT pg_sleep(0.5)"));
  const uint64_t queued = f.start(sql("SELECT 3", {}, 100));
  REQUIRE(f.wait(busy));
  REQUIRE(f.wait(queued));
  require_ok(f.results[busy]);
  CHECK(f.results[queued].error == DbErrc::timeout);
  CHECK(f.results[queued].message.find("no connection free") != std::string::npos);
}

TEST_CASE("postgresql: cancel of queued and in-flight queries: no completion") {
  Fixture f(config_for(shared_server(), 1));
  require_ok(f.run(sql("SELECT 1")));

  const uint64_t in_flight = f.start(sql("SELECT pg_sleep(2)"));
  const uint64_t queued = f.start(sql("SELECT 'queued'"));
  const uint64_t kept = f.start(sql("SELECT 'kept' AS k"));
  f.loop.run_for(100ms);
  f.db->cancel(queued);
  f.db->cancel(in_flight);
  f.db->cancel(999999);  // unknown ids are ignored
  REQUIRE(f.wait(kept));
  require_ok(f.results[kept]);
  CHECK(f.results[kept].rows.rows.at(0).at(0) == Cell{std::string("kept")});
  f.loop.run_for(200ms);
  CHECK(f.results.count(in_flight) == 0);
  CHECK(f.results.count(queued) == 0);
}

TEST_CASE("postgresql: busy past max_waiting; an answer not yet delivered can be cancelled") {
  auto config = config_for(shared_server(), 1);
  config.max_waiting = 2;
  Fixture f(config);
  require_ok(f.run(sql("SELECT 1")));
  const uint64_t a = f.start(sql("SELECT pg_sleep(0.3)"));  // in flight
  const uint64_t b = f.start(sql("SELECT 2"));              // waiting
  const uint64_t c = f.start(sql("SELECT 3"));              // waiting
  const uint64_t d = f.start(sql("SELECT 4"));              // one too many
  const uint64_t e = f.start(sql("SELECT 5"));              // busy too, then cancelled
  f.db->cancel(e);
  REQUIRE(f.wait(c));
  REQUIRE(f.wait(d));
  for (uint64_t id : {a, b, c}) require_ok(f.results[id]);
  CHECK(f.results[d].error == DbErrc::busy);
  CHECK(f.results[d].message.find("max_waiting 2") != std::string::npos);
  f.loop.run_for(50ms);
  CHECK(f.results.count(e) == 0);
}

TEST_CASE("postgresql: many concurrent queries over a small pool all complete") {
  auto config = config_for(shared_server(), 4);
  Fixture f(config);
  std::map<uint64_t, int> expect;
  for (int i = 0; i < 200; ++i)
    expect[f.start(sql("SELECT $1::int * 2 AS v", {std::to_string(i)}))] = i * 2;
  REQUIRE(f.loop.run_until([&] { return f.results.size() == expect.size(); }, 60s));
  for (auto &[id, v] : expect) {
    const QueryResult &r = f.results[id];
    require_ok(r);
    CHECK(r.rows.rows.at(0).at(0) == Cell{int64_t{v}});
  }
}

TEST_CASE("postgresql: destroying the connector drops every completion") {
  Fixture f(config_for(shared_server(), 2));
  require_ok(f.run(sql("SELECT 1")));
  f.results.clear();
  for (int i = 0; i < 4; ++i) f.start(sql("SELECT pg_sleep(1)"));  // 2 in flight, 2 waiting
  f.loop.run_for(50ms);
  auto config = config_for(shared_server(), 1);
  config.max_waiting = 1;
  f.db.reset();
  f.loop.run_for(300ms);
  CHECK(f.results.empty());

  // A completion that destroys the connector: the answers queued behind it never run.
  Fixture g(config);
  require_ok(g.run(sql("SELECT 1")));
  g.results.clear();
  bool destroyed = false;
  g.start(sql("SELECT pg_sleep(1)"));  // in flight
  g.start(sql("SELECT 'waiting'"));
  g.db->query(100, sql("SELECT 2"), [&](QueryResult &&r) {
    CHECK(r.error == DbErrc::busy);
    g.db.reset();
    destroyed = true;
  });
  g.start(sql("SELECT 3"));  // busy too, queued behind the first
  REQUIRE(g.loop.run_until([&] { return destroyed; }, 5s));
  g.loop.run_for(200ms);
  CHECK(g.results.empty());
}

TEST_CASE("postgresql: a server stopped and restarted is used again") {
  auto server = start_postgres(false);
  Fixture f(config_for(*server, 2));
  require_ok(f.run(sql("SELECT 1")));
  require_ok(f.run(sql("SELECT 1")));

  const uint64_t in_flight = f.start(sql("SELECT pg_sleep(10)"));
  f.loop.run_for(100ms);
  REQUIRE(control(*server, "stop") == "ok");
  const std::string where = "postgresql 127.0.0.1:" + server->value("port") + ": ";
  REQUIRE(f.wait(in_flight));
  CHECK(f.results[in_flight].error == DbErrc::connect);
  CHECK(f.results[in_flight].message.rfind(where + "connection lost: ", 0) == 0);
  for (int i = 0; i < 3; ++i) {
    QueryResult r = f.run(sql("SELECT 2"));
    CHECK(r.error == DbErrc::connect);
    CHECK(r.message.rfind(where, 0) == 0);
  }

  REQUIRE(control(*server, "start") == "ok");
  bool back = false;
  for (int i = 0; i < 200 && !back; ++i) {  // backoff is 5 s at most
    QueryResult r = f.run(sql("SELECT 3 AS three"));
    back = r.error == DbErrc::none;
    if (back)
      CHECK(r.rows.rows.at(0).at(0) == Cell{int64_t{3}});
    else {
      CHECK(r.error == DbErrc::connect);
      f.loop.run_for(100ms);
    }
  }
  CHECK(back);
}
