// The status line of a message/sipfrag body (RFC 3420), as a REFER's NOTIFYs carry it
// (RFC 3515): "SIP/2.0 180 Ringing".
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace ivr::sip {

struct SipfragStatus {
  int status = 0;      // 100-699
  std::string phrase;  // may be empty
};

// Leading blank lines are skipped; "SIP/2.0" is matched case-insensitively; the phrase ends
// at the line end. Errc::parse (with the reason and the start of the body) otherwise.
Result<SipfragStatus> parse_sipfrag_status(std::string_view body);

}  // namespace ivr::sip
