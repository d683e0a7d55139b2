// alloc/segment.hpp — segments: 4 MiB-aligned units of address space with their page metadata.
//
// Invariants:
//   - "segment of a pointer": every heap pointer p lies in the segment at p & ~kSegmentMask,
//     except interior pointers of huge objects, which lie in a later 4 MiB chunk of the same
//     mapping; the segment map says which (below).
//   - The segment map has one byte per 4 MiB chunk of the user address space (kUserAddressBits:
//     47 bits natively, 32 MiB of zero-filled .bss; on wasm32 the 4 GiB linear memory, 1 KiB;
//     only the bytes of chunks usgc uses are ever touched):
//        0               not usgc's
//        kMapTombstone   a segment was unmapped here (a later free is a double free)
//        kMapContinuation..kMapContinuationMax  a huge segment's continuation: its start is
//                        (value - kMapContinuation + 1) chunks back, or further back if the
//                        value is saturated at kMapContinuationMax.
//        >= kMapSegment  a segment starts here; the low 6 bits are its page_shift ("map page
//                        shift"), so the free fast path finds the page without reading the
//                        segment header first (a shift by the map byte uses its low 6 bits).
//                        Written when the segment is mapped (page shift kSegmentShift: every
//                        pointer maps to page 0 until it is formatted) and when it is formatted.
//     Entries are written (relaxed) before the segment's first block is handed out; a thread
//     that frees a block got it through some synchronization with the allocating thread, which
//     orders the map write before its read.
//   - Ownership: small and medium segments belong to one thread heap (owner_thread is that
//     thread's id, or 0 while abandoned); large segments belong to their node's large arena
//     (large_arena.hpp: spans of pages, any thread allocates and frees under the arena lock);
//     huge segments belong to nobody, and any thread frees their single object. owner_thread only
//     changes on the owner's own thread (abandon) or under the abandoned-list lock (reclaim), so a
//     thread reading its own id there is the owner.
//   - Empty segments go to a per-node cache (bounded), are purged after the decay
//     (USGC_DECAY_MS) and unmapped when the cache is full.
//   - "the tail decay": the free pages past a live huge object (64 KiB or more) wait in a table
//     under the cache lock and are returned after the decay or at malloc_trim; whoever resizes or
//     frees the object takes them out of it first (segment_tail_decay_cancel), so a purge never
//     lands on bytes the object grew back into (segment.cpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/layout.hpp"
#include "alloc/page.hpp"
#include "kernel_iface/result.hpp"

namespace usgc::alloc {

inline constexpr uint8_t kMapTombstone = 2;
inline constexpr uint8_t kMapContinuation = 3;  // continuation one chunk back; +1 per chunk
inline constexpr uint8_t kMapContinuationMax = 127;
inline constexpr uint8_t kMapSegment = 128;  // | page_shift (see "map page shift")
inline constexpr uint8_t kMapPageShiftMask = 63;
inline constexpr size_t kSegmentMapEntries = size_t{1} << (kUserAddressBits - kSegmentShift);

// Fast-path lookup table; see the invariant above.
extern std::atomic<uint8_t> g_segment_map[kSegmentMapEntries] __attribute__((visibility("hidden")));

struct Segment {
  // ---- fixed while the segment is mapped ----
  size_t segment_bytes;  // kSegmentBytes, or a multiple of it for huge segments
  int node;              // NUMA node the memory is bound to
  // ---- set when the segment is (re)formatted ----
  SegmentKind kind;
  uint8_t page_shift;
  uint8_t data_is_fresh;  // every page beyond the header is zero (fresh map or completed purge)
  uint32_t page_count;
  uint32_t used_pages;                  // owner only
  uint32_t free_pages;                  // owner only: page_count - used_pages
  std::atomic<uintptr_t> owner_thread;  // see "Ownership"
  Heap* owner_heap;                     // owner only
  // Huge: 1 while the object is live; the exchange on free catches double frees.
  std::atomic<uint8_t> large_in_use;
  // Intrusive links: the owner heap's list of segments with free pages (available_*), its list
  // of all owned segments (owned_*); or the cache / abandoned list (available_next only).
  Segment* available_next;
  Segment* available_prev;
  Segment* owned_next;
  Segment* owned_prev;
  uint8_t in_available_list;
  // Cache bookkeeping (under the cache lock, or the owner heap's for its private cache).
  uint64_t cache_deadline_ms;
  uint8_t cache_purged;
  uint64_t cache_decommit_ticket;
  // While the segment is empty and cached (a heap's or the process cache), not purged: the bytes
  // of its pages that were dirty when it emptied, counted in the footprint census's
  // cached_segment_bytes_dirty (footprint.hpp); 0 otherwise. Under the cache's owner (the heap's
  // thread, or the cache lock).
  uint64_t cache_dirty_bytes;

  Page pages[kMaxPagesPerSegment];

  // Large (span) segments (large_arena.hpp): bit i set while page i belongs to a live large
  // object (span_used_pages) / is the first page of one (span_head_pages). Written under the
  // segment's arena lock; read relaxed without it only to look up a pointer the reader holds.
  // After pages[]: the free fast path's address arithmetic depends on where pages[] starts.
  std::atomic<uint64_t> span_used_pages;
  std::atomic<uint64_t> span_head_pages;
  // Huge segments: 1 while the free pages past the live object wait in the tail-decay table
  // (segment.cpp, "the tail decay"). Set by the object's owner under the cache lock; cleared under
  // it by the owner or by the purge that returned the pages (release: the pages are gone before
  // the owner, who loads it with acquire, touches them again). After pages[], like the span bits.
  std::atomic<uint8_t> tail_decay_pending;
  // While tail_decay_pending: where the table's entry starts. Written by the object's holder under
  // the cache lock, read by it (segment_tail_decay_still_covers); the purge only reads it.
  uint8_t* tail_decay_start;

  uint8_t* base() { return reinterpret_cast<uint8_t*>(this); }
  uint8_t* end() { return base() + segment_bytes; }
  Page* page_of(uintptr_t address) {
    return &pages[(address - reinterpret_cast<uintptr_t>(this)) >> page_shift];
  }
  // page_of for any pointer into the segment, including a huge segment's later chunks (slow paths).
  Page* page_of_any(uintptr_t address) { return page_count == 1 ? &pages[0] : page_of(address); }
  uint32_t index_of(const Page* page) const { return static_cast<uint32_t>(page - pages); }
  // The memory span of a page: page 0 starts after the header.
  uint8_t* page_area_start(uint32_t index) {
    return index == 0 ? base() + kSegmentHeaderBytes : base() + (size_t{index} << page_shift);
  }
  uint8_t* page_area_end(uint32_t index) {
    return kind == SegmentKind::kHuge ? end() : base() + (size_t{index + 1} << page_shift);
  }
};
static_assert(sizeof(Segment) <= kSegmentHeaderBytes, "segment header must fit before page 0");
// The two lists a segment is on (head only): its owner heap's (or the large arena's) segments
// with free pages, and its owner heap's owned segments.
using AvailableSegmentList =
    kernel::IntrusiveList<Segment, &Segment::available_next, &Segment::available_prev>;
using OwnedSegmentList = kernel::IntrusiveList<Segment, &Segment::owned_next, &Segment::owned_prev>;

inline Segment* segment_of(const void* pointer) {
  return reinterpret_cast<Segment*>(reinterpret_cast<uintptr_t>(pointer) & ~kSegmentMask);
}
inline bool segment_map_is_segment(const Segment* segment) {
  uintptr_t chunk = reinterpret_cast<uintptr_t>(segment) >> kSegmentShift;
  return chunk < kSegmentMapEntries &&
         g_segment_map[chunk].load(std::memory_order_relaxed) >= kMapSegment;
}
// Publishes segment->page_shift in the segment map (see "map page shift"); relaxed, as above.
inline void segment_map_publish_page_shift(const Segment* segment) {
  g_segment_map[reinterpret_cast<uintptr_t>(segment) >> kSegmentShift].store(
      static_cast<uint8_t>(kMapSegment | segment->page_shift), std::memory_order_relaxed);
}

// Recomputes the page's fast-free owner (page.hpp) after its flags, use or segment owner changed:
// the segment's owner thread if the page is an in-use small or medium page with no slow-free flag.
inline void page_refresh_fast_free_owner(Page* page) {
  uintptr_t owner = segment_of(page)->owner_thread.load(std::memory_order_relaxed);
  bool fast = page->in_use && page->flags() == 0 && page->block_size != 0 &&
              page->block_size <= kMediumObjectMax;
  page->fast_free_owner.store(fast ? owner : 0, std::memory_order_relaxed);
}

enum class PointerOrigin { kForeign, kSegment, kTombstone };
// Slow-path classification of any pointer; sets *segment for kSegment (walking back from a
// huge continuation chunk).
PointerOrigin classify_pointer(const void* pointer, Segment** segment);

// Maps a new segment of `bytes` (a multiple of kSegmentBytes) bound to `node`, registered in
// the segment map. ENOMEM (or the mmap errno) on failure.
kernel::Result<Segment*> segment_map_new(size_t bytes, int node);
// Grows a large or huge segment to new_bytes (a multiple of kSegmentBytes) by moving its pages
// to a new aligned address without copying; the old range is unmapped (tombstoned). Returns
// the segment at its new address (header included), or an errno with the segment untouched.
kernel::Result<Segment*> segment_remap(Segment* segment, size_t new_bytes);
// Huge segments by chunks (huge_chunks.cpp, "chunk-aligned mappings"). split_tail: the chunks
// of a huge segment beyond keep_bytes (a multiple of kSegmentBytes, below segment_bytes; its object
// within it) become empty 4 MiB segments in the process cache. fill_from_cache: the chunks of a
// huge segment from from_bytes on (fresh: just mapped or grown) take the resident pages of empty
// cached segments, as many as the node's cache has; its data is then no longer fresh.
void segment_split_tail(Segment* segment, size_t keep_bytes);
void segment_fill_from_cache(Segment* segment, size_t from_bytes);
// The tail decay (segment.cpp): the pages of a live huge object's segment past the object (from
// `object_end`, rounded up to 4 KiB) are free, and nobody but the object can use them; they go
// back to the OS once they have been free for the decay (or at malloc_trim). The owner schedules
// them after every resize or allocation that leaves kTailDecayMinBytes or more, and cancels them
// (waiting for a purge in progress) before it resizes or frees the object.
inline constexpr size_t kTailDecayMinBytes = size_t{64} << 10;
void segment_tail_decay_schedule(Segment* segment, const uint8_t* object_end, uint64_t now_ms);
inline void segment_tail_decay_cancel(Segment* segment);
// The bytes of the segment's free pages that are dirty (footprint census; owner or lock holder).
int64_t segment_free_dirty_bytes(Segment* segment);
// The segment leaves a cache to be used: its dirty bytes leave the census's cached count.
void segment_leave_cache(Segment* segment);
// Unregisters (tombstones) and unmaps a segment.
void segment_unmap(Segment* segment);
// Unregisters (tombstones) a segment and takes it out of the counters, leaving its range mapped:
// the caller moves or unmaps the range itself (huge_chunks.cpp).
void segment_forget(Segment* segment);
// Undoes segment_forget of a segment whose range is still mapped and untouched (segment_cache
// purge state as it was: not purged), registering it again.
void segment_remember(Segment* segment);
// Registers a segment cut out of a mapped huge segment (huge_chunks.cpp): its segment map
// entries (segment_bytes set) and the segment count; the bytes stay counted as reserved.
void segment_register_split(Segment* segment);
// (Re)initializes the header for `kind`. Pages inherit the data's memory state: all fresh when the
// data area is (data_is_fresh), else each page is dirty if any part of it was dirty in the
// previous format (small, medium and large headers describe it in 64 KiB or 512 KiB pages), fresh
// otherwise; all dirty when the previous format does not say.
void segment_format(Segment* segment, SegmentKind kind);

// Process-wide cache of empty 4 MiB segments, per NUMA node. put() takes ownership; when the
// cache is full it unmaps. take() returns a segment ready to format (any purge completed).
void segment_cache_put(Segment* segment, uint64_t now_ms);
Segment* segment_cache_take(int node);
// An empty 4 MiB segment of the node's process cache whose data is resident (not purged, not
// fresh), the most recently cached first, or nullptr. Any purge of its pages has landed (the
// caches hold no segment with one in flight but their own cache purge).
Segment* segment_cache_take_resident(int node);
// Huge segments (above 4 MiB) are cached too, a few and for the decay only: a program that
// frees and allocates big buffers in a loop should not page-fault them in every time.
// Returns a cached huge segment of at least `bytes` (and at most twice), or nullptr.
Segment* segment_cache_take_huge(size_t bytes);
// True if segment_cache_take_huge(bytes) would find one now (a hint; no lock held after).
bool segment_cache_has_huge(size_t bytes);
// Purges cached segments whose decay has passed (all of them when force). Returns bytes purged.
size_t segment_cache_purge(uint64_t now_ms, bool force);

// Segments whose thread exited with live blocks in them (under their own lock).
void abandoned_segments_push(Segment* segment);
Segment* abandoned_segments_pop();
// The decay applies to the free pages of abandoned segments too ("pages held by threads that
// exited"): purges those whose deadline has passed (all of them when force), under the list's
// lock (try-lock unless force). Returns bytes purged. Pages whose deadline is at or before
// horizon_ms are due (now_ms normally; later when the free-resident cap purges early,
// footprint.hpp).
size_t abandoned_segments_purge(uint64_t now_ms, uint64_t horizon_ms, bool force);
// Under the abandoned list's lock (heap_lifecycle.cpp): collects the remote frees of each in-use
// page of an abandoned segment and frees the pages they emptied (dirty, decaying from now_ms);
// true if no page is in use any more (the caller unlinks it, then calls
// abandoned_segment_release without the lock).
bool abandoned_segment_collect(Segment* segment, uint64_t now_ms);
void abandoned_segment_release(Segment* segment);
// Earliest decay deadline of a free resident page of an abandoned segment, or of the next
// collection of their in-use pages; 0 when none waits.
// Written under the abandoned list's lock; read relaxed by heap_maybe_purge (a hint).
extern std::atomic<uint64_t> g_abandoned_next_purge_ms;

// Purge helpers: queue MADV_DONTNEED of [start, end) and return the ticket.
uint64_t purge_range(uint8_t* start, uint8_t* end);
void purge_wait(uint64_t ticket);
// The purge bookkeeping of a free page (memory state, ticket, bytes_purged) and of an empty
// 4 MiB segment's data area (cache_purged, ticket, bytes_purged). The "unpurge" halves wait
// for the ticket (the decommit ticket rule) before the memory is used again.
void page_purge(Segment* segment, uint32_t index);
void page_unpurge(Segment* segment, uint32_t index);
void segment_purge_data(Segment* segment);
void segment_unpurge_data(Segment* segment);
// Waits until every purge queued so far has landed (malloc_trim: memory is back on return).
void purge_wait_all();
void purge_flush();

inline constexpr int kCountedNodes = 64;  // numa::kMaxNodes; alloc's headers do not include numa

// Process-wide counters (relaxed atomics; for statistics).
struct SegmentCounters {
  std::atomic<uint64_t> bytes_reserved{0};
  std::atomic<uint64_t> bytes_purged{0};  // of bytes_reserved, currently returned to the OS
  std::atomic<uint64_t> segments{0};
  // bytes_reserved by the node the segment's memory is bound to (index clamped to the table).
  std::atomic<uint64_t> node_bytes_reserved[kCountedNodes] = {};
};
extern SegmentCounters g_segment_counters;

// segment_tail_decay_cancel's slow path: takes the segment's entry out of the table.
void segment_tail_decay_remove(Segment* segment);
inline void segment_tail_decay_cancel(Segment* segment) {
  // acquire: a purge that returned the pages cleared the flag after its madvise completed.
  if (segment->tail_decay_pending.load(std::memory_order_acquire) != 0)
    segment_tail_decay_remove(segment);
}
// Whether the segment's entry still names what a schedule for an object ending at `object_end`
// would: the object does not reach the entry's pages, and leaves less than kTailDecayMinBytes
// unnamed before them. A purge of the entry then touches nothing the object uses, so the holder
// keeps the entry and takes no lock (a small realloc of a big buffer). False without an entry.
inline bool segment_tail_decay_still_covers(const Segment* segment, const uint8_t* object_end) {
  if (segment->tail_decay_pending.load(std::memory_order_acquire) == 0) return false;
  uintptr_t end = align_up(reinterpret_cast<uintptr_t>(object_end), kLargeGranularity);
  auto start = reinterpret_cast<uintptr_t>(segment->tail_decay_start);
  return end <= start && start - end < kTailDecayMinBytes;
}

// Earliest decay deadline of a segment in the process cache or of a huge object's tail
// (segment_tail_decay_schedule); 0 when nothing waits.
extern std::atomic<uint64_t> g_cache_next_purge_ms;

// Decay in milliseconds (USGC_DECAY_MS), fixed at process start.
extern uint64_t g_decay_ms;

// fork(): prepare takes the segment locks, parent/child release (child resets) them.
void segment_locks_before_fork();
void segment_locks_after_fork_parent();
void segment_locks_after_fork_child();

}  // namespace usgc::alloc
