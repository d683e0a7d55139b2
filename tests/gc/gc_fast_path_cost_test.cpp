// tests/gc/gc_fast_path_cost_test.cpp — exact instruction counts of the GC's inline fast paths
// (ptrace single-step, tests/support/single_step.hpp; no perf counters needed): the private
// allocation bump (usgc_alloc_private_fast), the write barrier's same-goroutine store (object
// and value private; value null), and a shadow-stack frame push + pop. The child attaches its
// main thread as a goroutine (the traced thread must be the one running the regions).
// In -fPIC code the TLS offset of usgc_current_mutator costs one extra `mov $off, %reg`, as for
// the safepoint poll (tests/safepoint/poll_cost_test.cpp). A change that makes a fast path bigger
// fails here; the figures are printed as RESULT lines for docs/benchmarks.md.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>

#include "tests/support/single_step.hpp"
#include "usgc/usgc.h"

namespace {

struct Pair {
  void* first;
  void* second;
};

usgc_type_layout g_layout;
Pair* g_target;
Pair* g_value;

[[gnu::noinline]] void region_private_allocation() {
  asm volatile("int3" ::: "memory");
  void* object = usgc_alloc_private_fast(&g_layout);
  asm volatile("int3" ::: "memory");
  asm volatile("" : : "r"(object));
}

// What a JIT emits: the layout is a constant of the generated code. The child's first registered
// type is id 3 (1 and 2 are built in) and a two-reference object takes the 24-byte class (index 1);
// the child checks that the registry agrees before running this region.
constexpr usgc_type_layout kConstantLayout = {
    1, 24, USGC_GOROUTINE_PRIVATE | (uint64_t{3} << USGC_HEADER_TYPE_SHIFT)};

[[gnu::noinline]] void region_private_allocation_constant_layout() {
  asm volatile("int3" ::: "memory");
  void* object = usgc_alloc_private_fast(&kConstantLayout);
  asm volatile("int3" ::: "memory");
  asm volatile("" : : "r"(object));
}

[[gnu::noinline]] void region_barrier_private(Pair* target, Pair* value) {
  asm volatile("int3" ::: "memory");
  usgc_write(target, &target->first, value);
  asm volatile("int3" ::: "memory");
}

[[gnu::noinline]] void region_barrier_null(Pair* target) {
  asm volatile("int3" ::: "memory");
  usgc_write(target, &target->second, nullptr);
  asm volatile("int3" ::: "memory");
}

[[gnu::noinline]] void region_frame() {
  void* slots[2] = {nullptr, nullptr};
  usgc_frame frame = {nullptr, slots, 2, nullptr};
  asm volatile("int3" ::: "memory");
  usgc_frame_push(&frame);
  usgc_frame_pop(&frame);
  asm volatile("int3" ::: "memory");
}

void child_main() {
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(3);
  usgc_config config;
  if (usgc_config_from_environment(&config) != 0) _exit(4);
  config.procs = 1;
  if (usgc_init(&config) != 0 || usgc_attach_thread() != 0) _exit(5);
  size_t offsets[] = {offsetof(Pair, first), offsetof(Pair, second)};
  usgc_type_info info = {"Pair", USGC_KIND_OBJECT, sizeof(Pair), offsets, 2};
  usgc_type_id type = usgc_register_type(&info);
  if (type == 0 || usgc_type_layout_of(type, &g_layout) != 0) _exit(6);
  USGC_ROOTS(roots, 2);
  roots[0] = g_target = static_cast<Pair*>(usgc_alloc(type, USGC_GOROUTINE_PRIVATE));
  roots[1] = g_value = static_cast<Pair*>(usgc_alloc(type, USGC_GOROUTINE_PRIVATE));
  if (g_target == nullptr || g_value == nullptr) _exit(7);
  // The constant layout must be Pair's size class; its header bits are only a value stored (type
  // ids depend on what the tests before registered: the child is a fork of the test process).
  if (g_layout.size_class != kConstantLayout.size_class ||
      g_layout.slot_bytes != kConstantLayout.slot_bytes) {
    _exit(8);
  }
  raise(SIGSTOP);
  region_private_allocation();  // the run has room: the previous allocation took one
  region_private_allocation_constant_layout();
  region_barrier_private(g_target, g_value);
  region_barrier_null(g_target);
  region_frame();
  _exit(0);
}

// Budgets: what the compiler makes of usgc/gc.h today (g++ 12 -O2 -fPIC), counted by this test.
constexpr long kPrivateAllocationBudget = 16;          // layout read from memory (3 loads)
constexpr long kPrivateAllocationConstantBudget = 12;  // layout constant, as a JIT emits it
constexpr long kBarrierPrivateBudget = 10;
constexpr long kBarrierNullBudget = 6;
constexpr long kFrameBudget = 12;

TEST(GcFastPathCost, FastPathsStayWithinTheirInstructionBudgets) {
#if defined(USGC_DEBUG) && USGC_DEBUG
  GTEST_SKIP()
      << "the budgets are for optimized release builds; this is a checked build (USGC_DEBUG)";
#endif
  using namespace usgc::testing;
  std::string why;
  pid_t child = start_traced_child(child_main, &why);
  if (child < 0) GTEST_SKIP() << why;
  long counts[5] = {-1, -1, -1, -1, -1};
  for (long& count : counts) {
    if (wait_for_breakpoint(child)) count = count_to_next_breakpoint(child);
  }
  finish_traced_child(child);
  const char* names[5] = {"private_alloc_fast", "private_alloc_fast_constant_layout",
                          "barrier_same_goroutine", "barrier_null_value", "frame_push_pop"};
  for (int i = 0; i < 5; ++i) {
    std::printf(
        "RESULT suite=gc case=%s impl=usgc metric=instructions value=%ld unit=instructions\n",
        names[i], counts[i]);
  }
  EXPECT_GE(counts[0], 3);
  EXPECT_LE(counts[0], kPrivateAllocationBudget) << "the private allocation fast path grew";
  EXPECT_GE(counts[1], 3);
  EXPECT_LE(counts[1], kPrivateAllocationConstantBudget)
      << "the private allocation fast path (constant layout) grew";
  EXPECT_GE(counts[2], 3);
  EXPECT_LE(counts[2], kBarrierPrivateBudget) << "the same-goroutine barrier grew";
  EXPECT_GE(counts[3], 2);
  EXPECT_LE(counts[3], kBarrierNullBudget) << "the null-value barrier grew";
  EXPECT_GE(counts[4], 2);
  EXPECT_LE(counts[4], kFrameBudget) << "frame push/pop grew";
}

}  // namespace
