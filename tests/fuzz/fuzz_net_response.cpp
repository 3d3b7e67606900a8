// Fuzzes response mapping: any bytes as paths and as a body, through both the JSON side
// (JsonPath, JsonDocument, GraphQL errors) and the XML side (XPathExpr, XmlDocument, SOAP
// faults), and through ResponseMap in every format.
//
// Input layout: the bytes up to the first NUL are the spec, one path per line (at most 8
// lines, each used as a JSON path and as an XPath expression); the rest is the body. Without
// a NUL the whole input is the body and a fixed set of paths is used.
//
// Checks: errors have the documented shape ("column N: ..." inside the path, "body is ..."
// for bodies); evaluation of a compiled path never fails; wildcard paths give a string or
// null and "#" paths a number or null; the JSON text of an object or array reads back as
// the same text; GraphQL status and SOAP fault extraction stay within their limits.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/json_path.h"
#include "net/response_map.h"
#include "net/xml_path.h"

namespace {

using namespace ivr;
using namespace ivr::net;

[[noreturn]] void fail(const char *what, const std::string &detail) {
  std::fprintf(stderr, "fuzz_net_response: %s: %s\n", what, detail.c_str());
  std::abort();
}

const Namespaces &namespaces() {
  static const Namespaces ns = {{"soap", "http://schemas.xmlsoap.org/soap/envelope/"},
                                {"env", "http://www.w3.org/2003/05/soap-envelope"},
                                {"f", "http://service.supervisor.ws.five9.com/"}};
  return ns;
}

// "column N: reason" with 1 <= N <= length + 1.
void check_column_error(const std::string &message, size_t length, const char *what) {
  if (message.rfind("column ", 0) != 0) return;  // some errors have no column (prefixes)
  size_t n = std::strtoul(message.c_str() + 7, nullptr, 10);
  if (n < 1 || n > length + 1) fail(what, "column outside the text: " + message);
}

void check_body_error(const Error &e, const char *format) {
  if (e.message.rfind("body is ", 0) != 0) fail("body error without its prefix", e.message);
  if (e.code != Errc::parse && e.code != Errc::invalid_argument && e.code != Errc::no_memory)
    fail("unexpected body error code", format);
}

void json_side(const std::vector<std::string> &paths, std::string_view body) {
  Result<JsonDocument> doc = JsonDocument::parse(body);
  if (!doc) check_body_error(doc.error(), "json");
  for (const std::string &text : paths) {
    Result<JsonPath> path = JsonPath::parse(text);
    if (!path) {
      if (path.error().code != Errc::invalid_argument) fail("path error code", text);
      check_column_error(path.error().message, text.size(), "json path");
      continue;
    }
    if (!doc) continue;
    Result<Value> v = path->evaluate(*doc);
    if (!v) fail("evaluating a JSON path failed", text + ": " + v.error().message);
    (void)v->text();
    bool length = !path->steps().empty() && path->steps().back().kind == JsonPath::StepKind::length;
    if (path->has_wildcard()) {
      if (!v->is_null() && v->kind() != Value::Kind::string) fail("wildcard result kind", text);
    } else if (length && !v->is_null() && v->kind() != Value::Kind::number) {
      fail("length result kind", text);
    }
  }
  if (!doc) return;

  // An object or array as JSON text reads back as the same text.
  Result<Value> root = JsonPath::parse("")->evaluate(*doc);
  Result<Value> count = JsonPath::parse("/#")->evaluate(*doc);
  if (!root || !count) fail("evaluating the whole document failed", "");
  if (count->kind() == Value::Kind::number) {
    if (root->kind() != Value::Kind::string) fail("an object or array is not text", "");
    Result<JsonDocument> again = JsonDocument::parse(root->as_string());
    if (!again) fail("JSON text is not JSON", again.error().message);
    Result<Value> text = JsonPath::parse("")->evaluate(*again);
    if (!text || !(*text == *root)) fail("JSON text does not read back", root->as_string());
  }

  Result<GraphqlStatus> g = graphql_status(*doc);
  if (g) {
    if (g->errors.size() > GraphqlStatus::kMaxMessages || g->errors.size() > g->error_count)
      fail("graphql error counts", g->message());
    for (const std::string &e : g->errors)
      if (e.size() > GraphqlStatus::kMaxMessageBytes + 3) fail("graphql message too long", e);
  }
}

void xml_side(const std::vector<std::string> &paths, std::string_view body) {
  Result<XmlDocument> doc = XmlDocument::parse(body);
  if (!doc) check_body_error(doc.error(), "xml");
  for (const std::string &text : paths) {
    Result<XPathExpr> x = XPathExpr::compile(text, namespaces());
    if (!x) {
      if (x.error().message.empty()) fail("XPath error without a message", text);
      check_column_error(x.error().message, text.size(), "xpath");
      continue;
    }
    if (!doc) continue;
    Result<Value> v = x->evaluate(*doc);  // may fail (op limit, untaken prefix), never crash
    if (v) (void)v->text();
  }
  if (!doc) return;
  if (std::optional<SoapFault> f = find_soap_fault(*doc)) {
    if (f->version != 11 && f->version != 12) fail("SOAP version", std::to_string(f->version));
    if (f->reason.size() > 1003) fail("SOAP reason too long", f->reason.substr(0, 80));
  }
}

void map_side(const std::vector<std::string> &paths, std::string_view body) {
  std::vector<FieldMapping> fields;
  for (size_t i = 0; i < paths.size(); ++i) fields.push_back({"v" + std::to_string(i), paths[i]});
  for (BodyFormat format : {BodyFormat::json, BodyFormat::graphql, BodyFormat::xml}) {
    Result<ResponseMap> map = ResponseMap::compile(
        format, fields, format == BodyFormat::xml ? namespaces() : Namespaces{});
    if (!map) {
      if (map.error().message.rfind("variable \"v", 0) != 0)
        fail("map error does not name the variable", map.error().message);
      continue;
    }
    Result<MappedResponse> r = map->apply(body);
    if (r && r->values.size() != fields.size()) fail("one value per field", "");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view input(reinterpret_cast<const char *>(data), size);
  std::vector<std::string> paths;
  std::string_view body = input;
  size_t nul = input.find('\0');
  if (nul == std::string_view::npos) {
    paths = {"",
             "/0",
             "/-1",
             "/*",
             "/*/*/#",
             "/data/errors/0/message",
             "/#",
             "/*",
             "count(//*)",
             "string(/*/*[1])",
             "//soap:Body/*",
             "/env:Envelope//env:Text"};
  } else {
    std::string_view spec = input.substr(0, nul);
    body = input.substr(nul + 1);
    while (paths.size() < 8) {
      size_t eol = spec.find('\n');
      paths.emplace_back(spec.substr(0, eol));
      if (eol == std::string_view::npos) break;
      spec.remove_prefix(eol + 1);
    }
  }
  json_side(paths, body);
  xml_side(paths, body);
  map_side(paths, body);
  return 0;
}
