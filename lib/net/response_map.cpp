#include "net/response_map.h"

#include <charconv>
#include <cmath>
#include <variant>

#include "net/json_path.h"
#include "net/xml_path.h"

namespace ivr::net {

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::boolean;
  v.boolean_ = b;
  return v;
}

Value Value::number(double d, std::string text) {
  Value v;
  v.kind_ = Kind::number;
  v.number_ = d;
  v.text_ = std::move(text);
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::string;
  v.text_ = std::move(s);
  return v;
}

namespace {

std::string format_number(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == 0) return "0";  // also -0
  char buf[64];
  // Integers up to 2^53 print as integers, not as 1e+15.
  if (std::fabs(d) < 9007199254740992.0 && d == std::trunc(d)) {
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(d));
    return std::string(buf, r.ptr);
  }
  auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest form that reads back the same
  return std::string(buf, r.ptr);
}

}  // namespace

std::string Value::text() const {
  switch (kind_) {
    case Kind::null:
      return {};
    case Kind::boolean:
      return boolean_ ? "true" : "false";
    case Kind::number:
      return text_.empty() ? format_number(number_) : text_;
    case Kind::string:
      return text_;
  }
  return {};
}

bool operator==(const Value &a, const Value &b) {
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case Value::Kind::null:
      return true;
    case Value::Kind::boolean:
      return a.boolean_ == b.boolean_;
    case Value::Kind::number:
      return a.number_ == b.number_ || (std::isnan(a.number_) && std::isnan(b.number_));
    case Value::Kind::string:
      return a.text_ == b.text_;
  }
  return false;
}

const char *value_kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::null:
      return "null";
    case Value::Kind::boolean:
      return "boolean";
    case Value::Kind::number:
      return "number";
    case Value::Kind::string:
      return "string";
  }
  return "?";
}

// --- ResponseMap ------------------------------------------------------------------------

struct ResponseMap::Impl {
  BodyFormat format = BodyFormat::json;
  std::vector<std::string> variables;
  std::vector<std::variant<JsonPath, XPathExpr>> paths;
};

Result<ResponseMap> ResponseMap::compile(BodyFormat format, const std::vector<FieldMapping> &fields,
                                         const Namespaces &namespaces) {
  try {
    if (format != BodyFormat::xml && !namespaces.empty())
      return Error{Errc::invalid_argument, "namespaces only apply to XML responses"};
    auto impl = std::make_shared<Impl>();
    impl->format = format;
    for (const FieldMapping &f : fields) {
      auto fail = [&](const std::string &reason) -> Result<ResponseMap> {
        return Error{Errc::invalid_argument, "variable \"" + f.variable + "\": " + reason};
      };
      if (f.variable.empty()) return fail("the variable name is empty");
      if (format == BodyFormat::xml) {
        Result<XPathExpr> x = XPathExpr::compile(f.path, namespaces);
        if (!x) return fail(x.error().message);
        impl->paths.emplace_back(std::move(x).value());
      } else {
        Result<JsonPath> p = JsonPath::parse(f.path);
        if (!p) return fail(p.error().message);
        impl->paths.emplace_back(std::move(p).value());
      }
      impl->variables.push_back(f.variable);
    }
    ResponseMap map;
    map.impl_ = std::move(impl);
    return map;
  } catch (const std::exception &e) {
    return Error{Errc::no_memory, std::string("compiling a response map: ") + e.what()};
  }
}

BodyFormat ResponseMap::format() const {
  return impl_->format;
}
size_t ResponseMap::size() const {
  return impl_->variables.size();
}

Result<MappedResponse> ResponseMap::apply(std::string_view body) const {
  try {
    MappedResponse out;
    out.values.reserve(impl_->variables.size());
    auto assign = [&](size_t i, Result<Value> v) -> Status {
      if (!v)
        return Error{v.error().code,
                     "variable \"" + impl_->variables[i] + "\": " + v.error().message};
      out.values.push_back(Assignment{impl_->variables[i], std::move(v).value()});
      return Status::success();
    };
    if (impl_->format == BodyFormat::xml) {
      Result<XmlDocument> doc = XmlDocument::parse(body);
      if (!doc) return doc.error();
      for (size_t i = 0; i < impl_->paths.size(); ++i)
        if (Status s = assign(i, std::get<XPathExpr>(impl_->paths[i]).evaluate(*doc)); !s)
          return s.error();
      if (std::optional<SoapFault> f = find_soap_fault(*doc)) {
        std::string code = f->code;
        if (!f->subcode.empty()) code += " " + f->subcode;
        out.fault = ServiceFault{code.empty() ? "soap" : code, f->reason};
      }
      return out;
    }
    Result<JsonDocument> doc = JsonDocument::parse(body);
    if (!doc) return doc.error();
    for (size_t i = 0; i < impl_->paths.size(); ++i)
      if (Status s = assign(i, std::get<JsonPath>(impl_->paths[i]).evaluate(*doc)); !s)
        return s.error();
    if (impl_->format == BodyFormat::graphql) {
      Result<GraphqlStatus> g = graphql_status(*doc);
      if (!g) return g.error();
      if (g->error_count > 0)
        out.fault = ServiceFault{"graphql", g->message()};
      else if (!g->has_data || g->data_null)
        out.fault = ServiceFault{"graphql", "the response has neither data nor errors"};
    }
    return out;
  } catch (const std::exception &e) {
    return Error{Errc::no_memory, std::string("applying a response map: ") + e.what()};
  }
}

}  // namespace ivr::net
