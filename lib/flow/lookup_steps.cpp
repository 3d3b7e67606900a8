// The lookup steps of the interpreter: http and db, the call's lookup budget they share,
// and hold audio while they wait.
#include "flow/http_request.h"
#include "flow/session_impl.h"

namespace ivr::flow {

// What is left of the call's lookup budget, in ms.
uint64_t Session::Impl::budget_left() const {
  uint64_t budget = prog.http_budget_ms;
  return budget > lookup_used_ms ? budget - lookup_used_ms : 0;
}

std::string Session::Impl::budget_spent() const {
  return "the call's lookup budget (http_budget_ms) of " + std::to_string(prog.http_budget_ms) +
         " ms is spent";
}

// Ends the wait of a lookup step: charges the budget, stops hold audio; returns the time
// it took.
int64_t Session::Impl::lookup_finished() {
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now() - lookup_started);
  int64_t ms = std::max<int64_t>(0, elapsed.count());
  lookup_used_ms += static_cast<uint64_t>(ms);
  if (hold_playing) {
    hold_playing = false;
    port.stop_prompt();
  }
  return ms;
}

void Session::Impl::exec(const Node &n, const Http &h) {
  uint64_t left = budget_left();
  if (left == 0) return http_failed(n, h, "budget", budget_spent());
  auto req = build_http_request(h, [this](const rules::Expression &e) { return eval(e); });
  if (!req.ok()) {
    set_text("steps." + n.name + ".reason", "request");
    fail("http: " + req.error().message);
    return;
  }
  HttpStart hs;
  hs.request = std::move(req).value();
  hs.request.timeout_ms = static_cast<uint32_t>(std::min<uint64_t>(h.timeout_ms, left));
  hs.request.connect_timeout_ms = std::min(hs.request.connect_timeout_ms, hs.request.timeout_ms);
  hs.auth = h.auth;
  hs.retries = h.retries;
  hs.retry_non_idempotent = h.retry_non_idempotent;
  hs.cache_ttl_ms = h.cache_ttl_ms;
  hs.stale_if_error_ms = h.stale_if_error_ms;
  hs.budget_ms = static_cast<uint32_t>(left);
  trace(hs.request.method + " " + hs.request.url);
  http_token = next_token++;
  lookup_started = now();
  waiting(Wait::http);
  port.start_http(hs, http_token);
  begin_hold(h.hold);
}

void Session::Impl::begin_hold(const Prompt &hold) {
  if (hold.kind == Prompt::Kind::none || !answered) return;
  start_hold(hold);
  if (hold_playing) trace("hold audio while waiting");
}

void Session::Impl::start_hold(const Prompt &hold) {
  auto text = render(hold.content);
  if (!text.ok()) return;  // hold audio is a courtesy: a bad one does not fail the lookup
  hold_playing = true;
  if (hold.kind == Prompt::Kind::file)
    port.start_play(*text);
  else
    port.start_say(*text, hold.voice, hold.rate_wpm);
}

// The lookup failed for `reason`: on_timeout for a timeout when the node has one, else
// on_error (or the end of the call).
void Session::Impl::http_failed(const Node &n, const Http &h, const std::string &reason,
                                const std::string &error) {
  set_text("steps." + n.name + ".reason", reason);
  bool timeout = reason == "timeout" || reason == "budget";
  if (timeout && h.on_timeout != kNoNode) {
    set_text("steps." + n.name + ".error", error);
    trace(reason + ": " + error + exit_text(h.on_timeout));
    go(h.on_timeout);
    return;
  }
  fail("http " + reason + ": " + error);
}

void Session::Impl::http_done(HttpDone &&d) {
  const Node &n = node();
  const Http &h = std::get<Http>(n.spec);
  int64_t elapsed = lookup_finished();
  const std::string prefix = "steps." + n.name + ".";
  const net::HttpResponse &r = d.response;
  set_var(prefix + "status", rules::Value::number(r.status));
  set_var(prefix + "elapsed_ms", rules::Value::number(static_cast<double>(elapsed)));
  set_var(prefix + "attempts", rules::Value::number(d.attempts));
  set_var(prefix + "cached", rules::Value::boolean(d.cached));
  set_text(prefix + "body", r.body);
  for (const auto &[k, v] : r.headers)
    if (header_key(k) == "content_type") set_text(prefix + "content_type", v);
  if (!d.reason.empty()) return http_failed(n, h, d.reason, d.error);
  bool accepted = false;
  for (auto [lo, hi] : h.accept_status) accepted = accepted || (r.status >= lo && r.status <= hi);
  // A SOAP fault comes with status 500: it is reported as the fault it is.
  bool soap_fault_status = h.body == Http::Body::soap && r.status == 500;
  if (!accepted && !soap_fault_status)
    return http_failed(n, h, "status",
                       "HTTP " + std::to_string(r.status) + " from " + host_of(r.effective_url));
  if (h.response) {
    auto mapped = h.response->apply(r.body);
    if (!mapped.ok()) return http_failed(n, h, "parse", mapped.error().message);
    for (const net::Assignment &a : mapped->values) set_mapped(a.variable, a.value);
    if (mapped->fault) {
      bool graphql = h.body == Http::Body::graphql;
      return http_failed(
          n, h, graphql ? "graphql" : "soap_fault",
          graphql ? mapped->fault->message : mapped->fault->code + ": " + mapped->fault->message);
    }
  }
  if (!accepted)
    return http_failed(n, h, "status",
                       "HTTP " + std::to_string(r.status) + " from " + host_of(r.effective_url));
  set_text(prefix + "reason", "");
  trace("HTTP " + std::to_string(r.status) +
        (d.cached ? (d.stale ? " (stale cache)" : " (cache)") : "") + exit_text(n.next));
  go(n.next);
}

void Session::Impl::exec(const Node &n, const Db &d) {
  uint64_t left = budget_left();
  if (left == 0) return db_failed(n, d, "budget", budget_spent());
  DbStart ds;
  ds.connector = d.connector;
  ds.query.statement = d.statement;
  ds.query.max_rows = d.max_rows;
  ds.query.timeout_ms = static_cast<uint32_t>(std::min<uint64_t>(d.timeout_ms, left));
  for (size_t i = 0; i < d.params.size(); ++i) {
    if (!d.params[i]) {
      ds.query.params.emplace_back(std::nullopt);
      continue;
    }
    auto r = render(*d.params[i]);
    if (!r.ok()) {
      set_text("steps." + n.name + ".reason", "request");
      fail("db: params/" + std::to_string(i) + ": " + r.error().message);
      return;
    }
    ds.query.params.emplace_back(std::move(*r));
  }
  trace(d.connector + ": " + d.statement.substr(0, 120) +
        (ds.query.params.empty() ? ""
                                 : " (" + std::to_string(ds.query.params.size()) +
                                       (ds.query.params.size() == 1 ? " param)" : " params)")));
  db_token = next_token++;
  lookup_started = now();
  waiting(Wait::db);
  port.start_db(ds, db_token);
  begin_hold(d.hold);
}

void Session::Impl::db_failed(const Node &n, const Db &d, const std::string &reason,
                              const std::string &error) {
  set_text("steps." + n.name + ".reason", reason);
  if ((reason == "timeout" || reason == "budget") && d.on_timeout != kNoNode) {
    set_text("steps." + n.name + ".error", error);
    trace(reason + ": " + error + exit_text(d.on_timeout));
    go(d.on_timeout);
    return;
  }
  fail("db " + reason + ": " + error);
}

void Session::Impl::set_cell(const std::string &name, const db::Cell &c) {
  std::visit(
      [&](const auto &v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          set_var(name, {});
        else if constexpr (std::is_same_v<T, bool>)
          set_var(name, rules::Value::boolean(v));
        else if constexpr (std::is_same_v<T, std::string>)
          set_text(name, v);
        else if constexpr (std::is_same_v<T, int64_t>)
          // Past 2^53 a double loses digits (account ids): such numbers arrive as text.
          (v > (int64_t{1} << 53) || v < -(int64_t{1} << 53))
              ? set_text(name, std::to_string(v))
              : set_var(name, rules::Value::number(static_cast<double>(v)));
        else
          set_var(name, rules::Value::number(v));
      },
      c);
}

void Session::Impl::db_done(DbDone &&r) {
  const Node &n = node();
  const Db &d = std::get<Db>(n.spec);
  int64_t elapsed = lookup_finished();
  const std::string prefix = "steps." + n.name + ".";
  size_t count = r.reason.empty() ? r.rows.rows.size() : 0;
  set_var(prefix + "rows", rules::Value::number(static_cast<double>(count)));
  set_var(prefix + "elapsed_ms", rules::Value::number(static_cast<double>(elapsed)));
  set_var(prefix + "truncated", rules::Value::boolean(r.rows.truncated));
  if (!r.reason.empty()) return db_failed(n, d, r.reason, r.error);
  const auto &cols = r.rows.columns;
  // The first row: steps.<node>.row.<column>, and the mapped variables.
  if (count > 0) {
    const auto &row = r.rows.rows[0];
    for (size_t c = 0; c < cols.size() && c < row.size(); ++c)
      set_cell(prefix + "row." + cols[c], row[c]);
  }
  for (const auto &[var, column] : d.map) {
    auto it = std::find(cols.begin(), cols.end(), column);
    if (count > 0 && it != cols.end())
      set_cell(var, r.rows.rows[0][static_cast<size_t>(it - cols.begin())]);
    else
      set_var(var, {});  // no row, or no such column: null, as a path that finds nothing
  }
  set_text(prefix + "reason", "");
  NodeIndex exit = count == 0 && d.on_empty != kNoNode ? d.on_empty : n.next;
  trace(std::to_string(count) + (count == 1 ? " row" : " rows") +
        (r.rows.truncated ? " (truncated)" : "") + exit_text(exit));
  go(exit);
}

}  // namespace ivr::flow
