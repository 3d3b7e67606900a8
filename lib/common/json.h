// A JSON tree that remembers where every value came from, read with simdjson's On-Demand
// parser. Flow documents and configuration files need line/column in their error reports,
// which simdjson's DOM does not keep, so we copy the document into this small tree once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ivr::json {

enum class Kind : uint8_t { null, boolean, number, string, array, object };

const char *kind_name(Kind k);  // "null", "boolean", "number", "string", "array", "object"

struct Member;

struct Value {
  Kind kind = Kind::null;
  uint32_t offset = 0;  // byte offset of the value's first character in the source
  bool boolean = false;
  bool integral = false;  // a number written without fraction or exponent
  double number = 0;
  std::string string;
  std::vector<Value> items;     // arrays
  std::vector<Member> members;  // objects, in document order (keys are unique)

  bool is(Kind k) const { return kind == k; }
  // The member with this key, or nullptr (also for non-objects).
  const Value *find(std::string_view key) const;
};

struct Member {
  std::string key;
  uint32_t key_offset = 0;
  Value value;
};

struct Position {
  uint32_t line = 1;    // 1-based
  uint32_t column = 1;  // 1-based, in bytes
};

class Document {
 public:
  const Value &root() const { return root_; }
  Position position(uint32_t offset) const;
  const std::string &text() const { return text_; }

 private:
  friend Result<Document> parse(std::string_view text);
  std::string text_;
  std::vector<uint32_t> line_starts_;
  Value root_;
};

// Limits that keep hostile input cheap: nesting depth and document size.
inline constexpr int kMaxDepth = 64;
inline constexpr size_t kMaxDocumentBytes = 16u << 20;

// Parses one JSON document. Errors (Errc::parse) read "line L, column C: reason"; duplicate
// keys, nesting deeper than kMaxDepth and trailing content are errors.
Result<Document> parse(std::string_view text);

// Appends "/key" to a JSON Pointer, escaping '~' and '/' (RFC 6901).
std::string pointer_append(std::string_view pointer, std::string_view key);
std::string pointer_append(std::string_view pointer, size_t index);

}  // namespace ivr::json
