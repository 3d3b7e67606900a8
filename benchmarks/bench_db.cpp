// Benchmark for lib/db: what a db step's lookup costs through each built-in connector, from
// Connector::query() to its completion on the loop (the engine's view), against real
// servers on loopback: SQLite (a temporary file, worker threads), PostgreSQL and Redis
// (throwaway servers started with the test scripts tests/net/postgres_server.py and
// tests/net/redis_server.py). Each connector holds 10 000 customers keyed by phone number.
// Measured per connector:
//   (a) sequential point lookups (one in flight): latency p50/p99/max;
//   (b) bursts of N lookups issued at once: time until all complete, per-lookup latency,
//       errors.
// Self-contained: std::chrono::steady_clock only, no benchmark library.
// Results and how to read them: docs/benchmarks.md, "Database lookups".
//
//   bench-db [--lookups N] [--concurrent N] [--rounds R] [--only sqlite,postgresql,redis]
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "../tests/unit/db/loop_fixture.h"
#include "../tests/unit/net/script_process.h"
#include "db/connector.h"

namespace {

using Clock = std::chrono::steady_clock;
using ivr::db::Connector;
using ivr::db::ConnectorConfig;
using ivr::db::QueryRequest;
using ivr::db::QueryResult;

constexpr int kCustomers = 10000;

struct Options {
  int lookups = 5000;
  int concurrent = 1000;
  int rounds = 5;
  std::string only = "sqlite,postgresql,redis";
};

double us(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string phone(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "+1555%07d", i);
  return buf;
}

// One lookup's request for connector `kind`.
QueryRequest lookup(const std::string &kind, int i) {
  QueryRequest q;
  q.timeout_ms = 10000;
  if (kind == "redis") {
    q.statement = "HGETALL";
    q.params = {"lead:" + phone(i)};
  } else {
    q.statement = kind == "sqlite" ? "SELECT tier, name, score FROM customers WHERE phone = ?"
                                   : "SELECT tier, name, score FROM customers WHERE phone = $1";
    q.params = {phone(i)};
  }
  return q;
}

struct Bench {
  ivr::test::TestLoop loop;
  std::unique_ptr<Connector> conn;
  std::string kind;
  uint64_t next_id = 1;
  int errors = 0;

  // Issues n lookups at once and runs the loop until all answered; latencies in us.
  std::vector<double> burst(int n, int offset) {
    std::vector<double> lat;
    lat.reserve(static_cast<size_t>(n));
    int done = 0;
    for (int k = 0; k < n; ++k) {
      auto t0 = Clock::now();
      conn->query(next_id++, lookup(kind, (offset + k * 7919) % kCustomers),
                  [&, t0](QueryResult &&r) {
                    lat.push_back(us(Clock::now() - t0));
                    if (r.error != ivr::db::DbErrc::none || r.rows.rows.size() != 1) {
                      if (errors++ < 3)
                        std::fprintf(stderr, "%s: %s (%zu rows)\n", kind.c_str(), r.message.c_str(),
                                     r.rows.rows.size());
                    }
                    ++done;
                  });
    }
    if (!loop.run_until([&] { return done == n; }, std::chrono::seconds(120))) {
      std::fprintf(stderr, "%s: a burst did not finish\n", kind.c_str());
      std::exit(1);
    }
    return lat;
  }
};

void run(const std::string &kind, const ConnectorConfig &config, const Options &o) {
  Bench b;
  b.kind = kind;
  auto made = ivr::db::open_connector(config, b.loop.context());
  if (!made.ok()) {
    std::fprintf(stderr, "%s: %s\n", kind.c_str(), made.error().message.c_str());
    std::exit(1);
  }
  b.conn = std::move(*made);
  // Warm up: connections opened, statements prepared, pages cached.
  for (int i = 0; i < 200; ++i) b.burst(1, i);
  std::vector<double> seq;
  for (int i = 0; i < o.lookups; ++i) seq.push_back(b.burst(1, i * 31)[0]);
  std::printf("%-11s sequential %6d lookups   p50 %8.1f us  p99 %8.1f us  max %8.1f us\n",
              kind.c_str(), o.lookups, pct(seq, 50), pct(seq, 99), pct(seq, 100));
  for (int r = 0; r < o.rounds; ++r) {
    auto t0 = Clock::now();
    auto lat = b.burst(o.concurrent, r * 1013);
    double total_ms = us(Clock::now() - t0) / 1000;
    std::printf("%-11s burst of %5d             all in %7.1f ms  p50 %8.1f us  p99 %8.1f us\n",
                kind.c_str(), o.concurrent, total_ms, pct(lat, 50), pct(lat, 99));
  }
  std::printf("%-11s errors: %d\n", kind.c_str(), b.errors);
}

std::string source_dir() {
  return IVR_SOURCE_DIR;
}

}  // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--lookups")
      o.lookups = std::atoi(argv[i + 1]);
    else if (a == "--concurrent")
      o.concurrent = std::atoi(argv[i + 1]);
    else if (a == "--rounds")
      o.rounds = std::atoi(argv[i + 1]);
    else if (a == "--only")
      o.only = argv[i + 1];
    else {
      std::fprintf(stderr,
                   "usage: bench-db [--lookups N] [--concurrent N] [--rounds R] "
                   "[--only sqlite,postgresql,redis]\n");
      return 2;
    }
  }
  auto wanted = [&](const char *k) { return o.only.find(k) != std::string::npos; };
  char tmpl[] = "/tmp/ivr-bench-db-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  std::filesystem::path dir(tmpl);

  if (wanted("sqlite")) {
    std::string path = (dir / "crm.db").string();
    sqlite3 *db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; CREATE TABLE customers (phone TEXT PRIMARY KEY, tier "
                 "TEXT, name TEXT, score INTEGER); BEGIN;",
                 nullptr, nullptr, nullptr);
    for (int i = 0; i < kCustomers; ++i) {
      std::string sql = "INSERT INTO customers VALUES ('" + phone(i) + "', '" +
                        (i % 10 ? "silver" : "gold") + "', 'Customer " + std::to_string(i) + "', " +
                        std::to_string(i % 100) + ")";
      sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    ConnectorConfig c;
    c.url = "sqlite://" + path;
    c.pool_size = 2;
    c.max_waiting = 100000;
    run("sqlite", c, o);
  }
  if (wanted("postgresql")) {
    std::string init = (dir / "crm.sql").string();
    {
      std::ofstream f(init);
      f << "CREATE TABLE customers (phone text PRIMARY KEY, tier text, name text, score int);\n"
           "INSERT INTO customers SELECT '+1555' || lpad(i::text, 7, '0'), CASE WHEN i % 10 = 0 "
           "THEN 'gold' ELSE 'silver' END, 'Customer ' || i, i % 100 FROM generate_series(0, "
        << kCustomers - 1 << ") AS i;\nANALYZE customers;\n";
    }
    ivr::test::ScriptProcess pg({source_dir() + "/tests/net/postgres_server.py", "--init", init});
    ConnectorConfig c;
    c.url = pg.value("url");
    c.password = pg.value("password");
    c.pool_size = 4;
    c.max_waiting = 100000;
    run("postgresql", c, o);
  }
  if (wanted("redis")) {
    std::string init = (dir / "cache.txt").string();
    {
      std::ofstream f(init);
      for (int i = 0; i < kCustomers; ++i)
        f << "HSET lead:" << phone(i) << " tier " << (i % 10 ? "silver" : "gold") << " score "
          << i % 100 << "\n";
    }
    ivr::test::ScriptProcess redis({source_dir() + "/tests/net/redis_server.py", "--init", init});
    ConnectorConfig c;
    c.url = redis.value("url");
    c.max_waiting = 100000;
    run("redis", c, o);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
