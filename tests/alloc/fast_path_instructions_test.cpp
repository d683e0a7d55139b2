// tests/alloc/fast_path_instructions_test.cpp — counts the instructions of the malloc and free
// fast paths exactly, on any machine (no perf counters needed): a traced child runs each path
// between two int3 breakpoints and the parent single-steps it with ptrace, one instruction per
// step. The budgets are the house rule "hot paths are sacred" made checkable: a change that
// adds work to the fast path fails here and has to argue for its instructions.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "tests/support/single_step.hpp"
#include "usgc/usgc.h"

namespace {

void* volatile g_sink;

// The regions the child runs; each starts and ends with int3.
[[gnu::noinline]] void region_malloc_32() {
  asm volatile("int3");
  g_sink = usgc_malloc(32);
  asm volatile("int3");
}
[[gnu::noinline]] void region_free_32() {
  void* p = g_sink;
  asm volatile("int3" ::: "memory");
  usgc_free(p);
  asm volatile("int3");
}

struct Counts {
  long malloc_instructions = -1;
  long free_instructions = -1;
};

// Runs in the child: warm the heap (so the page of 32-byte blocks exists and has free blocks),
// then run each region once under the parent's single-stepping.
void child_main() {
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(3);
  raise(SIGSTOP);
  void* warm[64];
  for (void*& p : warm) p = usgc_malloc(32);
  for (int i = 0; i < 32; ++i) usgc_free(warm[i]);  // leaves a non-full page with free blocks
  region_malloc_32();
  region_free_32();
  _exit(0);
}

bool measure(Counts* counts, std::string* why) {
  using namespace usgc::testing;
  pid_t child = start_traced_child(child_main, why);
  if (child < 0) return false;
  bool ok = wait_for_breakpoint(child);
  if (ok) counts->malloc_instructions = count_to_next_breakpoint(child);
  ok = ok && wait_for_breakpoint(child);
  if (ok) counts->free_instructions = count_to_next_breakpoint(child);
  finish_traced_child(child);
  if (!ok) *why = "single-stepping the child failed";
  return ok;
}

// Budgets include the call and return of the exported usgc_* function and the region's own
// store of the result (2-3 instructions). Measured at the time of writing: see docs/benchmarks.md.
constexpr long kMallocBudget = 25;
constexpr long kFreeBudget = 25;

TEST(FastPathInstructions, MallocAndFreeFastPathsStayWithinTheirBudgets) {
#if defined(USGC_DEBUG) && USGC_DEBUG
  GTEST_SKIP()
      << "the budgets are for optimized release builds; this is a checked build (USGC_DEBUG)";
#endif
  Counts counts;
  std::string why;
  if (!measure(&counts, &why)) GTEST_SKIP() << why;
  std::printf(
      "RESULT suite=fast_path case=malloc_32 impl=usgc metric=instructions value=%ld "
      "unit=instructions\n",
      counts.malloc_instructions);
  std::printf(
      "RESULT suite=fast_path case=free_32 impl=usgc metric=instructions value=%ld "
      "unit=instructions\n",
      counts.free_instructions);
  EXPECT_GT(counts.malloc_instructions, 3);
  EXPECT_LE(counts.malloc_instructions, kMallocBudget) << "the malloc fast path grew";
  EXPECT_GT(counts.free_instructions, 3);
  EXPECT_LE(counts.free_instructions, kFreeBudget) << "the free fast path grew";
}

}  // namespace
