// tests/alloc/footprint_test.cpp — malloc mode's footprint: the census, the cap on free resident
// pages, and free blocks of exited threads' pages used before new memory.
//
// Counted in resident OS pages (mincore) and in where blocks land, never in time:
//   - free resident pages beyond the cap (footprint.hpp: a fraction of the pages in use, at least
//     a floor) are purged by the next refill once a quarter of the decay has passed, not at their
//     decay deadline; they used to stay resident for the whole decay;
//   - a heap that runs out of free blocks of a class reclaims segments of exited threads and
//     fills their free blocks before it touches new memory, even when it has free pages of its
//     own; it used to format new pages in its own segment while the exited thread's half-empty
//     pages stayed resident.
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "alloc/footprint.hpp"
#include "alloc/segment.hpp"
#include "kernel_iface/clock.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::alloc::footprint_free_resident_bytes;
using usgc::alloc::footprint_free_resident_cap_bytes;

constexpr size_t kBlockBytes = 208;

size_t os_page_bytes() {
  return static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// Resident OS pages among `pages` (OS page addresses).
size_t resident_pages(const std::set<uintptr_t>& pages) {
  size_t resident = 0;
  for (uintptr_t at : pages) {
    unsigned char v = 0;
    EXPECT_EQ(::mincore(reinterpret_cast<void*>(at), os_page_bytes(), &v), 0);
    resident += v & 1;
  }
  return resident;
}

// Restores the decay at the end of a scope.
struct DecayScope {
  explicit DecayScope(uint64_t ms) : saved(usgc::alloc::g_decay_ms) {
    usgc::alloc::g_decay_ms = ms;
  }
  ~DecayScope() { usgc::alloc::g_decay_ms = saved; }
  uint64_t saved;
};

TEST(Footprint, FreeResidentPagesBeyondTheCapArePurgedBeforeTheirDeadline) {
  // The cap purges pages freed at least a quarter of the decay ago, before their deadline: with
  // a decay of 4 s, the test waits until a quarter has passed (a condition on the clock, not an
  // assertion on time). Only if the machine stalls this thread for the other 3 s between that
  // and the check could the decay itself have purged them (the test would then pass without the
  // cap, never fail with it).
  constexpr uint64_t kDecayMs = 4000;
  DecayScope decay(kDecayMs);
  std::thread([] {
    // 16 MiB of written blocks (256 pages of 64 KiB), then all freed: the pages go back to
    // their segments, dirty, waiting for the decay.
    const size_t count = (size_t{16} << 20) / kBlockBytes;
    std::vector<void*> blocks(count);
    std::set<uintptr_t> pages;
    for (void*& p : blocks) {
      p = usgc_malloc(kBlockBytes);
      ASSERT_NE(p, nullptr);
      std::memset(p, 0x5a, kBlockBytes);
      pages.insert(reinterpret_cast<uintptr_t>(p) & ~(os_page_bytes() - 1));
    }
    for (void* p : blocks) usgc_free(p);
    const uint64_t freed_ms = usgc::kernel::coarse_monotonic_ms();
    ASSERT_GE(resident_pages(pages), pages.size() * 3 / 4) << "the blocks were written";
    while (usgc::kernel::coarse_monotonic_ms() < freed_ms + kDecayMs / 4 + 20)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    // The census saw them: free resident bytes over the cap now.
    ASSERT_GT(footprint_free_resident_bytes(), footprint_free_resident_cap_bytes());
    const int64_t free_resident_before = footprint_free_resident_bytes();
    // A refill (a size class this thread has not used) looks at the cap before anything else.
    void* other = usgc_malloc(3000);
    ASSERT_NE(other, nullptr);
    usgc::alloc::purge_wait_all();  // the purges are queued (io_uring): wait until they landed
    size_t after = resident_pages(pages);
    EXPECT_LE(after, pages.size() / 8)
        << "free pages beyond the cap stayed resident until their decay: " << after << " of "
        << pages.size() << " OS pages";
    // The census counted the purge. (Not "under the cap now": free pages of other threads'
    // heaps, left by earlier tests in this process, count too, and only their owners purge them.)
    EXPECT_GE(free_resident_before - footprint_free_resident_bytes(), int64_t{12} << 20);
    usgc_free(other);
  }).join();
}

TEST(Footprint, FreeBlocksOfAnExitedThreadsPagesAreUsedBeforeNewMemory) {
  std::atomic<int> stage{0};  // 1: B has a segment of its own; 2: A has exited
  const size_t count = (size_t{4} << 20) / kBlockBytes;  // 4 MiB: about 64 pages
  std::set<uintptr_t> pages_of_a;                        // A's 64 KiB pages
  std::vector<void*> kept;                               // A's blocks still live
  size_t outside = 0;
  size_t made = 0;
  std::thread b([&] {
    // B owns a small segment with free pages before A's segment is abandoned.
    void* own = usgc_malloc(48);
    ASSERT_NE(own, nullptr);
    stage.store(1, std::memory_order_release);
    while (stage.load(std::memory_order_acquire) != 2) std::this_thread::yield();
    // As many blocks of A's class as A freed: they fit in A's holes.
    std::vector<void*> mine(count / 2);
    for (void*& p : mine) {
      p = usgc_malloc(kBlockBytes);
      ASSERT_NE(p, nullptr);
      std::memset(p, 0x3c, kBlockBytes);
      if (pages_of_a.count(reinterpret_cast<uintptr_t>(p) >> 16) == 0) ++outside;
    }
    made = mine.size();
    for (void* p : mine) usgc_free(p);
    usgc_free(own);
  });
  while (stage.load(std::memory_order_acquire) != 1) std::this_thread::yield();
  std::thread a([&] {
    std::vector<void*> blocks(count);
    for (void*& p : blocks) {
      p = usgc_malloc(kBlockBytes);
      ASSERT_NE(p, nullptr);
      std::memset(p, 0x5a, kBlockBytes);
      pages_of_a.insert(reinterpret_cast<uintptr_t>(p) >> 16);
    }
    // Every other block freed: each page half full when A exits (its segment is abandoned).
    for (size_t i = 0; i < blocks.size(); ++i) {
      if (i % 2 == 0)
        usgc_free(blocks[i]);
      else
        kept.push_back(blocks[i]);
    }
  });
  a.join();
  stage.store(2, std::memory_order_release);
  b.join();
  ASSERT_GT(made, 0u);
  EXPECT_LE(outside, made / 10) << outside << " of " << made
                                << " blocks went to new memory while the exited thread's pages "
                                   "had free blocks for them";
  for (void* p : kept) usgc_free(p);
}

}  // namespace
