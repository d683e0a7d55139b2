// tests/alloc/remote_free_onto_page_test.cpp — a remote free goes onto the block's page, not into a
// batch: onto the page's own thread_free list, and for a FULL page the first block onto its owner's
// delayed_free list, which tells the owner (docs/allocator.md, "Remote frees onto the page, full
// pages by the delayed list").
//
// What the tests prove:
//   - the block is on the page at once (its thread_free word), while the freeing thread is alive
//     and holds no full batch: the owner takes it back when its page runs dry, with no post and no
//     inbox drain (a batch of fewer than 64 blocks would have waited for the freer's exit); the
//     word counts the blocks on the list ("the counted list", page.hpp), so the owner's collect
//     takes the list without reading its blocks;
//   - the same for a full page: the first block is on the owner heap's delayed_free list, the next
//     on the page (state kFullNotified), and the owner's mallocs take both back while the freer
//     lives (they went into the freer's batch before 2026-12-06's second change);
//   - a second free, by its owner, of a block of a FULL page that another thread freed (onto the
//     delayed list, or onto the page after it) is a double free with the usual message (the same
//     of a block on a page that is not full: remote_free_batch_test.cpp);
//   - blocks freed onto a page whose owner then exits are not lost: the exit collects them, and
//     malloc_trim gives back the pages they emptied.
// Each test runs the owner on a thread of its own, so its heap starts with no page of the class.
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "alloc/heap.hpp"
#include "tests/support/remote_free_support.hpp"
#include "usgc/usgc.h"

namespace {

constexpr const char* kDoubleFreeMessage = "usgc: free\\(\\): pointer 0x[0-9a-f]+ .*double free";
// 8 KiB blocks: eight to a 64 KiB page, a class above the direct table (no foreign block cache),
// which the freeing threads below never allocate themselves.
constexpr size_t kBlockBytes = 8192;

usgc::alloc::Page* page_of(const void* p) {
  return usgc::alloc::segment_of(p)->page_of(reinterpret_cast<uintptr_t>(p));
}

// The blocks of one page of the calling thread's heap, every block it has: allocates until a block
// lands on another page, and frees the blocks of other pages (their own).
std::vector<void*> allocate_a_whole_page() {
  std::vector<void*> on_page{usgc_malloc(kBlockBytes)};
  const usgc::alloc::Page* page = page_of(on_page[0]);
  for (;;) {
    void* p = usgc_malloc(kBlockBytes);
    if (page_of(p) != page) {
      usgc_free(p);
      return on_page;
    }
    on_page.push_back(p);
  }
}

using usgc_test::take_a_heap;  // a 16-byte block: a class other than kBlockBytes'

// Another thread, with a heap of its own, frees a, then b (blocks of the calling thread), and lives
// on, holding its batches unposted, until this object goes.
class FreerThatLives {
 public:
  FreerThatLives(void* a, void* b)
      : thread_([this, a, b] {
          take_a_heap();
          usgc_free(a);
          usgc_free(b);
          stage_.store(1);
          while (stage_.load() != 2) std::this_thread::yield();
        }) {
    while (stage_.load() != 1) std::this_thread::yield();
  }
  ~FreerThatLives() {
    stage_.store(2);
    thread_.join();
  }

 private:
  std::atomic<int> stage_{0};  // 1: freed; 2: may exit
  std::thread thread_;
};

// The calling thread's mallocs of kBlockBytes, at most `most` of them, until both a and b came
// back; returns the blocks taken (for the caller to free) and whether both came back.
std::vector<void*> malloc_until_back(void* a, void* b, int most, bool* both_back) {
  std::set<void*> got;
  std::vector<void*> taken;
  for (int i = 0; i < most && (got.count(a) == 0 || got.count(b) == 0); ++i) {
    void* p = usgc_malloc(kBlockBytes);
    taken.push_back(p);
    got.insert(p);
  }
  *both_back = got.count(a) == 1 && got.count(b) == 1;
  return taken;
}

TEST(RemoteFreeOntoPage, TheOwnerTakesTheBlocksBackWithoutAPost) {
  std::thread owner([] {
    // Two blocks of the class's current page, which is not full (if the first was its page's
    // last block, the next two share a page).
    void* a = usgc_malloc(kBlockBytes);
    void* b = usgc_malloc(kBlockBytes);
    if (page_of(a) != page_of(b)) {
      usgc_free(a);
      a = b;
      b = usgc_malloc(kBlockBytes);
    }
    ASSERT_EQ(page_of(a), page_of(b));
    usgc::alloc::Page* page = page_of(a);
    std::vector<void*> taken;
    {
      FreerThatLives freer(a, b);
      // On the page's thread_free list (b pushed last), not in the freer's batch.
      uintptr_t thread_free = page->thread_free.load(std::memory_order_acquire);
      EXPECT_EQ(usgc::alloc::thread_free_pointer(thread_free), b)
          << "a remote free into a page that is not full did not go onto the page";
      // The counted list (page.hpp): the word counts its blocks, so the owner's collect takes the
      // list without walking it.
      EXPECT_EQ(usgc::alloc::thread_free_count(thread_free), 2u)
          << "the page's thread_free word does not count the blocks on its list";
      // The owner's mallocs of the class take them back once the page's free list runs dry: the
      // page has 8 blocks (7 on a segment's first page), so within 8 mallocs.
      bool both_back = false;
      taken = malloc_until_back(a, b, 8, &both_back);
      EXPECT_TRUE(both_back)
          << "blocks another thread freed while it lives did not come back to their owner";
    }
    for (void* p : taken) usgc_free(p);
  });
  owner.join();
}

TEST(RemoteFreeOntoPage, ARemoteFreeIntoAFullPageReachesItsOwnerWithoutAPost) {
  std::thread owner([] {
    std::vector<void*> blocks = allocate_a_whole_page();
    ASSERT_GE(blocks.size(), 2u);
    usgc::alloc::Page* page = page_of(blocks[0]);
    // allocate_a_whole_page's last malloc moved the page, with no free block, to the full queue.
    ASSERT_NE(page->flags() & usgc::alloc::kPageInFullQueue, 0);
    void* a = blocks[0];
    void* b = blocks[1];
    std::vector<void*> taken;
    {
      FreerThatLives freer(a, b);
      // a told the owner (its heap's delayed list); b went onto the page, which says so.
      EXPECT_EQ(usgc::alloc::t_heap->delayed_free.load(std::memory_order_acquire), a)
          << "the first remote free into a full page did not go onto its owner's delayed list";
      uintptr_t thread_free = page->thread_free.load(std::memory_order_acquire);
      EXPECT_EQ(usgc::alloc::thread_free_pointer(thread_free), b)
          << "a remote free into a full page its owner was told of did not go onto the page";
      EXPECT_EQ(usgc::alloc::thread_free_count(thread_free), 1u)
          << "the list's count: b only (a went onto the delayed list)";
      EXPECT_EQ(thread_free & usgc::alloc::kDelayedStateMask, usgc::alloc::kFullNotified);
      // The owner's mallocs of the class take both back while the freer lives: its next refill
      // drains the delayed list (the page back to its class queue) and then reaches the page. The
      // current page has at most 8 blocks: within a few pages' worth of mallocs.
      bool both_back = false;
      taken = malloc_until_back(a, b, 32, &both_back);
      EXPECT_TRUE(both_back)
          << "blocks of a full page another thread freed while it lives did not come back";
    }
    for (void* p : taken) usgc_free(p);
    for (size_t i = 2; i < blocks.size(); ++i) usgc_free(blocks[i]);
  });
  owner.join();
}

class RemoteFreeOntoPageDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Another thread frees blocks of the owner's full page (the first onto the owner's delayed list,
// the next onto the page), then the owner frees block `index` again. (The same for a page that is
// not full: RemoteFreeBatchDeathTest.OwnerFreeOfABlockHeldInAnotherThreadsBatchIsADoubleFree.)
void owner_frees_a_block_of_a_full_page_another_thread_freed(size_t index) {
  std::vector<void*> blocks = allocate_a_whole_page();
  // The class's page with no free block went to the full queue when the last malloc of
  // allocate_a_whole_page looked for a page.
  ASSERT_NE(page_of(blocks[0])->flags() & usgc::alloc::kPageInFullQueue, 0);
  if (index == 0) return usgc_test::free_on_another_thread_then_here(blocks[0]);
  usgc_test::free_on_another_thread_then_here(blocks[index], blocks[0]);
}

TEST_F(RemoteFreeOntoPageDeathTest, OwnerFreeOfABlockOfAFullPageOnItsDelayedListIsADoubleFree) {
  EXPECT_DEATH(std::thread(owner_frees_a_block_of_a_full_page_another_thread_freed, 0).join(),
               kDoubleFreeMessage);
}

TEST_F(RemoteFreeOntoPageDeathTest, OwnerFreeOfABlockFreedOntoAFullPageItWasToldOfIsADoubleFree) {
  EXPECT_DEATH(std::thread(owner_frees_a_block_of_a_full_page_another_thread_freed, 1).join(),
               kDoubleFreeMessage);
}

size_t resident_os_pages(const void* start, size_t bytes) {
  const uintptr_t os_page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  uintptr_t low = reinterpret_cast<uintptr_t>(start) & ~(os_page - 1);
  std::vector<unsigned char> residency((bytes + os_page - 1) / os_page);
  EXPECT_EQ(::mincore(reinterpret_cast<void*>(low), residency.size() * os_page, residency.data()),
            0);
  return static_cast<size_t>(
      std::count_if(residency.begin(), residency.end(), [](unsigned char v) { return v & 1; }));
}

// The owner's page gets all its blocks back on its thread_free list while the owner lives, then the
// owner exits: its exit collects them (the page is empty, its segment abandoned or cached), and a
// trim by a thread without a heap gives the page's memory back. A block left on the list would keep
// the page in use and resident.
TEST(RemoteFreeOntoPage, BlocksFreedOntoAPageWhoseOwnerExitsAreNotLost) {
  std::vector<void*> blocks;
  std::atomic<int> stage{0};  // 1: blocks made; 2: freed; the owner may exit
  std::thread owner([&] {
    // A page of live blocks keeps the segment in use after the exit (abandoned); the next page's
    // blocks are the ones measured.
    std::vector<void*> kept = allocate_a_whole_page();
    blocks = allocate_a_whole_page();
    for (void* p : blocks) std::memset(p, 0x5a, kBlockBytes);
    stage.store(1);
    while (stage.load() != 2) std::this_thread::yield();
  });
  while (stage.load() != 1) std::this_thread::yield();
  const void* low = *std::min_element(blocks.begin(), blocks.end());
  // The page's blocks, all written: resident.
  ASSERT_GE(resident_os_pages(low, blocks.size() * kBlockBytes), blocks.size() * 2);
  std::thread([&] {
    take_a_heap();
    for (void* p : blocks) usgc_free(p);
  }).join();
  stage.store(2);
  owner.join();
  std::thread([] { usgc_malloc_trim(0); }).join();
  EXPECT_LE(resident_os_pages(low, blocks.size() * kBlockBytes), 2u)
      << "a page whose blocks were freed onto it before its owner exited stayed resident";
}

}  // namespace
