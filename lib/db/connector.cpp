#include "db/connector.h"

namespace ivr::db {

const char *db_errc_name(DbErrc e) {
  switch (e) {
    case DbErrc::none:
      return "none";
    case DbErrc::timeout:
      return "timeout";
    case DbErrc::connect:
      return "connect";
    case DbErrc::query:
      return "query";
    case DbErrc::busy:
      return "busy";
    case DbErrc::cancelled:
      return "cancelled";
  }
  return "?";
}

}  // namespace ivr::db
