// Rendering {{expression}} templates and values as text.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "flow/program.h"
#include "rules/expr.h"

namespace ivr::flow {

// Integers without a fraction ("42"), others with up to 15 significant digits.
std::string number_text(double d);

// Renders each part; null renders as "", booleans as true/false. With `escape`, the text of
// each expression part goes through it (the literal text does not): XML-escaped values in a
// SOAP envelope, for example.
Result<std::string> render_template(
    const Template &t, const std::function<Result<rules::Value>(const rules::Expression &)> &eval,
    std::string (*escape)(std::string_view) = nullptr);

// Parses template text outside a flow document (the routing configuration's header
// templates, rendered for a route step): "{{" without "}}" and bad expressions are errors
// naming the column. The document compiler parses its own, to report document positions.
Result<Template> parse_template(std::string_view text, const rules::VariableResolver &resolver,
                                const rules::CompileOptions &options = {});

}  // namespace ivr::flow
