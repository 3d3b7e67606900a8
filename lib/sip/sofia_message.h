// Copies data out of Sofia-SIP messages into plain C++ values. Private to lib/sip: callers
// run on the SIP thread inside the NUA callback, where the message is still alive.
#pragma once

#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/url.h>

#include <string>
#include <string_view>
#include <vector>

#include "sip/sip_stack.h"

namespace ivr::sip::sofia {

// The value part of one header as Sofia encodes it (display name, URI and parameters
// included). Empty for a null header.
std::string header_value(const msg_header_t *header);

template <typename H>
std::string header_value(const H *header) {
  return header_value(reinterpret_cast<const msg_header_t *>(header));
}

// Every header of the message in wire order (request line, separator and body excluded).
// A comma-separated line comes out as one entry per element; compact names are expanded.
std::vector<SipHeader> all_headers(msg_t *msg);

std::string url_string(const url_t *url);

// The user part of a sip:/sips: URI; the number of a tel: URI.
std::string url_user(const url_t *url);

// "ip:port" ("[v6]:port") of the peer the message came from; empty when unknown.
std::string source_address(msg_t *msg);

// The body when the Content-Type is application/sdp and the body is not empty.
bool sdp_body(const sip_t *sip, std::string &out);

// The body as bytes (empty when there is none).
std::string_view body(const sip_t *sip);

// "type/subtype" of the Content-Type, or empty.
std::string content_type(const sip_t *sip);

// Text made safe for a quoted-string (Reason text, Warning text): no control characters,
// quotes and backslashes escaped, bounded length.
std::string quoted_text(std::string_view text);

// A Reason header value (RFC 3326): protocol "SIP" or "Q.850".
std::string reason_header(const char *protocol, int cause, std::string_view text);

}  // namespace ivr::sip::sofia
