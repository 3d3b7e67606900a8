// ivrd's configuration file: a JSON document read with simdjson, checked field by field.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ivr/ivr.h>

namespace ivrd {

// One configuration problem. what() is a single line naming the field:
// "config sip.port: must be 1-65535".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct FlowFile {
  std::string field;  // "flows[0].file", for messages
  std::string path;   // resolved against the configuration file's directory
  bool activate = true;
};

// One webhook endpoint; its signing secrets are read from the environment at load.
struct WebhookEndpoint {
  std::string field;  // "webhooks.endpoints[0]", for messages
  std::string name, url, events = "*", ca_file;
  std::vector<std::string> secrets;  // values, from IVR_SECRET_<NAME>
  unsigned timeout_ms = 10000, max_attempts = 16, max_concurrency = 4;
};

// One database connector of db steps (docs/db.md); its password comes from a secret.
struct Database {
  std::string field;  // "databases.crm", for messages
  std::string name, url, password_secret;
  unsigned pool_size = 2, connect_timeout_ms = 2000, max_waiting = 1000;
  bool read_only = false;
};

struct Config {
  std::string sip_address = "127.0.0.1";
  unsigned short sip_port = 5060;
  ivr_sip_transport sip_transport = IVR_SIP_UDP;
  std::string rtp_address;  // empty: the SIP address
  unsigned short rtp_port_min = 20000, rtp_port_max = 30000;
  unsigned media_threads = 1;
  std::string prompt_dir;  // resolved; the configuration file's directory by default
  ivr_log_level log_level = IVR_LOG_INFO;
  std::vector<FlowFile> flows;
  std::vector<std::pair<std::string, std::string>> entry_points;  // called user -> flow id
  // Auth profiles of http steps, as JSON text (docs/net.md, "HTTP service"); "" = none.
  // Their secrets come from IVR_SECRET_<NAME> environment variables.
  std::string auth_profiles;
  // Webhooks: off when spool_dir is empty.
  std::string webhook_spool_dir;  // resolved
  uint64_t webhook_spool_max_bytes = 0;
  std::vector<WebhookEndpoint> webhooks;
  std::vector<Database> databases;
  // Routing (docs/routing.md, "Configuration") as JSON text; "" = none.
  std::string routing;
};

// Reads and checks the file; relative paths in it resolve against its directory.
// Throws ConfigError.
Config load_config(const std::string &path);

// "error", "warn", "info", "debug", "trace". False for anything else.
bool parse_log_level(std::string_view name, ivr_log_level *out);
const char *log_level_name(ivr_log_level level);
const char *transport_name(ivr_sip_transport transport);

// True for an IPv4 or IPv6 literal (what the engine binds to; no host names).
bool is_ip_literal(const std::string &address);

}  // namespace ivrd
