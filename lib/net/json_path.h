// JSON paths over response bodies: a JSON Pointer (RFC 6901) extended for arrays.
//
//   ""            the whole document          /a/b/0     member a, member b, element 0
//   /items/-1     the last element (-2 ...)   /items/*   every element, joined with ","
//   /items/#      the length of an array or object (a number; only as the last part)
//   /a~1b/m~0n    members "a/b" and "m~n" (~1 is '/', ~0 is '~')
//
// A body is parsed once (JsonDocument) and any number of paths evaluated against it.
// Missing members, indices out of range and type mismatches yield null, never an error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/response_map.h"

namespace ivr::net {

// Nesting deeper than this is refused (an API response is never near it; it bounds the
// parser's recursion).
inline constexpr int kMaxJsonDepth = 256;
// Longer path texts are refused.
inline constexpr size_t kMaxPathLength = 4096;

// One parsed body. Holds the padded input and the parser's string buffer that the parsed
// values point into; movable, not copyable. Use it on one thread at a time.
class JsonDocument {
 public:
  // Errc::parse when the body is not one JSON value:
  //   body is not JSON: line 1, column 9 (byte 8): <simdjson's reason>
  static Result<JsonDocument> parse(std::string_view body);

  JsonDocument(JsonDocument &&) noexcept;
  JsonDocument &operator=(JsonDocument &&) noexcept;
  ~JsonDocument();

  // The parsed tree; defined in json_path.cpp.
  struct Impl;
  const Impl &impl() const { return *impl_; }

 private:
  explicit JsonDocument(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class JsonPath {
 public:
  // Errc::invalid_argument with the 1-based column of the problem:
  //   column 5: '~2' is not an escape (~0 is '~', ~1 is '/')
  static Result<JsonPath> parse(std::string_view text);

  // The value at the path; null when any part is missing or of the wrong type. With a
  // wildcard the result is a string (each selected value's text joined with ","), or null
  // when the part before the first wildcard is missing or not an array/object.
  Result<Value> evaluate(const JsonDocument &doc) const;

  const std::string &text() const { return text_; }
  bool has_wildcard() const;

  enum class StepKind : uint8_t { key, wildcard, length };
  struct Step {
    StepKind kind = StepKind::key;
    std::string key;        // the unescaped token (an object member name)
    bool is_index = false;  // the token reads as an array index: 0, 7, -1 (not "01", "-0")
    int64_t index = 0;      // negative counts from the end
  };
  const std::vector<Step> &steps() const { return steps_; }

 private:
  std::string text_;
  std::vector<Step> steps_;
};

// A GraphQL response (https://spec.graphql.org/October2021/#sec-Response) read for failure.
struct GraphqlStatus {
  // "message (path: hero.friends.1.name)" per entry of a top-level "errors" array, at most
  // kMaxMessages, each cut to kMaxMessageBytes.
  std::vector<std::string> errors;
  size_t error_count = 0;  // all entries, including those beyond kMaxMessages
  bool has_data = false;   // a "data" member is present
  bool data_null = false;  // ... and it is null

  static constexpr size_t kMaxMessages = 20;
  static constexpr size_t kMaxMessageBytes = 500;

  // The messages joined with "; " (plus "and N more").
  std::string message() const;
};

// Errc::parse when the document is not a JSON object.
Result<GraphqlStatus> graphql_status(const JsonDocument &doc);

}  // namespace ivr::net
