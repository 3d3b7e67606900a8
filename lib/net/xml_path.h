// XPath 1.0 over XML and SOAP response bodies, with libxml2.
//
// Parsing is hardened for untrusted bodies: no network access, no DTD loading, no entity
// substitution, and a body that declares any entity is refused outright (that stops XXE
// and "billion laughs" before they start). libxml2 never prints: its messages are captured
// into the Result errors.
//
// Threads: libxml2 is initialised once (xmlInitParser) on first use; its error handlers are
// set per thread around each call. A document is used on one thread at a time; a compiled
// expression is immutable and may be evaluated against different documents.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/response_map.h"

struct _xmlDoc;
struct _xmlXPathCompExpr;

namespace ivr::net {

class XmlDocument {
 public:
  // Errc::parse for a body that is not well-formed XML or declares entities:
  //   body is not well-formed XML: line 3, column 9: Opening and ending tag mismatch: ...
  static Result<XmlDocument> parse(std::string_view body);

  _xmlDoc *get() const { return doc_.get(); }

 private:
  struct Free {
    void operator()(_xmlDoc *doc) const;
  };
  std::unique_ptr<_xmlDoc, Free> doc_;
};

class XPathExpr {
 public:
  // Compiles an XPath 1.0 expression whose prefixes are the flow's `namespaces` (not the
  // response's). Errc::invalid_argument with libxml2's reason and the column:
  //   column 7: Invalid expression
  //   column 1: Undefined namespace prefix (the prefix "s" is not declared)
  static Result<XPathExpr> compile(std::string_view text, const Namespaces &namespaces);

  // Relative expressions start at the document node. A node-set yields the string value of
  // its first node in document order (null when empty); numbers, booleans and strings map
  // to the same Value kinds. Errors only for what compile() could not see (an undeclared
  // prefix on a branch it did not take, the evaluation step limit).
  Result<Value> evaluate(const XmlDocument &doc) const;

  const std::string &text() const { return text_; }

 private:
  std::string text_;
  Namespaces namespaces_;
  std::shared_ptr<_xmlXPathCompExpr> compiled_;
};

// Longer XPath texts are refused.
inline constexpr size_t kMaxXPathLength = 4096;
// Evaluation steps one expression may take (libxml2's opLimit); bounds pathological
// expressions on large bodies.
inline constexpr unsigned long kMaxXPathOperations = 10'000'000;

// A SOAP fault: the root is soap:Envelope, its Body's first element child is soap:Fault.
struct SoapFault {
  int version = 11;     // 11 or 12
  std::string code;     // 1.1 faultcode, 1.2 Code/Value (e.g. "soap:Server", "env:Sender")
  std::string subcode;  // 1.2 Code/Subcode/Value, "" when absent (1.1: always "")
  std::string reason;   // 1.1 faultstring, 1.2 the first Reason/Text; trimmed, at most 1000 bytes
};

std::optional<SoapFault> find_soap_fault(const XmlDocument &doc);

}  // namespace ivr::net
