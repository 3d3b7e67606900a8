// Connector configurations are checked before anything is opened: every bad field is named,
// and no URL may make the engine loop resolve a host name.
#include <doctest/doctest.h>

#include "db/connector.h"

using namespace ivr::db;

namespace {

std::string problem(std::string url, unsigned pool = 2) {
  ConnectorConfig c;
  c.url = std::move(url);
  c.pool_size = pool;
  ivr::Status st = check_config(c);
  return st ? "" : st.error().message;
}

}  // namespace

TEST_CASE("db config: good URLs of every kind pass") {
  for (const char *url :
       {"sqlite:///var/lib/ivr/dnc.db", "sqlite:dnc.db", "sqlite::memory:",
        "postgresql://ivr@127.0.0.1:5432/crm", "postgres://ivr@[::1]/crm?sslmode=disable",
        "postgresql://ivr@localhost/crm", "postgresql:///crm?host=/run/postgresql",
        "postgresql://crm.example.com/crm?hostaddr=10.0.0.5", "postgresql://10.0.0.1,10.0.0.2/crm",
        "redis://127.0.0.1:6379/2", "redis://localhost", "redis://app@127.0.0.1:6380",
        "unix:///run/redis.sock?db=3"}) {
    INFO(url);
    CHECK(problem(url) == "");
  }
}

TEST_CASE("db config: bad URLs and limits name the field and the reason") {
  CHECK(problem("") == "url: required");
  CHECK(problem("mysql://127.0.0.1/x").find("url: unsupported scheme \"mysql\"") == 0);
  CHECK(problem("nothing").find("url: unsupported scheme (none)") == 0);
  CHECK(problem("sqlite://host/x.db").find("url: a SQLite URL is") == 0);
  CHECK(problem("sqlite:x.db?mode=ro").find("url: a SQLite path takes no '?' options") == 0);
  CHECK(problem("sqlite:x.db", 9).find("pool_size:") == 0);
  CHECK(problem("postgresql://ivr@127.0.0.1/crm", 17).find("pool_size:") == 0);
  CHECK(problem("postgresql://127.0.0.1:5432/crm?nonsense=1").find("url: ") == 0);
  CHECK(problem("postgresql://db.example.com/crm")
            .find("url: host \"db.example.com\" is a name; resolving it would block the engine") ==
        0);
  CHECK(problem("postgresql://10.0.0.1,db.example.com/crm").find("url: host \"db.example.com\"") ==
        0);
  CHECK(problem("redis://cache.example.com:6379").find("url: ") == 0);
  CHECK(problem("redis://127.0.0.1:99999").find("url: ") == 0);
  CHECK(problem("redis://127.0.0.1/x").find("url: ") == 0);
  ConnectorConfig c;
  c.url = "sqlite::memory:";
  c.max_waiting = 0;
  CHECK(check_config(c).error().message == "max_waiting: at least 1");
}
