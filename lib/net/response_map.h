// Response mapping: which parts of an HTTP response body go into which call variables.
// A flow's http node names them with JSON paths (json_path.h) or XPath expressions
// (xml_path.h); a ResponseMap compiles them once when the flow loads (a bad path is a
// validation error) and applies them to response bodies, which are untrusted input, at run
// time. Nothing here throws; every failure is a Result error.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace ivr::net {

// What one path extracts. Objects and arrays selected as a whole arrive as their compact
// JSON text (a string), XML nodes as their XPath string value.
class Value {
 public:
  enum class Kind : uint8_t { null, boolean, number, string };

  Value() = default;  // null
  static Value boolean(bool b);
  // `text` is how the number was written (JSON keeps its source digits, so a 20-digit id or
  // "19.90" survives); empty means "format the double".
  static Value number(double d, std::string text = {});
  static Value string(std::string s);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::null; }
  bool as_bool() const { return boolean_; }               // false unless kind() == boolean
  double as_number() const { return number_; }            // 0 unless kind() == number
  const std::string &as_string() const { return text_; }  // "" unless kind() == string

  // The text a call variable receives: "" for null, "true"/"false", the number's digits
  // (source text, or the shortest form that reads back the same double; "NaN",
  // "Infinity"), the string itself.
  std::string text() const;

  friend bool operator==(const Value &a, const Value &b);

 private:
  Kind kind_ = Kind::null;
  bool boolean_ = false;
  double number_ = 0;
  std::string text_;  // string value, or a number's source digits
};

const char *value_kind_name(Value::Kind k);  // "null", "boolean", "number", "string"

// Bodies larger than this are refused before parsing (the HTTP client's own cap is usually
// far lower); it also keeps every offset inside 32 bits.
inline constexpr size_t kMaxBodyBytes = size_t{16} << 20;

// Namespace prefixes an XPath expression may use: prefix -> URI, given by the flow.
using Namespaces = std::vector<std::pair<std::string, std::string>>;

enum class BodyFormat : uint8_t {
  json,     // JSON paths
  graphql,  // JSON paths, and a top-level "errors" array makes the response a fault
  xml,      // XPath, and a SOAP 1.1/1.2 Fault makes the response a fault
};

struct FieldMapping {
  std::string variable;  // the call variable to set
  std::string path;      // a JSON path or an XPath expression, by format
};

struct Assignment {
  std::string variable;
  Value value;
};

// A well-formed response that says it failed: GraphQL errors or a SOAP fault.
struct ServiceFault {
  std::string code;     // "graphql", or the SOAP fault code ("soap:Server", "env:Sender")
  std::string message;  // the GraphQL error messages joined with "; ", or the fault reason
};

struct MappedResponse {
  std::vector<Assignment> values;     // one per FieldMapping, in order
  std::optional<ServiceFault> fault;  // values are still extracted when there is a fault
};

// Compiled mapping of one http node. Immutable and cheap to copy (shared); apply() is const
// and each call parses its own body, so calls on different threads do not interfere.
class ResponseMap {
 public:
  // Errors (Errc::invalid_argument) name the variable and the reason:
  //   variable "name": column 5: '~2' is not an escape
  static Result<ResponseMap> compile(BodyFormat format, const std::vector<FieldMapping> &fields,
                                     const Namespaces &namespaces = {});

  // Parses the body once and evaluates every path. A body that is not JSON/XML is an
  // Errc::parse error; a missing part is a null value, never an error.
  Result<MappedResponse> apply(std::string_view body) const;

  BodyFormat format() const;
  size_t size() const;

 private:
  ResponseMap() = default;
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace ivr::net
