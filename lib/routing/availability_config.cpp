// The JSON form of availability connectors (docs/routing.md, "Availability connectors").
#include <cmath>
#include <initializer_list>

#include "routing/availability.h"

namespace ivr::routing {

namespace {

using json::Kind;

Error bad(const std::string &path, std::string_view why) {
  return Error{Errc::invalid_argument, path + ": " + std::string(why)};
}

Status only(const json::Value &v, const std::string &path,
            std::initializer_list<std::string_view> known) {
  for (const json::Member &m : v.members) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || k == m.key;
    if (ok) continue;
    std::string list;
    for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    return bad(path + "." + shown_name(m.key), "unknown field (known: " + list + ")");
  }
  return {};
}

Status text(const json::Value &o, const std::string &path, std::string_view name, std::string &out,
            bool required = false) {
  const json::Value *v = o.find(name);
  const std::string at = path + "." + std::string(name);
  if (!v) return required ? Status(bad(at, "missing")) : Status();
  if (!v->is(Kind::string)) return bad(at, "must be a string");
  if (required && v->string.empty()) return bad(at, "must not be empty");
  out = v->string;
  return {};
}

// Seconds, possibly fractional, into milliseconds.
Status seconds(const json::Value &o, const std::string &path, std::string_view name, double lo,
               double hi, Millis &out) {
  const json::Value *v = o.find(name);
  if (!v) return {};
  if (!v->is(Kind::number) || !std::isfinite(v->number) || v->number < lo || v->number > hi) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "must be a number from %g to %g", lo, hi);
    return bad(path + "." + std::string(name), buf);
  }
  out = Millis(static_cast<int64_t>(std::llround(v->number * 1000)));
  return {};
}

Status uinteger(const json::Value &o, const std::string &path, std::string_view name, uint32_t lo,
                uint32_t hi, uint32_t &out) {
  const json::Value *v = o.find(name);
  if (!v) return {};
  if (!v->is(Kind::number) || !v->integral || v->number < lo || v->number > hi)
    return bad(path + "." + std::string(name),
               "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  out = static_cast<uint32_t>(v->number);
  return {};
}

#define IVR_TRY(expr)              \
  do {                             \
    if (Status s_ = (expr); !s_) { \
      return s_.error();           \
    }                              \
  } while (0)

Result<FieldSource> parse_source(const json::Value &v, const std::string &path,
                                 AvailabilityFormat format) {
  FieldSource f;
  const bool delimited = format == AvailabilityFormat::csv || format == AvailabilityFormat::pipe;
  if (v.is(Kind::string)) {  // shorthand: a path, or a column name
    (delimited ? f.column : f.path) = v.string;
    return f;
  }
  if (v.is(Kind::number)) {  // shorthand: a column index
    uint32_t i = 0;
    json::Value wrap;
    wrap.kind = Kind::object;
    wrap.members.push_back({"index", 0, v});
    IVR_TRY(uinteger(wrap, path, "index", 0, kMaxDelimitedColumns - 1, i));
    f.index = i;
    return f;
  }
  if (!v.is(Kind::object))
    return bad(path, "must be a path or column name (string), an index, or an object");
  IVR_TRY(only(v, path, {"path", "where", "equals", "value", "column", "index", "divide_by"}));
  IVR_TRY(text(v, path, "path", f.path));
  IVR_TRY(text(v, path, "where", f.where));
  IVR_TRY(text(v, path, "equals", f.equals));
  IVR_TRY(text(v, path, "value", f.value));
  IVR_TRY(text(v, path, "column", f.column));
  if (v.find("index")) {
    uint32_t i = 0;
    IVR_TRY(uinteger(v, path, "index", 0, kMaxDelimitedColumns - 1, i));
    f.index = i;
  }
  IVR_TRY(uinteger(v, path, "divide_by", 1, 1000000, f.divide_by));
  return f;
}

Result<ConnectorConfig> parse_connector(const json::Member &m, const std::string &path) {
  const json::Value &v = m.value;
  if (!v.is(Kind::object)) return bad(path, "a connector is an object");
  std::string preset;
  IVR_TRY(text(v, path, "preset", preset));
  ConnectorConfig c;
  std::string auth, target;
  IVR_TRY(text(v, path, "auth", auth));
  IVR_TRY(text(v, path, "target", target));
  if (preset == "vicidial") {
    IVR_TRY(only(v, path,
                 {"preset", "target", "auth", "interval_s", "stale_after_s", "timeout_ms",
                  "base_url", "user", "source", "in_group"}));
    VicidialPreset p;
    p.auth = auth;
    IVR_TRY(text(v, path, "base_url", p.base_url, true));
    IVR_TRY(text(v, path, "user", p.user, true));
    IVR_TRY(text(v, path, "source", p.source));
    IVR_TRY(text(v, path, "in_group", p.in_group, true));
    c = vicidial_in_group_status(m.key, p);
  } else if (preset == "twilio") {
    IVR_TRY(only(v, path,
                 {"preset", "target", "auth", "interval_s", "stale_after_s", "timeout_ms",
                  "base_url", "workspace_sid", "task_queue_sid"}));
    TwilioPreset p;
    p.auth = auth;
    IVR_TRY(text(v, path, "base_url", p.base_url));
    IVR_TRY(text(v, path, "workspace_sid", p.workspace_sid, true));
    IVR_TRY(text(v, path, "task_queue_sid", p.task_queue_sid, true));
    c = twilio_taskqueue_statistics(m.key, p);
  } else if (preset == "amazon_connect") {
    IVR_TRY(only(v, path,
                 {"preset", "target", "auth", "interval_s", "stale_after_s", "timeout_ms",
                  "base_url", "instance_id", "queue_id"}));
    AmazonConnectPreset p;
    p.auth = auth;
    IVR_TRY(text(v, path, "base_url", p.base_url, true));
    IVR_TRY(text(v, path, "instance_id", p.instance_id, true));
    IVR_TRY(text(v, path, "queue_id", p.queue_id, true));
    c = amazon_connect_current_metrics(m.key, p);
  } else if (preset == "five9") {
    IVR_TRY(only(v, path,
                 {"preset", "target", "auth", "interval_s", "stale_after_s", "timeout_ms",
                  "base_url", "skill", "columns"}));
    Five9Preset p;
    p.auth = auth;
    IVR_TRY(text(v, path, "base_url", p.base_url, true));
    IVR_TRY(text(v, path, "skill", p.skill, true));
    if (const json::Value *cols = v.find("columns")) {
      const std::string cp = path + ".columns";
      if (!cols->is(Kind::object)) return bad(cp, "must be an object");
      IVR_TRY(only(*cols, cp,
                   {"agents_available", "agents_logged_in", "calls_waiting", "longest_wait_ms"}));
      IVR_TRY(text(*cols, cp, "agents_available", p.col_available));
      IVR_TRY(text(*cols, cp, "agents_logged_in", p.col_logged_in));
      IVR_TRY(text(*cols, cp, "calls_waiting", p.col_waiting));
      IVR_TRY(text(*cols, cp, "longest_wait_ms", p.col_longest));
    }
    c = five9_acd_status(m.key, p);
  } else if (preset.empty()) {
    IVR_TRY(only(v, path,
                 {"target", "auth", "interval_s", "stale_after_s", "timeout_ms", "method", "url",
                  "headers", "body", "format", "fields", "namespaces", "header", "key_index",
                  "key_value", "error_prefix", "description"}));
    c.name = m.key;
    c.auth = auth;
    IVR_TRY(text(v, path, "method", c.method));
    IVR_TRY(text(v, path, "url", c.url, true));
    IVR_TRY(text(v, path, "body", c.body));
    if (const json::Value *h = v.find("headers")) {
      if (!h->is(Kind::object)) return bad(path + ".headers", "must be an object");
      for (const json::Member &hm : h->members) {
        if (!hm.value.is(Kind::string))
          return bad(path + ".headers." + shown_name(hm.key), "must be a string");
        if (hm.value.string.find_first_of("\r\n") != std::string::npos)
          return bad(path + ".headers." + shown_name(hm.key), "must not contain a line break");
        c.headers.emplace_back(hm.key, hm.value.string);
      }
    }
    std::string format = "json";
    IVR_TRY(text(v, path, "format", format));
    auto &mp = c.mapping;
    if (format == "json")
      mp.format = AvailabilityFormat::json;
    else if (format == "xml")
      mp.format = AvailabilityFormat::xml;
    else if (format == "csv")
      mp.format = AvailabilityFormat::csv;
    else if (format == "pipe")
      mp.format = AvailabilityFormat::pipe;
    else
      return bad(path + ".format", "must be json, xml, csv or pipe");
    if (const json::Value *h = v.find("header")) {
      if (!h->is(Kind::boolean)) return bad(path + ".header", "must be true or false");
      mp.header = h->boolean;
    }
    IVR_TRY(uinteger(v, path, "key_index", 0, kMaxDelimitedColumns - 1, mp.key_index));
    IVR_TRY(text(v, path, "key_value", mp.key_value));
    IVR_TRY(text(v, path, "error_prefix", mp.error_prefix));
    if (const json::Value *ns = v.find("namespaces")) {
      if (!ns->is(Kind::object)) return bad(path + ".namespaces", "must be an object");
      for (const json::Member &nm : ns->members) {
        if (!nm.value.is(Kind::string))
          return bad(path + ".namespaces." + shown_name(nm.key), "must be a string");
        mp.namespaces.emplace_back(nm.key, nm.value.string);
      }
    }
    const json::Value *fields = v.find("fields");
    if (!fields) return bad(path + ".fields", "missing");
    if (!fields->is(Kind::object)) return bad(path + ".fields", "must be an object");
    IVR_TRY(only(*fields, path + ".fields",
                 {"agents_available", "agents_logged_in", "calls_waiting", "longest_wait_s"}));
    for (size_t f = 0; f < kAvailabilityFields; ++f) {
      const char *name = availability_field_name(static_cast<AvailabilityField>(f));
      if (const json::Value *fv = fields->find(name)) {
        auto src = parse_source(*fv, path + ".fields." + name, mp.format);
        if (!src.ok()) return src.error();
        mp.fields[f] = std::move(src.value());
      }
    }
  } else {
    return bad(path + ".preset", "must be vicidial, twilio, amazon_connect or five9");
  }
  c.target = target.empty() ? m.key : target;
  IVR_TRY(seconds(v, path, "interval_s", 0.05, 3600, c.interval));
  c.stale_after = std::max(c.stale_after, c.interval * 3);
  IVR_TRY(seconds(v, path, "stale_after_s", 0.05, 86400, c.stale_after));
  uint32_t timeout_ms = static_cast<uint32_t>(c.timeout.count());
  IVR_TRY(uinteger(v, path, "timeout_ms", 10, 600000, timeout_ms));
  c.timeout = Millis(timeout_ms);
  IVR_TRY(validate_connector(c, path));
  return c;
}

}  // namespace

Result<std::vector<ConnectorConfig>> parse_availability_connectors(const json::Value &connectors,
                                                                   std::string_view path) {
  const std::string p(path);
  if (!connectors.is(Kind::object)) return bad(p, "must be an object of name -> connector");
  std::vector<ConnectorConfig> out;
  for (const json::Member &m : connectors.members) {
    const std::string at = p + "." + shown_name(m.key);
    if (!valid_target_name(m.key))
      return bad(at, "a connector name is 1-64 letters, digits, '_' or '-'");
    auto c = parse_connector(m, at);
    if (!c.ok()) return c.error();
    out.push_back(std::move(c.value()));
  }
  return out;
}

Result<std::vector<ConnectorConfig>> parse_availability_connectors(std::string_view json_text,
                                                                   std::string_view path) {
  auto doc = json::parse(json_text);
  if (!doc.ok()) return doc.error();
  return parse_availability_connectors(doc.value().root(), path);
}

}  // namespace ivr::routing
