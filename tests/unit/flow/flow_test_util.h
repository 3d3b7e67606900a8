#pragma once

#include <doctest/doctest.h>

#include <string>

#include "flow/compiler.h"
#include "flow/simulator.h"

namespace flowtest {

inline std::shared_ptr<const ivr::flow::Program> must_compile(const std::string &doc,
                                                              ivr::flow::CompileOptions opts = {}) {
  auto r = ivr::flow::compile(doc, opts);
  for (auto &p : r.problems) MESSAGE(ivr::flow::format_problem(p));
  REQUIRE(r.program);
  return r.program;
}

inline std::string problems_text(const std::string &doc, ivr::flow::CompileOptions opts = {}) {
  auto r = ivr::flow::compile(doc, opts);
  std::string out;
  for (auto &p : r.problems) out += ivr::flow::format_problem(p) + "\n";
  return out;
}

inline std::string path_text(const ivr::flow::SimulationResult &r) {
  std::string out;
  for (auto &n : r.path) out += (out.empty() ? "" : " > ") + n;
  return out;
}

inline std::string var(const ivr::flow::SimulationResult &r, const std::string &name) {
  for (auto &[k, v] : r.variables)
    if (k == name) return v;
  return "<unset>";
}

}  // namespace flowtest
