#include "net/json_path.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/text.h"

namespace ivr::net {

namespace od = simdjson::ondemand;

// The parsed body as a preorder tape: a container's children follow it, and `next` skips
// its whole subtree. Strings and keys point into the parser's string buffer, numbers into
// the padded input, so both must live as long as the tape.
namespace {

enum class NodeType : uint8_t { null, boolean, number, string, array, object };

struct Node {
  NodeType type = NodeType::null;
  bool boolean = false;
  uint32_t count = 0;     // children of an array or object
  uint32_t next = 0;      // index just past this subtree
  std::string_view key;   // member name when the parent is an object
  std::string_view text;  // string (unescaped) or number (source token)
};

}  // namespace

struct JsonDocument::Impl {
  simdjson::padded_string input;  // '[' + body + ']', see parse()
  od::parser parser;
  std::vector<Node> nodes;
};

JsonDocument::JsonDocument(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonDocument::JsonDocument(JsonDocument &&) noexcept = default;
JsonDocument &JsonDocument::operator=(JsonDocument &&) noexcept = default;
JsonDocument::~JsonDocument() = default;

namespace {

constexpr bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && is_json_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// RFC 8259 number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view s) {
  size_t i = 0, n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i >= n || !is_digit(s[i])) return false;
  if (s[i] == '0')
    ++i;
  else
    while (i < n && is_digit(s[i])) ++i;
  if (i < n && s[i] == '.') {
    ++i;
    if (i >= n || !is_digit(s[i])) return false;
    while (i < n && is_digit(s[i])) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= n || !is_digit(s[i])) return false;
    while (i < n && is_digit(s[i])) ++i;
  }
  return i == n;
}

// A valid JSON number token as a double; beyond the double range it is +-infinity, below
// it +-0 (from_chars reports both as out of range and leaves the value alone).
double number_value(std::string_view token) {
  double d = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), d);
  (void)ptr;
  if (ec == std::errc::result_out_of_range) {
    bool negative = !token.empty() && token[0] == '-';
    size_t e = token.find_first_of("eE");
    bool tiny = e != std::string_view::npos && e + 1 < token.size() && token[e + 1] == '-';
    d = tiny ? 0.0 : std::numeric_limits<double>::infinity();
    if (negative) d = -d;
  }
  return d;
}

// Offset of the first byte that is not valid UTF-8, or npos.
size_t first_invalid_utf8(std::string_view s) {
  const auto *p = reinterpret_cast<const unsigned char *>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

// Walks the On-Demand document once, appending to the tape. `last` follows the walk so
// that an error can be placed (an offset into the wrapped input).
class TapeBuilder {
 public:
  TapeBuilder(std::vector<Node> &nodes, const char *base, size_t size)
      : nodes_(nodes), base_(base), size_(size) {}

  simdjson::error_code build(od::value v, std::string_view key, int depth) {
    const char *loc = nullptr;
    if (v.current_location().get(loc) == simdjson::SUCCESS) mark(loc);
    if (depth > kMaxJsonDepth) {
      reason = "nesting deeper than " + std::to_string(kMaxJsonDepth);
      return simdjson::DEPTH_ERROR;
    }
    od::json_type t{};
    if (auto e = v.type().get(t)) return e;
    size_t at = nodes_.size();
    nodes_.push_back(Node{});
    nodes_[at].key = key;
    switch (t) {
      case od::json_type::object: {
        nodes_[at].type = NodeType::object;
        od::object obj;
        if (auto e = v.get_object().get(obj)) return e;
        uint32_t count = 0;
        for (auto field_result : obj) {
          od::field f;
          if (auto e = std::move(field_result).get(f)) return e;
          mark(f.key().raw() - 1);
          std::string_view k;
          if (auto e = f.unescaped_key().get(k)) return e;
          if (auto e = build(f.value(), k, depth + 1)) return e;
          ++count;
        }
        nodes_[at].count = count;
        break;
      }
      case od::json_type::array: {
        nodes_[at].type = NodeType::array;
        od::array arr;
        if (auto e = v.get_array().get(arr)) return e;
        uint32_t count = 0;
        for (auto item_result : arr) {
          od::value item;
          if (auto e = std::move(item_result).get(item)) return e;
          if (auto e = build(item, {}, depth + 1)) return e;
          ++count;
        }
        nodes_[at].count = count;
        break;
      }
      case od::json_type::number: {
        // Kept as written (simdjson would refuse integers beyond 64 bits and 1e400);
        // skipping the unconsumed token is On-Demand's job when iteration moves on.
        std::string_view raw = trim_right(v.raw_json_token());
        if (!is_json_number(raw)) {
          reason = "'" + std::string(raw.substr(0, 40)) + "' is not a number";
          return simdjson::NUMBER_ERROR;
        }
        nodes_[at].type = NodeType::number;
        nodes_[at].text = raw;
        break;
      }
      case od::json_type::string: {
        nodes_[at].type = NodeType::string;
        if (auto e = v.get_string().get(nodes_[at].text)) return e;
        break;
      }
      case od::json_type::boolean: {
        std::string_view raw = trim_right(v.raw_json_token());
        nodes_[at].type = NodeType::boolean;
        if (auto e = v.get_bool().get(nodes_[at].boolean)) return bad_atom(raw, e);
        break;
      }
      case od::json_type::null: {
        std::string_view raw = trim_right(v.raw_json_token());
        bool is_null = false;
        if (auto e = v.is_null().get(is_null)) return bad_atom(raw, e);
        if (!is_null) return bad_atom(raw, simdjson::N_ATOM_ERROR);
        break;
      }
    }
    nodes_[at].next = static_cast<uint32_t>(nodes_.size());
    return simdjson::SUCCESS;
  }

  // simdjson says "does not have the requested type" for `tru`; say what was there.
  simdjson::error_code bad_atom(std::string_view raw, simdjson::error_code e) {
    reason = "'" + std::string(raw.substr(0, 40)) + "' is not true, false or null";
    return e;
  }

  void mark(const char *p) {
    if (p >= base_ && p <= base_ + size_) last = static_cast<uint32_t>(p - base_);
  }

  uint32_t last = 0;
  std::string reason;  // replaces simdjson's message when set

 private:
  std::vector<Node> &nodes_;
  const char *base_;
  size_t size_;
};

Error body_error(std::string_view body, size_t offset, bool placed, const std::string &reason) {
  std::string msg = "body is not JSON: ";
  if (placed) {
    offset = std::min(offset, body.size());
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < offset; ++i)
      if (body[i] == '\n') ++line, line_start = i + 1;
    msg += "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1) +
           " (byte " + std::to_string(offset) + "): ";
  }
  return Error{Errc::parse, msg + reason};
}

}  // namespace

Result<JsonDocument> JsonDocument::parse(std::string_view body) {
  try {
    if (body.size() > kMaxBodyBytes)
      return Error{Errc::invalid_argument, "body is " + std::to_string(body.size()) +
                                               " bytes, more than the limit of " +
                                               std::to_string(kMaxBodyBytes)};
    size_t first = 0;
    while (first < body.size() && is_json_space(body[first])) ++first;
    if (first == body.size()) return Error{Errc::parse, "body is not JSON: it is empty"};

    // Wrapping the body in an array lets one code path read scalar documents too, and makes
    // "two values" and "trailing garbage" ordinary syntax errors. Offsets are shifted by 1.
    auto impl = std::make_unique<Impl>();
    impl->input = simdjson::padded_string(body.size() + 2);
    char *data = impl->input.data();
    data[0] = '[';
    if (!body.empty()) std::memcpy(data + 1, body.data(), body.size());
    data[body.size() + 1] = ']';

    auto shifted = [&](uint32_t offset) { return offset == 0 ? 0 : offset - 1; };
    od::document doc;
    if (auto e = impl->parser.iterate(impl->input).get(doc)) {
      if (e == simdjson::UTF8_ERROR) {
        size_t bad = first_invalid_utf8(body);
        if (bad != std::string_view::npos)
          return body_error(body, bad, true, simdjson::error_message(e));
      }
      return body_error(body, 0, false, simdjson::error_message(e));
    }
    TapeBuilder b(impl->nodes, impl->input.data(), impl->input.size());
    simdjson::error_code err = simdjson::SUCCESS;
    size_t values = 0;
    od::array top;
    err = doc.get_array().get(top);
    if (!err) {
      for (auto item_result : top) {
        od::value item;
        if ((err = std::move(item_result).get(item))) break;
        if (values == 1) {
          const char *loc = nullptr;
          if (item.current_location().get(loc) == simdjson::SUCCESS) b.mark(loc);
          return body_error(body, shifted(b.last), true, "more than one JSON value");
        }
        if ((err = b.build(item, {}, 1))) break;
        ++values;
      }
    }
    if (err) {
      const char *loc = nullptr;
      if (b.reason.empty() && doc.current_location().get(loc) == simdjson::SUCCESS) b.mark(loc);
      return body_error(body, shifted(b.last), true,
                        b.reason.empty() ? simdjson::error_message(err) : b.reason);
    }
    // At the end of the input the location is out of bounds; anything else is left over
    // (a ']' in the body closed our wrapper early).
    const char *rest = nullptr;
    if (doc.current_location().get(rest) == simdjson::SUCCESS) {
      // Point at the ']' that closed the wrapper: the last non-space before what is left.
      b.mark(rest);
      uint32_t at = b.last;
      while (at > 1 && is_json_space(data[at - 1])) --at;
      return body_error(body, shifted(at > 1 ? at - 1 : at), true,
                        "unexpected content after the JSON value");
    }
    if (values != 1) return body_error(body, first, true, "no JSON value");
    return JsonDocument(std::move(impl));
  } catch (const std::exception &e) {  // allocation failure; simdjson itself does not throw here
    return Error{Errc::no_memory, std::string("parsing a JSON body: ") + e.what()};
  }
}

// --- Paths ------------------------------------------------------------------------------

namespace {

// "0", "17", "-1" (never "01", "-0", "+1"); false also when it does not fit in 64 bits.
bool parse_index(std::string_view token, int64_t &out) {
  bool negative = !token.empty() && token[0] == '-';
  std::string_view digits = negative ? token.substr(1) : token;
  if (digits.empty() || digits.size() > 18) return false;
  for (char c : digits)
    if (!is_digit(c)) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  if (negative && digits == "0") return false;
  int64_t v = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), v);
  out = negative ? -v : v;
  return true;
}

}  // namespace

Result<JsonPath> JsonPath::parse(std::string_view text) {
  auto fail = [](size_t column, std::string reason) -> Result<JsonPath> {
    return Error{Errc::invalid_argument, "column " + std::to_string(column) + ": " + reason};
  };
  if (text.size() > kMaxPathLength)
    return fail(kMaxPathLength + 1,
                "a path is at most " + std::to_string(kMaxPathLength) + " characters long");
  JsonPath path;
  path.text_.assign(text);
  if (text.empty()) return path;  // the whole document
  if (text[0] != '/') return fail(1, "a path starts with '/' (or is empty for the whole document)");
  size_t pos = 1;  // 0-based index of the token's first character
  while (true) {
    size_t end = text.find('/', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(pos, end - pos);
    Step step;
    for (size_t i = 0; i < raw.size(); ++i) {
      char c = raw[i];
      if (c == '\0') return fail(pos + i + 1, "a NUL character is not allowed");
      if (c != '~') {
        step.key += c;
        continue;
      }
      if (i + 1 == raw.size())
        return fail(pos + i + 1,
                    "'~' at the end of a part is not an escape (~0 is '~', ~1 is '/')");
      char e = raw[i + 1];
      if (e != '0' && e != '1') {
        std::string shown = (static_cast<unsigned char>(e) < 0x20 || e == 0x7f)
                                ? "~\\x" + std::to_string(static_cast<unsigned char>(e))
                                : std::string("~") + e;
        return fail(pos + i + 1, "'" + shown + "' is not an escape (~0 is '~', ~1 is '/')");
      }
      step.key += e == '0' ? '~' : '/';
      ++i;
    }
    if (raw == "*") {
      step.kind = StepKind::wildcard;
    } else if (raw == "#") {
      if (end != text.size())
        return fail(pos + 1, "'#' (the length) must be the last part of a path");
      step.kind = StepKind::length;
    } else {
      step.is_index = parse_index(raw, step.index);
    }
    path.steps_.push_back(std::move(step));
    if (end == text.size()) break;
    pos = end + 1;
  }
  return path;
}

bool JsonPath::has_wildcard() const {
  for (const Step &s : steps_)
    if (s.kind == StepKind::wildcard) return true;
  return false;
}

namespace {

class Evaluator {
 public:
  Evaluator(const std::vector<Node> &nodes, const std::vector<JsonPath::Step> &steps)
      : nodes_(nodes), steps_(steps) {}

  Value run() const { return walk(0, 0); }

 private:
  // Navigates until the first wildcard, which turns the rest into a joined string.
  Value walk(uint32_t node, size_t step) const {
    for (; step < steps_.size(); ++step) {
      const JsonPath::Step &s = steps_[step];
      if (s.kind == JsonPath::StepKind::length) return length(node);
      if (s.kind == JsonPath::StepKind::wildcard) {
        if (!is_container(node)) return Value();
        std::string joined;
        bool first = true;
        for_each_child(node, [&](uint32_t child) { collect(child, step + 1, joined, first); });
        return Value::string(std::move(joined));
      }
      if (!child(node, s, node)) return Value();
    }
    return value_of(node);
  }

  // Appends the text of every value the rest of the path selects below `node`.
  void collect(uint32_t node, size_t step, std::string &out, bool &first) const {
    for (; step < steps_.size(); ++step) {
      const JsonPath::Step &s = steps_[step];
      if (s.kind == JsonPath::StepKind::length) return append(out, first, length(node));
      if (s.kind == JsonPath::StepKind::wildcard) {
        if (!is_container(node)) return append(out, first, Value());
        for_each_child(node, [&](uint32_t c) { collect(c, step + 1, out, first); });
        return;
      }
      if (!child(node, s, node)) return append(out, first, Value());
    }
    append(out, first, value_of(node));
  }

  static void append(std::string &out, bool &first, const Value &v) {
    if (!first) out += ',';
    first = false;
    out += v.text();
  }

  bool is_container(uint32_t node) const {
    NodeType t = nodes_[node].type;
    return t == NodeType::array || t == NodeType::object;
  }

  template <typename F>
  void for_each_child(uint32_t node, F &&f) const {
    uint32_t c = node + 1;
    for (uint32_t i = 0; i < nodes_[node].count; ++i, c = nodes_[c].next) f(c);
  }

  Value length(uint32_t node) const {
    if (!is_container(node)) return Value();
    return Value::number(nodes_[node].count);
  }

  // The member or element `s` names; false when there is none. On objects every token is
  // a member name (RFC 6901); on arrays only an index selects anything.
  bool child(uint32_t node, const JsonPath::Step &s, uint32_t &out) const {
    const Node &n = nodes_[node];
    if (n.type == NodeType::object) {
      uint32_t c = node + 1;
      for (uint32_t i = 0; i < n.count; ++i, c = nodes_[c].next)
        if (nodes_[c].key == s.key) {  // the first of duplicate keys wins
          out = c;
          return true;
        }
      return false;
    }
    if (n.type != NodeType::array || !s.is_index) return false;
    int64_t index = s.index < 0 ? s.index + static_cast<int64_t>(n.count) : s.index;
    if (index < 0 || index >= static_cast<int64_t>(n.count)) return false;
    uint32_t c = node + 1;
    for (int64_t i = 0; i < index; ++i) c = nodes_[c].next;
    out = c;
    return true;
  }

  Value value_of(uint32_t node) const {
    const Node &n = nodes_[node];
    switch (n.type) {
      case NodeType::null:
        return Value();
      case NodeType::boolean:
        return Value::boolean(n.boolean);
      case NodeType::number:
        return Value::number(number_value(n.text), std::string(n.text));
      case NodeType::string:
        return Value::string(std::string(n.text));
      case NodeType::array:
      case NodeType::object: {
        std::string json;
        write_json(node, json);
        return Value::string(std::move(json));
      }
    }
    return Value();
  }

  // Compact JSON text of a subtree (numbers as written, strings re-escaped).
  void write_json(uint32_t node, std::string &out) const {
    const Node &n = nodes_[node];
    switch (n.type) {
      case NodeType::null:
        out += "null";
        return;
      case NodeType::boolean:
        out += n.boolean ? "true" : "false";
        return;
      case NodeType::number:
        out += n.text;
        return;
      case NodeType::string:
        text::append_json_quoted(out, n.text);
        return;
      case NodeType::array:
      case NodeType::object: {
        bool object = n.type == NodeType::object;
        out += object ? '{' : '[';
        bool first = true;
        for_each_child(node, [&](uint32_t c) {
          if (!first) out += ',';
          first = false;
          if (object) {
            text::append_json_quoted(out, nodes_[c].key);
            out += ':';
          }
          write_json(c, out);
        });
        out += object ? '}' : ']';
        return;
      }
    }
  }

  const std::vector<Node> &nodes_;
  const std::vector<JsonPath::Step> &steps_;
};

}  // namespace

Result<Value> JsonPath::evaluate(const JsonDocument &doc) const {
  try {
    return Evaluator(doc.impl().nodes, steps_).run();
  } catch (const std::exception &e) {
    return Error{Errc::no_memory, "evaluating " + text_ + ": " + e.what()};
  }
}

// --- GraphQL ----------------------------------------------------------------------------

namespace {

const Node *member(const std::vector<Node> &nodes, uint32_t object, std::string_view key,
                   uint32_t *index = nullptr) {
  if (nodes[object].type != NodeType::object) return nullptr;
  uint32_t c = object + 1;
  for (uint32_t i = 0; i < nodes[object].count; ++i, c = nodes[c].next)
    if (nodes[c].key == key) {
      if (index) *index = c;
      return &nodes[c];
    }
  return nullptr;
}

// Cuts at a UTF-8 character boundary.
std::string truncated(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return s + "...";
}

}  // namespace

std::string GraphqlStatus::message() const {
  std::string out;
  for (const std::string &e : errors) {
    if (!out.empty()) out += "; ";
    out += e;
  }
  if (error_count > errors.size())
    out += "; and " + std::to_string(error_count - errors.size()) + " more";
  return out;
}

Result<GraphqlStatus> graphql_status(const JsonDocument &doc) {
  try {
    const std::vector<Node> &nodes = doc.impl().nodes;
    if (nodes[0].type != NodeType::object)
      return Error{Errc::parse, "a GraphQL response is a JSON object"};
    GraphqlStatus status;
    if (const Node *data = member(nodes, 0, "data")) {
      status.has_data = true;
      status.data_null = data->type == NodeType::null;
    }
    uint32_t errors_at = 0;
    const Node *errors = member(nodes, 0, "errors", &errors_at);
    if (!errors || errors->type == NodeType::null) return status;
    if (errors->type != NodeType::array) {
      status.error_count = 1;
      status.errors.push_back("\"errors\" is not an array");
      return status;
    }
    status.error_count = errors->count;
    uint32_t e = errors_at + 1;
    for (uint32_t i = 0; i < errors->count && i < GraphqlStatus::kMaxMessages;
         ++i, e = nodes[e].next) {
      std::string text;
      const Node *message = member(nodes, e, "message");
      if (message && message->type == NodeType::string)
        text.assign(message->text);
      else
        text = "(an error without a message)";
      uint32_t path_at = 0;
      const Node *path = member(nodes, e, "path", &path_at);
      if (path && path->type == NodeType::array && path->count > 0) {
        std::string joined;
        uint32_t p = path_at + 1;
        for (uint32_t k = 0; k < path->count; ++k, p = nodes[p].next) {
          if (k) joined += '.';
          joined.append(nodes[p].text);  // strings and numbers; anything else shows as ""
        }
        text += " (path: " + joined + ")";
      }
      status.errors.push_back(truncated(std::move(text), GraphqlStatus::kMaxMessageBytes));
    }
    return status;
  } catch (const std::exception &e) {
    return Error{Errc::no_memory, std::string("reading GraphQL errors: ") + e.what()};
  }
}

}  // namespace ivr::net
