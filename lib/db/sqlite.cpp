#include "db/sqlite.h"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace ivr::db {

namespace {

using SteadyClock = std::chrono::steady_clock;

}  // namespace

Result<std::string> sqlite_path(const std::string &url) {
  std::string rest = url.substr(7);  // after "sqlite:"
  if (rest.rfind("//", 0) == 0) {
    if (rest.size() < 3 || rest[2] != '/')
      return Result<std::string>(
          Errc::invalid_argument,
          "url: a SQLite URL is sqlite:///absolute/path.db or sqlite:relative/path.db");
    rest = rest.substr(2);
  }
  if (rest.empty()) return Result<std::string>(Errc::invalid_argument, "url: no database path");
  if (rest.find('\0') != std::string::npos || rest.find('?') != std::string::npos)
    return Result<std::string>(Errc::invalid_argument,
                               "url: a SQLite path takes no '?' options (read_only is a field)");
  return rest;
}

namespace {

// One query as a worker runs it. The loop thread owns `done`; the worker only reads the
// request and writes the result.
struct Job {
  uint64_t id = 0;
  QueryRequest request;
  SteadyClock::time_point deadline;
  std::atomic<bool> cancelled{false};
  QueryResult result;
};

class SqliteConnector;

// Shared between the connector (loop thread), its workers and posted completions: what
// outlives the connector when a worker finishes after it is gone.
struct Shared {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::shared_ptr<Job>> queue;
  std::set<std::shared_ptr<Job>> running;
  bool stopping = false;
  // Loop thread only: the connector's completions, cleared when it is destroyed.
  std::map<uint64_t, QueryDone> waiting;
  bool alive = true;
};

// One worker's connection with its prepared statements.
class Connection {
 public:
  Connection(std::string path, bool read_only) : path_(std::move(path)), read_only_(read_only) {}
  ~Connection() { close(); }
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  void run(Job &job) {
    if (!db_ && !open(job.result)) return;
    current_ = &job;
    execute(job);
    current_ = nullptr;
  }

 private:
  bool open(QueryResult &out) {
    int flags = (read_only_ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;
    sqlite3 *db = nullptr;
    int rc = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      out.error = DbErrc::connect;
      out.message = "sqlite " + path_ + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
      sqlite3_close(db);
      return false;
    }
    db_ = db;
    sqlite3_extended_result_codes(db_, 1);
    // Writers elsewhere (the daemon's store, a CRM sync) hold the lock briefly: wait for it,
    // in 5 ms steps, for at most 1 s and never past the query's deadline or its cancel (a
    // connector being destroyed joins this thread on the engine loop).
    sqlite3_busy_handler(db_, &Connection::busy, this);
    sqlite3_progress_handler(db_, 1000, &Connection::progress, this);
    if (!read_only_) sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    return true;
  }
  void close() {
    for (auto &[text, stmt] : statements_) sqlite3_finalize(stmt);
    statements_.clear();
    sqlite3_close(db_);
    db_ = nullptr;
  }

  bool should_stop() const {
    return current_ && (current_->cancelled.load() || SteadyClock::now() > current_->deadline);
  }
  // Called by SQLite every 1000 VM steps: a cancelled or overdue query stops here.
  static int progress(void *self) { return static_cast<Connection *>(self)->should_stop() ? 1 : 0; }
  // Called while the database is locked: 1 retries after a short sleep, 0 gives up (BUSY).
  static int busy(void *self, int tries) {
    if (tries >= 200 || static_cast<Connection *>(self)->should_stop()) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return 1;
  }

  sqlite3_stmt *prepare(const std::string &text, QueryResult &out) {
    auto it = statements_.find(text);
    if (it != statements_.end()) return it->second;
    sqlite3_stmt *stmt = nullptr;
    const char *tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK || !stmt) {
      fail(out, rc, rc == SQLITE_OK ? "statement: empty" : nullptr);
      sqlite3_finalize(stmt);
      return nullptr;
    }
    for (; tail && *tail; ++tail) {
      if (*tail != ' ' && *tail != '\t' && *tail != '\n' && *tail != '\r' && *tail != ';') {
        out.error = DbErrc::query;
        out.message = "sqlite " + path_ + ": statement: one statement per query";
        sqlite3_finalize(stmt);
        return nullptr;
      }
    }
    if (statements_.size() >= kMaxStatements) {
      sqlite3_finalize(statements_.begin()->second);
      statements_.erase(statements_.begin());
    }
    statements_.emplace(text, stmt);
    return stmt;
  }

  void execute(Job &job) {
    QueryResult &out = job.result;
    const QueryRequest &req = job.request;
    sqlite3_stmt *stmt = prepare(req.statement, out);
    if (!stmt) return;
    int expected = sqlite3_bind_parameter_count(stmt);
    if (static_cast<size_t>(expected) != req.params.size()) {
      out.error = DbErrc::query;
      out.message = "sqlite " + path_ + ": params: the statement takes " +
                    std::to_string(expected) + ", the step gives " +
                    std::to_string(req.params.size());
      return;
    }
    for (size_t i = 0; i < req.params.size(); ++i) {
      const auto &p = req.params[i];
      int col = static_cast<int>(i) + 1;
      if (p)
        sqlite3_bind_text(stmt, col, p->data(), static_cast<int>(p->size()), SQLITE_TRANSIENT);
      else
        sqlite3_bind_null(stmt, col);
    }
    int ncols = sqlite3_column_count(stmt);
    for (int c = 0; c < ncols; ++c) {
      const char *name = sqlite3_column_name(stmt, c);
      out.rows.columns.emplace_back(name ? name : "");
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      if (out.rows.rows.size() >= req.max_rows) {
        out.rows.truncated = true;
        break;
      }
      std::vector<Cell> row;
      row.reserve(static_cast<size_t>(ncols));
      for (int c = 0; c < ncols; ++c) row.push_back(cell(stmt, c));
      out.rows.rows.push_back(std::move(row));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      out.rows = {};
      if (rc == SQLITE_INTERRUPT) {
        out.error = job.cancelled ? DbErrc::cancelled : DbErrc::timeout;
        out.message =
            "sqlite " + path_ + ": " +
            (job.cancelled ? "cancelled"
                           : "no answer within " + std::to_string(req.timeout_ms) + " ms");
      } else {
        fail(out, rc, nullptr);
      }
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }

  static Cell cell(sqlite3_stmt *stmt, int c) {
    switch (sqlite3_column_type(stmt, c)) {
      case SQLITE_INTEGER:
        return static_cast<int64_t>(sqlite3_column_int64(stmt, c));
      case SQLITE_FLOAT:
        return sqlite3_column_double(stmt, c);
      case SQLITE_NULL:
        return std::monostate{};
      default: {  // text, and blobs as their bytes
        const void *p = sqlite3_column_blob(stmt, c);
        int n = sqlite3_column_bytes(stmt, c);
        return std::string(p ? static_cast<const char *>(p) : "", static_cast<size_t>(n));
      }
    }
  }

  void fail(QueryResult &out, int rc, const char *detail) {
    // Busy or locked past the wait, I/O trouble: the database is not usable now.
    int primary = rc & 0xff;
    bool unavailable = primary == SQLITE_BUSY || primary == SQLITE_LOCKED ||
                       primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN ||
                       primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
    out.error = unavailable ? DbErrc::connect : DbErrc::query;
    out.message = "sqlite " + path_ + ": " + (detail ? detail : sqlite3_errmsg(db_));
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || primary == SQLITE_IOERR)
      close();  // reopened by the next query
  }

  static constexpr size_t kMaxStatements = 64;
  std::string path_;
  bool read_only_;
  sqlite3 *db_ = nullptr;
  Job *current_ = nullptr;
  std::map<std::string, sqlite3_stmt *> statements_;
};

class SqliteConnector final : public Connector {
 public:
  SqliteConnector(const ConnectorConfig &config, std::string path, LoopContext loop)
      : path_(std::move(path)),
        max_waiting_(config.max_waiting),
        loop_(std::move(loop)),
        shared_(std::make_shared<Shared>()) {
    unsigned workers = path_ == ":memory:" ? 1 : config.pool_size;
    for (unsigned i = 0; i < workers; ++i)
      threads_.emplace_back([shared = shared_, path = path_, ro = config.read_only,
                             post = loop_.post] { work(shared, path, ro, post); });
  }
  ~SqliteConnector() override {
    {
      std::lock_guard lock(shared_->mutex);
      shared_->stopping = true;
      shared_->queue.clear();
      for (auto &job : shared_->running) job->cancelled = true;
    }
    shared_->wake.notify_all();
    shared_->alive = false;
    shared_->waiting.clear();
    for (auto &t : threads_) t.join();
  }

  void query(uint64_t id, QueryRequest request, QueryDone done) override {
    auto job = std::make_shared<Job>();
    job->id = id;
    job->deadline = SteadyClock::now() + std::chrono::milliseconds(request.timeout_ms);
    job->request = std::move(request);
    bool busy;
    {
      std::lock_guard lock(shared_->mutex);
      busy = shared_->queue.size() >= max_waiting_;
      if (!busy) shared_->queue.push_back(job);
    }
    if (busy) {
      QueryResult r;
      r.error = DbErrc::busy;
      r.message =
          "sqlite " + path_ + ": more than " + std::to_string(max_waiting_) + " queries waiting";
      shared_->waiting[id] = std::move(done);
      // Never complete inside query(): through the loop.
      loop_.post([shared = shared_, id, r = std::move(r)]() mutable {
        deliver(*shared, id, std::move(r));
      });
      return;
    }
    shared_->waiting[id] = std::move(done);
    shared_->wake.notify_one();
  }

  void cancel(uint64_t id) override {
    if (!shared_->waiting.erase(id)) return;
    std::lock_guard lock(shared_->mutex);
    auto &q = shared_->queue;
    for (auto it = q.begin(); it != q.end(); ++it) {
      if ((*it)->id == id) {
        q.erase(it);
        return;
      }
    }
    for (auto &job : shared_->running)
      if (job->id == id) job->cancelled = true;  // the progress handler stops it
  }

  const char *kind() const override { return "sqlite"; }

 private:
  static void deliver(Shared &shared, uint64_t id, QueryResult &&r) {
    if (!shared.alive) return;
    auto it = shared.waiting.find(id);
    if (it == shared.waiting.end()) return;  // cancelled
    QueryDone done = std::move(it->second);
    shared.waiting.erase(it);
    done(std::move(r));
  }

  static void work(const std::shared_ptr<Shared> &owner, const std::string &path, bool read_only,
                   const std::function<bool(std::function<void()>)> &post) {
    Shared &shared = *owner;
    Connection conn(path, read_only);
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(shared.mutex);
        shared.wake.wait(lock, [&] { return shared.stopping || !shared.queue.empty(); });
        if (shared.stopping) return;
        job = std::move(shared.queue.front());
        shared.queue.pop_front();
        shared.running.insert(job);
      }
      if (SteadyClock::now() > job->deadline) {
        job->result.error = DbErrc::timeout;
        job->result.message = "sqlite " + path + ": waited " +
                              std::to_string(job->request.timeout_ms) + " ms for a free connection";
      } else {
        conn.run(*job);
      }
      {
        std::lock_guard lock(shared.mutex);
        shared.running.erase(job);
        if (shared.stopping) return;
      }
      // The task owns the Shared block: it may run after the connector is gone (then
      // `alive` is false and nothing is delivered).
      post([owner, job] { deliver(*owner, job->id, std::move(job->result)); });
    }
  }

  std::string path_;
  size_t max_waiting_;
  LoopContext loop_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
};

}  // namespace

Result<std::unique_ptr<Connector>> open_sqlite(const ConnectorConfig &config,
                                               const LoopContext &loop) {
  auto path = sqlite_path(config.url);
  if (!path.ok()) return path.error();
  if (config.pool_size < 1 || config.pool_size > 8)
    return {Errc::invalid_argument, "pool_size: a SQLite connector has 1 to 8 workers"};
  if (config.max_waiting < 1) return {Errc::invalid_argument, "max_waiting: at least 1"};
  return std::unique_ptr<Connector>(new SqliteConnector(config, std::move(*path), loop));
}

}  // namespace ivr::db
