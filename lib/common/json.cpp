#include "common/json.h"

#include <simdjson.h>

#include <algorithm>
#include <set>

namespace ivr::json {

namespace od = simdjson::ondemand;

const char *kind_name(Kind k) {
  switch (k) {
    case Kind::null:
      return "null";
    case Kind::boolean:
      return "boolean";
    case Kind::number:
      return "number";
    case Kind::string:
      return "string";
    case Kind::array:
      return "array";
    case Kind::object:
      return "object";
  }
  return "?";
}

const Value *Value::find(std::string_view key) const {
  for (const Member &m : members)
    if (m.key == key) return &m.value;
  return nullptr;
}

Position Document::position(uint32_t offset) const {
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  size_t line = static_cast<size_t>(it - line_starts_.begin());  // >= 1: line_starts_[0] == 0
  return {static_cast<uint32_t>(line), offset - line_starts_[line - 1] + 1};
}

namespace {

// Walks the On-Demand document once, copying it into the tree. `last` follows the parse so
// that a syntax error can be placed.
class Builder {
 public:
  Builder(const char *base, size_t size) : base_(base), size_(size) {}

  simdjson::error_code build(od::value v, Value &out, int depth) {
    const char *loc = nullptr;
    if (v.current_location().get(loc) == simdjson::SUCCESS) mark(loc);
    out.offset = last_;
    if (depth > kMaxDepth) return depth_error();
    od::json_type t;
    if (auto e = v.type().get(t)) return e;
    switch (t) {
      case od::json_type::object: {
        out.kind = Kind::object;
        od::object obj;
        if (auto e = v.get_object().get(obj)) return e;
        std::set<std::string_view> seen;
        for (auto field_result : obj) {
          od::field f;
          if (auto e = std::move(field_result).get(f)) return e;
          Member m;
          mark(f.key().raw() - 1);
          m.key_offset = last_;
          std::string_view key;
          if (auto e = f.unescaped_key().get(key)) return e;
          m.key.assign(key);
          if (auto e = build(f.value(), m.value, depth + 1)) return e;
          out.members.push_back(std::move(m));
        }
        for (const Member &m : out.members) {
          if (!seen.insert(m.key).second) {
            duplicate_ = m.key;
            has_duplicate_ = true;
            last_ = m.key_offset;
            return simdjson::TAPE_ERROR;
          }
        }
        return simdjson::SUCCESS;
      }
      case od::json_type::array: {
        out.kind = Kind::array;
        od::array arr;
        if (auto e = v.get_array().get(arr)) return e;
        for (auto item_result : arr) {
          od::value item;
          if (auto e = std::move(item_result).get(item)) return e;
          Value child;
          if (auto e = build(item, child, depth + 1)) return e;
          out.items.push_back(std::move(child));
        }
        return simdjson::SUCCESS;
      }
      case od::json_type::number: {
        out.kind = Kind::number;
        std::string_view raw = v.raw_json_token();
        if (auto e = v.get_double().get(out.number)) return e;
        out.integral = raw.find_first_of(".eE") == std::string_view::npos;
        return simdjson::SUCCESS;
      }
      case od::json_type::string: {
        out.kind = Kind::string;
        std::string_view s;
        if (auto e = v.get_string().get(s)) return e;
        out.string.assign(s);
        return simdjson::SUCCESS;
      }
      case od::json_type::boolean:
        out.kind = Kind::boolean;
        return v.get_bool().get(out.boolean);
      case od::json_type::null: {
        out.kind = Kind::null;
        bool is_null = false;
        if (auto e = v.is_null().get(is_null)) return e;
        return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
      }
    }
    return simdjson::INCORRECT_TYPE;
  }

  void mark(const char *p) {
    if (p >= base_ && p <= base_ + size_) last_ = static_cast<uint32_t>(p - base_);
  }
  simdjson::error_code depth_error() {
    too_deep_ = true;
    return simdjson::DEPTH_ERROR;
  }

  uint32_t last_ = 0;
  bool too_deep_ = false;
  std::string duplicate_;
  bool has_duplicate_ = false;

 private:
  const char *base_;
  size_t size_;
};

}  // namespace

Result<Document> parse(std::string_view text) {
  Document doc;
  doc.text_.assign(text);
  doc.line_starts_.push_back(0);
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') doc.line_starts_.push_back(static_cast<uint32_t>(i + 1));
  auto fail = [&](uint32_t offset, const std::string &reason) -> Result<Document> {
    Position p = doc.position(std::min<uint32_t>(offset, static_cast<uint32_t>(text.size())));
    return Error{Errc::parse, "line " + std::to_string(p.line) + ", column " +
                                  std::to_string(p.column) + ": " + reason};
  };
  if (text.size() > kMaxDocumentBytes)
    return fail(0, "document is larger than " + std::to_string(kMaxDocumentBytes) + " bytes");
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return fail(0, "empty document");

  simdjson::padded_string padded(text);
  od::parser parser;
  od::document d;
  if (auto e = parser.iterate(padded).get(d)) return fail(0, simdjson::error_message(e));
  Builder b(padded.data(), padded.size());
  simdjson::error_code err = simdjson::SUCCESS;
  od::json_type t{};
  if ((err = d.type().get(t)) == simdjson::SUCCESS) {
    if (t == od::json_type::object || t == od::json_type::array) {
      od::value v;
      err = d.get_value().get(v);
      if (!err) err = b.build(v, doc.root_, 1);
    } else {
      // A scalar document: On-Demand reads it through the document itself.
      const char *loc = nullptr;
      if (d.current_location().get(loc) == simdjson::SUCCESS) b.mark(loc);
      doc.root_.offset = b.last_;
      switch (t) {
        case od::json_type::number:
          doc.root_.kind = Kind::number;
          doc.root_.integral =
              d.raw_json_token().value_unsafe().find_first_of(".eE") == std::string_view::npos;
          err = d.get_double().get(doc.root_.number);
          break;
        case od::json_type::string: {
          doc.root_.kind = Kind::string;
          std::string_view s;
          err = d.get_string().get(s);
          if (!err) doc.root_.string.assign(s);
          break;
        }
        case od::json_type::boolean:
          doc.root_.kind = Kind::boolean;
          err = d.get_bool().get(doc.root_.boolean);
          break;
        default: {
          bool is_null = false;
          err = d.is_null().get(is_null);
          if (!err && !is_null) err = simdjson::N_ATOM_ERROR;
        }
      }
    }
  }
  if (b.too_deep_) return fail(b.last_, "nesting deeper than " + std::to_string(kMaxDepth));
  if (b.has_duplicate_) return fail(b.last_, "duplicate key \"" + b.duplicate_ + "\"");
  if (err) {
    const char *loc = nullptr;
    if (d.current_location().get(loc) == simdjson::SUCCESS) b.mark(loc);
    return fail(b.last_, simdjson::error_message(err));
  }
  // At the end of the input the location is OUT_OF_BOUNDS; anything else is left over.
  const char *rest = nullptr;
  if (d.current_location().get(rest) == simdjson::SUCCESS) {
    b.mark(rest);
    return fail(b.last_, "unexpected content after the JSON value");
  }
  return doc;
}

std::string pointer_append(std::string_view pointer, std::string_view key) {
  std::string out(pointer);
  out += '/';
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

std::string pointer_append(std::string_view pointer, size_t index) {
  return std::string(pointer) + "/" + std::to_string(index);
}

}  // namespace ivr::json
