// alloc/large_arena.cpp — the per-node arenas of large spans (slow paths only).
// See large_arena.hpp for the design and the invariants ("span bits").
#include "alloc/large_arena.hpp"

#include <cerrno>
#include <cstring>

#include "alloc/footprint.hpp"
#include "kernel_iface/address_sanitizer.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/spin_lock.hpp"

namespace usgc::alloc {

using kernel::LockRank;
using kernel::SpinLock;
using kernel::SpinLockGuard;

std::atomic<uint64_t> g_large_next_purge_ms{0};
LargeFootprint g_large_footprint;

namespace {

constexpr unsigned kSpanPageShift = kSmallPageShift;
constexpr size_t kSpanPageBytes = size_t{1} << kSpanPageShift;
constexpr uint32_t kSpanPages = kSmallPagesPerSegment;
static_assert(kSpanPages == 64, "one bit per page in a 64-bit word");
constexpr uint32_t kNoSpan = kSpanPages;
constexpr uint64_t kAllPages = ~uint64_t{0};
// Room a growing object is placed with, in multiples of its pages. Measured on realloc_growth
// (bytes realloc copied between spans and into huge mappings): 502 MB with no headroom, 464 MB
// with 4x, 439 MB with 8x; one object per segment copied 276 MB (at 4 MiB per object). Peak
// resident set of realloc_growth 2500 once huge mappings give back and take chunks
// (huge_chunks.cpp; 2026-12-06, 5 runs each): 44.3-45.4 MiB with 8x, 44.0-44.9 with 4x,
// 44.3-45.5 with 2x, page faults alike: the room no longer shows.
constexpr uint32_t kGrowthHeadroom = 8;

struct LargeArena {
  // Guards the arena's fields and, for every segment on its list or holding a span, the span
  // bits, the list links and the metadata of free pages. Rank kLargeArena.
  SpinLock lock{LockRank::kLargeArena};
  Segment* segments = nullptr;  // every segment with a free page (available_next/prev)
  uint32_t empty_segments = 0;  // of those, entirely free (at most kArenaEmptySegments)
  // Earliest purge deadline of a free dirty page; 0: none. Written under the lock, read relaxed
  // without it by large_arenas_purge to skip arenas with nothing to do.
  std::atomic<uint64_t> next_purge_ms{0};
};

constinit LargeArena g_arenas[kCountedNodes];

LargeArena& arena_of_node(int node) {
  return g_arenas[node >= 0 && node < kCountedNodes ? node : 0];
}

uint64_t span_mask(uint32_t first, uint32_t count) {
  return (count >= 64 ? kAllPages : (uint64_t{1} << count) - 1) << first;
}

uint64_t used_pages_of(const Segment* segment) {
  return segment->span_used_pages.load(std::memory_order_relaxed);
}

// Pages a span starting at page `first` needs for `size` bytes (page 0 is shorter by the header).
uint32_t pages_needed(uint32_t first, size_t size) {
  size_t from = first == 0 ? kSegmentHeaderBytes : 0;
  return static_cast<uint32_t>((from + size + kSpanPageBytes - 1) >> kSpanPageShift);
}

struct Run {
  uint32_t first;
  uint32_t length;  // 0: no run
};

// The smallest maximal run of free pages that holds `size` bytes from its first page, and
// `headroom` times the pages it needs (1: no room asked for).
Run best_fit_run(uint64_t used, size_t size, uint32_t headroom) {
  Run best{0, 0};
  uint64_t free = ~used;
  while (free != 0) {
    uint32_t first = static_cast<uint32_t>(__builtin_ctzll(free));
    uint64_t after = ~(free >> first);  // its lowest set bit is the page after the run
    uint32_t length = after == 0 ? 64 : static_cast<uint32_t>(__builtin_ctzll(after));
    uint32_t need = pages_needed(first, size);
    // Room for `headroom` times the object; where that exceeds a segment, a whole empty one, so
    // that the object, alone at its start, can later move to a huge mapping without a copy.
    bool fits = need * headroom < kSpanPages ? length >= need * headroom
                                             : first == 0 && length == kSpanPages;
    if (length >= need && fits && (best.length == 0 || length < best.length))
      best = Run{first, length};
    free &= ~span_mask(first, length);
  }
  return best;
}

void arena_list_push(LargeArena& arena, Segment* segment) {
  if (segment->in_available_list) return;
  AvailableSegmentList::push_front(arena.segments, segment);
  segment->in_available_list = 1;
}

void arena_list_remove(LargeArena& arena, Segment* segment) {
  if (!segment->in_available_list) return;
  AvailableSegmentList::remove(arena.segments, segment);
  segment->in_available_list = 0;
}

void note_purge_deadline(LargeArena& arena, uint64_t deadline) {
  uint64_t arena_next = arena.next_purge_ms.load(std::memory_order_relaxed);
  if (arena_next == 0 || deadline < arena_next)
    arena.next_purge_ms.store(deadline, std::memory_order_relaxed);
  uint64_t global = g_large_next_purge_ms.load(std::memory_order_relaxed);
  while ((global == 0 || deadline < global) && !g_large_next_purge_ms.compare_exchange_weak(
                                                   global, deadline, std::memory_order_relaxed)) {
  }
}

int64_t page_area_bytes(Segment* segment, uint32_t index) {
  return segment->page_area_end(index) - segment->page_area_start(index);
}

// The bytes of pages [first, first + count) and, of them, the dirty ones (footprint census).
struct RangeBytes {
  int64_t all;
  int64_t dirty;
};
RangeBytes range_bytes(Segment* segment, uint32_t first, uint32_t count) {
  RangeBytes bytes{0, 0};
  for (uint32_t i = first; i < first + count; ++i) {
    int64_t area = page_area_bytes(segment, i);
    bytes.all += area;
    if (segment->pages[i].memory == PageMemory::kDirty) bytes.dirty += area;
  }
  return bytes;
}

// The dirty bytes of the segment's free pages (footprint census).
int64_t free_dirty_bytes(Segment* segment) {
  uint64_t used = used_pages_of(segment);
  int64_t bytes = 0;
  for (uint32_t i = 0; i < kSpanPages; ++i) {
    if (((used >> i) & 1) == 0 && segment->pages[i].memory == PageMemory::kDirty)
      bytes += page_area_bytes(segment, i);
  }
  return bytes;
}

// Under the lock: pages [first, first + count) of a live span become used.
void take_pages_locked(LargeArena& arena, Segment* segment, uint32_t first, uint32_t count) {
  RangeBytes bytes = range_bytes(segment, first, count);
  footprint_add(g_large_footprint.span_page_bytes, bytes.all);
  footprint_add(g_large_footprint.free_bytes_dirty, -bytes.dirty);
  uint64_t used = used_pages_of(segment);
  if (used == 0) arena.empty_segments--;
  used |= span_mask(first, count);
  segment->span_used_pages.store(used, std::memory_order_relaxed);
  if (used == kAllPages) arena_list_remove(arena, segment);
}

// Under the lock: pages [first, first + count) are free again, dirty, decaying from now.
void release_pages_locked(LargeArena& arena, Segment* segment, uint32_t first, uint32_t count,
                          uint64_t now_ms) {
  uint64_t deadline = now_ms + g_decay_ms;
  RangeBytes bytes = range_bytes(segment, first, count);
  footprint_add(g_large_footprint.span_page_bytes, -bytes.all);
  footprint_add(g_large_footprint.free_bytes_dirty, bytes.dirty);
  for (uint32_t i = first; i < first + count; ++i) {
    segment->pages[i].memory = PageMemory::kDirty;
    segment->pages[i].purge_deadline_ms = deadline;
  }
  segment->span_used_pages.store(used_pages_of(segment) & ~span_mask(first, count),
                                 std::memory_order_relaxed);
  arena_list_push(arena, segment);
  note_purge_deadline(arena, deadline);
}

// Under the lock, after a release: a segment that became entirely free stays for reuse, or is
// taken out of the arena and returned (release_segment, outside the lock).
Segment* settle_empty_locked(LargeArena& arena, Segment* segment) {
  if (used_pages_of(segment) != 0) return nullptr;
  if (arena.empty_segments < kArenaEmptySegments) {
    arena.empty_segments++;
    return nullptr;
  }
  arena_list_remove(arena, segment);
  return segment;
}

void release_segment(Segment* segment, uint64_t now_ms) {
  // Purges in flight land first (decommit ticket rule): the cache may format it for any kind.
  for (uint32_t i = 0; i < segment->page_count; ++i) page_unpurge(segment, i);
  segment->cache_purged = 0;
  // Its dirty pages leave the arena's census. The cached segments' census (and so the free-
  // resident cap) does not count them: counted there, the cap purged what the next large
  // request reuses (realloc_growth: 2.3x the page faults).
  footprint_add(g_large_footprint.free_bytes_dirty, -free_dirty_bytes(segment));
  segment_cache_put(segment, now_ms);
}

// Under the lock: purges the free dirty pages whose deadline passed (all if force), one
// purge_range per run of such pages. Returns true if it queued any.
bool purge_arena_locked(LargeArena& arena, uint64_t now_ms, bool force) {
  uint64_t next = 0;
  bool queued = false;
  for (Segment* segment = arena.segments; segment != nullptr; segment = segment->available_next) {
    uint64_t used = used_pages_of(segment);
    auto free_and_dirty = [&](uint32_t i) {
      return ((used >> i) & 1) == 0 && segment->pages[i].memory == PageMemory::kDirty;
    };
    auto due = [&](uint32_t i) {
      return free_and_dirty(i) && (force || segment->pages[i].purge_deadline_ms <= now_ms);
    };
    for (uint32_t i = 0; i < kSpanPages;) {
      if (!due(i)) {
        if (free_and_dirty(i) && (next == 0 || segment->pages[i].purge_deadline_ms < next))
          next = segment->pages[i].purge_deadline_ms;
        ++i;
        continue;
      }
      uint32_t end = i + 1;
      while (end < kSpanPages && due(end)) ++end;
      uint8_t* start = segment->page_area_start(i);
      uint8_t* stop = segment->page_area_end(end - 1);
      uint64_t ticket = purge_range(start, stop);
      footprint_add(g_large_footprint.free_bytes_dirty, -static_cast<int64_t>(stop - start));
      for (uint32_t k = i; k < end; ++k) {
        segment->pages[k].memory = PageMemory::kPurged;
        segment->pages[k].decommit_ticket = ticket;
      }
      g_segment_counters.bytes_purged.fetch_add(static_cast<size_t>(stop - start),
                                                std::memory_order_relaxed);
      queued = true;
      i = end;
    }
  }
  arena.next_purge_ms.store(next, std::memory_order_relaxed);
  if (next != 0) note_purge_deadline(arena, next);
  return queued;
}

bool maybe_purge_locked(LargeArena& arena, uint64_t now_ms) {
  uint64_t next = arena.next_purge_ms.load(std::memory_order_relaxed);
  return next != 0 && now_ms >= next && purge_arena_locked(arena, now_ms, false);
}

// The first page of the live span holding `address`, or kNoSpan. Exact under the lock; without
// it, exact for a pointer into an object the caller holds (its span bits cannot change).
uint32_t span_head_index(const Segment* segment, uintptr_t address) {
  uint32_t page =
      static_cast<uint32_t>((address - reinterpret_cast<uintptr_t>(segment)) >> kSpanPageShift);
  if (((used_pages_of(segment) >> page) & 1) == 0) return kNoSpan;
  // Heads at or below `page` (2 << 63 wraps to 0, and 0 - 1 keeps every bit).
  uint64_t heads =
      segment->span_head_pages.load(std::memory_order_relaxed) & ((uint64_t{2} << page) - 1);
  if (heads == 0) return kNoSpan;
  uint32_t head = 63 - static_cast<uint32_t>(__builtin_clzll(heads));
  if (head + segment->pages[head].span_pages <= page) return kNoSpan;
  return head;
}

// A pointer into a large segment that is not in a live object: a page start is where objects
// start (freed already: double free); anything else was never returned by malloc.
[[noreturn]] void report_not_live(Segment* segment, const void* pointer, Caller caller) {
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t page =
      static_cast<uint32_t>((address - reinterpret_cast<uintptr_t>(segment)) >> kSpanPageShift);
  if (static_cast<const void*>(segment->page_area_start(page)) == pointer)
    report_double_free(caller, pointer);
  report_invalid_pointer(caller, pointer);
}

void count_block_bytes_change(size_t old_bytes, size_t new_bytes) {
  if (new_bytes >= old_bytes)
    g_large_counters.bytes_in_use.fetch_add(new_bytes - old_bytes, std::memory_order_relaxed);
  else
    g_large_counters.bytes_in_use.fetch_sub(old_bytes - new_bytes, std::memory_order_relaxed);
}

// Outside the lock, on pages the caller just took: waits for purges in flight, zeroes what a
// calloc needs zeroed of [zero_start, zero_end), and marks the pages dirty.
void prepare_taken_pages(Segment* segment, uint32_t first, uint32_t count, uint8_t* zero_start,
                         uint8_t* zero_end) {
  for (uint32_t i = first; i < first + count; ++i) {
    Page* page = &segment->pages[i];
    page_unpurge(segment, i);  // purged memory reads as zero once its ticket completed
    if (page->memory == PageMemory::kDirty && zero_start < zero_end) {
      uint8_t* from =
          segment->page_area_start(i) > zero_start ? segment->page_area_start(i) : zero_start;
      uint8_t* to = segment->page_area_end(i) < zero_end ? segment->page_area_end(i) : zero_end;
      if (from < to) {
        kernel::asan_unpoison(from, static_cast<size_t>(to - from));  // asan: freed, poisoned
        std::memset(from, 0, static_cast<size_t>(to - from));
      }
    }
    page->memory = PageMemory::kDirty;
  }
}

}  // namespace

void* large_span_malloc(Heap* heap, size_t size, bool zero, bool growing) {
  Segment* spare = nullptr;  // an empty segment for the arena when no span fits
  for (;;) {
    LargeArena& arena = arena_of_node(spare != nullptr ? spare->node : heap->node);
    uint64_t now = kernel::coarse_monotonic_ms();
    Segment* segment = nullptr;
    Run run{0, 0};
    uint32_t count = 0;
    bool purged;
    {
      SpinLockGuard guard(arena.lock);
      purged = maybe_purge_locked(arena, now);
      if (spare != nullptr) {
        arena_list_push(arena, spare);
        arena.empty_segments++;
        spare = nullptr;
      }
      // A growing object (from realloc) takes only a run with room to grow kGrowthHeadroom
      // times in place (a whole empty segment from 512 KiB up, from which it can later move to
      // a huge mapping without a copy): the arena rather takes a new segment.
      uint32_t headroom = growing ? kGrowthHeadroom : 1;
      for (Segment* candidate = arena.segments; candidate != nullptr;
           candidate = candidate->available_next) {
        Run fit = best_fit_run(used_pages_of(candidate), size, headroom);
        if (fit.length != 0 && (segment == nullptr || fit.length < run.length)) {
          segment = candidate;
          run = fit;
          if (fit.length == pages_needed(fit.first, size)) break;  // exact: none is better
        }
      }
      if (segment != nullptr) {
        count = pages_needed(run.first, size);
        take_pages_locked(arena, segment, run.first, count);
        Page* head = &segment->pages[run.first];
        head->in_use = 1;
        head->span_pages = count;
        head->bin = kBinCount;
        head->start = segment->page_area_start(run.first);
        head->block_size = align_up(size == 0 ? 1 : size, kLargeGranularity);
        head->reserved = head->used = 1;
        head->set_capacity(1);
        head->clear_flags();
        segment->span_head_pages.store(
            segment->span_head_pages.load(std::memory_order_relaxed) | (uint64_t{1} << run.first),
            std::memory_order_relaxed);
      }
    }
    if (purged) purge_flush();
    if (segment != nullptr) {
      Page* head = &segment->pages[run.first];
      bool head_was_dirty = head->memory == PageMemory::kDirty;  // prepare marks it dirty
      prepare_taken_pages(segment, run.first, count, head->start,
                          zero ? head->start + size : head->start);
      if (head_was_dirty && !zero) clear_free_marker_word(head->start);  // "handed out clean"
      g_large_counters.malloc_count.fetch_add(1, std::memory_order_relaxed);
      g_large_counters.bytes_in_use.fetch_add(head->block_size, std::memory_order_relaxed);
      footprint_note_growth();
      return head->start;
    }
    spare = heap_take_empty_segment(heap);  // the heap's cache, the node's cache, or a new map
    if (spare == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    segment_format(spare, SegmentKind::kLarge);
    // Pages a previous format left dirty join the arena's free dirty pages (census).
    footprint_add(g_large_footprint.free_bytes_dirty, free_dirty_bytes(spare));
  }
}

void* large_span_block_start(const Segment* segment, const void* pointer) {
  uint32_t head = span_head_index(segment, reinterpret_cast<uintptr_t>(pointer));
  return head == kNoSpan ? nullptr : segment->pages[head].start;
}

void large_span_free(Segment* segment, void* pointer, Caller caller) {
  LargeArena& arena = arena_of_node(segment->node);
  uint64_t now = kernel::coarse_monotonic_ms();
  Segment* release;
  size_t block_bytes;
  bool purged;
  {
    SpinLockGuard guard(arena.lock);
    uint32_t first = span_head_index(segment, reinterpret_cast<uintptr_t>(pointer));
    if (first == kNoSpan) report_not_live(segment, pointer, caller);
    Page* head = &segment->pages[first];
    page_block_of(head, pointer, caller);  // aborts on a pointer that is not the object's
    uint32_t count = head->span_pages;
    block_bytes = head->block_size;
    head->in_use = 0;
    head->block_size = 0;
    head->span_pages = 0;
    head->reserved = head->used = 0;
    head->set_capacity(0);
    head->clear_flags();
    segment->span_head_pages.store(
        segment->span_head_pages.load(std::memory_order_relaxed) & ~(uint64_t{1} << first),
        std::memory_order_relaxed);
    release_pages_locked(arena, segment, first, count, now);
    release = settle_empty_locked(arena, segment);
    purged = maybe_purge_locked(arena, now);
  }
  g_large_counters.free_count.fetch_add(1, std::memory_order_relaxed);
  g_large_counters.bytes_in_use.fetch_sub(block_bytes, std::memory_order_relaxed);
  if (purged) purge_flush();
  if (release != nullptr) release_segment(release, now);
}

size_t large_span_usable_size(Segment* segment, const void* pointer, Caller caller) {
  uint32_t first = span_head_index(segment, reinterpret_cast<uintptr_t>(pointer));
  if (first == kNoSpan) report_not_live(segment, pointer, caller);
  Page* head = &segment->pages[first];
  Block* block = page_block_of(head, pointer, caller);
  return static_cast<size_t>(reinterpret_cast<uint8_t*>(block) + head->block_size -
                             static_cast<const uint8_t*>(pointer));
}

namespace {

// Growth beyond kLargeObjectMax of an object alone in its segment (its span starts at page 0):
// the segment's pages move to a huge mapping, no byte is copied.
void* span_to_huge(LargeArena& arena, Segment* segment, void* pointer, size_t size) {
  size_t new_bytes = align_up(size + kSegmentHeaderBytes, kSegmentBytes);
  // Copying into the resident memory of a cached huge segment is cheaper than faulting in the
  // fresh pages a remap adds (measured: realloc_growth): let the caller allocate and copy.
  if (segment_cache_has_huge(new_bytes)) return nullptr;
  Page* head = &segment->pages[0];
  {
    SpinLockGuard guard(arena.lock);
    if (span_head_index(segment, reinterpret_cast<uintptr_t>(pointer)) != 0 ||
        head->start != pointer || used_pages_of(segment) != span_mask(0, head->span_pages)) {
      return nullptr;
    }
    arena_list_remove(arena, segment);  // alone: no span can be placed in it from now on
  }
  // Purges in flight in its free pages land before the range moves (decommit ticket rule).
  for (uint32_t i = 0; i < kSpanPages; ++i) page_unpurge(segment, i);
  kernel::Result<Segment*> moved = segment_remap(segment, new_bytes);
  if (!moved.ok()) {
    SpinLockGuard guard(arena.lock);
    if (used_pages_of(segment) != kAllPages) arena_list_push(arena, segment);
    return nullptr;
  }
  Segment* huge = moved.value();
  // Its pages leave the arena's census: the span's, and the free ones after it.
  footprint_add(g_large_footprint.span_page_bytes,
                -range_bytes(huge, 0, huge->pages[0].span_pages).all);
  footprint_add(g_large_footprint.free_bytes_dirty, -free_dirty_bytes(huge));
  huge->kind = SegmentKind::kHuge;
  huge->page_shift = kSegmentShift;
  segment_map_publish_page_shift(huge);
  huge->page_count = 1;
  huge->span_used_pages.store(0, std::memory_order_relaxed);
  huge->span_head_pages.store(0, std::memory_order_relaxed);
  huge->large_in_use.store(1, std::memory_order_relaxed);
  Page* page = &huge->pages[0];
  page->start = huge->base() + kSegmentHeaderBytes;
  page->memory = PageMemory::kDirty;
  page->span_pages = 0;
  size_t old_block_size = page->block_size;
  page->block_size = align_up(size, kLargeGranularity);
  count_block_bytes_change(old_block_size, page->block_size);
  // The new chunks past the object (resident if they came from the cache) decay (segment.cpp).
  segment_tail_decay_schedule(huge, page->start + page->block_size, kernel::coarse_monotonic_ms());
  return page->start;
}

}  // namespace

void* large_span_resize(Segment* segment, void* pointer, size_t size) {
  LargeArena& arena = arena_of_node(segment->node);
  if (size > kLargeObjectMax) return span_to_huge(arena, segment, pointer, size);
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t first =
      static_cast<uint32_t>((address - reinterpret_cast<uintptr_t>(segment)) >> kSpanPageShift);
  Page* head = &segment->pages[first];
  uint64_t now = kernel::coarse_monotonic_ms();
  uint32_t grown_first = 0;
  uint32_t grown_count = 0;
  size_t old_block_size;
  {
    SpinLockGuard guard(arena.lock);
    // Only an object's start resizes in place (an aligned interior pointer is moved by the caller).
    if (span_head_index(segment, address) != first || head->start != pointer) return nullptr;
    uint32_t have = head->span_pages;
    uint32_t need = pages_needed(first, size);
    if (need < have) {
      head->span_pages = need;
      release_pages_locked(arena, segment, first + need, have - need, now);
    } else if (need > have) {
      if (first + need > kSpanPages ||
          (used_pages_of(segment) & span_mask(first + have, need - have)) != 0) {
        return nullptr;
      }
      take_pages_locked(arena, segment, first + have, need - have);
      head->span_pages = need;
      grown_first = first + have;
      grown_count = need - have;
    }
    old_block_size = head->block_size;
    head->block_size = align_up(size == 0 ? 1 : size, kLargeGranularity);
  }
  count_block_bytes_change(old_block_size, head->block_size);
  if (grown_count != 0) {
    prepare_taken_pages(segment, grown_first, grown_count, nullptr, nullptr);
    footprint_note_growth();
  }
  return pointer;
}

void large_arenas_purge(uint64_t now_ms, bool force) {
  uint64_t hint = g_large_next_purge_ms.load(std::memory_order_relaxed);
  if (!force && (hint == 0 || now_ms < hint)) return;
  // Cleared first: each arena purged below notes its next deadline again; a deadline a
  // concurrent free notes in between survives too (note_purge_deadline's min).
  g_large_next_purge_ms.store(0, std::memory_order_relaxed);
  bool queued = false;
  for (LargeArena& arena : g_arenas) {
    uint64_t next = arena.next_purge_ms.load(std::memory_order_relaxed);
    if (next == 0 || (!force && now_ms < next)) {
      if (next != 0) note_purge_deadline(arena, next);
      continue;
    }
    if (force) {
      arena.lock.lock();
    } else if (!arena.lock.try_lock()) {
      note_purge_deadline(arena, next);  // its holder purges it when due (maybe_purge_locked)
      continue;
    }
    queued |= purge_arena_locked(arena, now_ms, force);
    arena.lock.unlock();
  }
  if (queued) purge_flush();
}

void large_arena_locks_before_fork() {
  for (LargeArena& arena : g_arenas) arena.lock.lock();
}

void large_arena_locks_after_fork_parent() {
  for (LargeArena& arena : g_arenas) arena.lock.unlock();
}

void large_arena_locks_after_fork_child() {
  for (LargeArena& arena : g_arenas) arena.lock.reset_after_fork();
}

}  // namespace usgc::alloc
