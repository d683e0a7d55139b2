// tests/alloc/foreign_block_cache_test.cpp — a thread that frees another thread's blocks and
// allocates the same size itself reuses those blocks, from the public API only.
//
// What a user can see of the foreign block cache:
//   - a freed block of another (live) thread comes back from this thread's next malloc of its
//     size class, when this thread allocates that class itself;
//   - a thread that has never allocated the class does not keep the block (it goes back to its
//     owner, as any batched remote free);
//   - a second free of a cached block is reported on that call, by the freeing thread or by the
//     block's owner, with the usual double-free message;
//   - the cached blocks go back to their owners when the freeing thread exits: the memory in use
//     returns to where it was;
//   - the keeping free (foreign_block_cache.cpp) reports what the generic remote free reports: a
//     pointer into another live thread's block, and a second free of a kept block by a third
//     thread, on the call;
//   - a class keeps at most 64 blocks and 16 KiB; a class whose kept blocks ran out keeps the
//     next one it is given for its next malloc again.
#include <stdio.h>
#include <string.h>

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "tests/support/death_test_support.hpp"
#include "tests/support/usgc_stats.hpp"
#include "usgc/usgc.h"

namespace {

using usgc_test::launder;
using usgc_test::read_stats;

constexpr const char* kDoubleFreeMessage = "usgc: free\\(\\): pointer 0x[0-9a-f]+ .*double free";
constexpr const char* kInvalidMessage = "usgc: free\\(\\): pointer 0x[0-9a-f]+ .*invalid pointer";

// A thread that allocates `count` blocks of `size`, hands them over, and stays alive (so its
// heap owns their pages) until released.
class LiveOwner {
 public:
  LiveOwner(size_t count, size_t size) {
    thread_ = std::thread([this, count, size] {
      std::vector<void*> made(count);
      for (void*& p : made) {
        p = usgc_malloc(size);
        memset(p, 0x5a, size);
      }
      blocks_ = made;
      ready_.store(true);
      while (!release_.load()) std::this_thread::yield();
    });
    while (!ready_.load()) std::this_thread::yield();
  }
  ~LiveOwner() {
    release_.store(true);
    thread_.join();
  }
  const std::vector<void*>& blocks() const { return blocks_; }

 private:
  std::thread thread_;
  std::vector<void*> blocks_;  // written by the thread before ready_ (seq_cst), read after
  std::atomic<bool> ready_{false};
  std::atomic<bool> release_{false};
};

TEST(ForeignBlockCache, AFreedBlockOfAnotherThreadComesBackFromThisThreadsMallocOfItsClass) {
  constexpr size_t kSize = 208;
  std::thread([] {
    void* mine = usgc_malloc(kSize);  // this thread allocates the class: it has a page of it
    LiveOwner owner(8, kSize);
    std::set<void*> foreign(owner.blocks().begin(), owner.blocks().end());
    for (void* p : owner.blocks()) usgc_free(p);
    std::vector<void*> again;
    for (size_t i = 0; i < owner.blocks().size(); ++i) again.push_back(usgc_malloc(kSize));
    size_t reused = 0;
    for (void* p : again) reused += foreign.count(p);
    EXPECT_EQ(reused, foreign.size()) << "the freed blocks of a live owner come back (LIFO)";
    for (void* p : again) {
      memset(p, 0x33, kSize);  // usable to their full size
      usgc_free(p);
    }
    usgc_free(mine);
  }).join();
}

TEST(ForeignBlockCache, AThreadThatNeverAllocatedTheClassKeepsNothing) {
  constexpr size_t kSize = 336;
  std::thread([] {
    usgc_free(usgc_malloc(16));  // a heap, but no page of kSize's class
    LiveOwner owner(8, kSize);
    std::set<void*> foreign(owner.blocks().begin(), owner.blocks().end());
    for (void* p : owner.blocks()) usgc_free(p);
    void* next = usgc_malloc(kSize);
    EXPECT_EQ(foreign.count(next), 0u) << "a block this thread does not allocate was kept";
    usgc_free(next);
  }).join();
}

class ForeignBlockCacheDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// The freeing thread allocates the class, so the block is cached; then `second_freer` frees it.
void free_a_cached_block_twice(bool owner_frees_again) {
  constexpr size_t kSize = 112;
  std::atomic<void*> block{nullptr};
  std::atomic<bool> freed{false};
  std::atomic<bool> done{false};
  std::thread owner([&] {
    block.store(usgc_malloc(kSize));
    while (!freed.load()) std::this_thread::yield();
    if (owner_frees_again) usgc_free(launder(block.load()));
    while (!done.load()) std::this_thread::yield();
  });
  while (block.load() == nullptr) std::this_thread::yield();
  void* mine = usgc_malloc(kSize);  // this thread allocates the class
  usgc_free(block.load());
  if (!owner_frees_again) usgc_free(launder(block.load()));
  freed.store(true);
  usgc_free(mine);
  done.store(true);
  owner.join();
}

TEST_F(ForeignBlockCacheDeathTest, ASecondFreeOfACachedBlockIsReportedOnTheCall) {
  EXPECT_DEATH(free_a_cached_block_twice(false), kDoubleFreeMessage);
  EXPECT_DEATH(free_a_cached_block_twice(true), kDoubleFreeMessage);
}

// This thread (which allocates the class) keeps a live owner's block; a third thread, which
// allocates the class too, frees it again.
void third_thread_frees_a_cached_block() {
  constexpr size_t kSize = 144;
  LiveOwner owner(1, kSize);
  void* mine = usgc_malloc(kSize);
  usgc_free(owner.blocks()[0]);
  std::thread([&] {
    void* its = usgc_malloc(kSize);
    usgc_free(launder(owner.blocks()[0]));
    usgc_free(its);
  }).join();
  usgc_free(mine);
}

TEST_F(ForeignBlockCacheDeathTest, AThirdThreadsFreeOfACachedBlockIsReportedOnTheCall) {
  EXPECT_DEATH(third_thread_frees_a_cached_block(), kDoubleFreeMessage);
}

// This thread (which allocates the class) fills the class's cache with a live owner's blocks; the
// next one it frees is turned away by the bound and batched for the owner at once (the keeping
// free's checks passed, heap_free_generic is not taken); freeing that one again is reported.
void free_twice_a_block_the_full_cache_turned_away() {
  constexpr size_t kSize = 112;  // 64 blocks fit in the class's 16 KiB: the block bound
  LiveOwner owner(65, kSize);
  void* mine = usgc_malloc(kSize);
  for (size_t i = 0; i < 64; ++i) usgc_free(owner.blocks()[i]);
  usgc_free(owner.blocks()[64]);  // batched
  usgc_free(launder(owner.blocks()[64]));
  usgc_free(mine);
}

TEST_F(ForeignBlockCacheDeathTest, ASecondFreeOfABlockTheFullCacheBatchedIsReportedOnTheCall) {
  EXPECT_DEATH(free_twice_a_block_the_full_cache_turned_away(), kDoubleFreeMessage);
}

// A pointer 32 bytes into a live thread's block, freed by a thread that allocates the class (the
// keeping free's candidate): the exact-block test turns it away and the generic path reports it.
void free_an_interior_pointer_of_a_live_owners_block() {
  constexpr size_t kSize = 256;
  LiveOwner owner(1, kSize);
  void* mine = usgc_malloc(kSize);
  usgc_free(launder(static_cast<char*>(owner.blocks()[0]) + 32));
  usgc_free(mine);
}

TEST_F(ForeignBlockCacheDeathTest, AnInteriorPointerOfALiveThreadsBlockIsReportedOnTheCall) {
  EXPECT_DEATH(free_an_interior_pointer_of_a_live_owners_block(), kInvalidMessage);
}

// Frees `count` blocks of `size` of a live owner, then allocates as many: how many of the owner's
// blocks came back (the kept ones; the others went to the owner, which does not allocate).
size_t kept_of(size_t count, size_t size) {
  size_t reused = 0;
  std::thread([&] {
    void* mine = usgc_malloc(size);  // this thread allocates the class
    LiveOwner owner(count, size);
    std::set<void*> foreign(owner.blocks().begin(), owner.blocks().end());
    for (void* p : owner.blocks()) usgc_free(p);
    std::vector<void*> again;
    for (size_t i = 0; i < count; ++i) again.push_back(usgc_malloc(size));
    for (void* p : again) reused += foreign.count(p);
    for (void* p : again) usgc_free(p);
    usgc_free(mine);
  }).join();
  return reused;
}

TEST(ForeignBlockCache, AClassKeepsAtMostSixtyFourBlocksAndSixteenKiB) {
  EXPECT_EQ(kept_of(100, 112), 64u) << "64 blocks of 112 bytes (7 KiB)";
  EXPECT_EQ(kept_of(100, 1024), 16u) << "16 KiB of 1 KiB blocks";
  EXPECT_EQ(kept_of(100, 320), 51u) << "16 KiB of 320-byte blocks: 51 of them";
}

TEST(ForeignBlockCache, AClassWhoseKeptBlocksRanOutKeepsTheNextFreedOneForItsNextMalloc) {
  constexpr size_t kSize = 208;
  std::thread([] {
    void* mine = usgc_malloc(kSize);
    LiveOwner owner(2, kSize);
    usgc_free(owner.blocks()[0]);
    void* first = usgc_malloc(kSize);
    EXPECT_EQ(first, owner.blocks()[0]) << "the kept block comes back";
    void* own = usgc_malloc(kSize);  // none kept: from this thread's page
    EXPECT_NE(own, owner.blocks()[1]);
    usgc_free(owner.blocks()[1]);  // kept again, into an empty list
    void* second = usgc_malloc(kSize);
    EXPECT_EQ(second, owner.blocks()[1]) << "a block kept after the list ran empty comes back";
    for (void* p : {first, own, second, mine}) usgc_free(p);
  }).join();
}

// Threads that allocate every direct size class free a long-lived thread's blocks of all those
// classes (up to the cache's bounds, about 0.9 MiB, cached) and exit: the cached blocks must go
// back to the owner, so the owner reuses them and its reserved memory does not grow with the
// rounds (without the flush at exit every round would leave its cached blocks' pages in use: over
// 20 MiB in all). The memory in use is counted by frees, so it cannot show this.
TEST(ForeignBlockCache, CachedBlocksGoBackWhenTheFreeingThreadExits) {
  constexpr size_t kBlocks = 8192, kClasses = 64;
  auto size_of = [](size_t i) { return 16 * (1 + i % kClasses); };  // 16 .. 1024 bytes
  std::vector<void*> blocks(kBlocks);
  uint64_t reserved_after_first = 0;
  for (int round = 0; round < 30; ++round) {
    for (size_t i = 0; i < kBlocks; ++i) blocks[i] = usgc_malloc(size_of(i));
    std::thread([&] {
      std::vector<void*> own;
      for (size_t i = 0; i < kClasses; ++i) own.push_back(usgc_malloc(size_of(i)));
      for (void* p : blocks) usgc_free(p);
      for (void* p : own) usgc_free(p);
    }).join();
    if (round == 0) reserved_after_first = read_stats().bytes_reserved;
  }
  printf("reserved after the first round %llu, at the end %llu\n",
         static_cast<unsigned long long>(reserved_after_first),
         static_cast<unsigned long long>(read_stats().bytes_reserved));
  EXPECT_LE(read_stats().bytes_reserved, reserved_after_first + (size_t{4} << 20));
}

}  // namespace
