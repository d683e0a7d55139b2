// tests/alloc/page_turn_test.cpp — "the turn" (docs/allocator.md, "The owner's own frees"): a page
// whose last blocks came from its owner's own frees and that a refill finds dry (no free block, no
// room to extend) goes to the back of its class queue, not to the full queue; found dry again by a
// later walk, before any new frees, it goes to the full queue.
//
// Each case runs on a thread of its own (a heap of its own). Pages are told apart by address, so
// the pages of other tests' exited threads that the thread's heap may reclaim change nothing.
#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "alloc/heap.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::alloc::Page;

constexpr size_t kBlockBytes = 48;

Page* page_of(const void* p) {
  return usgc::alloc::segment_of(p)->page_of(reinterpret_cast<uintptr_t>(p));
}

bool in_full_queue(const Page* page) {
  return (page->flags() & usgc::alloc::kPageInFullQueue) != 0;
}

// The blocks of one page of the calling thread's heap, every block it has: allocates until a
// block lands on another page (kept in *other).
std::vector<void*> allocate_a_whole_page(void** other) {
  std::vector<void*> on_page{usgc_malloc(kBlockBytes)};
  const Page* page = page_of(on_page[0]);
  for (;;) {
    void* p = usgc_malloc(kBlockBytes);
    if (page_of(p) != page) {
      *other = p;
      return on_page;
    }
    on_page.push_back(p);
  }
}

// A page the owner has taken its own frees back from (local_refilled) and then emptied of free
// blocks again: the next refill finds it dry. Returns its blocks (all in use) and the blocks the
// thread allocated meanwhile on other pages (`others`, for the caller to free).
std::vector<void*> a_page_dry_after_its_own_frees(std::vector<void*>* others) {
  void* other = nullptr;
  std::vector<void*> blocks = allocate_a_whole_page(&other);
  others->push_back(other);
  Page* page = page_of(blocks[0]);
  // Grown by extension, never refilled by frees: dry, it went to the full queue (as before).
  EXPECT_TRUE(in_full_queue(page));
  // Half of its blocks freed by the owner (the first free takes it back to its class queue).
  std::vector<void*> kept;
  size_t freed = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i % 2 == 0) {
      usgc_free(blocks[i]);
      ++freed;
    } else {
      kept.push_back(blocks[i]);
    }
  }
  EXPECT_FALSE(in_full_queue(page));
  // Mallocs until the refill takes the page's own frees, then until they are all handed out.
  size_t taken = 0;
  for (int i = 0; i < 1000000 && taken < freed; ++i) {
    void* p = usgc_malloc(kBlockBytes);
    if (page_of(p) == page) {
      kept.push_back(p);
      ++taken;
    } else {
      others->push_back(p);
    }
  }
  EXPECT_EQ(taken, freed) << "the page's own frees were not handed out again";
  return kept;
}

TEST(PageTurn, APageDryAfterItsOwnFreesGoesToTheBackOfItsQueueNotToTheFullQueue) {
  std::thread([] {
    std::vector<void*> others;
    std::vector<void*> blocks = a_page_dry_after_its_own_frees(&others);
    Page* page = page_of(blocks[0]);
    // The next malloc refills: the page, the class's current one, has no free block.
    others.push_back(usgc_malloc(kBlockBytes));
    EXPECT_NE(page_of(others.back()), page);
    EXPECT_FALSE(in_full_queue(page)) << "a page dry after its owner's own frees went full";
    EXPECT_EQ(usgc::alloc::t_heap->queues[page->bin].last, page)
        << "the dry page was not turned to the back of its class queue";
    for (void* p : blocks) usgc_free(p);
    for (void* p : others) usgc_free(p);
  }).join();
}

TEST(PageTurn, ATurnedPageFoundDryAgainGoesToTheFullQueue) {
  std::thread([] {
    std::vector<void*> others;
    std::vector<void*> blocks = a_page_dry_after_its_own_frees(&others);
    Page* page = page_of(blocks[0]);
    // No block of the page is freed: the walks that come round to it find it dry again.
    bool went_full = false;
    for (int i = 0; i < 200000 && !went_full; ++i) {
      others.push_back(usgc_malloc(kBlockBytes));
      went_full = in_full_queue(page);
    }
    EXPECT_TRUE(went_full) << "a turned page found dry again stayed in its class queue";
    for (void* p : blocks) usgc_free(p);
    for (void* p : others) usgc_free(p);
  }).join();
}

}  // namespace
