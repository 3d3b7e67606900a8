// A database connector implemented by the host (C ABI ivr_engine_register_db_connector):
// each query is handed to the host on the engine loop and answered later from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "db/connector.h"

namespace ivr::core {

struct HostConnectorState;

// One query in the host's hands, from the start callback to complete().
struct HostQuery {
  uint64_t id = 0;
  std::string connector;
  db::QueryRequest request;
  db::QueryResult result;  // built by the host
  std::weak_ptr<HostConnectorState> state;
  std::function<bool(std::function<void()>)> post;
};

struct HostConnectorCallbacks {
  std::function<void(std::unique_ptr<HostQuery>)> query;  // loop thread; must not block
  std::function<void(uint64_t id)> cancel;                // loop thread; may be empty
};

// Any thread: hands the host's answer back to the engine loop; a query the engine no longer
// waits for (cancelled, timed out, engine stopped) is dropped.
void complete_host_query(std::unique_ptr<HostQuery> query);

Result<std::unique_ptr<db::Connector>> make_host_connector(std::string name,
                                                           HostConnectorCallbacks callbacks,
                                                           const db::LoopContext &loop);

}  // namespace ivr::core
