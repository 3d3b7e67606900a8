// Helpers shared by the rules unit tests.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "rules/expr.h"

namespace rt {

using namespace ivr::rules;

// Resolver over the roots "call" and "vars"; slots in order of first use.
inline const VariableTable &table() {
  static VariableTable t({"call", "vars"});
  return t;
}

// Bindings by name: unnamed slots stay null.
struct Env {
  std::vector<Value> values;
  void set(std::string_view name, Value v) {
    auto slot = table().resolve(name);
    REQUIRE(slot.ok());
    if (values.size() <= slot.value()) values.resize(slot.value() + 1);
    values[slot.value()] = v;
  }
  Bindings bindings() const { return Bindings{values.data(), values.size()}; }
};

inline ivr::Result<Value> run(std::string_view src, const Env &env = {}, size_t scratch = 256) {
  auto e = compile(src, table());
  if (!e.ok()) return e.error();
  std::vector<char> buf(scratch);
  EvalContext ctx(buf.data(), buf.size());
  auto r = evaluate(e.value(), env.bindings(), ctx);
  if (!r.ok()) return r.error();
  // Copy string results out of the scratch buffer before it goes away.
  static thread_local std::string keep;
  Value v = r.value();
  if (v.type == Type::string) {
    keep.assign(v.s);
    v.s = keep;
  }
  return v;
}

inline std::string compile_error(std::string_view src) {
  auto e = compile(src, table());
  REQUIRE_MESSAGE(!e.ok(), "compiled unexpectedly: " << src);
  CHECK(e.error().code == ivr::Errc::parse);
  return e.error().message;
}

inline std::string eval_error(std::string_view src, const Env &env = {}, size_t scratch = 256) {
  auto r = run(src, env, scratch);
  REQUIRE_MESSAGE(!r.ok(), "evaluated unexpectedly: " << src);
  return r.error().message;
}

inline double num(std::string_view src, const Env &env = {}) {
  auto r = run(src, env);
  REQUIRE_MESSAGE(r.ok(), src << ": " << (r.ok() ? "" : r.error().message));
  REQUIRE_MESSAGE(r.value().type == Type::number, src << " is " << type_name(r.value().type));
  return r.value().n;
}

inline bool boolean(std::string_view src, const Env &env = {}) {
  auto r = run(src, env);
  REQUIRE_MESSAGE(r.ok(), src << ": " << (r.ok() ? "" : r.error().message));
  REQUIRE_MESSAGE(r.value().type == Type::boolean, src << " is " << type_name(r.value().type));
  return r.value().b;
}

inline std::string str(std::string_view src, const Env &env = {}) {
  auto r = run(src, env);
  REQUIRE_MESSAGE(r.ok(), src << ": " << (r.ok() ? "" : r.error().message));
  REQUIRE_MESSAGE(r.value().type == Type::string, src << " is " << type_name(r.value().type));
  return std::string(r.value().s);
}

inline bool is_null(std::string_view src, const Env &env = {}) {
  auto r = run(src, env);
  REQUIRE_MESSAGE(r.ok(), src << ": " << (r.ok() ? "" : r.error().message));
  return r.value().type == Type::null;
}

}  // namespace rt
