// alloc/footprint.hpp — the footprint census of malloc mode, and the cap on free resident pages.
//
// The census: process-wide counters of where the small and medium size classes' memory is,
// kept at the slow paths' page transitions (never on a fast path):
//   page_bytes_in_use          pages formatted for a size class (owned by a heap, or in a
//                              segment of an exited thread); their touched part is resident
//   abandoned_page_bytes_in_use  of those, pages in segments on the abandoned list
//   page_bytes_touched         of those, the blocks ever handed to a free list (capacity x block
//                              size): the part that may be resident
//   page_bytes_free_dirty      free pages touched since their last purge: resident, waiting for
//                              the decay (USGC_DECAY_MS) or the cap below
//   cached_segment_bytes_dirty empty segments in a heap's or the process cache, not purged yet:
//                              the bytes of the pages that were dirty when the segment emptied
//   bytes_purge_queued         handed to the decommit queue (minus what it completed: its
//                              backlog, still resident)
// Each counter is a relaxed fetch_add/fetch_sub: the add and the sub of one page are ordered
// by whatever made the page change hands (the owner thread, or the abandoned list's lock), so a
// counter is never below zero once every thread's transitions are done; a reader may see a sum
// mid-flight (statistics, not an invariant). "Area" below is the page's bytes
// (page_area_end - page_area_start).
//
// With USGC_TRACE=footprint the census is also snapshot at the peak of the process's resident set
// (read from the OS at every page the slow paths format or extend; a debugging mode) and printed
// to stderr at exit, one line per category.
//
// The cap (footprint_over_cap): free resident pages (free_dirty + cached_dirty) beyond
// max(kFreeResidentFloorBytes, in_use / kFreeResidentInUseDivisor) are purged by the next refill
// instead of at their decay deadline, oldest first, but none freed less than a quarter of the
// decay ago (heap_purge_pressure, heap.cpp). jemalloc bounds its
// dirty pages by time only; mimalloc purges a segment's free pages eagerly past a threshold. The
// cap keeps USGC_DECAY_MS's meaning for a footprint within it: a page is never kept resident
// longer than the decay, and only kept that long while the total stays under the cap.
#pragma once

#include <atomic>
#include <cstdint>

namespace usgc::alloc {

struct FootprintCounters {
  std::atomic<int64_t> page_bytes_in_use{0};
  std::atomic<int64_t> abandoned_page_bytes_in_use{0};
  std::atomic<int64_t> page_bytes_touched{0};
  std::atomic<int64_t> page_bytes_free_dirty{0};
  std::atomic<int64_t> cached_segment_bytes_dirty{0};
  std::atomic<int64_t> bytes_purge_queued{0};
  // Purges the cap made before a deadline, and the bytes they covered.
  std::atomic<uint64_t> pressure_purges{0};
  std::atomic<uint64_t> pressure_bytes{0};
};
extern FootprintCounters g_footprint;

inline constexpr int64_t kFreeResidentFloorBytes = int64_t{2} << 20;
inline constexpr int64_t kFreeResidentInUseDivisor = 8;

inline void footprint_add(std::atomic<int64_t>& counter, int64_t bytes) {
  counter.fetch_add(bytes, std::memory_order_relaxed);
}

// Free resident bytes of the small and medium classes (free dirty pages, dirty cached segments).
inline int64_t footprint_free_resident_bytes() {
  return g_footprint.page_bytes_free_dirty.load(std::memory_order_relaxed) +
         g_footprint.cached_segment_bytes_dirty.load(std::memory_order_relaxed);
}

// What the cap allows: a fraction of the pages in use, at least the floor.
inline int64_t footprint_free_resident_cap_bytes() {
  int64_t in_use = g_footprint.page_bytes_in_use.load(std::memory_order_relaxed);
  int64_t share = in_use / kFreeResidentInUseDivisor;
  return share > kFreeResidentFloorBytes ? share : kFreeResidentFloorBytes;
}

// True when free resident pages exceed the cap (three relaxed loads; the refill slow path).
inline bool footprint_over_cap() {
  return footprint_free_resident_bytes() > footprint_free_resident_cap_bytes();
}

// USGC_TRACE=footprint: the census is kept at its peak and printed at exit.
extern bool g_footprint_trace;
// Called where the resident set may grow (a page formatted or extended): snapshots the census if
// the resident set is the largest so far (only with the trace on; one branch otherwise).
void footprint_note_growth_slow();
inline void footprint_note_growth() {
  if (__builtin_expect(g_footprint_trace, 0)) footprint_note_growth_slow();
}
// Reads USGC_TRACE (process start).
void footprint_initialize();

}  // namespace usgc::alloc
