// The factory: the connector named by a URL's scheme.
#include "db/connector.h"
#include "db/postgresql.h"
#include "db/redis.h"
#include "db/sqlite.h"

namespace ivr::db {

Result<std::unique_ptr<Connector>> open_connector(const ConnectorConfig &config,
                                                  const LoopContext &loop) {
  const std::string &url = config.url;
  auto scheme_is = [&](std::string_view s) { return url.rfind(s, 0) == 0; };
  if (!loop.base || !loop.post) return {Errc::invalid_argument, "db: no engine loop"};
  if (scheme_is("sqlite:")) return open_sqlite(config, loop);
  if (scheme_is("postgresql://") || scheme_is("postgres://")) return open_postgresql(config, loop);
  if (scheme_is("redis://") || scheme_is("unix://")) return open_redis(config, loop);
  size_t colon = url.find(':');
  return {Errc::unsupported,
          "url: unsupported scheme " +
              (colon == std::string::npos ? std::string("(none)") : "\"" + url.substr(0, colon) + "\"") +
              " (sqlite:, postgresql://, redis://, unix://)"};
}

}  // namespace ivr::db
