// C shims of ivr/db.h: built-in database connectors and the host's own.
#include <set>

#include "capi/handles.h"
#include "core/host_connector.h"

using ivr::capi::set_error;
using ivr::capi::valid;

constexpr uint32_t kDbQueryMagic = 0x49564451;  // "IVDQ"

struct ivr_db_query {
  uint32_t magic = kDbQueryMagic;
  std::unique_ptr<ivr::core::HostQuery> query;
};

namespace {

bool valid_query(const ivr_db_query *q) {
  return q && q->magic == kDbQueryMagic && q->query;
}

bool valid_db_name(const char *name) {
  if (!name || !*name) return false;
  std::string_view s(name);
  if (s.size() > 64 || !(isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

}  // namespace

extern "C" {

IVR_API int ivr_db_options_init(ivr_db_options *opts, unsigned int version) {
  if (!opts) return set_error(IVR_EINVAL, "opts: NULL");
  if (version != IVR_DB_OPTIONS_VERSION)
    return set_error(IVR_EVERSION,
                     "version: unknown db options version " + std::to_string(version));
  ivr_db_options defaults = IVR_DB_OPTIONS_INIT;
  *opts = defaults;
  return IVR_OK;
}

IVR_API int ivr_engine_add_db(ivr_engine *engine, const char *name,
                              const ivr_db_options *opts){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!valid_db_name(name))
    return set_error(IVR_EINVAL, "name: 1-64 letters, digits or '_', not starting with a digit");
  if (!opts) return set_error(IVR_EINVAL, "opts: NULL");
  if (opts->version != IVR_DB_OPTIONS_VERSION)
    return set_error(IVR_EVERSION,
                     "opts.version: unknown db options version " + std::to_string(opts->version));
  std::string prefix = std::string("db.") + name + ".";
  if (!opts->url || !*opts->url) return set_error(IVR_EINVAL, prefix + "url: required");
  ivr::db::ConnectorConfig config;
  config.url = opts->url;
  config.pool_size = opts->pool_size;
  config.connect_timeout_ms = opts->connect_timeout_ms;
  config.max_waiting = opts->max_waiting;
  config.read_only = opts->read_only != 0;
  if (config.connect_timeout_ms < 100 || config.connect_timeout_ms > 60000)
    return set_error(IVR_EINVAL, prefix + "connect_timeout_ms: 100 to 60000");
  if (config.max_waiting < 1) return set_error(IVR_EINVAL, prefix + "max_waiting: at least 1");
  auto st = engine->engine->add_database(name, std::move(config),
                                         opts->password_secret ? opts->password_secret : "");
  return st ? IVR_OK : set_error(st.error());
})}

IVR_API int ivr_engine_remove_db(ivr_engine *engine, const char *name){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!valid_db_name(name)) return set_error(IVR_EINVAL, "name: not a connector name");
  auto st = engine->engine->databases().remove(name);
  return st ? IVR_OK : set_error(st.error());
})}

IVR_API int ivr_engine_register_db_connector(ivr_engine *engine, const char *name,
                                             ivr_db_query_cb query, ivr_db_cancel_cb cancel,
                                             void *user_data,
                                             ivr_free_cb free_user_data){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!valid_db_name(name))
    return set_error(IVR_EINVAL, "name: 1-64 letters, digits or '_', not starting with a digit");
  if (!query) return set_error(IVR_EINVAL, "query: NULL");
  // The user data lives as long as the connector: freed when it is replaced or removed.
  auto holder = std::shared_ptr<void>(user_data, [free_user_data](void *p) {
    if (free_user_data) free_user_data(p);
  });
  ivr::core::HostConnectorCallbacks cb;
  cb.query = [query, holder](std::unique_ptr<ivr::core::HostQuery> q) {
    auto handle = std::make_unique<ivr_db_query>();
    handle->query = std::move(q);
    query(handle.release(), holder.get());
  };
  if (cancel) cb.cancel = [cancel, holder](uint64_t id) { cancel(id, holder.get()); };
  std::string n = name;
  auto st = engine->engine->databases().add(n, [n, cb](const ivr::db::LoopContext &ctx) {
    return ivr::core::make_host_connector(n, cb, ctx);
  });
  return st ? IVR_OK : set_error(st.error());
})}

IVR_API uint64_t ivr_db_query_id(const ivr_db_query *q) {
  return valid_query(q) ? q->query->id : 0;
}
IVR_API const char *ivr_db_query_connector(const ivr_db_query *q) {
  return valid_query(q) ? q->query->connector.c_str() : "";
}
IVR_API const char *ivr_db_query_statement(const ivr_db_query *q) {
  return valid_query(q) ? q->query->request.statement.c_str() : "";
}
IVR_API size_t ivr_db_query_param_count(const ivr_db_query *q) {
  return valid_query(q) ? q->query->request.params.size() : 0;
}
IVR_API const char *ivr_db_query_param(const ivr_db_query *q, size_t i, size_t *len) {
  if (len) *len = 0;
  if (!valid_query(q) || i >= q->query->request.params.size()) return nullptr;
  const auto &p = q->query->request.params[i];
  if (!p) return nullptr;
  if (len) *len = p->size();
  return p->c_str();
}
IVR_API unsigned int ivr_db_query_timeout_ms(const ivr_db_query *q) {
  return valid_query(q) ? q->query->request.timeout_ms : 0;
}
IVR_API size_t ivr_db_query_max_rows(const ivr_db_query *q) {
  return valid_query(q) ? q->query->request.max_rows : 0;
}

IVR_API int ivr_db_query_set_columns(ivr_db_query *q, const char *const *names,
                                     size_t count){IVR_CAPI_GUARD({
  if (!valid_query(q)) return set_error(IVR_EINVAL, "query: not a valid db query");
  if (count && !names) return set_error(IVR_EINVAL, "names: NULL");
  std::vector<std::string> columns;
  std::set<std::string> seen;
  for (size_t i = 0; i < count; ++i) {
    if (!names[i]) return set_error(IVR_EINVAL, "names[" + std::to_string(i) + "]: NULL");
    if (!seen.insert(names[i]).second)
      return set_error(IVR_EINVAL,
                       "names[" + std::to_string(i) + "]: \"" + names[i] + "\" appears twice");
    columns.emplace_back(names[i]);
  }
  ivr::db::Rows &rows = q->query->result.rows;
  rows = {};
  rows.columns = std::move(columns);
  return IVR_OK;
})}

IVR_API int ivr_db_query_add_row(ivr_db_query *q, const ivr_db_value *values,
                                 size_t count){IVR_CAPI_GUARD({
  if (!valid_query(q)) return set_error(IVR_EINVAL, "query: not a valid db query");
  ivr::db::Rows &rows = q->query->result.rows;
  if (count != rows.columns.size())
    return set_error(IVR_EINVAL, "count: " + std::to_string(count) + " values for " +
                                     std::to_string(rows.columns.size()) + " columns");
  if (count && !values) return set_error(IVR_EINVAL, "values: NULL");
  std::vector<ivr::db::Cell> row;
  row.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const ivr_db_value &v = values[i];
    std::string where = "values[" + std::to_string(i) + "]";
    switch (v.type) {
      case IVR_DB_NULL:
        row.emplace_back(std::monostate{});
        break;
      case IVR_DB_BOOL:
        row.emplace_back(v.boolean != 0);
        break;
      case IVR_DB_INT:
        row.emplace_back(static_cast<int64_t>(v.integer));
        break;
      case IVR_DB_REAL:
        row.emplace_back(v.real);
        break;
      case IVR_DB_TEXT:
        if (!v.text && v.text_len) return set_error(IVR_EINVAL, where + ".text: NULL");
        row.emplace_back(std::string(v.text ? v.text : "", v.text_len));
        break;
      default:
        return set_error(IVR_EINVAL, where + ".type: not an ivr_db_type");
    }
  }
  if (rows.rows.size() >= q->query->request.max_rows) {
    rows.truncated = true;
    return IVR_OK;
  }
  rows.rows.push_back(std::move(row));
  return IVR_OK;
})}

IVR_API int ivr_db_query_complete(ivr_db_query *q, ivr_db_status status, const char *message) {
  IVR_CAPI_GUARD({
    if (!valid_query(q)) return set_error(IVR_EINVAL, "query: not a valid db query");
    std::unique_ptr<ivr_db_query> owned(q);
    owned->magic = kDeadMagic;
    ivr::db::QueryResult &r = owned->query->result;
    int rc = IVR_OK;
    switch (status) {
      case IVR_DB_OK:
        break;
      case IVR_DB_TIMEOUT:
        r.error = ivr::db::DbErrc::timeout;
        break;
      case IVR_DB_CONNECT:
        r.error = ivr::db::DbErrc::connect;
        break;
      case IVR_DB_QUERY:
        r.error = ivr::db::DbErrc::query;
        break;
      case IVR_DB_BUSY:
        r.error = ivr::db::DbErrc::busy;
        break;
      default:
        r.error = ivr::db::DbErrc::query;
        rc = set_error(IVR_EINVAL, "status: not an ivr_db_status");
        break;
    }
    if (r.error != ivr::db::DbErrc::none) {
      r.rows = {};
      r.message = owned->query->connector + ": " +
                  (message && *message ? message : ivr::db::db_errc_name(r.error));
    }
    ivr::core::complete_host_query(std::move(owned->query));
    return rc;
  })
}

}  // extern "C"
