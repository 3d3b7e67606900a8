#include "config.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

#include <simdjson.h>

namespace ivrd {

namespace fs = std::filesystem;
using simdjson::dom::element;
using simdjson::dom::element_type;

namespace {

[[noreturn]] void fail(const std::string &field, const std::string &what) {
  throw ConfigError("config " + field + ": " + what);
}

std::string in_quotes(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// The members of an object, refusing unknown and repeated names (typos in a
// configuration should stop the daemon, not be ignored).
std::vector<std::pair<std::string_view, element>> members(
    element value, const std::string &field, std::initializer_list<std::string_view> known) {
  simdjson::dom::object obj;
  if (value.get_object().get(obj) != simdjson::SUCCESS)
    fail(field.empty() ? "(document)" : field, "must be an object");
  std::vector<std::pair<std::string_view, element>> out;
  std::set<std::string_view> seen;
  for (auto kv : obj) {
    std::string name = field.empty() ? std::string(kv.key) : field + "." + std::string(kv.key);
    if (known.size() > 0) {
      bool ok = false;
      std::string list;
      for (std::string_view k : known) {
        ok = ok || k == kv.key;
        list += (list.empty() ? "" : ", ") + std::string(k);
      }
      if (!ok) fail(name, "unknown field (known: " + list + ")");
    }
    if (!seen.insert(kv.key).second) fail(name, "given twice");
    out.emplace_back(kv.key, kv.value);
  }
  return out;
}

std::string string_field(element value, const std::string &field) {
  std::string_view s;
  if (value.get_string().get(s) != simdjson::SUCCESS) fail(field, "must be a string");
  return std::string(s);
}

int64_t int_field(element value, const std::string &field, int64_t lo, int64_t hi) {
  int64_t n = 0;
  std::string range = std::to_string(lo) + "-" + std::to_string(hi);
  if (value.type() != element_type::INT64 && value.type() != element_type::UINT64)
    fail(field, "must be an integer " + range);
  if (value.get_int64().get(n) != simdjson::SUCCESS || n < lo || n > hi)
    fail(field, "must be " + range + ", got " + simdjson::to_string(value));
  return n;
}

bool bool_field(element value, const std::string &field) {
  bool b = false;
  if (value.get_bool().get(b) != simdjson::SUCCESS) fail(field, "must be true or false");
  return b;
}

std::string address_field(element value, const std::string &field) {
  std::string a = string_field(value, field);
  if (!is_ip_literal(a))
    fail(field, "must be an IPv4 or IPv6 address literal, got " + in_quotes(a));
  return a;
}

std::string resolve(const fs::path &base, const std::string &p) {
  fs::path path(p);
  return (path.is_absolute() ? path : base / path).lexically_normal().string();
}

void parse_sip(element value, Config &c) {
  for (auto &[key, v] : members(value, "sip", {"address", "port", "transport"})) {
    if (key == "address") {
      c.sip_address = address_field(v, "sip.address");
    } else if (key == "port") {
      c.sip_port = static_cast<unsigned short>(int_field(v, "sip.port", 1, 65535));
    } else {
      std::string t = string_field(v, "sip.transport");
      if (t == "udp")
        c.sip_transport = IVR_SIP_UDP;
      else if (t == "tcp")
        c.sip_transport = IVR_SIP_TCP;
      else if (t == "udp+tcp")
        c.sip_transport = IVR_SIP_UDP_TCP;
      else
        fail("sip.transport", "must be \"udp\", \"tcp\" or \"udp+tcp\", got " + in_quotes(t));
    }
  }
}

void parse_rtp(element value, Config &c) {
  for (auto &[key, v] : members(value, "rtp", {"address", "port_min", "port_max"})) {
    if (key == "address")
      c.rtp_address = address_field(v, "rtp.address");
    else if (key == "port_min")
      c.rtp_port_min = static_cast<unsigned short>(int_field(v, "rtp.port_min", 1024, 65534));
    else
      c.rtp_port_max = static_cast<unsigned short>(int_field(v, "rtp.port_max", 1, 65535));
  }
  // RTP takes an even port and RTCP the odd one above it.
  if (c.rtp_port_min % 2 != 0) fail("rtp.port_min", "must be even");
  if (c.rtp_port_max <= c.rtp_port_min)
    fail("rtp.port_max",
         "must be larger than rtp.port_min (" + std::to_string(c.rtp_port_min) + ")");
}

void parse_flows(element value, const fs::path &base, Config &c) {
  simdjson::dom::array arr;
  if (value.get_array().get(arr) != simdjson::SUCCESS)
    fail("flows", "must be an array of {\"file\": ..., \"activate\": true}");
  size_t i = 0;
  for (element item : arr) {
    std::string field = "flows[" + std::to_string(i++) + "]";
    FlowFile f;
    f.field = field + ".file";
    bool has_file = false;
    for (auto &[key, v] : members(item, field, {"file", "activate"})) {
      if (key == "file") {
        std::string p = string_field(v, f.field);
        if (p.empty()) fail(f.field, "must not be empty");
        f.path = resolve(base, p);
        has_file = true;
      } else {
        f.activate = bool_field(v, field + ".activate");
      }
    }
    if (!has_file) fail(f.field, "missing");
    c.flows.push_back(std::move(f));
  }
  if (c.flows.empty()) fail("flows", "must list at least one flow file");
}

void parse_entry_points(element value, Config &c) {
  for (auto &[key, v] : members(value, "entry_points", {})) {
    std::string field = "entry_points." + in_quotes(key);
    if (key.empty()) fail("entry_points", "a called number must not be empty");
    std::string flow = string_field(v, field);
    if (flow.empty()) fail(field, "must name a flow");
    c.entry_points.emplace_back(std::string(key), std::move(flow));
  }
  if (c.entry_points.empty())
    fail("entry_points", "must map at least one called number (or \"*\") to a flow");
}

// The value of secret `name` from IVR_SECRET_<NAME> (upper-cased, other characters '_').
std::string env_secret(const std::string &name, const std::string &field) {
  if (name.empty()) fail(field, "must name a secret");
  std::string var = "IVR_SECRET_";
  for (char ch : name) {
    if (ch >= 'a' && ch <= 'z')
      var += static_cast<char>(ch - 'a' + 'A');
    else if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
      var += ch;
    else
      var += '_';
  }
  const char *v = std::getenv(var.c_str());
  if (!v || !*v)
    fail(field, "secret " + in_quotes(name) + ": environment variable " + var + " is not set");
  return v;
}

void parse_webhook(element item, const std::string &field, const fs::path &base, Config &c) {
  WebhookEndpoint w;
  w.field = field;
  bool has_name = false, has_url = false;
  for (auto &[key, v] : members(item, field,
                                {"name", "url", "events", "secrets", "timeout_ms", "max_attempts",
                                 "max_concurrency", "ca_file"})) {
    std::string f = field + "." + std::string(key);
    if (key == "name") {
      w.name = string_field(v, f);
      has_name = true;
    } else if (key == "url") {
      w.url = string_field(v, f);
      has_url = true;
    } else if (key == "events") {
      if (v.type() == element_type::STRING) {
        w.events = string_field(v, f);
      } else {
        simdjson::dom::array arr;
        if (v.get_array().get(arr) != simdjson::SUCCESS)
          fail(f, "must be \"*\" or an array of event types");
        w.events.clear();
        size_t i = 0;
        for (element e : arr)
          w.events +=
              (w.events.empty() ? "" : ",") + string_field(e, f + "[" + std::to_string(i++) + "]");
        if (w.events.empty()) fail(f, "must name at least one event type");
      }
    } else if (key == "secrets") {
      simdjson::dom::array arr;
      if (v.get_array().get(arr) != simdjson::SUCCESS) fail(f, "must be an array of secret names");
      size_t i = 0;
      for (element e : arr) {
        std::string ef = f + "[" + std::to_string(i++) + "]";
        w.secrets.push_back(env_secret(string_field(e, ef), ef));
      }
    } else if (key == "timeout_ms") {
      w.timeout_ms = static_cast<unsigned>(int_field(v, f, 100, 600000));
    } else if (key == "max_attempts") {
      w.max_attempts = static_cast<unsigned>(int_field(v, f, 1, 1000));
    } else if (key == "max_concurrency") {
      w.max_concurrency = static_cast<unsigned>(int_field(v, f, 1, 256));
    } else {
      w.ca_file = resolve(base, string_field(v, f));
    }
  }
  if (!has_name) fail(field + ".name", "missing");
  if (!has_url) fail(field + ".url", "missing");
  if (w.secrets.empty()) fail(field + ".secrets", "must name at least one signing secret");
  c.webhooks.push_back(std::move(w));
}

void parse_webhooks(element value, const fs::path &base, Config &c) {
  bool has_spool = false;
  for (auto &[key, v] : members(value, "webhooks", {"spool_dir", "max_bytes", "endpoints"})) {
    if (key == "spool_dir") {
      std::string p = string_field(v, "webhooks.spool_dir");
      if (p.empty()) fail("webhooks.spool_dir", "must not be empty");
      c.webhook_spool_dir = resolve(base, p);
      has_spool = true;
    } else if (key == "max_bytes") {
      c.webhook_spool_max_bytes =
          static_cast<uint64_t>(int_field(v, "webhooks.max_bytes", 1 << 20, int64_t{1} << 40));
    } else {
      simdjson::dom::array arr;
      if (v.get_array().get(arr) != simdjson::SUCCESS)
        fail("webhooks.endpoints", "must be an array of endpoints");
      size_t i = 0;
      for (element item : arr)
        parse_webhook(item, "webhooks.endpoints[" + std::to_string(i++) + "]", base, c);
    }
  }
  if (!has_spool) fail("webhooks.spool_dir", "missing (where events wait until delivered)");
}
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// The auth profiles as given, with the file names of each profile's "tls" resolved against
// the configuration file's directory (like every path here); the engine checks the rest.
std::string auth_with_resolved_paths(element auth, const fs::path &base) {
  std::string out = "{";
  for (auto [name, profile] : simdjson::dom::object(auth)) {
    if (out.size() > 1) out += ",";
    out += json_string(name) + ":";
    simdjson::dom::object fields;
    if (profile.get_object().get(fields) != simdjson::SUCCESS) {
      out += simdjson::minify(profile);
      continue;
    }
    std::string p = "{";
    for (auto [key, value] : fields) {
      if (p.size() > 1) p += ",";
      p += json_string(key) + ":";
      simdjson::dom::object tls;
      if (key != "tls" || value.get_object().get(tls) != simdjson::SUCCESS) {
        p += simdjson::minify(value);
        continue;
      }
      std::string t = "{";
      for (auto [tkey, tvalue] : tls) {
        if (t.size() > 1) t += ",";
        std::string_view file;
        bool is_path = tkey == "ca_file" || tkey == "client_cert" || tkey == "client_key";
        if (is_path && tvalue.get_string().get(file) == simdjson::SUCCESS && !file.empty())
          t += json_string(tkey) + ":" + json_string(resolve(base, std::string(file)));
        else
          t += json_string(tkey) + ":" + simdjson::minify(tvalue);
      }
      p += t + "}";
    }
    out += p + "}";
  }
  return out + "}";
}

// {"crm": {"url": "postgresql://ivr@127.0.0.1:5432/crm", "password_secret": "crm_db"}}
void parse_databases(element value, const fs::path &base, Config &c) {
  for (auto &[name, v] : members(value, "databases", {})) {
    Database d;
    d.name = std::string(name);
    d.field = "databases." + d.name;
    bool has_url = false;
    for (auto &[key, f] : members(v, d.field,
                                  {"url", "password_secret", "pool_size", "connect_timeout_ms",
                                   "max_waiting", "read_only"})) {
      std::string field = d.field + "." + std::string(key);
      if (key == "url") {
        d.url = string_field(f, field);
        // A relative SQLite path is relative to the configuration file, like every path.
        if (d.url.rfind("sqlite:", 0) == 0 && d.url.rfind("sqlite:/", 0) != 0 &&
            d.url != "sqlite::memory:")
          d.url = "sqlite://" + resolve(base, d.url.substr(7));
        has_url = true;
      } else if (key == "password_secret") {
        d.password_secret = string_field(f, field);
      } else if (key == "pool_size") {
        d.pool_size = static_cast<unsigned>(int_field(f, field, 1, 16));
      } else if (key == "connect_timeout_ms") {
        d.connect_timeout_ms = static_cast<unsigned>(int_field(f, field, 100, 60000));
      } else if (key == "max_waiting") {
        d.max_waiting = static_cast<unsigned>(int_field(f, field, 1, 1000000));
      } else {
        d.read_only = bool_field(f, field);
      }
    }
    if (!has_url) fail(d.field + ".url", "missing (sqlite:, postgresql:// or redis://)");
    c.databases.push_back(std::move(d));
  }
}

}  // namespace

bool is_ip_literal(const std::string &address) {
  unsigned char buf[16];
  return inet_pton(AF_INET, address.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, address.c_str(), buf) == 1;
}

bool parse_log_level(std::string_view name, ivr_log_level *out) {
  static constexpr std::pair<std::string_view, ivr_log_level> kLevels[] = {
      {"error", IVR_LOG_ERROR},
      {"warn", IVR_LOG_WARN},
      {"info", IVR_LOG_INFO},
      {"debug", IVR_LOG_DEBUG},
      {"trace", IVR_LOG_TRACE}};
  for (auto &[n, level] : kLevels) {
    if (n == name) {
      *out = level;
      return true;
    }
  }
  return false;
}

const char *log_level_name(ivr_log_level level) {
  switch (level) {
    case IVR_LOG_ERROR:
      return "error";
    case IVR_LOG_WARN:
      return "warn";
    case IVR_LOG_INFO:
      return "info";
    case IVR_LOG_DEBUG:
      return "debug";
    case IVR_LOG_TRACE:
      return "trace";
  }
  return "?";
}

const char *transport_name(ivr_sip_transport transport) {
  switch (transport) {
    case IVR_SIP_UDP:
      return "udp";
    case IVR_SIP_TCP:
      return "tcp";
    case IVR_SIP_UDP_TCP:
      return "udp+tcp";
  }
  return "?";
}

Config load_config(const std::string &path) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw ConfigError("config " + path + ": cannot read: is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("config " + path + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError("config " + path + ": cannot read: " + std::strerror(errno));

  simdjson::dom::parser parser;
  element root;
  simdjson::padded_string json(text.str());
  if (auto err = parser.parse(json).get(root); err != simdjson::SUCCESS)
    throw ConfigError("config " + path + ": not valid JSON: " + simdjson::error_message(err));

  if (root.type() != element_type::OBJECT)
    throw ConfigError("config " + path + ": must be a JSON object ({\"flows\": ..., ...})");

  Config c;
  fs::path base = fs::absolute(fs::path(path)).parent_path();
  c.prompt_dir = base.lexically_normal().string();
  bool has_flows = false, has_entry_points = false;
  for (auto &[key, v] : members(root, "",
                                {"sip", "rtp", "media_threads", "prompt_dir", "log_level", "flows",
                                 "entry_points", "auth", "webhooks", "databases", "routing"})) {
    if (key == "sip") {
      parse_sip(v, c);
    } else if (key == "rtp") {
      parse_rtp(v, c);
    } else if (key == "media_threads") {
      c.media_threads = static_cast<unsigned>(int_field(v, "media_threads", 1, 64));
    } else if (key == "prompt_dir") {
      std::string p = string_field(v, "prompt_dir");
      if (p.empty()) fail("prompt_dir", "must not be empty");
      c.prompt_dir = resolve(base, p);
    } else if (key == "log_level") {
      std::string l = string_field(v, "log_level");
      if (!parse_log_level(l, &c.log_level))
        fail("log_level", "must be error, warn, info, debug or trace, got " + in_quotes(l));
    } else if (key == "flows") {
      parse_flows(v, base, c);
      has_flows = true;
    } else if (key == "webhooks") {
      parse_webhooks(v, base, c);
    } else if (key == "databases") {
      parse_databases(v, base, c);
    } else if (key == "routing") {
      // Checked field by field by the engine (ivr_engine_set_routing).
      if (v.type() != element_type::OBJECT)
        fail("routing", "must be an object (targets, target_sets, schedules, plans)");
      c.routing = simdjson::minify(v);
    } else if (key == "auth") {
      // Checked field by field by the engine (ivr_engine_set_auth_profiles).
      if (v.type() != element_type::OBJECT)
        fail("auth", "must be an object of named auth profiles");
      c.auth_profiles = auth_with_resolved_paths(v, base);
    } else {
      parse_entry_points(v, c);
      has_entry_points = true;
    }
  }
  if (!has_flows) fail("flows", "missing (the flow documents to load)");
  if (!has_entry_points)
    fail("entry_points", "missing (map called numbers to flows, e.g. {\"*\": \"demo\"})");
  return c;
}

}  // namespace ivrd
