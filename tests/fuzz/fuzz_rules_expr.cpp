// Fuzzes the rule expression compiler and evaluator: compile arbitrary text with a fixed
// resolver; when it compiles, evaluate it over fixed bindings with a small scratch buffer.
// Checks: compile errors are Errc::parse and start with "column N: " where N is within the
// input; evaluation never crashes and string results stay inside the scratch buffer, the
// source, or the bindings.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rules/expr.h"

namespace {

using namespace ivr::rules;

[[noreturn]] void fail(const char *what, const std::string &detail) {
  std::fprintf(stderr, "fuzz_rules_expr: %s: %s\n", what, detail.c_str());
  std::abort();
}

constexpr std::string_view kNames[] = {"call.from", "call.to",   "vars.name",   "vars.n",
                                       "vars.zero", "vars.flag", "vars.missing"};
constexpr uint32_t kSlots = sizeof kNames / sizeof kNames[0];

// A fixed resolver: the names above, nothing else (so the fuzzer's state never grows).
class FixedResolver : public VariableResolver {
 public:
  ivr::Result<uint32_t> resolve(std::string_view name) const override {
    for (uint32_t i = 0; i < kSlots; ++i)
      if (kNames[i] == name) return i;
    return ivr::Error{ivr::Errc::parse, "unknown variable '" + std::string(name) + "'"};
  }
};

bool inside(std::string_view s, const char *base, size_t size) {
  auto b = reinterpret_cast<uintptr_t>(base), p = reinterpret_cast<uintptr_t>(s.data());
  return p >= b && p + s.size() <= b + size;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view src(reinterpret_cast<const char *>(data), size);
  FixedResolver resolver;
  auto expr = compile(src, resolver);
  if (!expr.ok()) {
    const auto &err = expr.error();
    if (err.code != ivr::Errc::parse) fail("compile error code", err.message);
    if (err.message.rfind("column ", 0) != 0) fail("compile error without column", err.message);
    unsigned long col = std::strtoul(err.message.c_str() + 7, nullptr, 10);
    if (col < 1 || col > size + 1) fail("compile error column out of range", err.message);
    return 0;
  }
  static const char kFrom[] = "+15551234567";
  static const char kName[] = "Ada Lovelace";
  // call.to and vars.missing stay null.
  Value values[kSlots];
  values[0] = Value::string(kFrom);
  values[2] = Value::string(kName);
  values[3] = Value::number(7);
  values[4] = Value::number(0);
  values[5] = Value::boolean(true);
  char scratch[64];
  EvalContext ctx(scratch, sizeof scratch);
  auto r = evaluate(expr.value(), Bindings{values, kSlots}, ctx);
  if (!r.ok()) {
    if (r.error().message.rfind("column ", 0) != 0)
      fail("eval error without column", r.error().message);
    return 0;
  }
  const Value &v = r.value();
  if (v.type == Type::string) {
    const std::string &text = expr.value().source();
    bool ok = v.s.empty() || inside(v.s, scratch, sizeof scratch) ||
              inside(v.s, kFrom, sizeof kFrom) || inside(v.s, kName, sizeof kName) ||
              v.s == "true" || v.s == "false" || v.s.size() <= text.size();
    if (!ok) fail("string result points nowhere", std::string(v.s.substr(0, 32)));
  }
  return 0;
}
