// tests/jitgen/escape_corpus_run_test.cpp — the corpus (tests/escape/) run by the interpreter in
// checked mode: every program ends with a `main` that drives its functions, and the run proves
// the analysis' decisions on it — no trap, with collections after every allocation too — and that
// the program is a deterministic workload (same result and same allocations per site on every
// run), which the dynamic-share benchmark (bench/escape_dynamic.sh) relies on.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/ir/ir.hpp"
#include "tests/jitgen/usir_test_support.hpp"
#include "tests/support/time_limits.hpp"

namespace usgc::jitgen::interpreter {
namespace {

struct CorpusProgram {
  ir::Module module;
  escape::EscapeAnalysis analysis;
};

CorpusProgram load(const std::filesystem::path& path) {
  ir::ParseResult parsed =
      ir::parse_module(usgc::testing::read_text_file(path), path.filename().string());
  EXPECT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
  CorpusProgram program{std::move(parsed.module), {}};
  program.analysis = escape::analyze_escapes(program.module);
  return program;
}

bool has_main(const ir::Module& module) {
  for (const ir::Function& function : module.functions)
    if (function.name == "main") return true;
  return false;
}

std::string describe(const RunResult& result) {
  return std::string(run_status_name(result.status)) + ": " + result.message;
}

TEST(EscapeCorpusRun, EveryProgramHasAMainThatRunsCleanInCheckedMode) {
  size_t programs = 0;
  uint64_t allocations = 0;
  for (const auto& path : usgc::testing::usir_corpus_files()) {
    SCOPED_TRACE(path.filename().string());
    CorpusProgram program = load(path);
    if (!has_main(program.module)) {
      ADD_FAILURE() << path.filename() << " has no main: every corpus program is runnable";
      continue;
    }
    RunOptions options;
    options.time_limit_ms = usgc::testing::kRunTimeLimitMs;
    RunResult first = run_program(program.module, program.analysis, options);
    ASSERT_EQ(first.status, RunStatus::kCompleted) << describe(first);
    ASSERT_TRUE(first.returned_value.has_value()) << "main returns a checksum";
    EXPECT_GT(first.total_allocations(), 0u);

    RunResult again = run_program(program.module, program.analysis, options);
    ASSERT_EQ(again.status, RunStatus::kCompleted) << describe(again);
    EXPECT_EQ(again.returned_value, first.returned_value);
    EXPECT_EQ(again.allocations_per_site, first.allocations_per_site) << "a deterministic workload";

    options.gc_stress_every = 1;
    RunResult stressed = run_program(program.module, program.analysis, options);
    ASSERT_EQ(stressed.status, RunStatus::kCompleted)
        << "with a collection after every allocation: " << describe(stressed);
    EXPECT_EQ(stressed.returned_value, first.returned_value);
    EXPECT_EQ(stressed.allocations_per_site, first.allocations_per_site);
    EXPECT_GT(stressed.private_collections + stressed.shared_collections, 0u);
    ++programs;
    allocations += first.total_allocations();
  }
  EXPECT_GE(programs, 40u);
  RecordProperty("programs", static_cast<int>(programs));
  RecordProperty("allocations", static_cast<int>(allocations));
}

}  // namespace
}  // namespace usgc::jitgen::interpreter
