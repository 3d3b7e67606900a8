// Routes Sofia-SIP's own log output (su_log: nua, nta, tport and the default log) into our
// Logger at debug level. Sofia's logs are process-wide, so the most recently attached
// logger that is still attached receives them. Verbosity stays under Sofia's usual
// environment variables (NUA_DEBUG, NTA_DEBUG, TPORT_DEBUG, SOFIA_DEBUG, TPORT_LOG).
#pragma once

#include "common/log.h"

namespace ivr::sip::sofia {

void attach_log(const LoggerPtr &logger);
void detach_log(const LoggerPtr &logger);

}  // namespace ivr::sip::sofia
