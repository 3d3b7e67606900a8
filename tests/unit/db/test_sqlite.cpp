// The SQLite connector against real database files: typed rows, bound parameters, limits,
// errors, timeouts and cancellation, with answers delivered on a libevent loop.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "db/connector.h"
#include "db/sqlite.h"
#include "loop_fixture.h"

using namespace ivr::db;

namespace {

using Loop = ivr::test::TestLoop;
using namespace std::chrono_literals;

struct TempDb {
  std::filesystem::path path;
  TempDb() {
    char tmpl[] = "/tmp/ivr-sqlite-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    path = std::filesystem::path(tmpl) / "crm.db";
    sqlite3 *db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const char *sql =
        "CREATE TABLE customers (phone TEXT PRIMARY KEY, name TEXT, tier TEXT, score INTEGER, "
        "balance REAL, note TEXT, big INTEGER);"
        "INSERT INTO customers VALUES ('+15550100', 'Ada', 'gold', 9, 12.5, NULL, "
        "9007199254740993);"
        "INSERT INTO customers VALUES ('+15550101', 'Bob', 'silver', 3, 0.25, 'x', 1);"
        "CREATE TABLE n (i INTEGER);"
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500) "
        "INSERT INTO n SELECT x FROM c;";
    REQUIRE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  ~TempDb() { std::filesystem::remove_all(path.parent_path()); }
  std::string url() const { return "sqlite://" + path.string(); }
};

struct Fixture {
  Loop loop;
  TempDb db;
  std::unique_ptr<Connector> conn;
  explicit Fixture(unsigned pool = 2, size_t max_waiting = 1000) {
    ConnectorConfig c;
    c.name = "crm";
    c.url = db.url();
    c.pool_size = pool;
    c.max_waiting = max_waiting;
    auto made = open_sqlite(c, loop.context());
    REQUIRE(made.ok());
    conn = std::move(*made);
  }
  QueryResult ask(std::string statement, std::vector<std::optional<std::string>> params = {},
                  uint32_t timeout_ms = 3000, size_t max_rows = 100) {
    static uint64_t next = 1;
    QueryRequest q;
    q.statement = std::move(statement);
    q.params = std::move(params);
    q.timeout_ms = timeout_ms;
    q.max_rows = max_rows;
    std::optional<QueryResult> got;
    conn->query(next++, std::move(q), [&](QueryResult &&r) { got = std::move(r); });
    REQUIRE(loop.run_until([&] { return got.has_value(); }));
    return std::move(*got);
  }
};

}  // namespace

TEST_CASE("sqlite: typed rows by bound parameters") {
  Fixture f;
  auto r = f.ask("SELECT name, tier, score, balance, note, big FROM customers WHERE phone = ?",
                 {"+15550100"});
  REQUIRE(r.error == DbErrc::none);
  CHECK(r.rows.columns ==
        std::vector<std::string>{"name", "tier", "score", "balance", "note", "big"});
  REQUIRE(r.rows.rows.size() == 1);
  const auto &row = r.rows.rows[0];
  CHECK(std::get<std::string>(row[0]) == "Ada");
  CHECK(std::get<int64_t>(row[2]) == 9);
  CHECK(std::get<double>(row[3]) == 12.5);
  CHECK(std::holds_alternative<std::monostate>(row[4]));
  CHECK(std::get<int64_t>(row[5]) == 9007199254740993);
  CHECK_FALSE(r.rows.truncated);
}

TEST_CASE("sqlite: a parameter is data, never SQL") {
  Fixture f;
  auto r = f.ask("SELECT count(*) AS n FROM customers WHERE phone = ?", {"' OR '1'='1"});
  REQUIRE(r.error == DbErrc::none);
  CHECK(std::get<int64_t>(r.rows.rows[0][0]) == 0);
  r = f.ask("INSERT INTO customers (phone, name) VALUES (?, ?)",
            {"+1999", "x'); DROP TABLE customers; --"});
  REQUIRE(r.error == DbErrc::none);
  CHECK(r.rows.rows.empty());
  r = f.ask("SELECT name FROM customers WHERE phone = ?", {"+1999"});
  CHECK(std::get<std::string>(r.rows.rows[0][0]) == "x'); DROP TABLE customers; --");
  // NULL binds as NULL.
  r = f.ask("SELECT ? IS NULL AS is_null", {std::nullopt});
  INFO(r.message);
  REQUIRE(r.rows.rows.size() == 1);
  CHECK(std::get<int64_t>(r.rows.rows[0][0]) == 1);
}

TEST_CASE("sqlite: zero rows, max_rows, and statement errors") {
  Fixture f;
  auto r = f.ask("SELECT name FROM customers WHERE phone = ?", {"nobody"});
  CHECK(r.error == DbErrc::none);
  CHECK(r.rows.rows.empty());
  CHECK(r.rows.columns == std::vector<std::string>{"name"});

  r = f.ask("SELECT i FROM n ORDER BY i", {}, 3000, 10);
  CHECK(r.rows.rows.size() == 10);
  CHECK(r.rows.truncated);

  r = f.ask("SELEC nothing");
  CHECK(r.error == DbErrc::query);
  CHECK(r.message.find("syntax error") != std::string::npos);
  CHECK(r.message.find("sqlite ") == 0);

  r = f.ask("SELECT 1; DROP TABLE customers");
  CHECK(r.error == DbErrc::query);
  CHECK(r.message.find("one statement per query") != std::string::npos);

  r = f.ask("SELECT * FROM customers WHERE phone = ? AND tier = ?", {"x"});
  CHECK(r.error == DbErrc::query);
  CHECK(r.message.find("params: the statement takes 2, the step gives 1") != std::string::npos);

  r = f.ask("SELECT * FROM missing_table");
  CHECK(r.error == DbErrc::query);
  CHECK(r.message.find("no such table") != std::string::npos);
}

TEST_CASE("sqlite: a slow query times out and the worker goes on") {
  Fixture f(1);
  auto r = f.ask(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", {},
      200);
  CHECK(r.error == DbErrc::timeout);
  CHECK(r.message.find("no answer within 200 ms") != std::string::npos);
  r = f.ask("SELECT name FROM customers WHERE phone = ?", {"+15550101"});
  CHECK(r.error == DbErrc::none);
  CHECK(std::get<std::string>(r.rows.rows[0][0]) == "Bob");
}

TEST_CASE("sqlite: cancel stops a running query; no answer follows") {
  Fixture f(1);
  bool answered = false;
  QueryRequest slow;
  slow.statement =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
  slow.timeout_ms = 60000;
  f.conn->query(1000, slow, [&](QueryResult &&) { answered = true; });
  QueryRequest queued;
  queued.statement = "SELECT 1";
  f.conn->query(1001, queued, [&](QueryResult &&) { answered = true; });
  f.loop.run_for(100ms);
  f.conn->cancel(1000);
  f.conn->cancel(1001);
  // The worker is free again: a new query is answered.
  auto r = f.ask("SELECT 2 AS two");
  CHECK(r.error == DbErrc::none);
  CHECK_FALSE(answered);
}

TEST_CASE("sqlite: busy past max_waiting, and many queries over a pool") {
  Fixture f(2, 50);
  int done = 0, busy = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    QueryRequest q;
    q.statement = "SELECT i FROM n WHERE i = ?";
    q.params = {std::to_string(i % 500 + 1)};
    f.conn->query(5000 + i, q, [&, i](QueryResult &&r) {
      if (r.error == DbErrc::busy) {
        ++busy;
        CHECK(r.message.find("more than 50 queries waiting") != std::string::npos);
      } else {
        CHECK(r.error == DbErrc::none);
        CHECK(std::get<int64_t>(r.rows.rows.at(0).at(0)) == static_cast<int64_t>(i % 500 + 1));
      }
      ++done;
    });
  }
  REQUIRE(f.loop.run_until([&] { return done == 200; }));
  CHECK(busy > 0);
  CHECK(busy < 200);
}

TEST_CASE("sqlite: a missing read-only database fails with connect; bad URLs are refused") {
  Loop loop;
  ConnectorConfig c;
  c.url = "sqlite:///nonexistent-dir-ivr/x.db";
  c.read_only = true;
  auto made = open_sqlite(c, loop.context());
  REQUIRE(made.ok());
  std::optional<QueryResult> got;
  QueryRequest q;
  q.statement = "SELECT 1";
  (*made)->query(1, q, [&](QueryResult &&r) { got = std::move(r); });
  REQUIRE(loop.run_until([&] { return got.has_value(); }));
  CHECK(got->error == DbErrc::connect);
  CHECK(got->message.find("sqlite /nonexistent-dir-ivr/x.db: ") == 0);

  c.url = "sqlite://host/x.db";
  auto bad = open_sqlite(c, loop.context());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("url: ") == 0);
  c.url = "sqlite:///x.db";
  c.pool_size = 0;
  bad = open_sqlite(c, loop.context());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("pool_size") == 0);
}

TEST_CASE("sqlite: destroying the connector with queries in flight delivers nothing") {
  Fixture f(2);
  bool answered = false;
  for (uint64_t i = 0; i < 20; ++i) {
    QueryRequest q;
    q.statement = i % 2 ? "SELECT 1"
                        : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                          "WHERE x < 200000) SELECT count(*) FROM c";
    f.conn->query(9000 + i, q, [&](QueryResult &&) { answered = true; });
  }
  f.conn.reset();
  f.loop.run_for(200ms);
  CHECK_FALSE(answered);
}

TEST_CASE("sqlite: a database locked by another writer is waited for within the deadline") {
  Fixture f(1);
  sqlite3 *other = nullptr;
  REQUIRE(sqlite3_open(f.db.path.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  auto r = f.ask("INSERT INTO n VALUES (?)", {"1"}, 300);
  CHECK(r.error == DbErrc::connect);  // busy: the database is not usable now
  CHECK(r.message.find("locked") != std::string::npos);
  sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  r = f.ask("INSERT INTO n VALUES (?)", {"2"});
  CHECK(r.error == DbErrc::none);
}
