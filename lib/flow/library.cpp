#include "flow/library.h"

namespace ivr::flow {

CompileResult Library::validate(std::string_view document) const {
  CompileOptions opts;
  {
    std::lock_guard lock(mutex_);
    opts = options_;
  }
  return compile(document, opts);
}

Result<Library::LoadResult> Library::load(std::string_view document, bool activate) {
  LoadResult out;
  out.compiled = validate(document);  // compiled outside the lock: loads never stall calls
  if (!out.compiled.program) return out;
  auto program = std::const_pointer_cast<Program>(out.compiled.program);
  std::lock_guard lock(mutex_);
  Flow &flow = flows_[program->id];
  if (program->version.empty()) {
    // The next free number.
    for (size_t n = flow.versions.size() + 1;; ++n) {
      std::string v = std::to_string(n);
      bool taken = false;
      for (auto &p : flow.versions) taken = taken || p->version == v;
      if (!taken) {
        program->version = v;
        break;
      }
    }
  } else {
    for (auto &p : flow.versions)
      if (p->version == program->version) {
        if (flow.versions.empty()) flows_.erase(program->id);
        return Error{Errc::bad_state, "flow " + program->id + " already has a version " +
                                          program->version + " (versions are immutable)"};
      }
  }
  flow.versions.push_back(program);
  if (activate || flow.versions.size() == 1) flow.active = flow.versions.size() - 1;
  out.flow_id = program->id;
  out.version = program->version;
  return out;
}

Status Library::activate(const std::string &flow_id, const std::string &version) {
  std::lock_guard lock(mutex_);
  auto it = flows_.find(flow_id);
  if (it == flows_.end()) return Error{Errc::not_found, "flow_id: no flow " + flow_id};
  for (size_t i = 0; i < it->second.versions.size(); ++i)
    if (it->second.versions[i]->version == version) {
      it->second.active = i;
      return {};
    }
  return Error{Errc::not_found, "version: flow " + flow_id + " has no version " + version};
}

void Library::map(const std::string &called_user, std::optional<std::string> flow_id) {
  std::lock_guard lock(mutex_);
  if (flow_id)
    entry_points_[called_user] = *flow_id;
  else
    entry_points_.erase(called_user);
}

std::vector<VersionInfo> Library::list() const {
  std::lock_guard lock(mutex_);
  std::vector<VersionInfo> out;
  for (auto &[id, flow] : flows_)
    for (size_t i = 0; i < flow.versions.size(); ++i)
      out.push_back(
          {id, flow.versions[i]->version, i == flow.active, flow.versions[i]->node_count()});
  return out;
}

std::string Library::mapped_flow(const std::string &called_user) const {
  std::lock_guard lock(mutex_);
  auto it = entry_points_.find(called_user);
  if (it == entry_points_.end()) it = entry_points_.find("*");
  return it == entry_points_.end() ? "" : it->second;
}

std::shared_ptr<const Program> Library::resolve(const std::string &called_user) const {
  std::lock_guard lock(mutex_);
  auto it = entry_points_.find(called_user);
  if (it == entry_points_.end()) it = entry_points_.find("*");
  if (it == entry_points_.end()) return nullptr;
  auto f = flows_.find(it->second);
  if (f == flows_.end() || f->second.versions.empty()) return nullptr;
  return f->second.versions[f->second.active];
}

void Library::set_prompt_dir(std::string dir) {
  std::lock_guard lock(mutex_);
  options_.prompt_dir = std::move(dir);
}

void Library::add_custom_verb(const std::string &name) {
  std::lock_guard lock(mutex_);
  options_.custom_verbs.insert(name);
}

}  // namespace ivr::flow
