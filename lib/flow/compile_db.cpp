// Compiling a `db` node: the connector, a literal statement with bound parameters, the
// columns mapped into variables, and its exits.
#include "flow/document_compiler.h"

namespace ivr::flow::detail {

namespace {

constexpr size_t kMaxStatementBytes = 64 * 1024;
constexpr size_t kMaxParams = 100;

}  // namespace

Db Compiler::compile_db(size_t g, const Value &v, const std::string &ptr) {
  Db d;
  if (auto *c = string_field(v, ptr, "connector", true)) {
    if (!valid_name(*c))
      problem(*v.find("connector"), ptr + "/connector",
              "connector names a database connector of the host: an identifier (letters, "
              "digits, '_')");
    d.connector = *c;
  }
  if (auto *q = string_field(v, ptr, "query", true)) {
    const Value &qv = *v.find("query");
    if (q->find_first_not_of(" \t\r\n") == std::string::npos)
      problem(qv, ptr + "/query", "query is empty");
    else if (q->size() > kMaxStatementBytes)
      problem(qv, ptr + "/query", "query is longer than 64 KiB");
    else if (q->find("{{") != std::string::npos)
      // Values never become statement text: that is how SQL injection happens.
      problem(qv, ptr + "/query",
              "query is literal, not a template: pass values in \"params\" ($1 in PostgreSQL, "
              "? in SQLite, arguments after the command in Redis)");
    else if (q->find('\0') != std::string::npos)
      problem(qv, ptr + "/query", "query contains a NUL character");
    d.statement = *q;
  }
  if (const Value *params = field(v, ptr, "params", Kind::array)) {
    std::string pptr = ptr + "/params";
    if (params->items.size() > kMaxParams)
      problem(*params, pptr, "at most " + std::to_string(kMaxParams) + " params");
    for (size_t i = 0; i < params->items.size() && i < kMaxParams; ++i) {
      const Value &item = params->items[i];
      std::string iptr = json::pointer_append(pptr, i);
      if (item.is(Kind::null))
        d.params.emplace_back(std::nullopt);
      else if (auto t = template_or_literal(
                   item, iptr, "a parameter is a string (template), number, boolean or null"))
        d.params.emplace_back(std::move(*t));
    }
  }
  d.timeout_ms = static_cast<uint32_t>(int_field(v, ptr, "timeout_ms", 100, 60000, 3000));
  d.max_rows = static_cast<uint32_t>(int_field(v, ptr, "max_rows", 1, 10000, 100));
  if (const Value *map = field(v, ptr, "map", Kind::object)) {
    for (const json::Member &m : map->members) {
      std::string mptr = json::pointer_append(ptr + "/map", m.key);
      auto var = map_variable(m, mptr);
      if (!var) continue;
      if (!m.value.is(Kind::string) || m.value.string.empty()) {
        problem(m.value, mptr, "a column name of the first row (a non-empty string)");
        continue;
      }
      d.map.emplace_back(*var, m.value.string);
    }
  }
  d.hold = prompt_field(v, ptr, "hold");
  d.on_empty = exit_field(g, v, ptr, "on_empty");
  d.on_timeout = exit_field(g, v, ptr, "on_timeout");
  return d;
}

}  // namespace ivr::flow::detail
