// tests/safepoint/poll_cost_test.cpp — the safepoint polls' exact instruction counts (ptrace
// single-step; no perf counters needed). In position-independent code (all of usgc's build is
// -fPIC) the compiler materializes the TLS offset of usgc_current_poll in a register first
// (the linker relaxes the GOT load to `mov $offset, %rax`), so:
//   page poll: mov $off,%rax; mov %fs:(%rax),%rax; testb $0,(%rax)     3 instructions
//   flag poll: mov $off,%rax; mov %fs:8(%rax),%eax; test; jne          4 instructions
// Code with the offset as an immediate (non-PIC executables, the JIT) saves the first one:
// `mov %fs:off,%rax; testb $0,(%rax)`. Either way one load touches the page. A change that
// makes a poll bigger fails here. (The poll ABI's offsets are static_asserts in usgc/safepoint.h.)
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/support/single_step.hpp"
#include "usgc/safepoint.h"

namespace {

[[gnu::noinline]] void region_page_poll() {
  asm volatile("int3" ::: "memory");
  usgc_safepoint_poll();
  asm volatile("int3" ::: "memory");
}

[[gnu::noinline]] void region_flag_poll() {
  asm volatile("int3" ::: "memory");
  usgc_safepoint_poll_flag();
  asm volatile("int3" ::: "memory");
}

void child_main() {
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(3);
  raise(SIGSTOP);
  region_page_poll();
  region_flag_poll();
}

constexpr long kPagePollBudget = 3;
constexpr long kFlagPollBudget = 4;

TEST(SafepointPollCost, PollsStayWithinTheirInstructionBudgets) {
#if defined(USGC_DEBUG) && USGC_DEBUG
  GTEST_SKIP()
      << "the budgets are for optimized release builds; this is a checked build (USGC_DEBUG)";
#endif
  using namespace usgc::testing;
  std::string why;
  pid_t child = start_traced_child(child_main, &why);
  if (child < 0) GTEST_SKIP() << why;
  long page_poll = -1, flag_poll = -1;
  if (wait_for_breakpoint(child)) page_poll = count_to_next_breakpoint(child);
  if (wait_for_breakpoint(child)) flag_poll = count_to_next_breakpoint(child);
  finish_traced_child(child);
  std::printf(
      "RESULT suite=safepoint case=page_poll impl=usgc metric=instructions value=%ld "
      "unit=instructions\n",
      page_poll);
  std::printf(
      "RESULT suite=safepoint case=flag_poll impl=usgc metric=instructions value=%ld "
      "unit=instructions\n",
      flag_poll);
  EXPECT_GE(page_poll, 1);
  EXPECT_LE(page_poll, kPagePollBudget) << "the page poll grew";
  EXPECT_GE(flag_poll, 2);
  EXPECT_LE(flag_poll, kFlagPollBudget) << "the flag poll grew";
}

}  // namespace
