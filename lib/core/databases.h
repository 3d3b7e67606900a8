// The engine's database connectors by name: the built-in ones (SQLite, PostgreSQL, Redis,
// opened from a URL) and the host's own (C ABI). Runs the queries of db steps with the
// engine's own deadline, so a connector that never answers cannot hold a call.
//
// Threading: add/remove from any thread (before start they wait for it; after, they run on
// the engine loop). query/cancel on the engine loop; completions run there.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/log.h"
#include "common/result.h"
#include "db/connector.h"

namespace ivr::core {

class EventLoop;
class Timer;

struct DbAnswer {
  std::string reason;  // "" or timeout, connect, query, busy, connector
  std::string error;
  db::Rows rows;
};
using DbAnswerFn = std::function<void(DbAnswer &&)>;

// Makes a connector on the engine loop (a built-in from its config, or the host's).
using ConnectorFactory =
    std::function<Result<std::unique_ptr<db::Connector>>(const db::LoopContext &)>;

class Databases {
 public:
  explicit Databases(LoggerPtr logger);
  ~Databases();
  Databases(const Databases &) = delete;
  Databases &operator=(const Databases &) = delete;

  // Any thread. Replaces a connector of the same name: queries in flight on the old one
  // fail with reason connect. Before attach() the factory waits; its errors are logged
  // then. After attach() it runs on the loop and its error is returned.
  Status add(const std::string &name, ConnectorFactory factory);
  Status remove(const std::string &name);  // not_found

  // Runs a task on the engine loop and waits for its status (the engine's run_on_engine).
  using LoopRunner = std::function<Status(const std::function<Status()> &)>;
  // Engine loop: makes the waiting connectors. detach() closes them all (queries in
  // flight are dropped: their calls are gone).
  void attach(EventLoop &loop, LoopRunner run);
  void detach();

  // Engine loop. done runs once on the loop (never inside query) unless cancel(id) comes
  // first. Returns the query's id.
  uint64_t query(const std::string &name, db::QueryRequest request, DbAnswerFn done);
  void cancel(uint64_t id);

  // Any thread: connector names and kinds ("crm" -> "postgresql").
  std::map<std::string, std::string> list() const;

 private:
  struct Pending;
  struct Entry {
    std::unique_ptr<db::Connector> connector;
    std::string kind;
    // Failures are logged, but at most one line per 10 s per connector (a database that is
    // down fails every call's step).
    std::chrono::steady_clock::time_point last_logged{};
    uint64_t unlogged = 0;
  };
  void log_failure(const std::string &name, const DbAnswer &answer);      // loop
  Status make(const std::string &name, const ConnectorFactory &factory);  // loop
  void finish(uint64_t id, DbAnswer &&answer);                            // loop
  void drop_connector(const std::string &name, const std::string &why);   // loop

  // What connectors and host queries post through: cleared at detach, so an answer that
  // arrives later (a host completing after ivr_engine_free, a SQLite worker finishing) is
  // dropped instead of touching a loop that is gone.
  struct LoopGate {
    std::mutex mutex;
    EventLoop *loop = nullptr;
  };
  LoggerPtr logger_;
  std::shared_ptr<LoopGate> gate_;
  EventLoop *loop_ = nullptr;                        // loop thread
  mutable std::mutex mutex_;                         // guards waiting_, kinds_ and run_
  LoopRunner run_;                                   // set while attached
  std::map<std::string, ConnectorFactory> waiting_;  // added before attach
  std::map<std::string, std::string> kinds_;
  std::map<std::string, Entry> connectors_;               // loop
  std::map<uint64_t, std::unique_ptr<Pending>> pending_;  // loop
  uint64_t next_id_ = 1;
};

}  // namespace ivr::core
