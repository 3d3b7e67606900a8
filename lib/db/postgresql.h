// PostgreSQL through libpq's asynchronous interface on the engine loop: a small pool of
// connections (PQconnectStart/PQconnectPoll, PQsendQueryParams, socket events on the
// loop), reconnecting with backoff. See docs/db.md, "PostgreSQL".
#pragma once

#include "db/connector.h"

namespace ivr::db {

Result<std::unique_ptr<Connector>> open_postgresql(const ConnectorConfig &config,
                                                   const LoopContext &loop);

}  // namespace ivr::db
