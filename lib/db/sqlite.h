// SQLite on worker threads (SQLite's API blocks): each worker owns one connection; answers
// are posted back to the loop. See docs/db.md, "SQLite".
#pragma once

#include "db/connector.h"

namespace ivr::db {

// "sqlite:///abs/path.db" -> "/abs/path.db", "sqlite:rel.db" -> "rel.db", "sqlite::memory:".
Result<std::string> sqlite_path(const std::string &url);

Result<std::unique_ptr<Connector>> open_sqlite(const ConnectorConfig &config,
                                               const LoopContext &loop);

}  // namespace ivr::db
