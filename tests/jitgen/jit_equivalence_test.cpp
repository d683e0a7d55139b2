// tests/jitgen/jit_equivalence_test.cpp — the x86-64 JIT against the interpreter: every corpus
// program's main (tests/escape/) and a sweep of seeded random programs give the same status,
// result and allocations per site and per class compiled as interpreted, also with a collection
// after every allocation (--gc-stress 1) and with 1 and 2 Ps (the random programs, whose counts
// depend on how their goroutines interleave, are compared with 1 P and run to completion with 2
// and under stress).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/compiled_module.hpp"
#include "tests/jitgen/random_usir_program.hpp"
#include "tests/jitgen/usir_test_support.hpp"
#include "tests/support/time_limits.hpp"

namespace usgc::jitgen::x86_64 {
namespace {

using interpreter::RunOptions;
using interpreter::RunResult;
using interpreter::RunStatus;

std::string describe(const RunResult& result) {
  return std::string(interpreter::run_status_name(result.status)) + ": " + result.message;
}

// Runs `module` interpreted (unchecked: compiled code makes no decision checks) and compiled
// under `options`, and expects the same outcome and counts. Returns the compiled run's result.
RunResult expect_same(const ir::Module& module, const escape::EscapeAnalysis& analysis,
                      const CompiledModule& compiled, RunOptions options) {
  options.checked = false;
  RunResult interpreted = interpreter::run_program(module, analysis, options);
  RunResult jitted = run_compiled(compiled, options);
  EXPECT_EQ(jitted.status, interpreted.status)
      << describe(jitted) << " / " << describe(interpreted);
  EXPECT_EQ(jitted.message, interpreted.message);
  EXPECT_EQ(jitted.returned_value, interpreted.returned_value);
  if (interpreted.status == RunStatus::kCompleted) {
    EXPECT_EQ(jitted.allocations_per_site, interpreted.allocations_per_site);
    EXPECT_EQ(jitted.allocations_per_class, interpreted.allocations_per_class);
    EXPECT_EQ(jitted.caller_frame_allocations, interpreted.caller_frame_allocations);
    EXPECT_EQ(jitted.goroutines_started, interpreted.goroutines_started);
  }
  return jitted;
}

TEST(JitEquivalence, EveryCorpusProgramRunsTheSameCompiledAsInterpreted) {
  size_t programs = 0;
  for (const auto& path : usgc::testing::usir_corpus_files()) {
    SCOPED_TRACE(path.filename().string());
    ir::ParseResult parsed =
        ir::parse_module(usgc::testing::read_text_file(path), path.filename().string());
    ASSERT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
    escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
    std::string error;
    CompileOptions compile_options;
    compile_options.gc_stress = true;
    auto compiled = CompiledModule::compile(parsed.module, analysis, compile_options, &error);
    ASSERT_NE(compiled, nullptr) << error;
    RunOptions options;
    options.time_limit_ms = usgc::testing::kRunTimeLimitMs;
    RunResult plain = expect_same(parsed.module, analysis, *compiled, options);
    EXPECT_EQ(plain.status, RunStatus::kCompleted) << describe(plain);
    EXPECT_TRUE(plain.returned_value.has_value());
    options.gc_stress_every = 1;
    RunResult stressed = expect_same(parsed.module, analysis, *compiled, options);
    EXPECT_GT(stressed.private_collections + stressed.shared_collections, 0u);
    options.gc_stress_every = 0;
    for (uint32_t procs : {1u, 2u}) {
      options.procs = procs;
      expect_same(parsed.module, analysis, *compiled, options);
    }
    ++programs;
  }
  EXPECT_GE(programs, 40u);
}

TEST(JitEquivalence, SeededRandomProgramsRunTheSameCompiledAsInterpreted) {
  const uint32_t seeds = 150;
  uint64_t allocations = 0, goroutines = 0;
  for (uint32_t i = 0; i < seeds; ++i) {
    random_usir::RandomUsirProgram program = random_usir::generate_random_program(0x715u + i);
    SCOPED_TRACE(program.file_name + "\n" + program.text);
    ir::ParseResult parsed = ir::parse_module(program.text, program.file_name);
    ASSERT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
    escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
    std::string error;
    CompileOptions compile_options;
    compile_options.gc_stress = i % 2 == 1;
    auto compiled = CompiledModule::compile(parsed.module, analysis, compile_options, &error);
    ASSERT_NE(compiled, nullptr) << error;
    // With one P and no preemption in sight (no stress: short runs) a program's goroutines
    // interleave the same way on every run, so its counts are a deterministic workload. With two
    // Ps, or when collections make a run long enough to be preempted, a goroutine nobody waits
    // for may or may not finish before main returns: those runs must complete, nothing more.
    // Under a heavy load a short run can outlast the preemption slice (USGC_PREEMPT_US, 10 ms),
    // and a preempted main lets such a goroutine run, or not, before it returns: the counted
    // runs turn preemption off, so one P interleaves the goroutines the same way every time.
    RunOptions options;
    options.time_limit_ms = usgc::testing::kRunTimeLimitMs;
    options.procs = 1;
    const char* preempt = std::getenv("USGC_PREEMPT_US");
    const std::string saved_preempt = preempt != nullptr ? preempt : "";
    setenv("USGC_PREEMPT_US", "0", 1);
    RunResult result = expect_same(parsed.module, analysis, *compiled, options);
    if (preempt != nullptr) {
      setenv("USGC_PREEMPT_US", saved_preempt.c_str(), 1);
    } else {
      unsetenv("USGC_PREEMPT_US");
    }
    EXPECT_EQ(result.status, RunStatus::kCompleted) << describe(result);
    options.procs = 2;
    if (i % 2 == 1) options.gc_stress_every = 1;
    RunResult parallel = run_compiled(*compiled, options);
    EXPECT_EQ(parallel.status, RunStatus::kCompleted) << "with 2 Ps: " << describe(parallel);
    allocations += result.total_allocations();
    goroutines += result.goroutines_started;
  }
  EXPECT_GT(allocations, 0u);
  EXPECT_GT(goroutines, 0u) << "the sweep spawns goroutines";
}

}  // namespace
}  // namespace usgc::jitgen::x86_64
