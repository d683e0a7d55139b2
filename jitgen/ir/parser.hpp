// jitgen/ir/parser.hpp — the .usir parser: text -> Module plus diagnostics (docs/usir.md).
//
// A hand-written recursive-descent parser over the lexer's tokens. It never throws and never
// fails to return: malformed input yields diagnostics, each `file:line:col: message` saying what
// was expected and what was found.
//
// Invariants:
//   * the recovery rule: after an error inside a function body the parser skips to the next line
//     (instructions are one per line) and goes on; after an error in a declaration (`type`,
//     `global`, a function header) it skips lines until the next line that starts a declaration.
//     So one run reports several independent errors, up to the diagnostic cap (diagnostics.hpp).
//   * bounded work: every loop consumes at least one token per iteration and type nesting is
//     limited (kMaximumTypeNesting), so any input parses in time linear in its size and in
//     bounded stack.
//   * the semantic pass is verify() (verifier.hpp), run only when the text had no syntax error
//     (as Go's compiler does: type errors in half-parsed code are mostly noise). A clean
//     ParseResult therefore holds a verified module (the resolution invariant of module.hpp).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "jitgen/ir/diagnostics.hpp"
#include "jitgen/ir/module.hpp"

namespace usgc::jitgen::ir {

inline constexpr int kMaximumTypeNesting = 32;

struct ParseResult {
  Module module;
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return diagnostics.empty(); }
};

// `file_name` is only used in diagnostics and kept in the module.
[[gnu::visibility("default")]] ParseResult parse_module(
    std::string_view source, std::string file_name,
    size_t diagnostic_limit = kDefaultDiagnosticLimit);

}  // namespace usgc::jitgen::ir
