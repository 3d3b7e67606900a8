// Redis through hiredis's asynchronous context and its libevent adapter on the engine loop;
// commands are sent as argument vectors (redisAsyncCommandArgv), so a parameter is always
// one argument. See docs/db.md, "Redis".
#pragma once

#include "db/connector.h"

namespace ivr::db {

// Checks a redis:// or unix:// URL without connecting (the form open_redis accepts).
Status check_redis_url(const std::string &url);

Result<std::unique_ptr<Connector>> open_redis(const ConnectorConfig &config,
                                              const LoopContext &loop);

}  // namespace ivr::db
