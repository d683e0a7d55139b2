// tests/alloc/remote_free_batch_test.cpp — remote frees in batches, from the public API only.
//
// A free of another thread's block of a full page is held in a batch on the freeing thread and
// posted to the owner's inbox with one atomic per batch; a block of a page that is not full goes
// onto the page's own thread_free list (remote_free_onto_page_test.cpp). These tests prove what a
// user can see of both:
//   - a bad cross-thread free (double free, interior pointer) is still reported on the call
//     that made it, with the same "usgc: free(): ... 0x..." message as any other bad free;
//   - the owner freeing a block another thread already freed (and still holds in a batch) is
//     a double free too;
//   - batches are flushed when the freeing thread exits: blocks come back to their owner, so
//     a producer whose blocks are freed by short-lived threads reuses its memory;
//   - batches for a heap whose thread exited (closed inbox, heap reused by a new thread) still
//     free their blocks: the memory in use returns to where it was.
#include <string.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/death_test_support.hpp"
#include "tests/support/remote_free_support.hpp"
#include "tests/support/usgc_stats.hpp"
#include "usgc/usgc.h"

namespace {

using usgc_test::launder;
using usgc_test::read_stats;

constexpr const char* kDoubleFreeMessage = "usgc: free\\(\\): pointer 0x[0-9a-f]+ .*double free";
constexpr const char* kInvalidMessage = "usgc: free\\(\\): pointer 0x[0-9a-f]+ .*invalid pointer";

using usgc_test::take_a_heap;

void* allocate_on_other_thread(size_t size) {
  void* p = nullptr;
  std::thread([&] {
    p = usgc_malloc(size);
    memset(p, 0x5a, size);
  }).join();
  return p;
}

class RemoteFreeBatchDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// The owner stays alive, so the first free waits for it (on the page); the second is reported.
void free_twice_while_the_owner_lives() {
  std::atomic<void*> block{nullptr};
  std::atomic<bool> done{false};
  std::thread owner([&] {
    block.store(usgc_malloc(48));
    while (!done.load()) std::this_thread::yield();
  });
  while (block.load() == nullptr) std::this_thread::yield();
  usgc_free(block.load());
  usgc_free(launder(block.load()));
  done.store(true);
  owner.join();
}

// Another thread frees the owner's block (on its page, not collected yet: the owner has not
// allocated since), then the owner frees it again.
void owner_frees_a_block_held_in_a_batch() {
  usgc_test::free_on_another_thread_then_here(usgc_malloc(80));
}

// One thread frees another thread's block twice; the first free waits for the owner.
void same_freer_frees_twice() {
  void* p = usgc_malloc(80);
  std::thread([&] {
    take_a_heap();
    usgc_free(p);
    usgc_free(launder(p));
  }).join();
}

TEST_F(RemoteFreeBatchDeathTest, CrossThreadDoubleFreeIsReportedOnTheSecondCall) {
  EXPECT_DEATH(free_twice_while_the_owner_lives(), kDoubleFreeMessage);
  EXPECT_DEATH(same_freer_frees_twice(), kDoubleFreeMessage);
}

TEST_F(RemoteFreeBatchDeathTest, OwnerFreeOfABlockHeldInAnotherThreadsBatchIsADoubleFree) {
  EXPECT_DEATH(owner_frees_a_block_held_in_a_batch(), kDoubleFreeMessage);
}

TEST_F(RemoteFreeBatchDeathTest, CrossThreadInteriorPointerIsReportedAtOnce) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(allocate_on_other_thread(256));
        usgc_free(launder(p + 32));
      },
      kInvalidMessage);
}

// Short-lived threads free everything a long-lived producer allocates, then exit: their
// batches are posted at exit and the producer reuses the blocks, so its reserved memory does
// not grow with the number of rounds.
TEST(RemoteFreeBatch, BatchesAreFlushedWhenTheFreeingThreadExits) {
  constexpr int kRounds = 40;
  constexpr size_t kBlocks = 20000, kSize = 64;  // 1.25 MiB per round
  std::vector<void*> blocks(kBlocks);
  uint64_t reserved_after_first = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (void*& p : blocks) {
      p = usgc_malloc(kSize);
      ASSERT_NE(p, nullptr);
      memset(p, round, kSize);
    }
    std::thread([&] {
      take_a_heap();
      for (void* p : blocks) usgc_free(p);
    }).join();
    if (round == 0) reserved_after_first = read_stats().bytes_reserved;
  }
  // Without the flush at exit, every round would keep its 1.25 MiB: 50 MiB in all.
  EXPECT_LE(read_stats().bytes_reserved, reserved_after_first + (size_t{16} << 20));
}

// A freer holds a batch for a heap whose thread then exits; the heap is handed to a new thread
// before the batch is posted (or, when the freer reclaimed the exited thread's segment for its
// own first allocation, the frees are local). Every block must still be freed exactly once.
TEST(RemoteFreeBatch, BatchesForAHeapWhoseThreadExitedStillFreeTheirBlocks) {
  constexpr size_t kBlocks = 40, kSize = 96;  // fewer than a batch: held until the freer exits
  const usgc_malloc_stats start = read_stats();
  for (int round = 0; round < 20; ++round) {
    std::vector<void*> blocks(kBlocks);
    std::thread([&] {
      for (void*& p : blocks) p = usgc_malloc(kSize);
    }).join();  // the owner exits: its segments are abandoned, its heap goes to the pool
    std::atomic<bool> freed{false}, reused{false};
    std::thread freer([&] {
      take_a_heap();
      for (void* p : blocks) usgc_free(p);
      freed.store(true);
      while (!reused.load()) std::this_thread::yield();
    });  // exits after the next thread took a heap: its batches are posted then
    while (!freed.load()) std::this_thread::yield();
    std::thread newcomer([&] {
      std::vector<void*> own;
      for (int i = 0; i < 1000; ++i) own.push_back(usgc_malloc(kSize));
      reused.store(true);
      freer.join();
      for (int i = 0; i < 1000; ++i) own.push_back(usgc_malloc(kSize));  // drains its inbox
      for (void* p : own) usgc_free(p);
    });
    newcomer.join();
  }
  usgc_malloc_trim(0);
  const usgc_malloc_stats end = read_stats();
  EXPECT_LE(end.bytes_in_use, start.bytes_in_use + (size_t{1} << 20));
}

}  // namespace
