#include "net/xml_path.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlversion.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include <cstring>

namespace ivr::net {

namespace {

void init_libxml() {
  // xmlInitParser sets up libxml2's global state; doing it once, before any thread uses
  // the library, is what its threading notes ask for.
  static const bool initialised = [] {
    xmlInitParser();
    return true;
  }();
  (void)initialised;
}

// libxml2 2.12 made the error argument const; take whichever this version declares.
template <typename F>
struct SecondArg;
template <typename R, typename A, typename B>
struct SecondArg<R (*)(A, B)> {
  using type = B;
};
using XmlErrorArg = SecondArg<xmlStructuredErrorFunc>::type;

// What libxml2 reported during one call.
struct XmlErrors {
  std::string message;  // the first fatal error, else the first error
  int line = 0;
  int column = 0;
  bool has = false;
  bool has_fatal = false;
  bool expression_error = false;  // an XPath compile error: column is in the expression
  bool entity_declared = false;
  int entity_line = 0;
  xmlParserCtxtPtr parser = nullptr;

  void record(XmlErrorArg e) {
    if (!e || e->level < XML_ERR_ERROR) return;  // warnings do not fail anything
    bool fatal = e->level == XML_ERR_FATAL;
    if (has && (has_fatal || !fatal)) return;
    has = true;
    has_fatal = fatal;
    message = e->message ? e->message : "unknown libxml2 error";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
      message.pop_back();
    line = e->line;
    column = e->domain == XML_FROM_XPATH ? e->int1 + 1 : e->int2;
    expression_error = e->domain == XML_FROM_XPATH && e->str1 != nullptr;
  }
};

thread_local XmlErrors *t_errors = nullptr;

void on_structured_error(void *user, XmlErrorArg e) {
  if (user) static_cast<XmlErrors *>(user)->record(e);
}
void on_generic_error(void *, const char *, ...) {}

// Routes this thread's libxml2 messages into `errors` for the scope, then restores what
// was there (the host may use libxml2 too).
class ErrorCapture {
 public:
  explicit ErrorCapture(XmlErrors &errors)
      : structured_(xmlStructuredError),
        structured_ctx_(xmlStructuredErrorContext),
        generic_(xmlGenericError),
        generic_ctx_(xmlGenericErrorContext),
        outer_(t_errors) {
    xmlSetStructuredErrorFunc(&errors, on_structured_error);
    xmlSetGenericErrorFunc(&errors, on_generic_error);
    t_errors = &errors;
  }
  ~ErrorCapture() {
    xmlSetStructuredErrorFunc(structured_ctx_, structured_);
    xmlSetGenericErrorFunc(generic_ctx_, generic_);
    t_errors = outer_;
  }
  ErrorCapture(const ErrorCapture &) = delete;
  ErrorCapture &operator=(const ErrorCapture &) = delete;

 private:
  xmlStructuredErrorFunc structured_;
  void *structured_ctx_;
  xmlGenericErrorFunc generic_;
  void *generic_ctx_;
  XmlErrors *outer_;
};

// SAX hooks that refuse entity declarations: a response has no business declaring
// entities, and refusing them stops XXE and entity expansion at the declaration.
void refuse_entity(XmlErrors *errors) {
  if (!errors || !errors->parser) return;
  if (!errors->entity_declared) {
    errors->entity_declared = true;
    errors->entity_line = errors->parser->input ? errors->parser->input->line : 0;
  }
  xmlStopParser(errors->parser);
}
void on_entity_decl(void *, const xmlChar *, int, const xmlChar *, const xmlChar *, xmlChar *) {
  refuse_entity(t_errors);
}
void on_unparsed_entity_decl(void *, const xmlChar *, const xmlChar *, const xmlChar *,
                             const xmlChar *) {
  refuse_entity(t_errors);
}

struct ParserCtxtFree {
  void operator()(xmlParserCtxt *c) const { xmlFreeParserCtxt(c); }
};
struct XPathContextFree {
  void operator()(xmlXPathContext *c) const { xmlXPathFreeContext(c); }
};
struct XPathObjectFree {
  void operator()(xmlXPathObject *o) const { xmlXPathFreeObject(o); }
};
struct XmlCharFree {
  void operator()(xmlChar *s) const { xmlFree(s); }
};
using XmlString = std::unique_ptr<xmlChar, XmlCharFree>;

std::string to_string(const XmlString &s) {
  return s ? std::string(reinterpret_cast<const char *>(s.get())) : std::string();
}

const xmlChar *xml_chars(const std::string &s) {
  return reinterpret_cast<const xmlChar *>(s.c_str());
}

}  // namespace

void XmlDocument::Free::operator()(_xmlDoc *doc) const {
  xmlFreeDoc(doc);
}

Result<XmlDocument> XmlDocument::parse(std::string_view body) {
  init_libxml();
  if (body.size() > kMaxBodyBytes)
    return Error{Errc::invalid_argument, "body is " + std::to_string(body.size()) +
                                             " bytes, more than the limit of " +
                                             std::to_string(kMaxBodyBytes)};
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return Error{Errc::parse, "body is not well-formed XML: it is empty"};

  XmlErrors errors;
  ErrorCapture capture(errors);
  std::unique_ptr<xmlParserCtxt, ParserCtxtFree> ctxt(
      xmlCreateMemoryParserCtxt(body.data(), static_cast<int>(body.size())));
  if (!ctxt || !ctxt->sax) return Error{Errc::no_memory, "cannot create an XML parser"};
  errors.parser = ctxt.get();

  // No network, no DTD loading, no entity substitution (XML_PARSE_NOENT is deliberately
  // absent); libxml2 2.13+ also has an explicit XXE switch.
  int options = XML_PARSE_NONET;
#if LIBXML_VERSION >= 21300
  options |= XML_PARSE_NO_XXE;
#endif
  xmlCtxtUseOptions(ctxt.get(), options);
  ctxt->sax->entityDecl = on_entity_decl;
  ctxt->sax->unparsedEntityDecl = on_unparsed_entity_decl;
  ctxt->sax->externalSubset = nullptr;  // never read an external DTD

  int rc = xmlParseDocument(ctxt.get());
  XmlDocument out;
  out.doc_.reset(ctxt->myDoc);
  ctxt->myDoc = nullptr;
  if (errors.entity_declared)
    return Error{Errc::parse, "body is refused: line " + std::to_string(errors.entity_line) +
                                  ": it declares an XML entity (entity declarations are not "
                                  "allowed in responses)"};
  if (rc != 0 || !ctxt->wellFormed || !out.doc_ || !xmlDocGetRootElement(out.doc_.get())) {
    std::string msg = "body is not well-formed XML: ";
    if (errors.has) {
      msg += "line " + std::to_string(errors.line);
      if (errors.column > 0) msg += ", column " + std::to_string(errors.column);
      msg += ": " + errors.message;
    } else {
      msg += "no root element";
    }
    return Error{Errc::parse, std::move(msg)};
  }
  return out;
}

// --- XPath ------------------------------------------------------------------------------

namespace {

bool is_ncname(const std::string &s) {
  if (s.empty()) return false;
  XmlString probe(xmlStrdup(xml_chars(s)));
  return xmlValidateNCName(probe.get(), 0) == 0;
}

std::string describe(const XmlErrors &errors, const char *fallback) {
  std::string msg;
  if (errors.has && errors.expression_error) msg = "column " + std::to_string(errors.column) + ": ";
  msg += errors.has ? errors.message : fallback;
  return msg;
}

Result<Value> run(_xmlXPathCompExpr *compiled, const Namespaces &namespaces, xmlDocPtr doc,
                  XmlErrors &errors) {
  std::unique_ptr<xmlXPathContext, XPathContextFree> ctx(xmlXPathNewContext(doc));
  if (!ctx) return Error{Errc::no_memory, "cannot create an XPath context"};
  // No ctx->error: libxml2 then leaves the message out, while the thread's structured
  // handler (ErrorCapture) receives it complete, with the column.
  ctx->node = reinterpret_cast<xmlNodePtr>(doc);
  ctx->opLimit = kMaxXPathOperations;
  for (const auto &[prefix, uri] : namespaces)
    if (xmlXPathRegisterNs(ctx.get(), xml_chars(prefix), xml_chars(uri)) != 0)
      return Error{Errc::no_memory, "cannot register namespace prefix " + prefix};
  std::unique_ptr<xmlXPathObject, XPathObjectFree> result(
      xmlXPathCompiledEval(compiled, ctx.get()));
  if (!result) return Error{Errc::invalid_argument, describe(errors, "evaluation failed")};
  switch (result->type) {
    case XPATH_NODESET:
      if (!result->nodesetval || result->nodesetval->nodeNr == 0) return Value();
      return Value::string(to_string(XmlString(xmlXPathCastNodeSetToString(result->nodesetval))));
    case XPATH_BOOLEAN:
      return Value::boolean(result->boolval != 0);
    case XPATH_NUMBER:
      return Value::number(result->floatval);  // integers print without an exponent
    case XPATH_STRING:
      return Value::string(result->stringval
                               ? std::string(reinterpret_cast<const char *>(result->stringval))
                               : std::string());
    default:
      return Value();  // XSLT trees, points, ranges: nothing a plain XPath 1.0 yields
  }
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || static_cast<unsigned char>(c) >= 0x80;
}

// The first "prefix:" in the expression (outside string literals, not an axis "::") that
// the namespaces do not declare; "" when there is none. Only used to name it in a message.
std::string undeclared_prefix(std::string_view text, const Namespaces &namespaces) {
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      continue;
    }
    if (c != ':' || (i + 1 < text.size() && text[i + 1] == ':') || (i > 0 && text[i - 1] == ':'))
      continue;
    size_t start = i;
    while (start > 0 && is_name_char(text[start - 1])) --start;
    if (start == i) continue;
    std::string prefix(text.substr(start, i - start));
    bool declared = false;
    for (const auto &ns : namespaces) declared = declared || ns.first == prefix;
    if (!declared) return prefix;
  }
  return {};
}

struct DocFree {
  void operator()(xmlDoc *d) const { xmlFreeDoc(d); }
};

}  // namespace

Result<XPathExpr> XPathExpr::compile(std::string_view text, const Namespaces &namespaces) {
  init_libxml();
  auto fail = [](std::string msg) -> Result<XPathExpr> {
    return Error{Errc::invalid_argument, std::move(msg)};
  };
  if (text.size() > kMaxXPathLength)
    return fail("column " + std::to_string(kMaxXPathLength + 1) +
                ": an XPath expression is at most " + std::to_string(kMaxXPathLength) +
                " characters long");
  if (size_t nul = text.find('\0'); nul != std::string_view::npos)
    return fail("column " + std::to_string(nul + 1) + ": a NUL character is not allowed");
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return fail("column 1: the XPath expression is empty");
  for (size_t i = 0; i < namespaces.size(); ++i) {
    const auto &[prefix, uri] = namespaces[i];
    if (!is_ncname(prefix))
      return fail("namespace prefix \"" + prefix + "\" is not a valid prefix (an XML NCName)");
    if (uri.empty() || uri.find('\0') != std::string::npos)
      return fail("namespace prefix \"" + prefix + "\" needs a URI");
    for (size_t k = 0; k < i; ++k)
      if (namespaces[k].first == prefix)
        return fail("namespace prefix \"" + prefix + "\" is declared twice");
  }

  XPathExpr expr;
  expr.text_.assign(text);
  expr.namespaces_ = namespaces;
  XmlErrors errors;
  ErrorCapture capture(errors);
  {
    std::unique_ptr<xmlXPathContext, XPathContextFree> ctx(xmlXPathNewContext(nullptr));
    if (!ctx) return Error{Errc::no_memory, "cannot create an XPath context"};
    xmlXPathCompExprPtr compiled = xmlXPathCtxtCompile(ctx.get(), xml_chars(expr.text_));
    if (!compiled) return fail(describe(errors, "invalid XPath expression"));
    expr.compiled_.reset(compiled, xmlXPathFreeCompExpr);
  }
  // libxml2 resolves prefixes, functions and variables only when evaluating: a dry run on
  // a one-element document turns an undeclared prefix into a load-time error.
  std::unique_ptr<xmlDoc, DocFree> probe(xmlNewDoc(BAD_CAST "1.0"));
  if (!probe) return Error{Errc::no_memory, "cannot create an XML document"};
  xmlDocSetRootElement(probe.get(), xmlNewDocNode(probe.get(), nullptr, BAD_CAST "x", nullptr));
  Result<Value> dry = run(expr.compiled_.get(), expr.namespaces_, probe.get(), errors);
  if (!dry) {
    std::string msg = dry.error().message;
    if (msg.find("Undefined namespace prefix") != std::string::npos) {
      std::string prefix = undeclared_prefix(expr.text_, namespaces);
      if (!prefix.empty()) msg += " \"" + prefix + "\"";
      msg += " (declare it in the node's namespaces)";
    }
    return fail(std::move(msg));
  }
  return expr;
}

Result<Value> XPathExpr::evaluate(const XmlDocument &doc) const {
  init_libxml();
  if (!compiled_ || !doc.get())
    return Error{Errc::bad_state, "evaluating an empty XPath expression or document"};
  XmlErrors errors;
  ErrorCapture capture(errors);
  Result<Value> v = run(compiled_.get(), namespaces_, doc.get(), errors);
  if (!v) {
    std::string msg = "XPath " + text_ + ": " + v.error().message;
    if (msg.find("Undefined namespace prefix") != std::string::npos)
      if (std::string prefix = undeclared_prefix(text_, namespaces_); !prefix.empty())
        msg += " \"" + prefix + "\"";
    return Error{v.error().code, std::move(msg)};
  }
  return v;
}

// --- SOAP faults ------------------------------------------------------------------------

namespace {

constexpr char kSoap11[] = "http://schemas.xmlsoap.org/soap/envelope/";
constexpr char kSoap12[] = "http://www.w3.org/2003/05/soap-envelope";

bool named(xmlNodePtr n, const char *ns, const char *local) {
  if (!n || n->type != XML_ELEMENT_NODE || !n->name) return false;
  if (std::strcmp(reinterpret_cast<const char *>(n->name), local) != 0) return false;
  if (!ns) return true;  // any namespace
  return n->ns && n->ns->href && std::strcmp(reinterpret_cast<const char *>(n->ns->href), ns) == 0;
}

xmlNodePtr child(xmlNodePtr parent, const char *ns, const char *local) {
  for (xmlNodePtr c = parent ? parent->children : nullptr; c; c = c->next)
    if (named(c, ns, local)) return c;
  return nullptr;
}

xmlNodePtr first_element(xmlNodePtr parent) {
  for (xmlNodePtr c = parent ? parent->children : nullptr; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE) return c;
  return nullptr;
}

std::string trimmed_text(xmlNodePtr n, size_t max = 1000) {
  if (!n) return {};
  std::string s = to_string(XmlString(xmlNodeGetContent(n)));
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  s = s.substr(b, e - b + 1);
  if (s.size() > max) {
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s.resize(cut);
    s += "...";
  }
  return s;
}

}  // namespace

std::optional<SoapFault> find_soap_fault(const XmlDocument &doc) {
  if (!doc.get()) return std::nullopt;
  xmlNodePtr envelope = xmlDocGetRootElement(doc.get());
  const char *ns = named(envelope, kSoap11, "Envelope")   ? kSoap11
                   : named(envelope, kSoap12, "Envelope") ? kSoap12
                                                          : nullptr;
  if (!ns) return std::nullopt;
  xmlNodePtr fault = first_element(child(envelope, ns, "Body"));
  if (!named(fault, ns, "Fault")) return std::nullopt;
  SoapFault out;
  if (ns == kSoap11) {
    out.version = 11;
    out.code = trimmed_text(child(fault, nullptr, "faultcode"));
    out.reason = trimmed_text(child(fault, nullptr, "faultstring"));
  } else {
    out.version = 12;
    xmlNodePtr code = child(fault, ns, "Code");
    out.code = trimmed_text(child(code, ns, "Value"));
    out.subcode = trimmed_text(child(child(code, ns, "Subcode"), ns, "Value"));
    out.reason = trimmed_text(child(child(fault, ns, "Reason"), ns, "Text"));
  }
  return out;
}

}  // namespace ivr::net
