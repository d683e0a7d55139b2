// tests/jitgen/interpreter_test_support.hpp — running .usir text through the interpreter from the
// unit tests: parse (file name t.usir, so positions read t.usir:line:col), analyze, optionally
// change decisions (to prove checked mode traps wrong ones), run. Each run starts and stops the
// runtime itself (run_program), so these tests use no runtime fixture.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/ir/ir.hpp"
#include "tests/support/time_limits.hpp"

namespace usgc::jitgen::interpreter::testing {

struct ParsedProgram {
  ir::Module module;
  escape::EscapeAnalysis analysis;
};

inline ParsedProgram parse_and_analyze(const std::string& text) {
  ir::ParseResult parsed = ir::parse_module(text, "t.usir");
  EXPECT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics) << text;
  ParsedProgram program{std::move(parsed.module), {}};
  program.analysis = escape::analyze_escapes(program.module);
  return program;
}

// The decision of the site whose position is on `line`.
inline escape::SiteDecision& site_on_line(escape::EscapeAnalysis& analysis, uint32_t line) {
  for (escape::SiteDecision& site : analysis.sites)
    if (site.position.line == line) return site;
  static escape::SiteDecision missing;
  ADD_FAILURE() << "no allocation site on line " << line;
  return missing;
}

inline RunResult run_text(const std::string& text, RunOptions options = {},
                          const std::function<void(escape::EscapeAnalysis&)>& change = {}) {
  ParsedProgram program = parse_and_analyze(text);
  if (change) change(program.analysis);
  // A hang fails, never blocks.
  if (options.time_limit_ms == 0) options.time_limit_ms = usgc::testing::kRunTimeLimitMs;
  return run_program(program.module, program.analysis, options);
}

inline std::string describe(const RunResult& result) {
  return std::string(run_status_name(result.status)) + ": " + result.message;
}

}  // namespace usgc::jitgen::interpreter::testing
