#include "flow/http_request.h"

#include <cstdio>

#include "common/text.h"
#include "flow/template.h"

namespace ivr::flow {

namespace {

Result<std::string> render_as(const Template &t, const ExpressionEval &eval,
                              const std::string &what,
                              std::string (*escape)(std::string_view) = nullptr) {
  auto r = render_template(t, eval, escape);
  if (!r.ok()) return Error{r.error().code, what + ": " + r.error().message};
  return r;
}

Status render_json(const JsonTemplate &t, const ExpressionEval &eval, const std::string &where,
                   std::string &out) {
  switch (t.kind) {
    case JsonTemplate::Kind::null:
      out += "null";
      return {};
    case JsonTemplate::Kind::boolean:
      out += t.b ? "true" : "false";
      return {};
    case JsonTemplate::Kind::number:
      out += number_text(t.n);
      return {};
    case JsonTemplate::Kind::string: {
      auto s = render_as(t.str, eval, where);
      if (!s.ok()) return s.error();
      out += text::json_quote(*s);
      return {};
    }
    case JsonTemplate::Kind::array: {
      out += '[';
      for (size_t i = 0; i < t.items.size(); ++i) {
        if (i) out += ',';
        if (auto st = render_json(t.items[i], eval, where + "/" + std::to_string(i), out); !st.ok())
          return st;
      }
      out += ']';
      return {};
    }
    case JsonTemplate::Kind::object: {
      out += '{';
      for (size_t i = 0; i < t.members.size(); ++i) {
        if (i) out += ',';
        out += text::json_quote(t.members[i].first);
        out += ':';
        if (auto st = render_json(t.members[i].second, eval, where + "/" + t.members[i].first, out);
            !st.ok())
          return st;
      }
      out += '}';
      return {};
    }
  }
  return {};
}

// "a=1&b=2" from name/template pairs, both sides percent-encoded.
Result<std::string> encode_pairs(const std::vector<std::pair<std::string, Template>> &pairs,
                                 const ExpressionEval &eval, const std::string &what) {
  std::string out;
  for (const auto &[name, value] : pairs) {
    auto v = render_as(value, eval, what + "/" + name);
    if (!v.ok()) return v.error();
    if (!out.empty()) out += '&';
    out += percent_encode(name);
    out += '=';
    out += percent_encode(*v);
  }
  return out;
}

bool has_header(const net::Headers &headers, std::string_view name) {
  for (const auto &[k, v] : headers)
    if (text::iequals(k, name)) return true;
  return false;
}

void default_header(net::Headers &headers, std::string name, std::string value) {
  if (!has_header(headers, name)) headers.emplace_back(std::move(name), std::move(value));
}

}  // namespace

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Result<net::HttpRequest> build_http_request(const Http &h, const ExpressionEval &eval) {
  net::HttpRequest req;
  req.method = h.method;
  req.timeout_ms = h.timeout_ms;
  req.connect_timeout_ms = std::min<uint32_t>(h.timeout_ms, 2000);
  auto url = render_as(h.url, eval, "url");
  if (!url.ok()) return url.error();
  req.url = std::move(*url);
  // The scheme is literal in the document; a template must not turn it into another one.
  if (req.url.rfind("http://", 0) != 0 && req.url.rfind("https://", 0) != 0)
    return Error{Errc::invalid_argument, "url: \"" + req.url + "\" is not an http(s) URL"};
  if (!h.query.empty()) {
    auto q = encode_pairs(h.query, eval, "query");
    if (!q.ok()) return q.error();
    size_t hash = req.url.find('#');
    std::string fragment;
    if (hash != std::string::npos) {
      fragment = req.url.substr(hash);
      req.url.resize(hash);
    }
    req.url += req.url.find('?') == std::string::npos ? '?' : '&';
    req.url += *q;
    req.url += fragment;
  }
  for (const auto &[name, value] : h.headers) {
    auto v = render_as(value, eval, "headers/" + name);
    if (!v.ok()) return v.error();
    if (v->find_first_of("\r\n") != std::string::npos)
      return Error{Errc::invalid_argument,
                   "headers/" + name + ": a header value cannot hold a line break"};
    req.headers.emplace_back(name, std::move(*v));
  }
  switch (h.body) {
    case Http::Body::none:
      break;
    case Http::Body::json: {
      if (auto st = render_json(h.json, eval, "body/json", req.body); !st.ok()) return st.error();
      default_header(req.headers, "Content-Type", "application/json");
      break;
    }
    case Http::Body::form: {
      auto f = encode_pairs(h.form, eval, "body/form");
      if (!f.ok()) return f.error();
      req.body = std::move(*f);
      default_header(req.headers, "Content-Type", "application/x-www-form-urlencoded");
      break;
    }
    case Http::Body::text: {
      auto t = render_as(h.text, eval, "body/text");
      if (!t.ok()) return t.error();
      req.body = std::move(*t);
      default_header(req.headers, "Content-Type", h.content_type);
      break;
    }
    case Http::Body::graphql: {
      req.body = "{\"query\":" + text::json_quote(h.graphql_query);
      if (!h.graphql_operation.empty())
        req.body += ",\"operationName\":" + text::json_quote(h.graphql_operation);
      req.body += ",\"variables\":";
      if (auto st = render_json(h.json, eval, "graphql/variables", req.body); !st.ok())
        return st.error();
      req.body += '}';
      default_header(req.headers, "Content-Type", "application/json");
      break;
    }
    case Http::Body::soap: {
      auto t = render_as(h.text, eval, "soap/envelope", xml_escape);
      if (!t.ok()) return t.error();
      req.body = std::move(*t);
      if (h.soap_version == 12) {
        std::string ct = "application/soap+xml; charset=utf-8";
        if (!h.soap_action.empty()) ct += "; action=\"" + h.soap_action + "\"";
        default_header(req.headers, "Content-Type", ct);
      } else {
        default_header(req.headers, "Content-Type", "text/xml; charset=utf-8");
        default_header(req.headers, "SOAPAction", "\"" + h.soap_action + "\"");
      }
      break;
    }
  }
  if (h.body == Http::Body::graphql || h.body == Http::Body::json)
    default_header(req.headers, "Accept", "application/json");
  return req;
}

}  // namespace ivr::flow
