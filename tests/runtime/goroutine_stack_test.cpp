// tests/runtime/goroutine_stack_test.cpp — the goroutine stack pool: guards without a mapping
// each (MADV_GUARD_INSTALL), the mprotect fallback, the few-pages invariant of pooled stacks, the
// pool's bound, batched decommits that keep the guards, the drain (the scavenger's trim), and
// the retirement of chunks after a reconfiguration.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
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

// The resident bytes of the stacks' usable ranges (mincore): the pool's own memory and nothing
// else. The process's RSS is no measure of it: it also counts what the test binary and the
// sanitizers hold, and under ASan every touched stack page makes its shadow resident (one byte
// per 8, read by each instrumented access: a kernel that maps no zero page on a read fault, as
// the 2 vCPU test VM's does, commits a page for that read), and the shadow stays after the pool
// gives the stack page back: 10 MiB for the 100 MiB touched below.
uint64_t resident_stack_bytes(const std::vector<GoroutineStack>& stacks) {
  const size_t page = kernel::os_page_size();
  std::vector<unsigned char> residency;
  uint64_t pages = 0;
  for (const GoroutineStack& stack : stacks) {
    residency.resize(stack.usable_bytes / page);
    EXPECT_EQ(::mincore(stack.base + stack.guard_bytes, stack.usable_bytes, residency.data()), 0)
        << "errno " << errno;
    for (unsigned char resident : residency) pages += resident & 1;
  }
  return pages * page;
}

void touch_every_page(const GoroutineStack& stack) {
  const size_t page = kernel::os_page_size();
  for (uint8_t* p = stack.base + stack.guard_bytes; p < stack.top(); p += page) *p = 1;
}

// count stacks from the pool, every page of each touched.
void acquire_touched(size_t count, std::vector<GoroutineStack>* stacks) {
  for (size_t i = 0; i < count; ++i) {
    kernel::Result<GoroutineStack> stack = stack_acquire();
    ASSERT_TRUE(stack.ok()) << "errno " << stack.error();
    touch_every_page(stack.value());
    stacks->push_back(stack.value());
  }
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
  // No allocation between the two counts: under ASan a growing vector maps memory of its own.
  stacks->reserve(stacks->size() + count);
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

// For death tests: writes the highest guard byte of `stack` (what an overflowing push writes
// first) under a SIGSEGV handler that prints whether the fault's address is in that guard (the
// fault handler recognizes an overflow by si_addr inside the guard) and exits 3; exits 0 if the
// write did not fault.
[[noreturn]] void overflow_into_guard_and_exit(const GoroutineStack& stack) {
  static GoroutineStack s_stack;
  s_stack = stack;
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_flags = SA_SIGINFO;
  action.sa_sigaction = [](int, siginfo_t* info, void*) {
    const char* verdict = s_stack.guard_contains(info->si_addr) ? "in guard\n" : "elsewhere\n";
    (void)!write(2, verdict, strlen(verdict));
    _exit(3);
  };
  sigaction(SIGSEGV, &action, nullptr);
  *reinterpret_cast<volatile uint8_t*>(stack.base + stack.guard_bytes - 1) = 1;
  _exit(0);
}

TEST(StackPoolDeathTest, GuardRegionHitIsSegvAtTheGuardAddress) {
  if (!kernel::guard_regions_supported()) GTEST_SKIP() << "kernel without MADV_GUARD_INSTALL";
  EXPECT_EXIT(
      {
        stack_pool_configure(16 * 1024, 4096);
        overflow_into_guard_and_exit(stack_acquire().value());
      },
      ::testing::ExitedWithCode(3), "in guard");
}

TEST_F(StackPoolTest, ReleasedStacksKeepAtMostTheirTopPagesAndThePoolIsBounded) {
  constexpr size_t kStackBytes = 128 * 1024;
  constexpr size_t kStacks = 800;  // well past kMaxWarmStacks + kPendingStacksMax
  stack_pool_configure(kStackBytes, 4096);
  std::vector<GoroutineStack> stacks;
  for (size_t i = 0; i < kStacks; ++i) {
    kernel::Result<GoroutineStack> stack = stack_acquire();
    ASSERT_TRUE(stack.ok()) << "errno " << stack.error();
    stacks.push_back(stack.value());
  }
  uint64_t before_touch = resident_stack_bytes(stacks);
  for (const GoroutineStack& stack : stacks) touch_every_page(stack);
  uint64_t touched = resident_stack_bytes(stacks);
  ASSERT_GE(touched - before_touch, kStacks * kStackBytes * 9 / 10);
  for (const GoroutineStack& stack : stacks) stack_release(stack);
  wait_for_decommits();
  StackPoolCounters counters = stack_pool_counters();
  EXPECT_EQ(counters.warm, kMaxWarmStacks);
  EXPECT_LT(counters.pending, kPendingStacksMax) << "pending stacks are decommitted in batches";
  EXPECT_EQ(counters.cold + counters.pending, kStacks - kMaxWarmStacks);
  EXPECT_EQ(counters.live, 0u);
  // Exactly what the pool may keep: the warm stacks' top pages and the pending stacks whole.
  uint64_t released = resident_stack_bytes(stacks);
  uint64_t kept = kMaxWarmStacks * kKeptResidentBytes + counters.pending * kStackBytes;
  EXPECT_LE(released, kept) << "touched " << touched / 1024 << " KiB; after release "
                            << released / 1024 << " KiB; the pool may keep " << kept / 1024
                            << " KiB";
  // The pending ones are the last released (not yet decommitted: they may be reused as they are).
  std::vector<uint8_t*> pending_bases;
  for (size_t i = kStacks - counters.pending; i < kStacks; ++i)
    pending_bases.push_back(stacks[i].base);
  // Reused stacks read as zero below the kept pages, and work.
  for (size_t i = 0; i < kStacks; ++i) {
    GoroutineStack stack = stack_acquire().value();
    bool pending =
        std::find(pending_bases.begin(), pending_bases.end(), stack.base) != pending_bases.end();
    if (!pending) {
      ASSERT_EQ(stack.base[stack.guard_bytes], 0) << "stack " << i << " was not decommitted";
    }
    stacks[i] = stack;
  }
  EXPECT_EQ(stack_pool_counters().carved, counters.carved) << "reuse carves nothing new";
  for (const GoroutineStack& stack : stacks) stack_release(stack);
}

TEST_F(StackPoolTest, ADrainGivesBackEveryPooledPageAndUnmapsEmptyChunks) {
  constexpr size_t kStackBytes = 64 * 1024;
  constexpr size_t kStacks = 600;
  stack_pool_configure(kStackBytes, 16 * 1024);
  stack_pool_drain();
  uint64_t start = resident_bytes();
  std::vector<GoroutineStack> stacks;
  ASSERT_NO_FATAL_FAILURE(acquire_touched(kStacks, &stacks));
  EXPECT_GE(stack_pool_counters().pages_populated, kStacks - 64) << "top pages populated ahead";
  for (const GoroutineStack& stack : stacks) stack_release(stack);
  stack_pool_drain();
  wait_for_decommits();
  StackPoolCounters counters = stack_pool_counters();
  EXPECT_EQ(counters.warm + counters.pending + counters.fresh, 0u);
  EXPECT_EQ(counters.chunks, 0u) << "a chunk with no live stack is unmapped";
  uint64_t after = resident_bytes();
  EXPECT_LE(after, start + 1024 * 1024) << "touched " << kStacks * kStackBytes / 1024
                                        << " KiB; left " << (after - start) / 1024 << " KiB";
}

// A run of adjacent stacks is decommitted with one MADV_DONTNEED across their guards: the guards
// must survive it (and the coldest reused stack still overflow into its guard).
TEST(StackPoolDeathTest, GuardsSurviveTheBatchedDecommitOfAdjacentStacks) {
  if (!kernel::guard_regions_supported()) GTEST_SKIP() << "kernel without MADV_GUARD_INSTALL";
  EXPECT_EXIT(
      {
        stack_pool_configure(16 * 1024, 4096);
        std::vector<GoroutineStack> stacks;
        for (int i = 0; i < 500; ++i) {
          stacks.push_back(stack_acquire().value());
          touch_every_page(stacks.back());
        }
        for (const GoroutineStack& stack : stacks) stack_release(stack);
        stack_pool_drain();  // everything decommitted in runs; the chunk has no live stack ...
        GoroutineStack keep = stack_acquire().value();  // ... so it was unmapped: a new one
        keep.top()[-1] = 1;
        std::vector<GoroutineStack> again;
        for (int i = 0; i < 300; ++i) again.push_back(stack_acquire().value());
        for (const GoroutineStack& stack : again) stack_release(stack);
        for (int i = 0; i < 100; ++i) stack_release(stack_acquire().value());
        stack_pool_drain();  // runs decommitted while `keep` holds the chunk
        for (int i = 0; i < 299; ++i) (void)stack_acquire().value();
        GoroutineStack cold = stack_acquire().value();  // decommitted in a run with its neighbours
        if (cold.base[cold.guard_bytes] != 0) _exit(4);
        overflow_into_guard_and_exit(cold);
      },
      ::testing::ExitedWithCode(3), "in guard");
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

namespace decommit_lock {
std::atomic<uint64_t> g_decommits{0};
std::atomic<uint64_t> g_under_lock{0};
void count_decommit() {
  g_decommits.fetch_add(1);
  if (stack_pool_lock_held_for_testing()) g_under_lock.fetch_add(1);
}
}  // namespace decommit_lock

// The pool queues every decommit with its lock free: the queue's enqueue may send the batch (a
// process_madvise of up to ~1 ms), and whoever needs the pool meanwhile (a spawn: a stop waits
// for it) must not wait behind that call. This test is the pool's only user, so a held lock is
// the releasing thread's own.
TEST_F(StackPoolTest, DecommitsAreQueuedWithThePoolsLockFree) {
  constexpr size_t kStacks = kMaxWarmStacks + 3 * kPendingStacksMax;  // warm, then two batches
  stack_pool_configure(64 * 1024, 16 * 1024);
  stack_pool_drain();
  std::vector<GoroutineStack> stacks;
  ASSERT_NO_FATAL_FAILURE(acquire_touched(kStacks, &stacks));
  decommit_lock::g_decommits = 0;
  decommit_lock::g_under_lock = 0;
  stack_pool_set_decommit_hook_for_testing(decommit_lock::count_decommit);
  for (const GoroutineStack& stack : stacks) stack_release(stack);
  const uint64_t by_releases = decommit_lock::g_decommits.load();
  stack_pool_drain();
  stack_pool_set_decommit_hook_for_testing(nullptr);
  wait_for_decommits();
  EXPECT_GE(by_releases, kMaxWarmStacks + 1) << "each warm stack, and at least one full batch";
  EXPECT_GT(decommit_lock::g_decommits.load(), by_releases) << "the drain decommits too";
  EXPECT_EQ(decommit_lock::g_under_lock.load(), 0u)
      << "of " << decommit_lock::g_decommits.load() << " decommits";
  EXPECT_EQ(stack_pool_counters().decommits >= decommit_lock::g_decommits.load(), true);
}

// A spawn's refill asks `interrupted` between its page groups: once it says yes (a stop is pending
// on the spawner's P) the stacks are handed out unpopulated, and they work all the same.
TEST_F(StackPoolTest, AnInterruptedRefillHandsOutItsStacksUnpopulated) {
  stack_pool_configure(64 * 1024, 16 * 1024);
  stack_pool_drain();  // nothing pooled: the next acquire refills
  const uint64_t populated = stack_pool_counters().pages_populated;
  kernel::Result<GoroutineStack> stack = stack_acquire([] { return true; });
  ASSERT_TRUE(stack.ok()) << "errno " << stack.error();
  EXPECT_EQ(stack_pool_counters().pages_populated, populated) << "nothing populated";
  touch_every_page(stack.value());
  stack_release(stack.value());
  stack_pool_drain();
  stack = stack_acquire();
  ASSERT_TRUE(stack.ok()) << "errno " << stack.error();
  EXPECT_GT(stack_pool_counters().pages_populated, populated) << "uninterrupted, it populates";
  stack_release(stack.value());
}

// A spawn takes a warm stack only once its decommit is known done; before, it takes a fresh (or
// pending) one: waiting for the warm one's ticket could make the queue's batch call on the
// spawning goroutine, which a stop would wait for.
TEST_F(StackPoolTest, AWarmStackWhoseDecommitIsNotDoneComesAfterAFreshOne) {
  kernel::DecommitQueue& queue = kernel::DecommitQueue::process();
  if (queue.active_mode() != kernel::DecommitMode::kProcessMadvise)
    GTEST_SKIP() << "needs the batched queue (Linux 6.13+), where a queued range waits";
  stack_pool_configure(64 * 1024, 16 * 1024);
  stack_pool_drain();
  kernel::Result<GoroutineStack> first = stack_acquire();  // refills: the rest are fresh
  ASSERT_TRUE(first.ok()) << "errno " << first.error();
  ASSERT_GT(stack_pool_counters().fresh, 0u);
  touch_every_page(first.value());
  stack_release(first.value());  // warm; its lower pages' decommit waits in the queue's batch
  ASSERT_EQ(stack_pool_counters().warm, 1u);
  kernel::Result<GoroutineStack> second = stack_acquire();
  ASSERT_TRUE(second.ok()) << "errno " << second.error();
  EXPECT_NE(second.value().base, first.value().base) << "a fresh stack, not the warm one";
  EXPECT_EQ(stack_pool_counters().warm, 1u);
  stack_release(second.value());
  wait_for_decommits();
  kernel::Result<GoroutineStack> third = stack_acquire();  // the oldest warm one, decommitted now
  ASSERT_TRUE(third.ok()) << "errno " << third.error();
  EXPECT_EQ(third.value().base, first.value().base);
  EXPECT_EQ(third.value().base[third.value().guard_bytes], 0) << "its lower pages were given back";
  stack_release(third.value());
}

}  // namespace
}  // namespace usgc::runtime
