// tests/runtime/goroutine_stack_test.cpp — the goroutine stack pool: guards without a mapping
// each (MADV_GUARD_INSTALL), the mprotect fallback, the few-pages invariant of pooled stacks, the
// pool's bound, and the retirement of chunks after a reconfiguration.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kernel_iface/decommit_queue.hpp"
#include "kernel_iface/guard_region.hpp"
#include "kernel_iface/process_info.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "runtime/goroutine_stack.hpp"

namespace usgc::runtime {
namespace {

size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  size_t count = 0;
  while (std::getline(maps, line)) ++count;
  return count;
}

uint64_t resident_bytes() {
  kernel::Result<uint64_t> resident = kernel::read_resident_bytes();
  EXPECT_TRUE(resident.ok()) << "errno " << resident.error();
  return resident.value();
}

void touch_every_page(const GoroutineStack& stack) {
  const size_t page = kernel::os_page_size();
  for (uint8_t* p = stack.base + stack.guard_bytes; p < stack.top(); p += page) *p = 1;
}

// Releasing through the pool queues MADV_DONTNEED; this makes it happen before we look.
void wait_for_decommits() {
  kernel::DecommitQueue& queue = kernel::DecommitQueue::process();
  const size_t page = kernel::os_page_size();
  kernel::Result<void*> scratch = kernel::map_aligned(page, page);
  ASSERT_TRUE(scratch.ok());
  // Tickets complete in order: waiting for a newer one waits for every queued decommit.
  queue.wait(queue.enqueue(scratch.value(), page));
  EXPECT_TRUE(kernel::unmap(scratch.value(), page).ok());
}

class StackPoolTest : public ::testing::Test {
 protected:
  void TearDown() override { stack_pool_configure(64 * 1024, 16 * 1024); }
};

TEST_F(StackPoolTest, GuardRegionProbeMatchesTheKernel) {
  if (!kernel::guard_regions_supported()) {
    EXPECT_EQ(kernel::guard_regions_probe_error(), EINVAL) << "a kernel before 6.13 says EINVAL";
    GTEST_SKIP() << "kernel without MADV_GUARD_INSTALL (probe errno "
                 << kernel::guard_regions_probe_error() << ")";
  }
  EXPECT_EQ(kernel::guard_regions_probe_error(), 0);
  stack_pool_configure(16 * 1024, 4096);
  EXPECT_TRUE(stack_pool_counters().guard_regions);
  stack_pool_configure(16 * 1024, 4096, StackGuardMode::kMprotect);
  EXPECT_FALSE(stack_pool_counters().guard_regions);
}

// Acquires `count` stacks (touching their top), returns how many mappings that added.
size_t mappings_added_by_stacks(size_t count, std::vector<GoroutineStack>* stacks) {
  size_t before = mapping_count();
  for (size_t i = 0; i < count; ++i) {
    kernel::Result<GoroutineStack> stack = stack_acquire();
    EXPECT_TRUE(stack.ok()) << "stack " << i << ": errno " << stack.error();
    if (!stack.ok()) break;
    stack.value().top()[-1] = 1;
    stacks->push_back(stack.value());
  }
  size_t after = mapping_count();
  return after > before ? after - before : 0;
}

TEST_F(StackPoolTest, TwoThousandStacksAddAHandfulOfMappingsWithGuardRegions) {
  if (!kernel::guard_regions_supported()) GTEST_SKIP() << "kernel without MADV_GUARD_INSTALL";
  stack_pool_configure(16 * 1024, 4096);
  std::vector<GoroutineStack> stacks;
  size_t added = mappings_added_by_stacks(2000, &stacks);
  EXPECT_LE(added, 4u) << "guard regions must not split the chunk";
  for (const GoroutineStack& stack : stacks) stack_release(stack);
  stack_pool_drain();
  EXPECT_EQ(stack_pool_counters().chunks, 0u);
}

TEST_F(StackPoolTest, MprotectFallbackKeepsTwoMappingsPerStack) {
  stack_pool_configure(16 * 1024, 4096, StackGuardMode::kMprotect);
  std::vector<GoroutineStack> stacks;
  size_t added = mappings_added_by_stacks(500, &stacks);
  EXPECT_GE(added, 2 * 500u - 2) << "each PROT_NONE guard splits the chunk";
  for (const GoroutineStack& stack : stacks) stack_release(stack);
  stack_pool_drain();
}

void write_below_stack(const GoroutineStack& stack) {
  // The highest guard byte: what an overflowing push writes first.
  *reinterpret_cast<volatile uint8_t*>(stack.base + stack.guard_bytes - 1) = 1;
}

TEST(StackPoolDeathTest, GuardRegionHitIsSegvAtTheGuardAddress) {
  if (!kernel::guard_regions_supported()) GTEST_SKIP() << "kernel without MADV_GUARD_INSTALL";
  EXPECT_EXIT(
      {
        stack_pool_configure(16 * 1024, 4096);
        GoroutineStack stack = stack_acquire().value();
        static GoroutineStack s_stack;
        s_stack = stack;
        struct sigaction action;
        std::memset(&action, 0, sizeof action);
        action.sa_flags = SA_SIGINFO;
        action.sa_sigaction = [](int, siginfo_t* info, void*) {
          // The fault handler recognizes an overflow by si_addr inside the guard.
          const char* verdict =
              s_stack.guard_contains(info->si_addr) ? "in guard\n" : "elsewhere\n";
          (void)!write(2, verdict, strlen(verdict));
          _exit(3);
        };
        sigaction(SIGSEGV, &action, nullptr);
        write_below_stack(stack);
        _exit(0);
      },
      ::testing::ExitedWithCode(3), "in guard");
}

TEST_F(StackPoolTest, ReleasedStacksKeepAtMostTheirTopPagesAndThePoolIsBounded) {
  constexpr size_t kStackBytes = 128 * 1024;
  constexpr size_t kStacks = 800;  // well past kMaxWarmStacks
  stack_pool_configure(kStackBytes, 4096);
  std::vector<GoroutineStack> stacks;
  for (size_t i = 0; i < kStacks; ++i) {
    kernel::Result<GoroutineStack> stack = stack_acquire();
    ASSERT_TRUE(stack.ok()) << "errno " << stack.error();
    stacks.push_back(stack.value());
  }
  uint64_t before_touch = resident_bytes();
  for (const GoroutineStack& stack : stacks) touch_every_page(stack);
  uint64_t touched = resident_bytes();
  ASSERT_GE(touched - before_touch, kStacks * kStackBytes * 9 / 10);
  for (const GoroutineStack& stack : stacks) stack_release(stack);
  wait_for_decommits();
  StackPoolCounters counters = stack_pool_counters();
  EXPECT_EQ(counters.warm, kMaxWarmStacks);
  EXPECT_EQ(counters.cold, kStacks - kMaxWarmStacks);
  EXPECT_EQ(counters.live, 0u);
  uint64_t released = resident_bytes();
  uint64_t kept = kMaxWarmStacks * kKeptResidentBytes;
  EXPECT_LE(released, before_touch + kept + 4 * 1024 * 1024)
      << "touched " << (touched - before_touch) / 1024 << " KiB; after release "
      << (static_cast<int64_t>(released) - static_cast<int64_t>(before_touch)) / 1024 << " KiB";
  // Reused stacks read as zero below the kept pages, and work.
  for (size_t i = 0; i < kStacks; ++i) {
    GoroutineStack stack = stack_acquire().value();
    ASSERT_EQ(stack.base[stack.guard_bytes], 0) << "stack " << i << " was not decommitted";
    stacks[i] = stack;
  }
  EXPECT_EQ(stack_pool_counters().carved, counters.carved) << "reuse carves nothing new";
  for (const GoroutineStack& stack : stacks) stack_release(stack);
}

TEST_F(StackPoolTest, AReconfigurationRetiresChunksUntilTheirLastStackReturns) {
  stack_pool_configure(16 * 1024, 4096);
  GoroutineStack old_stack = stack_acquire().value();
  uint64_t unmapped = stack_pool_counters().chunks_unmapped;
  stack_pool_configure(32 * 1024, 4096);
  GoroutineStack new_stack = stack_acquire().value();
  EXPECT_EQ(new_stack.usable_bytes, 32 * 1024u);
  EXPECT_NE(new_stack.chunk_index, old_stack.chunk_index);
  EXPECT_EQ(stack_pool_counters().chunks_unmapped, unmapped) << "a live stack keeps its chunk";
  stack_release(old_stack);
  EXPECT_EQ(stack_pool_counters().chunks_unmapped, unmapped + 1);
  stack_release(new_stack);
}

}  // namespace
}  // namespace usgc::runtime
