// Redis through hiredis's asynchronous context and its libevent adapter on the engine loop;
// commands are sent as argument vectors (redisAsyncCommandArgv), so a parameter is always
// one argument. See docs/db.md, "Redis".
#pragma once

#include "db/connector.h"

namespace ivr::db {

Result<std::unique_ptr<Connector>> open_redis(const ConnectorConfig &config,
                                              const LoopContext &loop);

}  // namespace ivr::db
