#include "core/databases.h"

#include "core/event_loop.h"

namespace ivr::core {

struct Databases::Pending {
  std::string connector;
  DbAnswerFn done;
  std::unique_ptr<Timer> deadline;
};

Databases::Databases(LoggerPtr logger) : logger_(std::move(logger)) {}

Databases::~Databases() = default;

Status Databases::add(const std::string &name, ConnectorFactory factory) {
  LoopRunner run;
  {
    std::lock_guard lock(mutex_);
    if (!run_) {
      waiting_[name] = std::move(factory);
      kinds_[name] = "pending";
      return {};
    }
    run = run_;
  }
  return run([&] { return make(name, factory); });
}

Status Databases::remove(const std::string &name) {
  LoopRunner run;
  {
    std::lock_guard lock(mutex_);
    if (!run_) {
      if (!waiting_.erase(name)) return {Errc::not_found, "no database connector named " + name};
      kinds_.erase(name);
      return {};
    }
    run = run_;
  }
  return run([&]() -> Status {
    if (!connectors_.count(name)) return {Errc::not_found, "no database connector named " + name};
    drop_connector(name, "the connector was removed");
    std::lock_guard lock(mutex_);
    kinds_.erase(name);
    return {};
  });
}

void Databases::attach(EventLoop &loop, LoopRunner run) {
  loop_ = &loop;
  gate_ = std::make_shared<LoopGate>();
  gate_->loop = &loop;
  std::map<std::string, ConnectorFactory> waiting;
  {
    std::lock_guard lock(mutex_);
    waiting.swap(waiting_);
    run_ = std::move(run);
  }
  for (auto &[name, factory] : waiting) {
    if (auto st = make(name, factory); !st)
      IVR_LOG(logger_, error, "db", "connector %s: %s", name.c_str(), st.error().message.c_str());
  }
}

void Databases::detach() {
  {
    std::lock_guard lock(mutex_);
    run_ = nullptr;
  }
  pending_.clear();
  connectors_.clear();  // SQLite workers are joined here; their last posts are refused
  if (gate_) {
    std::lock_guard lock(gate_->mutex);
    gate_->loop = nullptr;
  }
  gate_.reset();
  loop_ = nullptr;
}

Status Databases::make(const std::string &name, const ConnectorFactory &factory) {
  db::LoopContext ctx;
  ctx.base = loop_->base();
  ctx.post = [gate = gate_](std::function<void()> task) {
    std::lock_guard lock(gate->mutex);
    return gate->loop && gate->loop->post(std::move(task));
  };
  auto made = factory(ctx);
  if (!made) {
    std::lock_guard lock(mutex_);
    kinds_.erase(name);
    return Error{made.error().code, "db." + name + "." + made.error().message};
  }
  if (connectors_.count(name)) drop_connector(name, "the connector was replaced");
  std::string kind = (*made)->kind();
  connectors_[name] = Entry{std::move(*made), kind};
  {
    std::lock_guard lock(mutex_);
    kinds_[name] = kind;
  }
  IVR_LOG(logger_, info, "db", "connector %s (%s) ready", name.c_str(), kind.c_str());
  return {};
}

void Databases::drop_connector(const std::string &name, const std::string &why) {
  auto it = connectors_.find(name);
  if (it == connectors_.end()) return;
  std::vector<uint64_t> ids;
  for (auto &[id, p] : pending_)
    if (p->connector == name) ids.push_back(id);
  for (uint64_t id : ids) it->second.connector->cancel(id);
  connectors_.erase(it);
  for (uint64_t id : ids) {
    loop_->post([this, id, why, name] {
      finish(id, DbAnswer{"connect", "connector " + name + ": " + why, {}});
    });
  }
}

uint64_t Databases::query(const std::string &name, db::QueryRequest request, DbAnswerFn done) {
  uint64_t id = next_id_++;
  auto p = std::make_unique<Pending>();
  p->connector = name;
  p->done = std::move(done);
  auto it = connectors_.find(name);
  if (it == connectors_.end()) {
    pending_[id] = std::move(p);
    std::string why = "no database connector named \"" + name + "\"";
    loop_->post([this, id, why] { finish(id, DbAnswer{"connector", why, {}}); });
    return id;
  }
  // The engine's own deadline: a connector that never answers cannot hold the call. A
  // little later than the connector's, so that its own (more precise) timeout wins.
  uint32_t timeout = request.timeout_ms;
  p->deadline = std::make_unique<Timer>(loop_->base(), [this, id, timeout, name] {
    auto found = connectors_.find(name);
    if (found != connectors_.end()) found->second.connector->cancel(id);
    // A timer must not be destroyed inside its own callback: finish from the loop.
    loop_->post([this, id, timeout, name] {
      if (!pending_.count(id)) return;  // cancelled meanwhile
      DbAnswer a{"timeout", name + ": no answer within " + std::to_string(timeout) + " ms", {}};
      log_failure(name, a);
      finish(id, std::move(a));
    });
  });
  p->deadline->arm(timeout + 50);
  pending_[id] = std::move(p);
  it->second.connector->query(id, std::move(request), [this, id, name](db::QueryResult &&r) {
    DbAnswer a;
    if (r.error != db::DbErrc::none) {
      a.reason = db::db_errc_name(r.error);
      a.error = std::move(r.message);
      log_failure(name, a);
    } else {
      a.rows = std::move(r.rows);
    }
    finish(id, std::move(a));
  });
  return id;
}

void Databases::log_failure(const std::string &name, const DbAnswer &answer) {
  auto it = connectors_.find(name);
  if (it == connectors_.end()) return;
  Entry &e = it->second;
  auto now = std::chrono::steady_clock::now();
  if (e.last_logged != std::chrono::steady_clock::time_point{} &&
      now - e.last_logged < std::chrono::seconds(10)) {
    ++e.unlogged;
    return;
  }
  std::string more =
      e.unlogged ? " (and " + std::to_string(e.unlogged) + " more failures since the last line)"
                 : "";
  IVR_LOG(logger_, warn, "db", "connector %s: %s: %s%s", name.c_str(), answer.reason.c_str(),
          answer.error.c_str(), more.c_str());
  e.last_logged = now;
  e.unlogged = 0;
}

void Databases::cancel(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  auto c = connectors_.find(it->second->connector);
  if (c != connectors_.end()) c->second.connector->cancel(id);
  pending_.erase(it);
}

void Databases::finish(uint64_t id, DbAnswer &&answer) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // cancelled, or answered already
  DbAnswerFn done = std::move(it->second->done);
  pending_.erase(it);
  done(std::move(answer));
}

std::map<std::string, std::string> Databases::list() const {
  std::lock_guard lock(mutex_);
  return kinds_;
}

}  // namespace ivr::core
