// The flows an engine runs: every loaded version of every flow, which one is active, and
// the entry points (called number -> flow). Thread-safe; calls take a snapshot (the
// program's shared_ptr) when they start and keep it, so new versions never disturb them.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "flow/compiler.h"

namespace ivr::flow {

struct VersionInfo {
  std::string flow_id;
  std::string version;
  bool active = false;
  size_t nodes = 0;
};

class Library {
 public:
  struct LoadResult {
    CompileResult compiled;  // problems, or the program
    std::string flow_id, version;
  };

  // Compiles with the library's options (prompt dir, custom verbs) and, when valid, stores
  // the program as a new version (Errc::bad_state if that version exists). The first
  // version of a flow is activated whatever `activate` says.
  Result<LoadResult> load(std::string_view document, bool activate);
  CompileResult validate(std::string_view document) const;
  Status activate(const std::string &flow_id, const std::string &version);
  void map(const std::string &called_user, std::optional<std::string> flow_id);
  std::vector<VersionInfo> list() const;

  // The active program for a called number (its entry point, else "*"), or null.
  std::shared_ptr<const Program> resolve(const std::string &called_user) const;
  // The flow id an entry point names, even when it has no active version ("" when none).
  std::string mapped_flow(const std::string &called_user) const;

  void set_prompt_dir(std::string dir);
  void add_custom_verb(const std::string &name);

 private:
  struct Flow {
    std::vector<std::shared_ptr<const Program>> versions;  // load order
    size_t active = 0;
  };
  mutable std::mutex mutex_;
  CompileOptions options_;
  std::map<std::string, Flow> flows_;
  std::map<std::string, std::string> entry_points_;
};

}  // namespace ivr::flow
