// Flow documents -> programs. Validation rejects a bad document whole and reports every
// problem with its JSON Pointer, line/column and reason. Format: docs/flows.md.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "flow/program.h"

namespace ivr::flow {

struct Problem {
  std::string pointer;  // JSON Pointer of the offending value ("" = the document)
  uint32_t line = 0, column = 0;
  std::string message;
};

// "line 3, column 7: /nodes/menu/next: no node named \"x\""
std::string format_problem(const Problem &p);

struct CompileOptions {
  // When not empty, prompt files given literally must exist in this directory.
  std::string prompt_dir;
  // Verbs the host registered (custom verbs). Any other unknown verb is a problem.
  std::set<std::string, std::less<>> custom_verbs;
};

struct CompileResult {
  std::shared_ptr<const Program> program;  // null when there are problems
  std::vector<Problem> problems;           // in document order
};

CompileResult compile(std::string_view document, const CompileOptions &options = {});

// Verbs of later releases: accepted names, rejected as not available yet.
bool is_reserved_verb(std::string_view verb);
// Built-in and reserved verbs: names a host cannot register as custom verbs.
bool is_builtin_verb(std::string_view verb);

// Limits applied by the validator.
inline constexpr size_t kMaxNodes = 10000;
inline constexpr unsigned kMaxRetries = 10;
inline constexpr unsigned kMaxDigits = 64;
inline constexpr uint32_t kMaxTimeoutMs = 600000;

}  // namespace ivr::flow
