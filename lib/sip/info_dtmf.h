// DTMF carried in SIP INFO bodies: application/dtmf-relay ("Signal=5\r\nDuration=160")
// and application/dtmf ("5").
#pragma once

#include <string_view>

#include "common/result.h"
#include "media/dtmf.h"

namespace ivr::sip {

// content_type is matched case-insensitively, parameters ignored. Errors:
// Errc::unsupported for other content types, Errc::parse for a bad body (with the reason).
// Duration defaults to 250 ms when absent; source is DtmfSource::info.
Result<media::DtmfDigit> parse_info_dtmf(std::string_view content_type, std::string_view body);

}  // namespace ivr::sip
