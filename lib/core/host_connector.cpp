#include "core/host_connector.h"

#include <map>

namespace ivr::core {

// Loop thread only; queries in the host's hands reach it through a weak pointer.
struct HostConnectorState {
  std::map<uint64_t, db::QueryDone> waiting;
};

namespace {

class HostConnector final : public db::Connector {
 public:
  HostConnector(std::string name, HostConnectorCallbacks cb, db::LoopContext loop)
      : name_(std::move(name)),
        cb_(std::move(cb)),
        loop_(std::move(loop)),
        state_(std::make_shared<HostConnectorState>()) {}

  void query(uint64_t id, db::QueryRequest request, db::QueryDone done) override {
    state_->waiting[id] = std::move(done);
    auto q = std::make_unique<HostQuery>();
    q->id = id;
    q->connector = name_;
    q->request = std::move(request);
    q->state = state_;
    q->post = loop_.post;
    // The host's callback may complete at once; the completion is posted, so it still
    // never runs inside query().
    try {
      cb_.query(std::move(q));
    } catch (...) {
      // A C++ host threw through a C callback: the engine's deadline ends the step.
    }
  }

  void cancel(uint64_t id) override {
    if (!state_->waiting.erase(id)) return;
    if (cb_.cancel) {
      try {
        cb_.cancel(id);
      } catch (...) {
      }
    }
  }

  const char *kind() const override { return "host"; }

 private:
  std::string name_;
  HostConnectorCallbacks cb_;
  db::LoopContext loop_;
  std::shared_ptr<HostConnectorState> state_;
};

}  // namespace

void complete_host_query(std::unique_ptr<HostQuery> query) {
  auto post = query->post;
  std::shared_ptr<HostQuery> q(std::move(query));
  post([q] {
    auto state = q->state.lock();
    if (!state) return;  // the connector is gone
    auto it = state->waiting.find(q->id);
    if (it == state->waiting.end()) return;  // cancelled or timed out
    db::QueryDone done = std::move(it->second);
    state->waiting.erase(it);
    done(std::move(q->result));
  });
}

Result<std::unique_ptr<db::Connector>> make_host_connector(std::string name,
                                                           HostConnectorCallbacks callbacks,
                                                           const db::LoopContext &loop) {
  if (!callbacks.query) return Error{Errc::invalid_argument, "query: no callback"};
  return std::unique_ptr<db::Connector>(
      new HostConnector(std::move(name), std::move(callbacks), loop));
}

}  // namespace ivr::core
