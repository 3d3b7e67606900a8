// Rendering an http node into the request its call sends: templates evaluated per call,
// query and form values percent-encoded, JSON bodies built with escaping, SOAP envelopes
// with XML escaping of the inserted values.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "flow/program.h"
#include "net/http_client.h"

namespace ivr::flow {

using ExpressionEval = std::function<Result<rules::Value>(const rules::Expression &)>;

// Errors name the part that failed ("url: {{vars.x}}: ...", "body/json/customer: ...").
Result<net::HttpRequest> build_http_request(const Http &h, const ExpressionEval &eval);

// RFC 3986: unreserved characters (A-Z a-z 0-9 - . _ ~) as they are, every other byte %XX.
std::string percent_encode(std::string_view s);
// &, <, >, " and ' as entities.
std::string xml_escape(std::string_view s);

}  // namespace ivr::flow
