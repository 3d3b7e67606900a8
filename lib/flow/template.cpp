#include "flow/template.h"

#include <cmath>
#include <cstdio>

namespace ivr::flow {

std::string number_text(double d) {
  char buf[40];
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 1e15)
    snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d));
  else
    snprintf(buf, sizeof buf, "%.15g", d);
  return buf;
}

Result<std::string> render_template(
    const Template &t, const std::function<Result<rules::Value>(const rules::Expression &)> &eval,
    std::string (*escape)(std::string_view)) {
  std::string out, text;
  for (const Template::Part &p : t.parts) {
    if (!p.expr) {
      out += p.text;
      continue;
    }
    auto v = eval(*p.expr);
    if (!v.ok()) return Error{v.error().code, "{{" + p.expr->source() + "}}: " + v.error().message};
    text.clear();
    switch (v->type) {
      case rules::Type::null:
        break;
      case rules::Type::boolean:
        text = v->b ? "true" : "false";
        break;
      case rules::Type::number:
        text = number_text(v->n);
        break;
      case rules::Type::string:
        text.assign(v->s);
        break;
    }
    out += escape ? escape(text) : text;
  }
  return out;
}

Result<Template> parse_template(std::string_view text, const rules::VariableResolver &resolver,
                                const rules::CompileOptions &options) {
  Template t;
  t.source = std::string(text);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      t.parts.push_back({std::string(text.substr(pos)), std::nullopt});
      break;
    }
    if (open > pos) t.parts.push_back({std::string(text.substr(pos, open - pos)), std::nullopt});
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos)
      return Error{Errc::parse, "template: \"{{\" at column " + std::to_string(open + 1) +
                                    " is not closed by \"}}\""};
    auto e = rules::compile(text.substr(open + 2, close - open - 2), resolver, options);
    if (!e.ok())
      return Error{Errc::parse, "template: {{" +
                                    std::string(text.substr(open + 2, close - open - 2)) +
                                    "}}: " + e.error().message};
    t.parts.push_back({"", std::move(e).value()});
    pos = close + 2;
  }
  return t;
}

}  // namespace ivr::flow
