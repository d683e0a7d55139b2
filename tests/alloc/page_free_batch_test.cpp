// tests/alloc/page_free_batch_test.cpp — remote frees that the foreign block cache turns away are
// gathered per page on the freeing thread and pushed onto the page in one chain, one CAS
// (alloc/page_free_batch.hpp; docs/allocator.md, "Turned-away frees in chains per page").
//
// What the tests prove (a freer that never allocates the blocks' class, so the cache turns every
// block away):
//   - the blocks a thread frees into one page wait on that thread until the chain reaches its
//     bound (kPageFreeBatchBytes / the block size, at most kPageFreeBatchBlocks), then all go onto
//     the page at once: the page's thread_free word goes from no block to the whole chain, counted
//     (before 2026-12-06 evening each went onto the page by itself, one CAS each);
//   - a free into another page whose chain takes the same slot posts the first page's chain;
//   - a thread's chains are posted when it trims and when it exits: no block is lost;
//   - a full page's chain tells its owner with its first block (the owner's delayed list) and
//     goes onto the page with the rest (kFullNotified), and the owner's mallocs take them all back;
//   - a thread whose chains stay short (a window of kPageFreeBatchWindowPosts posts averaging fewer
//     than kPageFreeBatchMinBlocksPerPost blocks) pushes its next turned-away blocks alone;
//   - a second free of a block held in a chain, by its owner, is a double free with the usual
//     message on that call.
// Each owner runs on a thread of its own, so its heap starts with no page of the class.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "alloc/heap.hpp"
#include "tests/support/remote_free_support.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::alloc::kPageFreeBatchBlocks;
using usgc::alloc::kPageFreeBatchBytes;
using usgc::alloc::Page;
using usgc::alloc::thread_free_count;
using usgc::alloc::thread_free_pointer;
using usgc_test::take_a_heap;  // a 16-byte block: a class other than the ones freed below

constexpr const char* kDoubleFreeMessage = "usgc: free\\(\\): pointer 0x[0-9a-f]+ .*double free";
// 64-byte blocks: a chain holds min(kPageFreeBatchBlocks, kPageFreeBatchBytes / 64) of them.
constexpr size_t kBlockBytes = 64;
constexpr size_t kChainBlocks = std::min<size_t>(kPageFreeBatchBlocks, kPageFreeBatchBytes / 64);

Page* page_of(const void* p) {
  return usgc::alloc::segment_of(p)->page_of(reinterpret_cast<uintptr_t>(p));
}

uintptr_t thread_free_of(const void* p) {
  return page_of(p)->thread_free.load(std::memory_order_acquire);
}

// `count` blocks of `bytes` that share one page of the calling thread's heap, a page that is not
// full (so a remote free goes onto it, not onto the owner's delayed list: it has a block on its
// owner's local_free list, one more malloc'd on it and freed).
std::vector<void*> blocks_on_one_page(size_t count, size_t bytes) {
  std::vector<void*> run{usgc_malloc(bytes)};
  std::vector<void*> left;  // runs that reached their page's end: freed once this one is whole
  for (;;) {
    void* p = usgc_malloc(bytes);
    if (page_of(p) != page_of(run[0])) {
      left.insert(left.end(), run.begin(), run.end());
      run = {p};
    } else if (run.size() == count) {
      usgc_free(p);  // the page is not full
      for (void* q : left) usgc_free(q);
      return run;
    } else {
      run.push_back(p);
    }
  }
}

// The calling thread mallocs `bytes` (at most `most` times) until every block of `wanted` came
// back, frees what it took, and returns how many did not come back.
size_t blocks_not_back(std::set<void*> wanted, size_t bytes, size_t most) {
  std::vector<void*> taken;
  for (size_t i = 0; i < most && !wanted.empty(); ++i) {
    taken.push_back(usgc_malloc(bytes));
    wanted.erase(taken.back());
  }
  for (void* p : taken) usgc_free(p);
  return wanted.size();
}

// Another thread, with a heap of its own (whose only class is 16 bytes), runs the steps it is given
// one at a time, each when the calling thread asks, and lives (its chains unposted) until the
// object goes.
class StepwiseFreer {
 public:
  explicit StepwiseFreer(std::vector<std::function<void()>> steps)
      : steps_(std::move(steps)), thread_([this] {
          take_a_heap();
          for (size_t i = 0; i < steps_.size(); ++i) {
            while (asked_.load() <= i) std::this_thread::yield();
            steps_[i]();
            done_.store(i + 1);
          }
          while (!release_.load()) std::this_thread::yield();
        }) {}
  // Runs the next step on the freer and waits for it.
  void step() {
    size_t next = asked_.load() + 1;
    asked_.store(next);
    while (done_.load() != next) std::this_thread::yield();
  }
  ~StepwiseFreer() {
    while (asked_.load() < steps_.size()) step();
    release_.store(true);
    thread_.join();
  }

 private:
  std::vector<std::function<void()>> steps_;
  std::atomic<size_t> asked_{0}, done_{0};
  std::atomic<bool> release_{false};
  std::thread thread_;
};

TEST(PageFreeBatch, TurnedAwayFreesIntoOnePageGoOntoItAsOneChain) {
  std::thread owner([] {
    std::vector<void*> blocks = blocks_on_one_page(kChainBlocks, kBlockBytes);
    const Page* page = page_of(blocks[0]);
    StepwiseFreer freer({[&] {
                           for (size_t i = 0; i + 1 < kChainBlocks; ++i) usgc_free(blocks[i]);
                         },
                         [&] { usgc_free(blocks[kChainBlocks - 1]); }});
    freer.step();
    // One block short of the bound: all still on the freer.
    EXPECT_EQ(thread_free_count(thread_free_of(blocks[0])), 0u)
        << "a turned-away remote free went onto its page at once, not into its page's chain";
    EXPECT_EQ(thread_free_pointer(thread_free_of(blocks[0])), nullptr);
    freer.step();
    // The block that reached the bound brought the whole chain, newest first, counted.
    uintptr_t word = page->thread_free.load(std::memory_order_acquire);
    EXPECT_EQ(thread_free_count(word), kChainBlocks)
        << "the chain did not go onto its page whole when it reached its bound";
    EXPECT_EQ(thread_free_pointer(word), blocks[kChainBlocks - 1]);
    // The owner's mallocs take them back (its page's free list first, then the collect).
    EXPECT_EQ(blocks_not_back({blocks.begin(), blocks.end()}, kBlockBytes, 2048), 0u)
        << "blocks of the chain did not come back";
  });
  owner.join();
}

TEST(PageFreeBatch, AThreadsChainsAreOnTheirPagesAfterItTrimsAndWhenItExits) {
  std::thread owner([] {
    std::vector<void*> blocks = blocks_on_one_page(6, kBlockBytes);
    {
      StepwiseFreer freer({[&] {
                             for (size_t i = 0; i < 3; ++i) usgc_free(blocks[i]);
                           },
                           [] { usgc_malloc_trim(0); }, [&] { usgc_free(blocks[3]); }});
      freer.step();
      EXPECT_EQ(thread_free_count(thread_free_of(blocks[0])), 0u)
          << "a turned-away remote free went onto its page at once";
      freer.step();
      EXPECT_EQ(thread_free_count(thread_free_of(blocks[0])), 3u)
          << "malloc_trim did not post the calling thread's chains";
      freer.step();
      EXPECT_EQ(thread_free_count(thread_free_of(blocks[0])), 3u);
    }
    // The freer exited holding blocks[3] in a chain.
    EXPECT_EQ(thread_free_count(thread_free_of(blocks[0])), 4u)
        << "a thread's chain was lost at its exit";
    EXPECT_EQ(thread_free_pointer(thread_free_of(blocks[0])), blocks[3]);
    usgc_free(blocks[4]);
    usgc_free(blocks[5]);
  });
  owner.join();
}

TEST(PageFreeBatch, AFreeIntoAnotherPageOfTheSameSlotPostsTheChain) {
  std::thread owner([] {
    // Blocks of pages of several classes until two pages share a slot.
    std::vector<std::vector<void*>> pages;
    std::vector<void*> first, second;
    for (size_t bytes = 32; bytes <= 1024 && first.empty(); bytes += 16) {
      std::vector<void*> blocks = blocks_on_one_page(2, bytes);
      for (const std::vector<void*>& other : pages) {
        if (page_of(other[0]) != page_of(blocks[0]) &&
            usgc::alloc::page_free_batch_slot_of(page_of(other[0])) ==
                usgc::alloc::page_free_batch_slot_of(page_of(blocks[0]))) {
          first = other;
          second = blocks;
          break;
        }
      }
      pages.push_back(blocks);
    }
    ASSERT_FALSE(first.empty()) << "no two pages of the calling thread share a slot";
    StepwiseFreer freer({[&] { usgc_free(first[0]); }, [&] { usgc_free(second[0]); }});
    freer.step();
    EXPECT_EQ(thread_free_count(thread_free_of(first[0])), 0u);
    freer.step();
    EXPECT_EQ(thread_free_count(thread_free_of(first[0])), 1u)
        << "the slot's chain was not posted when another page's block took the slot";
    EXPECT_EQ(thread_free_count(thread_free_of(second[0])), 0u);
    for (std::vector<void*>& blocks : pages) {
      for (void* p : blocks)
        if (p != first[0] && p != second[0]) usgc_free(p);
    }
  });
  owner.join();
}

TEST(PageFreeBatch, AFullPagesChainTellsItsOwnerAndComesBack) {
  std::thread owner([] {
    // 512-byte blocks: a chain of kPageFreeBatchBytes / 512; the page full.
    constexpr size_t kBytes = 512;
    constexpr size_t kBlocks = std::min<size_t>(kPageFreeBatchBlocks, kPageFreeBatchBytes / kBytes);
    static_assert(kBlocks >= 2);
    std::vector<void*> blocks{usgc_malloc(kBytes)};
    for (;;) {
      void* p = usgc_malloc(kBytes);
      if (page_of(p) != page_of(blocks[0])) {
        usgc_free(p);
        break;
      }
      blocks.push_back(p);
    }
    ASSERT_NE(page_of(blocks[0])->flags() & usgc::alloc::kPageInFullQueue, 0);
    StepwiseFreer freer({[&] {
      for (size_t i = 0; i < kBlocks; ++i) usgc_free(blocks[i]);
    }});
    freer.step();
    // The chain's first block (the newest) told the owner; the rest went onto the page.
    EXPECT_EQ(usgc::alloc::t_heap->delayed_free.load(std::memory_order_acquire),
              blocks[kBlocks - 1])
        << "a full page's chain did not tell its owner with its first block";
    uintptr_t word = thread_free_of(blocks[0]);
    EXPECT_EQ(thread_free_count(word), kBlocks - 1);
    EXPECT_EQ(word & usgc::alloc::kDelayedStateMask, usgc::alloc::kFullNotified);
    EXPECT_EQ(blocks_not_back({blocks.begin(), blocks.begin() + kBlocks}, kBytes, 1024), 0u)
        << "blocks of a full page did not come back";
    for (size_t i = kBlocks; i < blocks.size(); ++i) usgc_free(blocks[i]);
  });
  owner.join();
}

TEST(PageFreeBatch, AThreadWhoseChainsStayShortPushesItsBlocksAlone) {
  std::thread owner([] {
    // Pages of the 64-byte class until two share a slot.
    std::vector<std::vector<void*>> pages;
    std::vector<void*> fillers;
    std::vector<void*>*first = nullptr, *second = nullptr;
    constexpr size_t kPerPage = usgc::alloc::kPageFreeBatchWindowPosts / 2 + 8;
    while (second == nullptr && pages.size() <= 4 * usgc::alloc::kPageFreeBatchSlots) {
      pages.push_back(blocks_on_one_page(kPerPage, kBlockBytes));
      // Fill the rest of the page but one block, so that the next run starts on a new page and
      // this one is not full (its last block freed by its owner).
      void* last = nullptr;
      for (void* p = usgc_malloc(kBlockBytes);; p = usgc_malloc(kBlockBytes)) {
        if (page_of(p) != page_of(pages.back()[0])) {
          fillers.push_back(p);
          break;
        }
        if (last != nullptr) fillers.push_back(last);
        last = p;
      }
      if (last != nullptr) usgc_free(last);
      for (size_t i = 0; i + 1 < pages.size() && second == nullptr; ++i) {
        if (page_of(pages[i][0]) != page_of(pages.back()[0]) &&
            usgc::alloc::page_free_batch_slot_of(page_of(pages[i][0])) ==
                usgc::alloc::page_free_batch_slot_of(page_of(pages.back()[0]))) {
          first = &pages[i];
          second = &pages.back();
        }
      }
    }
    ASSERT_NE(second, nullptr) << "no two pages of the calling thread share a slot";
    const std::vector<void*>* other_run = nullptr;
    for (const std::vector<void*>& run : pages) {
      if (page_of(run[0]) != page_of((*first)[0]) && page_of(run[0]) != page_of((*second)[0]))
        other_run = &run;
    }
    ASSERT_NE(other_run, nullptr) << "no third page";
    const std::vector<void*>& other = *other_run;
    StepwiseFreer freer({[&] {
                           // Alternating between two pages of one slot: every chain is one block.
                           for (size_t i = 0; i < kPerPage; ++i) {
                             usgc_free((*first)[i]);
                             usgc_free((*second)[i]);
                           }
                         },
                         [&] { usgc_free(other[0]); }});
    freer.step();
    freer.step();
    // A window of one-block chains: the next turned-away block went onto its page alone.
    EXPECT_EQ(thread_free_count(thread_free_of(other[0])), 1u)
        << "a thread whose chains were all one block long kept gathering";
    for (void* p : fillers) usgc_free(p);
  });
  owner.join();
}

class PageFreeBatchDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(PageFreeBatchDeathTest, OwnerFreeOfABlockHeldInAnotherThreadsChainIsADoubleFree) {
  EXPECT_DEATH(std::thread([] {
                 std::vector<void*> blocks = blocks_on_one_page(2, kBlockBytes);
                 // The freer holds blocks[1] in its chain (never allocates 64 bytes).
                 usgc_test::free_on_another_thread_then_here(blocks[1]);
               }).join(),
               kDoubleFreeMessage);
}

}  // namespace
