// tests/jitgen/jit_register_cache_test.cpp — the compiled code around the stubs: liveness
// (jitgen/x86_64/liveness.hpp), locals kept in registers within a block with every live
// reference in its root slot wherever a collection can happen (register_cache.hpp), compares
// fused with their branch, and allocation counters compiled only when asked for.
#include <gtest/gtest.h>

#include <string>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/compiled_module.hpp"
#include "jitgen/x86_64/liveness.hpp"

namespace usgc::jitgen::x86_64 {
namespace {

// sum: a counted loop (the compare only the branch reads, an accumulator live around the loop).
// churn: references live in registers across allocations (the refill and --gc-stress collect
// there) and across calls; the result depends on every one of them surviving.
constexpr const char* kProgram = R"(type Node { v: int, next: *Node }

func sum(%n: int) -> int {
  var %i: int
  var %total: int
  var %more: bool
entry:
  %i = 0
  %total = 0
  jmp head
head:
  %more = lt %i, %n
  br %more, body, done
body:
  %total = add %total, %i
  %i = add %i, 1
  jmp head
done:
  ret %total
}

func cell(%v: int, %next: *Node) -> *Node {
  var %c: *Node
entry:
  %c = new Node
  store %c.v, %v
  store %c.next, %next
  ret %c
}

func churn(%n: int) -> int {
  var %a: *Node
  var %b: *Node
  var %c: *Node
  var %i: int
  var %more: bool
  var %x: int
  var %y: int
  var %total: int
entry:
  %a = null
  %total = 0
  %i = 0
  jmp head
head:
  %more = lt %i, %n
  br %more, body, done
body:
  %b = new Node
  store %b.v, %i
  %c = new Node
  store %c.v, 7
  store %b.next, %c
  store %c.next, %a
  %a = call cell(%i, %b)
  %x = load %b.v
  %c = load %b.next
  %y = load %c.v
  %total = add %total, %x
  %total = add %total, %y
  %i = add %i, 1
  jmp head
done:
  %x = call length(%a)
  %total = add %total, %x
  ret %total
}

func length(%list: *Node) -> int {
  var %count: int
  var %end: bool
  var %node: *Node
entry:
  %count = 0
  %node = %list
  jmp head
head:
  %end = eq %node, null
  br %end, done, body
body:
  %count = add %count, 1
  %node = load %node.next
  jmp head
done:
  ret %count
}

func main() -> int {
  var %s: int
  var %t: int
entry:
  %s = call sum(100)
  %t = call churn(3000)
  %s = add %s, %t
  ret %s
}
)";

struct Program {
  ir::Module module;
  escape::EscapeAnalysis analysis;
};

Program parse_program() {
  ir::ParseResult parsed = ir::parse_module(kProgram, "cache.usir");
  EXPECT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
  Program program{std::move(parsed.module), {}};
  program.analysis = escape::analyze_escapes(program.module);
  return program;
}

uint32_t function_index(const ir::Module& module, const std::string& name) {
  for (uint32_t f = 0; f < module.functions.size(); ++f)
    if (module.functions[f].name == name) return f;
  ADD_FAILURE() << "no function " << name;
  return 0;
}

uint32_t local_index(const ir::Function& function, const std::string& name) {
  for (uint32_t l = 0; l < function.locals.size(); ++l)
    if (function.locals[l].name == name) return l;
  ADD_FAILURE() << "no local %" << name;
  return 0;
}

TEST(JitLiveness, ALocalIsLiveUntilItsLastReadAndAcrossTheLoop) {
  Program program = parse_program();
  const ir::Function& sum = program.module.functions[function_index(program.module, "sum")];
  FunctionLiveness liveness(sum);
  const uint32_t i = local_index(sum, "i"), total = local_index(sum, "total"),
                 more = local_index(sum, "more"), n = local_index(sum, "n");
  // head (block 1): `%more = lt %i, %n` then `br %more, body, done`.
  EXPECT_TRUE(liveness.live_after(1, 0, more));   // the branch reads it
  EXPECT_FALSE(liveness.live_after(1, 1, more));  // nothing after the branch does
  EXPECT_TRUE(liveness.live_after(1, 1, total));  // read in done and in body
  EXPECT_TRUE(liveness.live_after(1, 1, i));      // read in body (the loop)
  // body (block 2): `%total = add %total, %i`, `%i = add %i, 1`, `jmp head`.
  EXPECT_TRUE(liveness.live_after(2, 0, i));
  EXPECT_TRUE(liveness.live_after(2, 2, n));  // the loop reads %n again
  // done (block 3): `ret %total`: nothing is live after it.
  EXPECT_FALSE(liveness.live_after(3, 0, total));
  EXPECT_TRUE(liveness.live_at_entry(n));  // a parameter
  EXPECT_FALSE(liveness.live_at_entry(i));
}

TEST(JitRegisterCache, ACompareOnlyItsBranchReadsIsACompareAndJump) {
  Program program = parse_program();
  std::string error;
  auto compiled = CompiledModule::compile(program.module, program.analysis, {}, &error);
  ASSERT_NE(compiled, nullptr) << error;
  // sum's lines: from its header ("sum: N bytes at ...") to the next unindented line.
  std::string listing = compiled->disassemble(), sum;
  bool inside = false;
  for (size_t at = 0; at < listing.size();) {
    size_t end = listing.find('\n', at);
    if (end == std::string::npos) end = listing.size();
    std::string line = listing.substr(at, end - at);
    at = end + 1;
    if (!line.empty() && line[0] != ' ') inside = line.rfind("sum:", 0) == 0;
    if (inside) sum += line + "\n";
  }
  ASSERT_FALSE(sum.empty()) << listing;
  EXPECT_EQ(sum.find("set"), std::string::npos) << "no setcc in sum:\n" << sum;
  EXPECT_NE(sum.find("jge"), std::string::npos) << "the loop's exit is a jge:\n" << sum;
}

// Every run of kProgram, compiled with and without --gc-stress, with 1 and 2 Ps, returns what the
// interpreter returns: the references churn keeps in registers survive the refills, the
// collections at each allocation and the calls.
TEST(JitRegisterCache, ReferencesInRegistersSurviveCollectionsAtEveryAllocation) {
  Program program = parse_program();
  interpreter::RunOptions options;
  interpreter::RunResult interpreted =
      interpreter::run_program(program.module, program.analysis, options);
  ASSERT_EQ(interpreted.status, interpreter::RunStatus::kCompleted) << interpreted.message;
  for (bool stress : {false, true}) {
    CompileOptions compile_options;
    compile_options.gc_stress = stress;
    std::string error;
    auto compiled =
        CompiledModule::compile(program.module, program.analysis, compile_options, &error);
    ASSERT_NE(compiled, nullptr) << error;
    for (uint32_t procs : {1u, 2u}) {
      interpreter::RunOptions run = options;
      run.procs = procs;
      run.gc_stress_every = stress ? 1 : 0;
      interpreter::RunResult jitted = run_compiled(*compiled, run);
      ASSERT_EQ(jitted.status, interpreter::RunStatus::kCompleted)
          << jitted.message << " (stress " << stress << ", procs " << procs << ")";
      EXPECT_EQ(jitted.returned_value, interpreted.returned_value)
          << "stress " << stress << ", procs " << procs;
      EXPECT_EQ(jitted.allocations_per_site, interpreted.allocations_per_site);
    }
  }
}

TEST(JitRegisterCache, CountersAreCompiledOnlyWhenCountsAreWanted) {
  Program program = parse_program();
  CompileOptions counting, not_counting;
  not_counting.count_allocations = false;
  std::string error;
  auto counted = CompiledModule::compile(program.module, program.analysis, counting, &error);
  ASSERT_NE(counted, nullptr) << error;
  auto uncounted = CompiledModule::compile(program.module, program.analysis, not_counting, &error);
  ASSERT_NE(uncounted, nullptr) << error;
  EXPECT_NE(counted->disassemble().find("inc qword ptr [r13"), std::string::npos);
  EXPECT_EQ(uncounted->disassemble().find("inc qword ptr [r13"), std::string::npos);
  interpreter::RunOptions options;
  interpreter::RunResult with = run_compiled(*counted, options);
  interpreter::RunResult without = run_compiled(*uncounted, options);
  ASSERT_EQ(with.status, interpreter::RunStatus::kCompleted) << with.message;
  ASSERT_EQ(without.status, interpreter::RunStatus::kCompleted) << without.message;
  EXPECT_EQ(with.returned_value, without.returned_value);
  uint64_t counted_total = 0, uncounted_total = 0;
  for (uint64_t n : with.allocations_per_site) counted_total += n;
  for (uint64_t n : without.allocations_per_site) uncounted_total += n;
  EXPECT_EQ(counted_total, 2u * 3000u + 3000u);  // churn: b, c and cell's c per iteration
  EXPECT_EQ(uncounted_total, 0u);
}

}  // namespace
}  // namespace usgc::jitgen::x86_64
