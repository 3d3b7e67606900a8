// SQLite on worker threads (SQLite's API blocks): each worker owns one connection; answers
// are posted back to the loop. See docs/db.md, "SQLite".
#pragma once

#include "db/connector.h"

namespace ivr::db {

Result<std::unique_ptr<Connector>> open_sqlite(const ConnectorConfig &config,
                                               const LoopContext &loop);

}  // namespace ivr::db
