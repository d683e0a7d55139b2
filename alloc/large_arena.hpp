// alloc/large_arena.hpp — large objects packed into shared segments, as spans of whole pages.
//
// Objects above the size classes (kMediumObjectMax) up to kLargeObjectMax live in "large"
// segments: 4 MiB segments cut into 64 pages of 64 KiB (page 0 starts after the header, as in a
// small segment). An object takes a run of consecutive pages, its *span*; the span's first page
// (its head) holds the object's metadata. Placement is best fit over the maximal runs of free
// pages (jemalloc's extents, with a 64-bit map per segment instead of a tree: a segment has 64
// pages), the object at the start of its run so that it can grow in place into the rest; an
// object that realloc had to move because it grew is placed best fit among the runs eight times
// its size, or at the start of an empty segment from 512 KiB up (a new one if need be), so that
// it grows in place, and beyond the segment moves to a huge mapping without a copy.
// Objects above kLargeObjectMax are huge: a mapping of their own (large_objects.cpp).
//
// Large segments belong to a per-NUMA-node arena, never to a thread: any thread allocates from
// and frees into them under the arena's lock. Large requests are rare next to small ones and
// each touches at least 128 KiB, so the lock is not on any fast path (the free fast path sends
// every pointer of a large segment to the generic path: their pages have no fast-free owner).
// A segment stays bound to the node it was mapped for, and an object is always freed into the
// arena of its segment's node, so frees from other threads or nodes keep the placement.
//
// Invariants (the arena's lock guards them for every segment on its list or holding a span):
//   - "span bits": bit i of Segment::span_used_pages is set iff page i belongs to a live object;
//     bit i of span_head_pages iff page i is the first page of one. A live object's head page has
//     in_use = 1, span_pages = its length, start = page_area_start(i) and block_size = its usable
//     bytes (4 KiB steps, within the span); every other page of a large segment has in_use = 0.
//     Free runs coalesce by construction: a free page is a clear bit, and a span is carved from a
//     maximal run of clear bits.
//   - The arena lists every segment with a free page (available_next/prev), at most
//     kArenaEmptySegments of them entirely free; a further segment that becomes free goes to the
//     process segment cache, after the purges in flight in it have landed (the decommit ticket
//     rule), so it can be formatted for any kind.
//   - Free pages decay like small pages: dirty with a deadline when freed, purged through the
//     io_uring decommit queue (one purge_range per run of due pages) by the next arena operation
//     or heap purge after the deadline, and waited for before a span uses them again.
//   - The pages of a live span are the object owner's: only the thread freeing or resizing the
//     object writes their metadata outside the lock (after taking them under it).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/heap.hpp"

namespace usgc::alloc {

// Entirely free segments an arena keeps (their pages decay); beyond, they go to the cache.
inline constexpr uint32_t kArenaEmptySegments = 1;

// The large objects' part of the footprint census (footprint.hpp; printed with it under
// USGC_TRACE=footprint). Relaxed counters, statistics:
//   span_page_bytes   pages of live large spans (the objects' bytes are g_large_counters'
//                     bytes_in_use; the rest is the spans' rounding to pages); under arena locks
//   free_bytes_dirty  free pages of the arenas' segments touched since their last purge:
//                     resident, waiting for the decay; under arena locks
//   huge_cached_bytes huge mappings in the process cache (resident as far as their last object
//                     touched them); a copy of the cache's total, under the cache lock
//   chunks_given_back / chunks_taken  (whole run) 4 MiB chunks huge objects gave to the segment
//                     cache when they shrank / huge mappings took from it (huge_chunks.cpp)
//   tail_bytes_returned  (whole run) bytes past live huge objects given back to the OS by the
//                     tail decay or malloc_trim (segment.cpp); under the cache lock
struct LargeFootprint {
  std::atomic<int64_t> span_page_bytes{0};
  std::atomic<int64_t> free_bytes_dirty{0};
  std::atomic<int64_t> huge_cached_bytes{0};
  std::atomic<int64_t> chunks_given_back{0};
  std::atomic<int64_t> chunks_taken{0};
  std::atomic<int64_t> tail_bytes_returned{0};
};
extern LargeFootprint g_large_footprint;

// Allocates `size` bytes (kMediumObjectMax < size <= kLargeObjectMax) from the arena of the
// heap's node, zeroed if `zero`. nullptr with errno ENOMEM when no segment can be mapped.
// `growing` (realloc moving an object that grew): only a run with room to grow (see above).
void* large_span_malloc(Heap* heap, size_t size, bool zero, bool growing = false);
// Frees the object `pointer` (its start, or an aligned_alloc interior pointer) of a large
// segment; reports a double free or an invalid pointer with the usual one-line messages.
void large_span_free(Segment* segment, void* pointer, Caller caller);
// The start of the live span's block that `pointer` (into an object the caller holds) lies in,
// or nullptr: what the heap profile keyed a sampled large object by.
void* large_span_block_start(const Segment* segment, const void* pointer);
// Usable bytes from pointer to the end of its object; reports bad pointers like free.
size_t large_span_usable_size(Segment* segment, const void* pointer, Caller caller);
// Resizes in place (shrinking gives the tail pages back; growing takes the free pages after the
// span), or, for a size beyond kLargeObjectMax of an object alone in its segment, moves the
// segment's pages to a huge mapping (no copy). Returns the (possibly new) pointer, or nullptr
// if it cannot (the object is intact; the caller allocates and copies).
void* large_span_resize(Segment* segment, void* pointer, size_t size);
// Purges the free pages of every arena whose decay has passed (all of them if force). Does not
// wait for the purges (purge_wait_all does).
void large_arenas_purge(uint64_t now_ms, bool force);
// Earliest decay deadline of a free page in any arena (0: none). A hint (relaxed): a deadline
// lost to a race is still honoured by that arena's next operation.
extern std::atomic<uint64_t> g_large_next_purge_ms;

// fork(): prepare takes every arena lock (node order), parent/child release (child resets) them.
void large_arena_locks_before_fork();
void large_arena_locks_after_fork_parent();
void large_arena_locks_after_fork_child();

}  // namespace usgc::alloc
