// Database connectors: named back ends that answer a flow's `db` steps asynchronously with
// rows. A query is a literal statement (SQL, or a Redis command) plus bound parameters; no
// connector ever builds a statement from parameter text. See docs/db.md.
//
// Threading: a Connector belongs to the engine loop. query() and cancel() are called on the
// loop thread, and every completion runs on the loop thread, never from inside query() or
// cancel(). A connector may do its work elsewhere (SQLite on a worker thread) and hand the
// answer back through LoopContext::post.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"

struct event_base;

namespace ivr::db {

// One value of a row. Text keeps large integers (account ids) and decimals exact.
using Cell = std::variant<std::monostate, bool, int64_t, double, std::string>;

struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;  // each has columns.size() cells
  bool truncated = false;               // more rows came back than QueryRequest::max_rows
};

// Why a query produced no rows. Zero rows is not an error.
enum class DbErrc : uint8_t {
  none,
  timeout,    // the connector gave up waiting (the engine also enforces timeout_ms)
  connect,    // the server is unreachable, refused the login, or the connection broke
  query,      // the server refused the statement (syntax, constraint, wrong type)
  busy,       // too many queries waiting for a connection
  cancelled,  // cancel()
};
const char *db_errc_name(DbErrc e);  // "timeout", "connect", ...

struct QueryRequest {
  std::string statement;                           // literal, from the flow document
  std::vector<std::optional<std::string>> params;  // bound in order; nullopt is NULL
  uint32_t timeout_ms = 3000;
  size_t max_rows = 100;  // rows past this are dropped and truncated set
};

struct QueryResult {
  DbErrc error = DbErrc::none;
  std::string message;  // when error is set: names the server and the reason
  Rows rows;
};

using QueryDone = std::function<void(QueryResult &&)>;

// What a connector may use of the engine loop.
struct LoopContext {
  event_base *base = nullptr;
  // Runs a task on the loop thread; thread-safe; false once the loop stopped (task dropped).
  std::function<bool(std::function<void()>)> post;
};

class Connector {
 public:
  virtual ~Connector() = default;
  // Starts a query; done runs exactly once on the loop thread, later (never inside this
  // call), unless cancel(id) is called first, after which it never runs. ids are unique.
  virtual void query(uint64_t id, QueryRequest request, QueryDone done) = 0;
  virtual void cancel(uint64_t id) = 0;
  virtual const char *kind() const = 0;  // "sqlite", "postgresql", "redis", "host"
};

// A built-in connector as configured: docs/db.md, "Connectors".
struct ConnectorConfig {
  std::string name;
  // sqlite:///abs/path.db, sqlite:relative.db, sqlite::memory:
  // postgresql://user@host:port/db?param=value (libpq's URI form; postgres:// too)
  // redis://[user@]host:port[/db], unix:///path/redis.sock[?db=N]
  // Hosts are IP literals, localhost or socket paths: resolving a name would block the loop.
  std::string url;
  std::string password;    // from a secret; "" for none
  unsigned pool_size = 2;  // connections (PostgreSQL), worker threads (SQLite: 1..8)
  uint32_t connect_timeout_ms = 2000;
  size_t max_waiting = 1000;  // queries queued for a connection before busy
  bool read_only = false;     // SQLite: open read-only
};

// Checks a configuration without opening anything (no I/O, no DNS): the URL's scheme and
// form, the limits. The errors open_connector would return, for callers that must report
// them before the engine runs. Errors name the field ("url: ...").
Status check_config(const ConnectorConfig &config);

// Opens the connector named by config.url's scheme. Connecting is asynchronous: a server
// that is down now is retried (with backoff) and queries fail with connect meanwhile.
// Errors: invalid_argument (the field and the reason), unsupported (scheme).
Result<std::unique_ptr<Connector>> open_connector(const ConnectorConfig &config,
                                                  const LoopContext &loop);

}  // namespace ivr::db
