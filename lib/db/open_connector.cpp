// The factory: the connector named by a URL's scheme.
#include "db/connector.h"
#include "db/postgresql.h"
#include "db/redis.h"
#include "db/sqlite.h"

#include <arpa/inet.h>
#include <libpq-fe.h>

namespace ivr::db {

namespace {

bool scheme_is(const std::string &url, std::string_view s) {
  return url.rfind(s, 0) == 0;
}

Status unsupported_scheme(const std::string &url) {
  size_t colon = url.find(':');
  return {Errc::unsupported, "url: unsupported scheme " +
                                 (colon == std::string::npos ? std::string("(none)")
                                                             : "\"" + url.substr(0, colon) + "\"") +
                                 " (sqlite:, postgresql://, redis://, unix://)"};
}

}  // namespace

Status check_config(const ConnectorConfig &config) {
  const std::string &url = config.url;
  if (url.empty()) return {Errc::invalid_argument, "url: required"};
  if (config.max_waiting < 1) return {Errc::invalid_argument, "max_waiting: at least 1"};
  if (scheme_is(url, "sqlite:")) {
    if (auto p = sqlite_path(url); !p.ok()) return p.error();
    if (config.pool_size < 1 || config.pool_size > 8)
      return {Errc::invalid_argument, "pool_size: a SQLite connector has 1 to 8 workers"};
    return {};
  }
  if (scheme_is(url, "postgresql://") || scheme_is(url, "postgres://")) {
    char *err = nullptr;
    PQconninfoOption *opts = PQconninfoParse(url.c_str(), &err);
    if (!opts) {
      std::string why = err ? err : "not a PostgreSQL URI";
      PQfreemem(err);
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      return {Errc::invalid_argument, "url: " + why};
    }
    // libpq resolves a host name with a blocking getaddrinfo() on the engine loop: only
    // addresses, localhost (the hosts file) and socket directories are accepted.
    std::string host, hostaddr;
    for (PQconninfoOption *o = opts; o->keyword; ++o) {
      if (!o->val) continue;
      if (std::string_view(o->keyword) == "host") host = o->val;
      if (std::string_view(o->keyword) == "hostaddr") hostaddr = o->val;
    }
    PQconninfoFree(opts);
    if (hostaddr.empty()) {
      size_t start = 0;
      while (start <= host.size()) {
        size_t comma = host.find(',', start);
        std::string h =
            host.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        unsigned char buf[16];
        bool ok = h.empty() || h == "localhost" || h[0] == '/' || h[0] == '@' ||
                  inet_pton(AF_INET, h.c_str(), buf) == 1 ||
                  inet_pton(AF_INET6, h.c_str(), buf) == 1;
        if (!ok)
          return {Errc::invalid_argument,
                  "url: host \"" + h +
                      "\" is a name; resolving it would block the engine: give its IP address "
                      "(or ?hostaddr=)"};
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
    if (config.pool_size < 1 || config.pool_size > 16)
      return {Errc::invalid_argument, "pool_size: a PostgreSQL connector has 1 to 16 connections"};
    return {};
  }
  if (scheme_is(url, "redis://") || scheme_is(url, "unix://")) return check_redis_url(url);
  return unsupported_scheme(url);
}

Result<std::unique_ptr<Connector>> open_connector(const ConnectorConfig &config,
                                                  const LoopContext &loop) {
  const std::string &url = config.url;
  if (!loop.base || !loop.post) return {Errc::invalid_argument, "db: no engine loop"};
  if (auto st = check_config(config); !st) return st.error();
  if (scheme_is(url, "sqlite:")) return open_sqlite(config, loop);
  if (scheme_is(url, "postgresql://") || scheme_is(url, "postgres://"))
    return open_postgresql(config, loop);
  return open_redis(config, loop);
}

}  // namespace ivr::db
