// alloc/heap_decay.cpp — the decay of the thread heap's free memory: purging free pages, cached
// and abandoned segments after g_decay_ms (USGC_DECAY_MS), early under the free-resident cap, and
// all at once for malloc_trim (slow paths only: looked at once per refill, never per allocation).
//
// Invariants:
//   - "decay deadline": a free resident page or cached segment carries the time it may be purged
//     (purge_deadline_ms / cache_deadline_ms, now + g_decay_ms when it became free); the heap's
//     next_purge_ms is the earliest deadline of its pages and cached segments (0: none), and a
//     refill purges once a deadline (the heap's, the process caches', the large arenas', the
//     abandoned segments') has passed.
//   - "the page floor": a class's current page is kept when it empties; a purge pass stamps it and
//     a later pass that finds it still empty gives it back (heap_retire_idle_pages).
//   - Purges go through the decommit queue (segment.cpp purge_range, tickets); malloc_trim waits
//     for them all (purge_wait_all), a refill never waits.
// Owner only, except the process-wide caches, which take their own locks (segment.cpp).
#include "alloc/footprint.hpp"
#include "alloc/heap_profile.hpp"
#include "alloc/heap_slow_paths.hpp"
#include "alloc/large_arena.hpp"
#include "kernel_iface/spin_lock.hpp"

namespace usgc::alloc {

namespace {

// The free-resident cap (footprint.hpp): over it, this heap purges its own free pages, the caches
// and the abandoned segments' free pages before their deadlines, oldest first: those freed more
// than half the decay ago, then, if still over, those freed more than a quarter of it ago. The
// youngest are left to the decay: a program that frees and reuses pages at once (CPython's
// arenas under PYTHONMALLOC=malloc) would otherwise fault them in again, purged (measured: 175
// MiB purged by the cap in a 20-iteration churn.py, and 10 % more CPU). At most once per
// kPressureIntervalMs per thread: what is left over the cap may be other heaps' free pages,
// which only they can purge.
constexpr uint64_t kPressureIntervalMs = 8;
constexpr uint64_t kCapMinAgeDivisor = 4;

}  // namespace

constinit thread_local uint64_t t_pressure_next_ms __attribute__((tls_model("initial-exec"))) = 0;

void heap_purge_pressure(Heap* heap, uint64_t now_ms) {
  t_pressure_next_ms = now_ms + kPressureIntervalMs;
  int64_t before = footprint_free_resident_bytes();
  heap_purge_until(heap, now_ms, now_ms + g_decay_ms / 2, false);
  if (footprint_over_cap())
    heap_purge_until(heap, now_ms, now_ms + g_decay_ms - g_decay_ms / kCapMinAgeDivisor, false);
  int64_t purged = before - footprint_free_resident_bytes();
  g_footprint.pressure_purges.fetch_add(1, std::memory_order_relaxed);
  if (purged > 0)
    g_footprint.pressure_bytes.fetch_add(static_cast<uint64_t>(purged), std::memory_order_relaxed);
}

namespace {

// The decay of the "page floor" (a class's current page is kept when it empties, so that a
// free-then-malloc does not format a page each time; pages other threads' frees emptied through
// the inbox drain are not retired either): a purge pass that finds a page of a class queue empty
// stamps it with a deadline (purge_deadline_ms, 0 on an in-use page not seen empty); a pass after
// that deadline that finds it empty again gives it back (then it decays as a free page). A page
// seen in use loses its stamp. Owner only; not while the heap profile cuts the class queues'
// first pages. Returns the earliest stamp left (0: none).
uint64_t heap_retire_idle_pages(Heap* heap, uint64_t now_ms) {
  uint64_t next = 0;
  for (uint32_t bin = 0; bin < kBinCount; ++bin) {
    for (Page* page = heap->queues[bin].first; page != nullptr;) {
      Page* following = page->next;
      // Blocks other threads freed onto the page (remote_free_queue.hpp, "Onto the page or into
      // a batch") count in `used` until collected: collect them, or a page they emptied would
      // never be seen empty.
      if (page->thread_free.load(std::memory_order_relaxed) > kDelayedStateMask) page_collect(page);
      if (page->used != 0) {
        page->purge_deadline_ms = 0;
      } else if (page->purge_deadline_ms == 0) {
        page->purge_deadline_ms = now_ms + g_decay_ms;
        if (next == 0 || page->purge_deadline_ms < next) next = page->purge_deadline_ms;
      } else if (page->purge_deadline_ms <= now_ms) {
        bin_queue_remove(heap, page);
        page_free_to_segment(heap, page);
      } else if (next == 0 || page->purge_deadline_ms < next) {
        next = page->purge_deadline_ms;
      }
      page = following;
    }
  }
  return next;
}

}  // namespace

void heap_purge(Heap* heap, uint64_t now_ms, bool force) {
  heap_purge_until(heap, now_ms, now_ms, force);
}

void heap_purge_until(Heap* heap, uint64_t now_ms, uint64_t horizon_ms, bool force) {
  remote_batches_flush(heap);  // blocks held back for other heaps keep their pages in use
  uint64_t next = 0;
  auto consider = [&](uint64_t deadline) {
    if (next == 0 || deadline < next) next = deadline;
  };
  // Before the walk below, so the pages given back here are looked at by it.
  if (!force && !heap_profile_active()) {
    if (uint64_t stamped = heap_retire_idle_pages(heap, now_ms)) consider(stamped);
  }
  for (Segment* segment = heap->owned_segments; segment != nullptr; segment = segment->owned_next) {
    for (uint32_t i = 0; i < segment->page_count; ++i) {
      Page* page = &segment->pages[i];
      if (page->in_use || page->memory != PageMemory::kDirty) continue;
      if (!force && page->purge_deadline_ms > horizon_ms) {
        consider(page->purge_deadline_ms);
        continue;
      }
      page_purge(segment, i);
    }
  }
  for (uint32_t i = 0; i < heap->cached_segment_count; ++i) {
    Segment* segment = heap->cached_segments[i];
    if (segment->cache_purged) continue;
    if (!force && segment->cache_deadline_ms > horizon_ms) {
      consider(segment->cache_deadline_ms);
      continue;
    }
    segment_purge_data(segment);
  }
  heap->next_purge_ms = next;
  large_arenas_purge(now_ms, force);
  // Abandoned segments first: one that other threads' frees emptied goes to the process cache,
  // whose purge then sees it (the other way round a forced purge left it resident).
  abandoned_segments_purge(now_ms, horizon_ms, force);
  segment_cache_purge(horizon_ms, force);
  purge_flush();
}

bool heap_trim() {
  Heap* heap = t_heap;
  uint64_t purged_before = g_segment_counters.bytes_purged.load(std::memory_order_relaxed);
  uint64_t reserved_before = g_segment_counters.bytes_reserved.load(std::memory_order_relaxed);
  int64_t tails_before = g_large_footprint.tail_bytes_returned.load(std::memory_order_relaxed);
  if (heap != &g_empty_heap) {
    kernel::SpinLockGuard guard(heap->help_lock);  // walks the full queue
    heap_take_help_results(heap);
    bool profiling = heap_profile_active();
    if (profiling) heap_profile_uncut_all(heap);  // page_collect below: the cut invariant
    remote_batches_flush(heap);
    if (remote_inbox_has_blocks(heap)) remote_inbox_drain(heap);
    if (heap->delayed_free.load(std::memory_order_relaxed) != nullptr)
      heap_drain_delayed_frees(heap);
    // Give back every empty page: those heap_page_retire kept at the front of their queues, and
    // those other threads' frees emptied (the drain and page_collect do not retire a page; an
    // owner that rarely allocates a class would otherwise keep its pages formatted for good).
    for (uint32_t bin = 0; bin < kBinCount; ++bin) {
      for (Page* page = heap->queues[bin].first; page != nullptr;) {
        Page* next = page->next;
        page_collect(page);
        if (page->used == 0) {
          bin_queue_remove(heap, page);
          page_free_to_segment(heap, page);
        }
        page = next;
      }
    }
    // Empty sample pages, the current ones too.
    for (PageQueue& queue : heap->sample_queues) {
      for (Page* page = queue.first; page != nullptr;) {
        Page* next = page->next;
        page_collect(page);
        if (page->used == 0) {
          queue_remove(&queue, page);
          page_free_to_segment(heap, page);
        }
        page = next;
      }
    }
    for (Page* page = heap->full_queue.first; page != nullptr;) {
      Page* next = page->next;
      page_collect(page);
      if (page->used == 0) heap_page_retire(heap, page);  // leaves the full queue, freed
      page = next;
    }
    if (profiling) {
      heap->sample_recut_bins = 0;
      heap_profile_cut_all(heap);
    }
    heap_purge(heap, kernel::coarse_monotonic_ms(), true);
  } else {
    large_arenas_purge(kernel::coarse_monotonic_ms(), true);
    abandoned_segments_purge(kernel::coarse_monotonic_ms(), kernel::coarse_monotonic_ms(), true);
    segment_cache_purge(kernel::coarse_monotonic_ms(), true);  // after: see heap_purge
    purge_flush();
  }
  purge_wait_all();
  return g_segment_counters.bytes_purged.load(std::memory_order_relaxed) > purged_before ||
         g_segment_counters.bytes_reserved.load(std::memory_order_relaxed) < reserved_before ||
         g_large_footprint.tail_bytes_returned.load(std::memory_order_relaxed) > tails_before;
}

}  // namespace usgc::alloc
