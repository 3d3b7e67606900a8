// Fuzzes the configuration checks of database connectors (URLs from configuration files and
// the C ABI): check_config on any bytes as a URL, behind each scheme.
//
// Checks: never crashes; every refusal has a message that names its field ("url:",
// "pool_size:", "max_waiting:").
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "db/connector.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  for (const char *prefix : {"", "sqlite:", "postgresql://", "redis://", "unix://"}) {
    ivr::db::ConnectorConfig c;
    c.url = prefix + text;
    c.pool_size = size % 20;
    c.max_waiting = size % 3;
    ivr::Status st = ivr::db::check_config(c);
    if (st) continue;
    const std::string &m = st.error().message;
    if (m.rfind("url:", 0) != 0 && m.rfind("pool_size:", 0) != 0 &&
        m.rfind("max_waiting:", 0) != 0) {
      std::fprintf(stderr, "fuzz_db_config: a message names no field: %s\n", m.c_str());
      std::abort();
    }
  }
  return 0;
}
