// PostgreSQL through libpq's asynchronous interface on the engine loop: a small pool of
// connections (PQconnectStart/PQconnectPoll, PQsendQueryParams, socket events on the
// loop), reconnecting with backoff. See docs/db.md, "PostgreSQL".
//
// libpq resolves a host name with a blocking getaddrinfo() on the loop thread while it
// connects (PG15 has no asynchronous lookup): use a numeric host (127.0.0.1, [::1]) or a
// unix socket directory (?host=/run/postgresql) where that matters.
#pragma once

#include "db/connector.h"

namespace ivr::db {

Result<std::unique_ptr<Connector>> open_postgresql(const ConnectorConfig &config,
                                                   const LoopContext &loop);

}  // namespace ivr::db
