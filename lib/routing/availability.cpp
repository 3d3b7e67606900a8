#include "routing/availability.h"

#include <cmath>
#include <limits>

#include "net/json_path.h"
#include "net/response_map.h"

namespace ivr::routing {

namespace {

constexpr std::array<const char *, kAvailabilityFields> kFieldNames = {
    "agents_available", "agents_logged_in", "calls_waiting", "longest_wait_s"};

Error parse_error(std::string message) {
  return Error{Errc::parse, std::move(message)};
}

// At most 60 printable characters of outside text, for an error message.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 60) out += "...";
  return out;
}

// A path for a message: long generated XPath expressions are cut.
std::string shown_path(const std::string &p) {
  return p.size() <= 80 ? p : p.substr(0, 77) + "...";
}

Result<uint32_t> from_double(double d) {
  if (!std::isfinite(d) || d < 0 || d > std::numeric_limits<uint32_t>::max())
    return parse_error("is " + net::Value::number(d).text() + ", not a count from 0 to 4294967295");
  return static_cast<uint32_t>(std::floor(d));
}

Result<uint32_t> digits(std::string_view s) {
  if (s.empty() || s.size() > 10) return parse_error("");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return parse_error("");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > std::numeric_limits<uint32_t>::max()) return parse_error("");
  return static_cast<uint32_t>(v);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

Result<uint32_t> scaled(Result<uint32_t> v, const FieldSource &src) {
  if (!v.ok()) return v;
  return src.divide_by > 1 ? v.value() / src.divide_by : v.value();
}

Result<uint32_t> from_value(const net::Value &v, const FieldSource &src) {
  switch (v.kind()) {
    case net::Value::Kind::number:
      return scaled(from_double(v.as_number()), src);
    case net::Value::Kind::string:
      return scaled(parse_figure(v.as_string()), src);
    case net::Value::Kind::null:
      return parse_error("is missing");
    case net::Value::Kind::boolean:
      break;
  }
  return parse_error("is a boolean, not a number");
}

Result<AvailabilitySample> map_json(const AvailabilityMapping &m, std::string_view body) {
  auto doc = net::JsonDocument::parse(body);
  if (!doc.ok()) return parse_error(doc.error().message);
  std::array<uint32_t, kAvailabilityFields> out{};
  for (size_t f = 0; f < kAvailabilityFields; ++f) {
    if (!m.fields[f]) continue;
    const FieldSource &src = *m.fields[f];
    const std::string name = kFieldNames[f];
    std::string where = src.path;  // the path whose value is read
    if (!src.where.empty()) {
      // Find the element of the array at `path` whose `where` member equals `equals`.
      auto len_path = net::JsonPath::parse(src.path + "/#");
      if (!len_path.ok()) return parse_error(name + ": " + len_path.error().message);
      auto len = len_path.value().evaluate(doc.value());
      if (!len.ok() || len.value().kind() != net::Value::Kind::number)
        return parse_error(name + ": " + src.path + " is not an array");
      const size_t n = static_cast<size_t>(len.value().as_number());
      where.clear();
      for (size_t i = 0; i < n && i < 10000; ++i) {
        const std::string element = src.path + "/" + std::to_string(i);
        auto key = net::JsonPath::parse(element + src.where);
        if (!key.ok()) return parse_error(name + ": " + key.error().message);
        auto kv = key.value().evaluate(doc.value());
        if (kv.ok() && kv.value().kind() == net::Value::Kind::string &&
            kv.value().as_string() == src.equals) {
          where = element + src.value;
          break;
        }
      }
      if (where.empty())
        return parse_error(name + ": no element of " + src.path + " has " + src.where + " = '" +
                           src.equals + "'");
    }
    auto path = net::JsonPath::parse(where);
    if (!path.ok()) return parse_error(name + ": " + path.error().message);
    auto v = path.value().evaluate(doc.value());
    if (!v.ok()) return parse_error(name + ": " + v.error().message);
    auto n = from_value(v.value(), src);
    if (!n.ok()) return parse_error(name + ": " + where + " " + n.error().message);
    out[f] = n.value();
  }
  return AvailabilitySample{out[0], out[1], out[2], out[3]};
}

Result<AvailabilitySample> map_xml(const AvailabilityMapping &m, std::string_view body) {
  std::vector<net::FieldMapping> fields;
  std::vector<size_t> which;
  for (size_t f = 0; f < kAvailabilityFields; ++f) {
    if (!m.fields[f]) continue;
    fields.push_back({kFieldNames[f], m.fields[f]->path});
    which.push_back(f);
  }
  auto map = net::ResponseMap::compile(net::BodyFormat::xml, fields, m.namespaces);
  if (!map.ok()) return parse_error(map.error().message);
  auto mapped = map.value().apply(body);
  if (!mapped.ok()) return parse_error(mapped.error().message);
  if (mapped.value().fault)
    return parse_error("SOAP fault " + shown(mapped.value().fault->code) + ": " +
                       shown(mapped.value().fault->message));
  std::array<uint32_t, kAvailabilityFields> out{};
  for (size_t i = 0; i < which.size(); ++i) {
    const FieldSource &src = *m.fields[which[i]];
    net::Value v = mapped.value().values[i].value;
    // XPath yields strings; an empty node-set is "" (missing).
    if (v.kind() == net::Value::Kind::string && v.as_string().empty()) v = net::Value();
    auto n = from_value(v, src);
    if (!n.ok())
      return parse_error(std::string(kFieldNames[which[i]]) + ": " + shown_path(src.path) + " " +
                         n.error().message);
    out[which[i]] = n.value();
  }
  return AvailabilitySample{out[0], out[1], out[2], out[3]};
}

Result<AvailabilitySample> map_delimited(const AvailabilityMapping &m, std::string_view body) {
  const bool csv = m.format == AvailabilityFormat::csv;
  if (!csv && !m.error_prefix.empty()) {
    std::string_view first = body.substr(0, body.find('\n'));
    if (trim(first).substr(0, m.error_prefix.size()) == m.error_prefix)
      return parse_error("the dialing system answered an error: " + shown(trim(first)));
  }
  auto rows = parse_delimited(body, csv ? ',' : '|', csv);
  if (!rows.ok()) return rows.error();
  const DelimitedRows &r = rows.value();
  size_t first = 0;
  if (m.header) {
    if (r.empty()) return parse_error("header row: the answer is empty");
    first = 1;
  }
  const std::vector<std::string> *row = nullptr;
  for (size_t i = first; i < r.size() && !row; ++i) {
    if (m.key_value.empty() ||
        (m.key_index < r[i].size() && trim(r[i][m.key_index]) == m.key_value))
      row = &r[i];
  }
  if (!row) {
    if (m.key_value.empty()) return parse_error("row: the answer has no data row");
    return parse_error("row: no row whose column " + std::to_string(m.key_index) + " is '" +
                       shown(m.key_value) + "'");
  }
  std::array<uint32_t, kAvailabilityFields> out{};
  for (size_t f = 0; f < kAvailabilityFields; ++f) {
    if (!m.fields[f]) continue;
    const FieldSource &src = *m.fields[f];
    const std::string name = kFieldNames[f];
    size_t col = 0;
    if (src.index) {
      col = *src.index;
    } else {
      const auto &names = r[0];
      size_t c = 0;
      while (c < names.size() && trim(names[c]) != src.column) ++c;
      if (!m.header || c == names.size())
        return parse_error(name + ": column '" + shown(src.column) +
                           "' not found in the header row");
      col = c;
    }
    if (col >= row->size())
      return parse_error(name + ": the row has " + std::to_string(row->size()) +
                         " fields, no column " + std::to_string(col));
    auto n = scaled(parse_figure((*row)[col]), src);
    if (!n.ok())
      return parse_error(name + ": column " + std::to_string(col) + " " + n.error().message);
    out[f] = n.value();
  }
  return AvailabilitySample{out[0], out[1], out[2], out[3]};
}

}  // namespace

const char *availability_format_name(AvailabilityFormat f) {
  switch (f) {
    case AvailabilityFormat::json:
      return "json";
    case AvailabilityFormat::xml:
      return "xml";
    case AvailabilityFormat::csv:
      return "csv";
    case AvailabilityFormat::pipe:
      return "pipe";
  }
  return "?";
}

const char *availability_field_name(AvailabilityField f) {
  return kFieldNames[static_cast<size_t>(f)];
}

Result<DelimitedRows> parse_delimited(std::string_view text, char delimiter, bool csv) {
  DelimitedRows rows;
  std::vector<std::string> row;
  std::string field;
  size_t line = 1;
  bool row_has_content = false;
  auto end_field = [&]() -> Status {
    if (row.size() >= kMaxDelimitedColumns)
      return Error{Errc::parse, "line " + std::to_string(line) + ": more than " +
                                    std::to_string(kMaxDelimitedColumns) + " fields"};
    row.push_back(std::move(field));
    field.clear();
    return {};
  };
  auto end_row = [&]() -> Status {
    if (row_has_content || !row.empty()) {
      if (Status s = end_field(); !s) return s;
      if (rows.size() >= kMaxDelimitedRows)
        return Error{Errc::parse, "line " + std::to_string(line) + ": more than " +
                                      std::to_string(kMaxDelimitedRows) + " rows"};
      rows.push_back(std::move(row));
    }
    row.clear();
    field.clear();
    row_has_content = false;
    return {};
  };
  auto add = [&](char c) -> Status {
    if (field.size() >= kMaxDelimitedField)
      return Error{Errc::parse, "line " + std::to_string(line) + ": a field longer than " +
                                    std::to_string(kMaxDelimitedField) + " bytes"};
    field += c;
    row_has_content = true;
    return {};
  };
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (csv && c == '"' && field.empty()) {
      // A quoted field: up to the closing quote; "" is a quote.
      const size_t start_line = line;
      row_has_content = true;
      ++i;
      for (;;) {
        if (i >= text.size())
          return Error{Errc::parse,
                       "line " + std::to_string(start_line) + ": unterminated quoted field"};
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            if (Status s = add('"'); !s) return s.error();
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (text[i] == '\n') ++line;
        if (Status s = add(text[i]); !s) return s.error();
        ++i;
      }
      if (i < text.size() && text[i] != delimiter && text[i] != '\n' && text[i] != '\r')
        return Error{Errc::parse, "line " + std::to_string(line) + ": text after a closing quote"};
      continue;
    }
    if (c == delimiter) {
      row_has_content = true;
      if (Status s = end_field(); !s) return s.error();
    } else if (c == '\n') {
      if (Status s = end_row(); !s) return s.error();
      ++line;
    } else if (c == '\r') {
      // CRLF: the \n ends the row; a lone \r is dropped.
    } else {
      if (Status s = add(c); !s) return s.error();
    }
    ++i;
  }
  if (Status s = end_row(); !s) return s.error();
  return rows;
}

Result<uint32_t> parse_figure(std::string_view raw) {
  const std::string_view s = trim(raw);
  auto bad = [&] {
    return parse_error("'" + shown(s) + "' is not a number (want digits or [H:]MM:SS)");
  };
  if (s.find(':') != std::string_view::npos) {
    uint64_t total = 0;
    size_t parts = 0;
    std::string_view rest = s;
    for (;;) {
      const size_t colon = rest.find(':');
      auto d = digits(rest.substr(0, colon));
      if (!d.ok() || ++parts > 3) return bad();
      if (parts > 1 && d.value() > 59) return bad();
      total = total * 60 + d.value();
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
    if (parts < 2 || total > std::numeric_limits<uint32_t>::max()) return bad();
    return static_cast<uint32_t>(total);
  }
  const size_t dot = s.find('.');
  auto whole = digits(s.substr(0, dot));
  if (!whole.ok()) return bad();
  if (dot != std::string_view::npos) {
    const std::string_view frac = s.substr(dot + 1);
    if (frac.empty() || frac.find_first_not_of("0123456789") != std::string_view::npos)
      return bad();
  }
  return whole.value();
}

Result<AvailabilitySample> map_availability(const AvailabilityMapping &mapping,
                                            std::string_view body) {
  if (body.size() > net::kMaxBodyBytes) return parse_error("body: larger than 16 MiB");
  switch (mapping.format) {
    case AvailabilityFormat::json:
      return map_json(mapping, body);
    case AvailabilityFormat::xml:
      return map_xml(mapping, body);
    case AvailabilityFormat::csv:
    case AvailabilityFormat::pipe:
      return map_delimited(mapping, body);
  }
  return parse_error("format: unknown");
}

Status validate_mapping(const AvailabilityMapping &m) {
  bool any = false;
  for (size_t f = 0; f < kAvailabilityFields; ++f) {
    if (!m.fields[f]) continue;
    any = true;
    const FieldSource &src = *m.fields[f];
    const std::string name = std::string("fields.") + kFieldNames[f];
    auto bad = [&](std::string why) { return Error{Errc::invalid_argument, name + ": " + why}; };
    if (src.divide_by == 0) return bad("divide_by must be at least 1");
    switch (m.format) {
      case AvailabilityFormat::json: {
        for (const std::string *p : {&src.path, &src.where, &src.value}) {
          if (p->empty() && p != &src.path) continue;
          auto jp = net::JsonPath::parse(*p);
          if (!jp.ok()) return bad(jp.error().message);
        }
        if (src.where.empty() != src.value.empty())
          return bad("\"where\" and \"value\" go together");
        break;
      }
      case AvailabilityFormat::xml: {
        if (src.path.empty()) return bad("needs an XPath \"path\"");
        auto map = net::ResponseMap::compile(net::BodyFormat::xml, {{kFieldNames[f], src.path}},
                                             m.namespaces);
        if (!map.ok()) return bad(map.error().message);
        break;
      }
      case AvailabilityFormat::csv:
      case AvailabilityFormat::pipe:
        if (src.index.has_value() == !src.column.empty())
          return bad("needs a \"column\" name or an \"index\" (one of them)");
        if (!src.column.empty() && !m.header) return bad("a column name needs \"header\": true");
        if (src.index && *src.index >= kMaxDelimitedColumns)
          return bad("index must be below " + std::to_string(kMaxDelimitedColumns));
        break;
    }
  }
  if (!any) return Error{Errc::invalid_argument, "fields: map at least one figure"};
  return {};
}

Status validate_connector(const ConnectorConfig &c, std::string_view path) {
  const std::string p(path);
  auto bad = [&](std::string_view field, std::string why) {
    return Error{Errc::invalid_argument, p + "." + std::string(field) + ": " + why};
  };
  if (!valid_target_name(c.name)) return Error{Errc::invalid_argument, p + ": bad connector name"};
  if (c.url.rfind("http://", 0) != 0 && c.url.rfind("https://", 0) != 0)
    return bad("url", "must start with http:// or https://");
  if (c.method.empty() ||
      c.method.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)
    return bad("method", "must be an upper-case HTTP method");
  if (c.interval < Millis(50) || c.interval > Millis(3600000))
    return bad("interval_s", "must be a number from 0.05 to 3600");
  if (c.stale_after < c.interval || c.stale_after > Millis(86400000))
    return bad("stale_after_s", "must be at least interval_s and at most 86400");
  if (c.timeout < Millis(10) || c.timeout > Millis(600000))
    return bad("timeout_ms", "must be an integer from 10 to 600000");
  if (Status s = validate_mapping(c.mapping); !s)
    return Error{Errc::invalid_argument, p + "." + s.error().message};
  return {};
}

// ---- presets ----

namespace {

std::string url_encode(std::string_view s) {
  static const char *hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string strip_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

FieldSource at(std::string path, uint32_t divide_by = 1) {
  FieldSource f;
  f.path = std::move(path);
  f.divide_by = divide_by;
  return f;
}
FieldSource col(uint32_t index) {
  FieldSource f;
  f.index = index;
  return f;
}
FieldSource metric(const char *name) {
  FieldSource f;
  f.path = "/MetricResults/0/Collections";
  f.where = "/Metric/Name";
  f.equals = name;
  f.value = "/Value";
  return f;
}

// An XPath 1.0 string literal (a value holding both quote kinds is built with concat()).
std::string xpath_literal(std::string_view s) {
  if (s.find('\'') == std::string_view::npos) return "'" + std::string(s) + "'";
  if (s.find('"') == std::string_view::npos) return "\"" + std::string(s) + "\"";
  std::string out = "concat(";
  size_t start = 0;
  for (;;) {
    const size_t q = s.find('\'', start);
    out += "'" + std::string(s.substr(start, q - start)) + "'";
    if (q == std::string_view::npos) break;
    out += ", \"'\", ";
    start = q + 1;
  }
  return out + ")";
}

}  // namespace

ConnectorConfig vicidial_in_group_status(std::string name, const VicidialPreset &p) {
  ConnectorConfig c;
  c.name = std::move(name);
  c.preset = "vicidial";
  c.url = strip_slash(p.base_url) + "/non_agent_api.php?source=" + url_encode(p.source) +
          "&user=" + url_encode(p.user) +
          "&function=in_group_status&in_groups=" + url_encode(p.in_group) + "&header=NO";
  c.auth = p.auth;
  auto &m = c.mapping;
  m.format = AvailabilityFormat::pipe;
  m.key_index = 0;
  m.key_value = p.in_group;
  m.fields[size_t(AvailabilityField::agents_available)] = col(5);  // agents_waiting
  m.fields[size_t(AvailabilityField::agents_logged_in)] = col(3);
  m.fields[size_t(AvailabilityField::calls_waiting)] = col(2);
  return c;
}

ConnectorConfig twilio_taskqueue_statistics(std::string name, const TwilioPreset &p) {
  ConnectorConfig c;
  c.name = std::move(name);
  c.preset = "twilio";
  c.url = strip_slash(p.base_url) + "/v1/Workspaces/" + url_encode(p.workspace_sid) +
          "/TaskQueues/" + url_encode(p.task_queue_sid) + "/RealTimeStatistics";
  c.auth = p.auth;
  auto &m = c.mapping;
  m.format = AvailabilityFormat::json;
  m.fields[size_t(AvailabilityField::agents_available)] = at("/total_available_workers");
  m.fields[size_t(AvailabilityField::agents_logged_in)] = at("/total_eligible_workers");
  m.fields[size_t(AvailabilityField::calls_waiting)] = at("/tasks_by_status/pending");
  m.fields[size_t(AvailabilityField::longest_wait_s)] = at("/longest_task_waiting_age");
  return c;
}

ConnectorConfig amazon_connect_current_metrics(std::string name, const AmazonConnectPreset &p) {
  ConnectorConfig c;
  c.name = std::move(name);
  c.preset = "amazon_connect";
  c.method = "POST";
  c.url = strip_slash(p.base_url) + "/metrics/current/" + url_encode(p.instance_id);
  c.headers = {{"Content-Type", "application/json"}};
  std::string queue;
  for (char ch : p.queue_id)  // a JSON string: ids are [A-Za-z0-9:/-]; escape the rest
    if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20)
      queue += "\\u00" + std::string(1, "0123456789abcdef"[(ch >> 4) & 15]) +
               "0123456789abcdef"[ch & 15];
    else
      queue += ch;
  c.body = R"({"Filters":{"Queues":[")" + queue +
           R"("],"Channels":["VOICE"]},"Groupings":["QUEUE"],"CurrentMetrics":[)"
           R"({"Name":"AGENTS_AVAILABLE","Unit":"COUNT"},{"Name":"AGENTS_ONLINE","Unit":"COUNT"},)"
           R"({"Name":"CONTACTS_IN_QUEUE","Unit":"COUNT"},)"
           R"({"Name":"OLDEST_CONTACT_AGE","Unit":"SECONDS"}]})";
  c.auth = p.auth;
  auto &m = c.mapping;
  m.format = AvailabilityFormat::json;
  m.fields[size_t(AvailabilityField::agents_available)] = metric("AGENTS_AVAILABLE");
  m.fields[size_t(AvailabilityField::agents_logged_in)] = metric("AGENTS_ONLINE");
  m.fields[size_t(AvailabilityField::calls_waiting)] = metric("CONTACTS_IN_QUEUE");
  m.fields[size_t(AvailabilityField::longest_wait_s)] = metric("OLDEST_CONTACT_AGE");
  return c;
}

ConnectorConfig five9_acd_status(std::string name, const Five9Preset &p) {
  ConnectorConfig c;
  c.name = std::move(name);
  c.preset = "five9";
  c.method = "POST";
  c.url = p.base_url;
  c.headers = {{"Content-Type", "text/xml; charset=utf-8"}, {"SOAPAction", "\"\""}};
  c.body = R"(<?xml version="1.0" encoding="UTF-8"?>)"
           R"(<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" )"
           R"(xmlns:ser="http://service.supervisor.ws.five9.com/"><soapenv:Header/><soapenv:Body>)"
           R"(<ser:getStatistics><statisticType>ACDStatus</statisticType>)"
           R"(</ser:getStatistics></soapenv:Body></soapenv:Envelope>)";
  c.auth = p.auth;
  auto &m = c.mapping;
  m.format = AvailabilityFormat::xml;
  // The skill's row, then the cell under the named column (present only when the column is).
  auto cell = [&](const std::string &column, uint32_t divide_by = 1) {
    const std::string cols = "//*[local-name()='getStatisticsResponse']/return/columns/values/data";
    const std::string named = cols + "[.=" + xpath_literal(column) + "]";
    return at("//*[local-name()='getStatisticsResponse']/return/rows[values/data[1]=" +
                  xpath_literal(p.skill) + "][" + named + "]/values/data[count(" + named +
                  "/preceding-sibling::data)+1]",
              divide_by);
  };
  m.fields[size_t(AvailabilityField::agents_available)] = cell(p.col_available);
  m.fields[size_t(AvailabilityField::agents_logged_in)] = cell(p.col_logged_in);
  m.fields[size_t(AvailabilityField::calls_waiting)] = cell(p.col_waiting);
  m.fields[size_t(AvailabilityField::longest_wait_s)] = cell(p.col_longest, 1000);
  return c;
}

}  // namespace ivr::routing
