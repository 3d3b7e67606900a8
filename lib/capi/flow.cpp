// C shims for flows (ivr/flow.h): reports, versions, entry points, custom verbs.
#include <cstring>

#include "capi/handles.h"
#include "flow/library.h"

using ivr::capi::set_error;
using ivr::capi::valid;

constexpr uint32_t kReportMagic = 0x49565252;  // "IVRR"
constexpr uint32_t kListMagic = 0x4956524c;    // "IVRL"
constexpr uint32_t kVerbMagic = 0x49565256;    // "IVRV"

struct ivr_flow_report {
  uint32_t magic = kReportMagic;
  std::vector<ivr::flow::Problem> problems;
  std::string text, flow_id, version;
};

struct ivr_flow_list {
  uint32_t magic = kListMagic;
  std::vector<ivr::flow::VersionInfo> entries;
};

struct ivr_verb_request {
  uint32_t magic = kVerbMagic;
  std::unique_ptr<ivr::core::VerbRequest> request;
  std::weak_ptr<ivr::core::Engine> engine;
  ivr_call *call = nullptr;  // the engine's handle for the call, with our reference
};

namespace {

std::unique_ptr<ivr_flow_report> make_report(const ivr::flow::CompileResult &r) {
  auto report = std::make_unique<ivr_flow_report>();
  report->problems = r.problems;
  for (const auto &p : r.problems) report->text += ivr::flow::format_problem(p) + "\n";
  if (r.program) {
    report->flow_id = r.program->id;
    report->version = r.program->version;
  }
  return report;
}

bool valid(const ivr_flow_report *r) {
  return r && r->magic == kReportMagic;
}
bool valid(const ivr_flow_list *l) {
  return l && l->magic == kListMagic;
}
bool valid(const ivr_verb_request *v) {
  return v && v->magic == kVerbMagic && v->request;
}

int check_document(const char *document, size_t len) {
  if (!document) return set_error(IVR_EINVAL, "document: NULL");
  if (len == 0) return set_error(IVR_EINVAL, "len: the document is empty");
  return IVR_OK;
}

bool valid_verb_name(const char *name) {
  size_t n = std::strlen(name);
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; ++i) {
    char c = name[i];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
      return false;
  }
  return true;
}

}  // namespace

extern "C" {

IVR_API size_t ivr_flow_report_count(const ivr_flow_report *report) {
  return valid(report) ? report->problems.size() : 0;
}

IVR_API int ivr_flow_report_problem(const ivr_flow_report *report, size_t i, const char **pointer,
                                    unsigned *line, unsigned *column, const char **message) {
  if (!valid(report)) return set_error(IVR_EINVAL, "report: not a valid report handle");
  if (i >= report->problems.size())
    return set_error(IVR_EINVAL, "i: " + std::to_string(i) + " is out of range (" +
                                     std::to_string(report->problems.size()) + " problems)");
  const auto &p = report->problems[i];
  if (pointer) *pointer = p.pointer.c_str();
  if (line) *line = p.line;
  if (column) *column = p.column;
  if (message) *message = p.message.c_str();
  return IVR_OK;
}

IVR_API const char *ivr_flow_report_text(const ivr_flow_report *report) {
  return valid(report) ? report->text.c_str() : "";
}
IVR_API const char *ivr_flow_report_flow_id(const ivr_flow_report *report) {
  return valid(report) ? report->flow_id.c_str() : "";
}
IVR_API const char *ivr_flow_report_version(const ivr_flow_report *report) {
  return valid(report) ? report->version.c_str() : "";
}

IVR_API void ivr_flow_report_free(ivr_flow_report *report) {
  if (!valid(report)) return;
  report->magic = kDeadMagic;
  delete report;
}

IVR_API int ivr_engine_flow_validate(ivr_engine *engine, const char *document, size_t len,
                                     ivr_flow_report **report){IVR_CAPI_GUARD({
  if (!report) return set_error(IVR_EINVAL, "report: NULL");
  *report = nullptr;
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (int rc = check_document(document, len); rc != IVR_OK) return rc;
  auto r = engine->engine->flows().library().validate(std::string_view(document, len));
  *report = make_report(r).release();
  return IVR_OK;
})}

IVR_API int ivr_engine_flow_load(ivr_engine *engine, const char *document, size_t len, int activate,
                                 ivr_flow_report **report){IVR_CAPI_GUARD({
  if (report) *report = nullptr;
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (int rc = check_document(document, len); rc != IVR_OK) return rc;
  auto r = engine->engine->flows().library().load(std::string_view(document, len), activate != 0);
  if (!r.ok()) {
    if (report) *report = make_report({}).release();
    return set_error(r.error());
  }
  auto rep = make_report(r->compiled);
  if (!r->compiled.program) {
    std::string first = rep->text.substr(0, rep->text.find('\n'));
    size_t n = rep->problems.size();
    if (report) *report = rep.release();
    return set_error(IVR_EPARSE, "document: " + std::to_string(n) + " problem" +
                                     (n == 1 ? "" : "s") + ", the first: " + first);
  }
  rep->version = r->version;  // assigned at load when the document had none
  if (report) *report = rep.release();
  return IVR_OK;
})}

IVR_API int ivr_engine_flow_activate(ivr_engine *engine, const char *flow_id,
                                     const char *version){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!flow_id) return set_error(IVR_EINVAL, "flow_id: NULL");
  if (!version) return set_error(IVR_EINVAL, "version: NULL");
  auto s = engine->engine->flows().library().activate(flow_id, version);
  return s ? IVR_OK : set_error(s.error());
})}

IVR_API int ivr_engine_flow_map(ivr_engine *engine, const char *called_user,
                                const char *flow_id){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!called_user || !*called_user) return set_error(IVR_EINVAL, "called_user: NULL or empty");
  if (flow_id && !*flow_id) return set_error(IVR_EINVAL, "flow_id: empty (NULL removes)");
  engine->engine->flows().library().map(
      called_user, flow_id ? std::optional<std::string>(flow_id) : std::nullopt);
  return IVR_OK;
})}

IVR_API int ivr_engine_flow_list(ivr_engine *engine, ivr_flow_list **out){IVR_CAPI_GUARD({
  if (!out) return set_error(IVR_EINVAL, "out: NULL");
  *out = nullptr;
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  auto list = std::make_unique<ivr_flow_list>();
  list->entries = engine->engine->flows().library().list();
  *out = list.release();
  return IVR_OK;
})}

IVR_API size_t ivr_flow_list_count(const ivr_flow_list *list) {
  return valid(list) ? list->entries.size() : 0;
}

IVR_API int ivr_flow_list_get(const ivr_flow_list *list, size_t i, const char **flow_id,
                              const char **version, int *active, unsigned *nodes) {
  if (!valid(list)) return set_error(IVR_EINVAL, "list: not a valid list handle");
  if (i >= list->entries.size())
    return set_error(IVR_EINVAL, "i: " + std::to_string(i) + " is out of range");
  const auto &e = list->entries[i];
  if (flow_id) *flow_id = e.flow_id.c_str();
  if (version) *version = e.version.c_str();
  if (active) *active = e.active ? 1 : 0;
  if (nodes) *nodes = static_cast<unsigned>(e.nodes);
  return IVR_OK;
}

IVR_API void ivr_flow_list_free(ivr_flow_list *list) {
  if (!valid(list)) return;
  list->magic = kDeadMagic;
  delete list;
}

IVR_API int ivr_engine_register_verb(ivr_engine *engine, const char *name, ivr_verb_cb cb,
                                     void *user_data, ivr_free_cb free_user_data){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!name || !valid_verb_name(name))
    return set_error(IVR_EINVAL, "name: 1-64 letters, digits, '_', '.' or '-'");
  if (!cb) return set_error(IVR_EINVAL, "cb: NULL");
  if (ivr::flow::is_builtin_verb(name))
    return set_error(IVR_EINVAL, std::string("name: \"") + name + "\" is a built-in verb");
  // The user data lives as long as the handler: freed when replaced or with the engine.
  auto holder = std::shared_ptr<void>(user_data, [free_user_data](void *p) {
    if (free_user_data) free_user_data(p);
  });
  ivr_engine *raw = engine;
  std::weak_ptr<ivr::core::Engine> weak = engine->engine;
  engine->engine->flows().register_verb(
      name, [cb, holder, raw, weak](std::unique_ptr<ivr::core::VerbRequest> req) {
        auto handle = std::make_unique<ivr_verb_request>();
        handle->call = ivr::capi::call_handle(raw, req->call);
        ivr_call_ref(handle->call);
        handle->engine = weak;
        handle->request = std::move(req);
        try {
          cb(handle.release(), holder.get());
        } catch (...) {
          // A C++ host threw through a C callback: the step times out instead.
        }
      });
  return IVR_OK;
})}

IVR_API const char *ivr_verb_request_verb(const ivr_verb_request *request) {
  return valid(request) ? request->request->verb.c_str() : "";
}
IVR_API const char *ivr_verb_request_node(const ivr_verb_request *request) {
  return valid(request) ? request->request->node.c_str() : "";
}
IVR_API ivr_call *ivr_verb_request_call(const ivr_verb_request *request) {
  return valid(request) ? request->call : nullptr;
}
IVR_API size_t ivr_verb_request_arg_count(const ivr_verb_request *request) {
  return valid(request) ? request->request->args.size() : 0;
}
IVR_API int ivr_verb_request_arg(const ivr_verb_request *request, size_t i, const char **name,
                                 const char **value) {
  if (!valid(request)) return set_error(IVR_EINVAL, "request: not a valid verb request");
  if (i >= request->request->args.size())
    return set_error(IVR_EINVAL, "i: " + std::to_string(i) + " is out of range");
  if (name) *name = request->request->args[i].first.c_str();
  if (value) *value = request->request->args[i].second.c_str();
  return IVR_OK;
}
IVR_API const char *ivr_verb_request_get(const ivr_verb_request *request, const char *name) {
  if (!valid(request) || !name) return nullptr;
  for (const auto &[k, v] : request->request->args)
    if (k == name) return v.c_str();
  return nullptr;
}

IVR_API int ivr_verb_request_set(ivr_verb_request *request, const char *name,
                                 const char *value){IVR_CAPI_GUARD({
  if (!valid(request)) return set_error(IVR_EINVAL, "request: not a valid verb request");
  if (!name || !*name) return set_error(IVR_EINVAL, "name: NULL or empty");
  if (!value) return set_error(IVR_EINVAL, "value: NULL");
  for (const char *p = name; *p; ++p)
    if (!(std::isalnum(static_cast<unsigned char>(*p)) || *p == '_'))
      return set_error(IVR_EINVAL, std::string("name: \"") + name +
                                       "\" must be letters, digits and '_' (steps.<node>.<name>)");
  request->request->results.emplace_back(name, value);
  return IVR_OK;
})}

IVR_API
    int ivr_verb_request_complete(ivr_verb_request *request, const char *exit, const char *error) {
  IVR_CAPI_GUARD({
    if (!valid(request)) return set_error(IVR_EINVAL, "request: not a valid verb request");
    std::unique_ptr<ivr_verb_request> owned(request);
    owned->magic = kDeadMagic;
    ivr_call_unref(owned->call);
    auto engine = owned->engine.lock();
    if (!engine) return set_error(IVR_EGONE, "complete: the engine is gone");
    engine->flows().complete_verb(std::move(owned->request), exit ? exit : "", error ? error : "");
    return IVR_OK;
  })
}

}  // extern "C"
