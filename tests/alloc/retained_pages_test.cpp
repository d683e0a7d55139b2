// tests/alloc/retained_pages_test.cpp — memory a heap holds that nobody uses goes back to the OS.
//
// Counted in resident OS pages (mincore over the blocks' address range), never in time:
//   - malloc_trim gives back pages that other threads' frees emptied (the owner's inbox drain
//     does not retire pages; trim used to give back only the first page of each size class);
//   - the decay (USGC_DECAY_MS) applies to the free pages of segments whose thread exited
//     (abandoned segments), and malloc_trim purges them at once; they used to stay resident
//     until some thread happened to reclaim the segment;
//   - a size class's current page, kept when it empties (so a free-then-malloc does not format a
//     page each time), decays when it stays empty; it used to stay until malloc_trim;
//   - in-use pages of an exited thread's segment whose blocks other threads then freed: the
//     blocks wait on each page's thread_free for a reclaim that may never come; the decay
//     (and malloc_trim) now collects them and frees the pages they emptied;
//   - full pages of an idle owner (a thread that neither allocates nor frees) come back when
//     other threads free their blocks and it has not drained for the decay: the freer helps the
//     owner ("Idle owner help", remote_free_queue.hpp), whether the freer exits or lives on (the
//     help takes the pages from the owner's delayed list); they used to wait in its inbox until it
//     next allocated. A free of a block of such an emptied page is still a double free, with the
//     usual message.
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

#include "alloc/remote_free_queue.hpp"
#include "alloc/segment.hpp"
#include "usgc/usgc.h"

namespace {

constexpr size_t kBlockBytes = 192;
constexpr size_t kBlocks = 8192;  // 1.5 MiB: about 24 pages of 64 KiB

// Resident OS pages of the range [low, high) (page-aligned outward).
size_t resident_pages(uintptr_t low, uintptr_t high) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  low &= ~(page - 1);
  high = (high + page - 1) & ~(page - 1);
  std::vector<unsigned char> residency((high - low) / page);
  EXPECT_EQ(::mincore(reinterpret_cast<void*>(low), high - low, residency.data()), 0);
  return static_cast<size_t>(
      std::count_if(residency.begin(), residency.end(), [](unsigned char v) { return v & 1; }));
}

// The OS pages the measured blocks lie on (only those: pages of other size classes between them
// may be in use by earlier tests of the same process), and their extent.
struct Span {
  uintptr_t low = UINTPTR_MAX;
  uintptr_t high = 0;
  std::set<uintptr_t> pages;
  void add(const void* p, size_t bytes = kBlockBytes) {
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t start = reinterpret_cast<uintptr_t>(p);
    low = std::min(low, start);
    high = std::max(high, start + bytes);
    for (uintptr_t at = start & ~(page - 1); at < start + bytes; at += page) pages.insert(at);
  }
  size_t os_pages() const { return pages.size(); }
};

// Resident OS pages among the span's.
size_t resident_pages(const Span& span) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  size_t resident = 0;
  for (uintptr_t at : span.pages) resident += resident_pages(at, at + page);
  return resident;
}

std::vector<void*> allocate_written_blocks(Span* span, size_t count = kBlocks) {
  std::vector<void*> blocks(count);
  for (void*& p : blocks) {
    p = usgc_malloc(kBlockBytes);
    EXPECT_NE(p, nullptr);
    std::memset(p, 0x5a, kBlockBytes);
    span->add(p);
  }
  return blocks;
}

TEST(RetainedPages, TrimGivesBackPagesThatOtherThreadsFreesEmptied) {
  std::thread owner([] {
    Span all;
    std::vector<void*> blocks = allocate_written_blocks(&all);
    // Another thread frees the first blocks: batched, posted to this heap's inbox. Fewer posts
    // than kHelpAfterPosts, so no helper takes them ("Idle owner help"): they wait in the inbox.
    const size_t freed_count = (usgc::alloc::kHelpAfterPosts - 1) * 64 + 16;
    ASSERT_LT(freed_count, blocks.size());
    std::thread([&] {
      for (size_t i = 0; i < freed_count; ++i) usgc_free(blocks[i]);
    }).join();
    // Measured: the pages whose every block was freed (64 KiB pages).
    const uintptr_t partly_freed_page = reinterpret_cast<uintptr_t>(blocks[freed_count]) >> 16;
    Span span;
    for (size_t i = 0; i < freed_count; ++i) {
      if (reinterpret_cast<uintptr_t>(blocks[i]) >> 16 != partly_freed_page) span.add(blocks[i]);
    }
    ASSERT_LT(span.low, span.high);
    size_t before = resident_pages(span);
    ASSERT_GE(before, span.os_pages() * 3 / 4) << "the blocks were written: resident";
    // Trim drains the inbox, which empties every page, and must give them all back.
    usgc_malloc_trim(0);
    size_t after = resident_pages(span);
    EXPECT_LE(after, span.os_pages() / 8)
        << "pages emptied by another thread's frees stayed resident after malloc_trim: " << after
        << " of " << span.os_pages() << " OS pages";
    for (size_t i = freed_count; i < blocks.size(); ++i) usgc_free(blocks[i]);
  });
  owner.join();
}

// A thread fills pages, frees all its blocks but the first (so its segment stays in use) and
// exits: its segment is abandoned with free, resident pages.
Span abandon_a_segment_with_free_pages() {
  Span freed;
  std::thread([&] {
    Span all;
    std::vector<void*> blocks = allocate_written_blocks(&all);
    // The first blocks' page stays in use (one live block); the rest are freed and their pages
    // become free pages of the segment. Only blocks on other pages are measured.
    const uintptr_t kept_page = reinterpret_cast<uintptr_t>(blocks[0]) >> 16;  // 64 KiB pages
    for (size_t i = 1; i < blocks.size(); ++i) {
      if (reinterpret_cast<uintptr_t>(blocks[i]) >> 16 != kept_page) freed.add(blocks[i]);
      usgc_free(blocks[i]);
    }
  }).join();
  return freed;
}

TEST(RetainedPages, TrimPurgesFreePagesOfExitedThreads) {
  Span freed = abandon_a_segment_with_free_pages();
  ASSERT_LT(freed.low, freed.high);
  ASSERT_GE(resident_pages(freed), freed.os_pages() / 2);
  // A thread without a usgc heap trims: nothing reclaims the abandoned segment on the way.
  std::thread([] { usgc_malloc_trim(0); }).join();
  size_t after = resident_pages(freed);
  EXPECT_LE(after, freed.os_pages() / 8)
      << "free pages of an exited thread's segment stayed resident after malloc_trim: " << after
      << " of " << freed.os_pages() << " OS pages";
}

TEST(RetainedPages, DecayAppliesToFreePagesOfExitedThreads) {
  const uint64_t saved_decay = usgc::alloc::g_decay_ms;
  usgc::alloc::g_decay_ms = 0;  // every free page is due at once: no waiting, no timing
  Span freed = abandon_a_segment_with_free_pages();
  ASSERT_LT(freed.low, freed.high);
  // Another thread's slow path (its first allocation) applies the decay before it looks for a
  // page; it may then reclaim the segment and format one page of it.
  std::thread([] {
    void* p = usgc_malloc(40000);
    usgc_free(p);
  }).join();
  size_t after = resident_pages(freed);
  usgc::alloc::g_decay_ms = saved_decay;
  EXPECT_LE(after, freed.os_pages() / 4)
      << "free pages of an exited thread's segment were not purged after their decay: " << after
      << " of " << freed.os_pages() << " OS pages";
}

// An owner thread fills pages, hands its blocks over and then waits without allocating (as a
// main thread in pthread_join); `action` runs on the calling thread meanwhile, with the blocks
// and their span, before the owner is released.
// The decay is set to 0 meanwhile: the owner counts as idle as soon as enough batches wait for it
// (no waiting, no timing).
template <typename Action>
void with_idle_owner(Action action, size_t count = kBlocks) {
  const uint64_t saved_decay = usgc::alloc::g_decay_ms;
  usgc::alloc::g_decay_ms = 0;
  std::atomic<int> stage{0};  // 1: blocks made; 2: the owner may go
  Span span;
  std::vector<void*> blocks;
  std::thread owner([&] {
    blocks = allocate_written_blocks(&span, count);
    stage.store(1, std::memory_order_release);
    while (stage.load(std::memory_order_acquire) != 2) std::this_thread::yield();
  });
  while (stage.load(std::memory_order_acquire) != 1) std::this_thread::yield();
  action(blocks, span);
  stage.store(2, std::memory_order_release);
  owner.join();
  usgc::alloc::g_decay_ms = saved_decay;
}

// Frees every block from a thread of its own (which has a heap: its frees are batched).
void free_all_from_another_thread(const std::vector<void*>& blocks) {
  std::thread([&] {
    for (void* p : blocks) usgc_free(p);
  }).join();
}

TEST(RetainedPages, FullPagesOfAnIdleOwnerComeBackWhenOtherThreadsFreeTheirBlocks) {
  with_idle_owner([](const std::vector<void*>& blocks, const Span& span) {
    ASSERT_GE(resident_pages(span), span.os_pages() * 3 / 4);
    free_all_from_another_thread(blocks);
    usgc::alloc::purge_wait_all();  // the helper's purges went through the decommit queue
    size_t after = resident_pages(span);
    // All but the owner's current page (not full: its fast paths may touch it; its blocks go onto
    // the page itself). The freer's last batches, posted at its exit, are helped there too.
    EXPECT_LE(after, span.os_pages() / 4)
        << "full pages of an idle owner stayed resident after other threads freed every block: "
        << after << " of " << span.os_pages() << " OS pages";
  });
}

// The same while the freeing thread lives: the first remote free into each full page tells the
// owner (its delayed list; the page's later blocks go onto the page) and counts as one post; at
// kHelpAfterPosts of them the freer helps, reaching the pages through the delayed list. So the
// blocks of kHelpAfterPosts + 1 full pages are freed in allocation order: the help, at the first
// free into page kHelpAfterPosts, finds every earlier page entirely free, and those must be given
// back before the freer exits (its exit would help too).
TEST(RetainedPages, FullPagesOfAnIdleOwnerComeBackWhileTheFreerLives) {
  with_idle_owner(
      [](const std::vector<void*>& blocks, const Span&) {
        std::vector<uintptr_t> pages;  // 64 KiB pages in allocation order
        size_t freed_count = 0;
        for (; freed_count < blocks.size(); ++freed_count) {
          uintptr_t page = reinterpret_cast<uintptr_t>(blocks[freed_count]) >> 16;
          if (pages.empty() || pages.back() != page) {
            if (pages.size() == usgc::alloc::kHelpAfterPosts + 1) break;
            pages.push_back(page);
          }
        }
        ASSERT_EQ(pages.size(), usgc::alloc::kHelpAfterPosts + 1);
        ASSERT_LT(freed_count, blocks.size()) << "the last page freed must be full";
        Span span;  // the blocks of the pages before the one the help is triggered at
        for (size_t i = 0; i < freed_count; ++i) {
          uintptr_t page = reinterpret_cast<uintptr_t>(blocks[i]) >> 16;
          if (page != pages[pages.size() - 1] && page != pages[pages.size() - 2])
            span.add(blocks[i]);
        }
        ASSERT_GE(resident_pages(span), span.os_pages() * 3 / 4);
        size_t after = span.os_pages();
        std::thread([&] {
          for (size_t i = 0; i < freed_count; ++i) usgc_free(blocks[i]);
          usgc::alloc::purge_wait_all();
          after = resident_pages(span);  // before this thread's exit posts or helps anything
        }).join();
        EXPECT_LE(after, span.os_pages() / 4)
            << "full pages of an idle owner stayed resident while the thread that freed every "
               "block of them lived: "
            << after << " of " << span.os_pages() << " OS pages";
        std::thread([&] {
          for (size_t i = freed_count; i < blocks.size(); ++i) usgc_free(blocks[i]);
        }).join();
      },
      3 * kBlocks);  // about 72 pages
}

TEST(RetainedPagesDeathTest, AFreeIntoAPageAHelperEmptiedIsADoubleFree) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(with_idle_owner([](const std::vector<void*>& blocks, const Span&) {
                 free_all_from_another_thread(blocks);
                 usgc::alloc::purge_wait_all();
                 usgc_free(blocks[1]);  // on the first page: full, emptied, its memory zero
               }),
               "free\\(\\): pointer 0x[0-9a-f]+ was already freed \\(double free\\)");
}

// The same when the exited thread's segment held nothing else, so the frees empty it whole: it
// goes to the process's segment cache during the trim, which must still purge it (the trim purged
// the cache before the abandoned segments, leaving such a segment resident). A thread that came
// and went first makes the segment a fresh one (its heap is reused, its own segment cached).
TEST(RetainedPages, AnExitedThreadsSegmentThatOtherThreadsFreesEmptyIsTrimmedWhole) {
  std::thread([] { usgc_free(usgc_malloc(kBlockBytes)); }).join();
  Span span;
  std::vector<void*> blocks;
  std::thread([&] { blocks = allocate_written_blocks(&span); }).join();
  ASSERT_GE(resident_pages(span), span.os_pages() * 3 / 4);
  free_all_from_another_thread(blocks);
  std::thread([] { usgc_malloc_trim(0); }).join();
  size_t after = resident_pages(span);
  EXPECT_LE(after, span.os_pages() / 8)
      << "an emptied segment of an exited thread stayed resident after malloc_trim: " << after
      << " of " << span.os_pages() << " OS pages";
}

TEST(RetainedPages, PagesOfExitedThreadsComeBackWhenOtherThreadsFreeTheirBlocks) {
  Span span;
  std::vector<void*> blocks;
  std::thread([&] { blocks = allocate_written_blocks(&span); }).join();  // abandoned, all live
  ASSERT_GE(resident_pages(span), span.os_pages() * 3 / 4);
  free_all_from_another_thread(blocks);  // unbatched: the pages have no heap
  // A thread without a usgc heap trims: nothing reclaims the abandoned segment on the way.
  std::thread([] { usgc_malloc_trim(0); }).join();
  size_t after = resident_pages(span);
  EXPECT_LE(after, span.os_pages() / 8)
      << "pages of an exited thread stayed resident after other threads freed every block and "
         "malloc_trim: "
      << after << " of " << span.os_pages() << " OS pages";
}

TEST(RetainedPages, AClassCurrentPageThatStaysEmptyDecays) {
  const uint64_t saved_decay = usgc::alloc::g_decay_ms;
  usgc::alloc::g_decay_ms = 0;  // due at once: no waiting, no timing
  std::thread([] {
    constexpr size_t kSmallBytes = 48;
    Span span;
    std::vector<void*> blocks(1000);  // 48 000 bytes: one 64 KiB page of the class
    for (void*& p : blocks) {
      p = usgc_malloc(kSmallBytes);
      ASSERT_NE(p, nullptr);
      std::memset(p, 0x5a, kSmallBytes);
      span.add(p, kSmallBytes);
    }
    for (void* p : blocks) usgc_free(p);  // the class's current page is empty now, and kept
    ASSERT_GE(resident_pages(span), span.os_pages() * 3 / 4);
    // Large requests run the decay on their slow path (and take no small page, which could
    // reuse the one given back): one pass sees the page empty, the next gives it back and
    // purges it.
    for (int i = 0; i < 8; ++i) usgc_free(usgc_malloc(256 * 1024));
    usgc::alloc::purge_wait_all();
    size_t after = resident_pages(span);
    EXPECT_LE(after, span.os_pages() / 8)
        << "a size class's empty current page stayed resident after its decay: " << after << " of "
        << span.os_pages() << " OS pages";
  }).join();
  usgc::alloc::g_decay_ms = saved_decay;
}

}  // namespace
