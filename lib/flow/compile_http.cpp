// Compiling an `http` node: the request (method, URL, query, headers, one body form), its
// policies (timeout, retries, cache, accepted statuses, auth profile) and its exits.
#include "flow/document_compiler.h"

namespace ivr::flow::detail {

namespace {

constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};

// RFC 7230 token characters: what a header name may hold.
bool valid_header_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

}  // namespace

std::vector<std::pair<std::string, Template>> Compiler::template_map(const Value &obj,
                                                                     const std::string &ptr,
                                                                     std::string_view key,
                                                                     bool header_names) {
  std::vector<std::pair<std::string, Template>> out;
  const Value *map = field(obj, ptr, key, Kind::object);
  if (!map) return out;
  std::string mptr = json::pointer_append(ptr, key);
  for (const json::Member &m : map->members) {
    std::string eptr = json::pointer_append(mptr, m.key);
    if (header_names && !valid_header_name(m.key)) {
      problem_key(m, eptr, "not a valid header name");
      continue;
    }
    if (!m.value.is(Kind::string)) {
      problem(m.value, eptr, "must be a string (a template)");
      continue;
    }
    if (auto t = template_of(m.value, eptr)) out.emplace_back(m.key, std::move(*t));
  }
  return out;
}

std::optional<JsonTemplate> Compiler::json_template(const Value &v, const std::string &ptr,
                                                    int depth) {
  if (depth > 32) {
    problem(v, ptr, "nested more than 32 levels");
    return std::nullopt;
  }
  JsonTemplate t;
  switch (v.kind) {
    case Kind::null:
      t.kind = JsonTemplate::Kind::null;
      break;
    case Kind::boolean:
      t.kind = JsonTemplate::Kind::boolean;
      t.b = v.boolean;
      break;
    case Kind::number:
      t.kind = JsonTemplate::Kind::number;
      t.n = v.number;
      break;
    case Kind::string: {
      t.kind = JsonTemplate::Kind::string;
      auto s = template_of(v, ptr);
      if (!s) return std::nullopt;
      t.str = std::move(*s);
      break;
    }
    case Kind::array:
      t.kind = JsonTemplate::Kind::array;
      for (size_t i = 0; i < v.items.size(); ++i) {
        auto item = json_template(v.items[i], json::pointer_append(ptr, i), depth + 1);
        if (!item) return std::nullopt;
        t.items.push_back(std::move(*item));
      }
      break;
    case Kind::object:
      t.kind = JsonTemplate::Kind::object;
      for (const json::Member &m : v.members) {
        auto member = json_template(m.value, json::pointer_append(ptr, m.key), depth + 1);
        if (!member) return std::nullopt;
        t.members.emplace_back(m.key, std::move(*member));
      }
      break;
  }
  return t;
}

void Compiler::http_body(const Value &v, const std::string &ptr, Http &h) {
  const Value *body = v.find("body");
  const Value *graphql = v.find("graphql");
  const Value *soap = v.find("soap");
  if ((body != nullptr) + (graphql != nullptr) + (soap != nullptr) > 1) {
    problem(v, ptr, "an http node has at most one of \"body\", \"graphql\" and \"soap\"");
    return;
  }
  if (body) {
    std::string bptr = ptr + "/body";
    if (!body->is(Kind::object) || body->members.size() != 1) {
      problem(*body, bptr,
              "body is {\"json\": value}, {\"form\": {fields}} or {\"text\": \"...\", "
              "\"content_type\": \"...\"}");
      return;
    }
    if (const Value *j = body->find("json")) {
      h.body = Http::Body::json;
      if (auto t = json_template(*j, bptr + "/json", 0)) h.json = std::move(*t);
    } else if (body->find("form")) {
      h.body = Http::Body::form;
      h.form = template_map(*body, bptr, "form", false);
    } else if (body->find("text")) {
      h.body = Http::Body::text;
      if (auto t = template_field(*body, bptr, "text", true)) h.text = std::move(*t);
    } else {
      problem_key(body->members[0], json::pointer_append(bptr, body->members[0].key),
                  "unknown body kind " + quoted(body->members[0].key) + " (json, form or text)");
    }
    return;
  }
  if (graphql) {
    std::string gptr = ptr + "/graphql";
    if (!graphql->is(Kind::object)) {
      problem(*graphql, gptr, "graphql is {\"query\": \"...\", \"variables\": {...}}");
      return;
    }
    check_fields(*graphql, gptr, {"query", "variables", "operation_name"});
    h.body = Http::Body::graphql;
    if (auto *q = string_field(*graphql, gptr, "query", true)) h.graphql_query = *q;
    if (auto *op = string_field(*graphql, gptr, "operation_name", false)) h.graphql_operation = *op;
    if (const Value *vars = field(*graphql, gptr, "variables", Kind::object)) {
      if (auto t = json_template(*vars, gptr + "/variables", 0)) h.json = std::move(*t);
    } else {
      h.json.kind = JsonTemplate::Kind::object;
    }
    return;
  }
  if (soap) {
    std::string sptr = ptr + "/soap";
    if (!soap->is(Kind::object)) {
      problem(*soap, sptr, "soap is {\"action\": \"...\", \"envelope\": \"<soap:Envelope ...>\"}");
      return;
    }
    check_fields(*soap, sptr, {"action", "envelope", "version"});
    h.body = Http::Body::soap;
    if (auto *a = string_field(*soap, sptr, "action", false)) h.soap_action = *a;
    if (auto t = template_field(*soap, sptr, "envelope", true)) h.text = std::move(*t);
    if (auto *ver = string_field(*soap, sptr, "version", false)) {
      if (*ver == "1.1")
        h.soap_version = 11;
      else if (*ver == "1.2")
        h.soap_version = 12;
      else
        problem(*soap->find("version"), sptr + "/version", "SOAP version is \"1.1\" or \"1.2\"");
    }
  }
}

void Compiler::http_accept_status(const Value &v, const std::string &ptr, Http &h) {
  const Value *list = field(v, ptr, "accept_status", Kind::array);
  if (!list) return;
  std::string lptr = ptr + "/accept_status";
  h.accept_status.clear();
  for (size_t i = 0; i < list->items.size(); ++i) {
    const Value &item = list->items[i];
    std::string iptr = json::pointer_append(lptr, i);
    if (item.is(Kind::number) && item.integral && item.number >= 100 && item.number <= 599) {
      int code = static_cast<int>(item.number);
      h.accept_status.emplace_back(code, code);
    } else if (item.is(Kind::string) && item.string.size() == 3 && item.string[0] >= '1' &&
               item.string[0] <= '5' && item.string.substr(1) == "xx") {
      int base = (item.string[0] - '0') * 100;
      h.accept_status.emplace_back(base, base + 99);
    } else {
      problem(item, iptr, "a status is a number from 100 to 599 or a class such as \"2xx\"");
    }
  }
  if (list->items.empty()) problem(*list, lptr, "accept_status needs at least one status");
}

void Compiler::http_response_map(const Value &v, const std::string &ptr, Http &h) {
  net::BodyFormat format = net::BodyFormat::json;
  if (h.body == Http::Body::graphql) format = net::BodyFormat::graphql;
  if (h.body == Http::Body::soap) format = net::BodyFormat::xml;
  if (auto *r = string_field(v, ptr, "response", false)) {
    if (h.body == Http::Body::graphql || h.body == Http::Body::soap)
      problem(*v.find("response"), ptr + "/response",
              "GraphQL answers are JSON and SOAP answers XML: \"response\" is not needed");
    else if (*r == "xml")
      format = net::BodyFormat::xml;
    else if (*r != "json")
      problem(*v.find("response"), ptr + "/response", "response is \"json\" or \"xml\"");
  }
  net::Namespaces namespaces;
  if (const Value *ns = field(v, ptr, "namespaces", Kind::object)) {
    for (const json::Member &m : ns->members) {
      if (!m.value.is(Kind::string))
        problem(m.value, json::pointer_append(ptr + "/namespaces", m.key),
                "a namespace is a URI string");
      else
        namespaces.emplace_back(m.key, m.value.string);
    }
    if (format != net::BodyFormat::xml)
      problem(*ns, ptr + "/namespaces", "namespaces go with XML answers (\"response\": \"xml\")");
  }
  std::vector<net::FieldMapping> fields;
  bool bad = false;
  if (const Value *map = field(v, ptr, "map", Kind::object)) {
    for (const json::Member &m : map->members) {
      std::string mptr = json::pointer_append(ptr + "/map", m.key);
      auto target = map_variable(m, mptr);
      if (!target) {
        bad = true;
        continue;
      }
      const std::string &var = *target;
      if (!m.value.is(Kind::string)) {
        problem(m.value, mptr,
                format == net::BodyFormat::xml
                    ? "an XPath expression (a string)"
                    : "a JSON path (a string such as \"/customer/tier\")");
        bad = true;
        continue;
      }
      // Each path alone, so that a problem points at its own entry.
      auto one = net::ResponseMap::compile(format, {{var, m.value.string}}, namespaces);
      if (!one.ok()) {
        problem(m.value, mptr, one.error().message);
        bad = true;
        continue;
      }
      fields.push_back({var, m.value.string});
    }
  }
  if (bad || (fields.empty() && format == net::BodyFormat::json)) return;
  auto compiled = net::ResponseMap::compile(format, fields, namespaces);
  if (!compiled.ok()) {
    problem(v, ptr, compiled.error().message);
    return;
  }
  h.response = std::move(compiled).value();
}

Http Compiler::compile_http(size_t g, const Value &v, const std::string &ptr) {
  Http h;
  if (auto *m = string_field(v, ptr, "method", false)) {
    if (std::find(std::begin(kMethods), std::end(kMethods), *m) == std::end(kMethods))
      problem(*v.find("method"), ptr + "/method",
              "method is one of GET, POST, PUT, PATCH, DELETE, HEAD (upper case)");
    else
      h.method = *m;
  }
  if (const Value *u = field(v, ptr, "url", Kind::string, true)) {
    if (auto t = template_of(*u, ptr + "/url")) {
      // A URL must name its scheme up front; only the part after it may be templated.
      std::string_view src = t->source;
      size_t scheme = src.rfind("https://", 0) == 0 ? 8 : src.rfind("http://", 0) == 0 ? 7 : 0;
      if (scheme == 0 || src.find("{{") < scheme)
        problem(*u, ptr + "/url", "url must start with http:// or https:// (not a template)");
      h.url = std::move(*t);
    }
  }
  h.query = template_map(v, ptr, "query", false);
  h.headers = template_map(v, ptr, "headers", true);
  http_body(v, ptr, h);
  if (h.body != Http::Body::none && h.method == "GET" && !v.find("method")) h.method = "POST";
  if (h.body != Http::Body::none && (h.method == "GET" || h.method == "HEAD"))
    problem(*v.find("method"), ptr + "/method", h.method + " requests carry no body");
  if (h.body == Http::Body::text) {
    const Value *body = v.find("body");
    if (auto *ct = string_field(*body, ptr + "/body", "content_type", false))
      h.content_type = *ct;
    else
      h.content_type = "text/plain; charset=utf-8";
  }
  if (auto *a = string_field(v, ptr, "auth", false)) {
    if (!valid_name(*a))
      problem(*v.find("auth"), ptr + "/auth",
              "auth names an auth profile of the host: an identifier (letters, digits, '_')");
    h.auth = *a;
  }
  h.timeout_ms = static_cast<uint32_t>(int_field(v, ptr, "timeout_ms", 100, 60000, 3000));
  h.retries = static_cast<unsigned>(int_field(v, ptr, "retries", 0, 5, 0));
  h.retry_non_idempotent = bool_field(v, ptr, "retry_non_idempotent", false);
  if (const Value *c = field(v, ptr, "cache", Kind::object)) {
    std::string cptr = ptr + "/cache";
    check_fields(*c, cptr, {"ttl_s", "stale_if_error_s"});
    if (!c->find("ttl_s")) problem(*c, cptr, "missing required field \"ttl_s\"");
    h.cache_ttl_ms = static_cast<uint32_t>(int_field(*c, cptr, "ttl_s", 1, 86400, 60)) * 1000;
    h.stale_if_error_ms =
        static_cast<uint32_t>(int_field(*c, cptr, "stale_if_error_s", 0, 86400, 0)) * 1000;
    if (h.method != "GET" && h.body != Http::Body::graphql && h.body != Http::Body::soap)
      problem(*c, cptr, "only GET, GraphQL and SOAP lookups are cached");
  }
  http_accept_status(v, ptr, h);
  http_response_map(v, ptr, h);
  h.hold = prompt_field(v, ptr, "hold");
  h.on_timeout = exit_field(g, v, ptr, "on_timeout");
  return h;
}

}  // namespace ivr::flow::detail
