// Runs flows on the engine's calls: when a call starts and its called number maps to a
// flow, a flow::Session drives it through a CallPort over core::Call. Engine thread only,
// except the verb completion path (complete_verb), which posts to the engine thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/call_event.h"
#include "flow/library.h"

namespace ivr::core {

class Engine;
class FlowCall;

// One execution of a custom verb, handed to the host; completed from any thread.
struct VerbRequest {
  std::string verb, node;
  std::vector<std::pair<std::string, std::string>> args;
  std::vector<std::pair<std::string, std::string>> results;
  std::shared_ptr<Call> call;
  std::weak_ptr<FlowCall> flow_call;
  uint64_t token = 0;
};
using VerbHandler = std::function<void(std::unique_ptr<VerbRequest>)>;

class FlowRunner {
 public:
  explicit FlowRunner(Engine &engine);
  ~FlowRunner();

  flow::Library &library() { return library_; }

  // Before any flow using the verb is loaded; any thread.
  void register_verb(const std::string &name, VerbHandler handler);

  // Engine thread: sees every event before the host. Events the flow raises about a call
  // (FLOW_STEP) are emitted through the engine; `event` gets the call's flow fields.
  void observe(CallEvent &event);

  // Any thread: finishes a verb request (exit "" / "next", or error).
  void complete_verb(std::unique_ptr<VerbRequest> request, std::string exit, std::string error);

 private:
  friend class FlowCall;
  VerbHandler handler(const std::string &verb);
  Engine &engine_;
  flow::Library library_;
  std::mutex verbs_mutex_;
  std::map<std::string, VerbHandler> verbs_;
  std::map<uint64_t, std::shared_ptr<FlowCall>> calls_;  // by dialog id; engine thread
};

}  // namespace ivr::core
