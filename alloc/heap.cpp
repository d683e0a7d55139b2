// alloc/heap.cpp — the thread heap's malloc slow path for small and medium objects: refilling the
// fast path's free lists (heap_malloc_refill: the drains of remote and delayed frees and the
// decay are looked at here, once per refill), the foreign blocks and sample pages.
// Invariants kept here: a class queue's dry page (no free block, no room) goes to the full queue,
// or once, if its last blocks were its owner's own frees, to the queue's back ("the turn",
// heap_queue_find_free); the common refills (own frees, a turn, an emptied foreign page) take a
// short path with no call (heap_refill_from_own_frees) that takes the page and block the refill
// would, and leaves everything else to it.
// See heap.hpp (fast paths, concurrency), page.hpp (free lists, delayed-free states) and
// heap_slow_paths.hpp (how the other slow paths are split between files).
#include "alloc/heap.hpp"

#include <cerrno>

#include "alloc/footprint.hpp"
#include "alloc/heap_profile.hpp"
#include "alloc/heap_slow_paths.hpp"
#include "alloc/large_arena.hpp"
#include "alloc/stats_export.hpp"
#include "kernel_iface/spin_lock.hpp"

namespace usgc::alloc {

constinit Page g_empty_page{};
constinit Heap g_empty_heap{};
constinit thread_local Heap* t_heap __attribute__((tls_model("initial-exec"))) = &g_empty_heap;
constinit thread_local bool t_thread_heap_exited __attribute__((tls_model("initial-exec"))) = false;
uintptr_t g_free_marker_key = 0;
std::atomic<uint64_t> g_heapless_free_count_by_bin[kBinCount];
std::atomic<uint64_t> g_heapless_remote_free_count{0};

namespace {

// Moves a page without free blocks to the full queue. Fails (returns false) if remote frees
// arrived meanwhile: then the caller collects them. The CAS to kUseDelayed succeeds only while
// thread_free is empty, so no remote free can slip in unseen.
bool page_try_to_full(Heap* heap, Page* page) {
  uintptr_t thread_free = page->thread_free.load(std::memory_order_relaxed);
  for (;;) {
    if (thread_free_pointer(thread_free) != nullptr) return false;
    // Release: a remote freer that sees kUseDelayed (acquire) also sees page->heap.
    if (page->thread_free.compare_exchange_weak(thread_free, kUseDelayed, std::memory_order_release,
                                                std::memory_order_relaxed)) {
      break;
    }
  }
  bin_queue_remove(heap, page);
  queue_push_back(&heap->full_queue, page);
  page->set_flag(kPageInFullQueue);
  page_refresh_fast_free_owner(page);
  return true;
}

// The first page of the class queue with free blocks, after collecting each page's remote frees;
// nullptr if none has free blocks. *extendable: the first page with room to extend, or nullptr.
// A page with neither free blocks nor room to extend ("dry") goes to the full queue, unless its
// last blocks came from its owner's own frees (local_refilled): then it is turned to the back of
// its queue once ("the turn"), where it gathers frees until the walks come round to it again; dry
// then too, it goes to the full queue. The walk ends at the first page it turned.
// Why the turn: a page the owner itself frees into (single-thread churn) is dry only for a moment;
// to the full queue and back costs a CAS, the flag, the owner's free through the generic path and
// page_unfull, about 300 instructions a time. Pages refilled by other threads' frees still go to
// the full queue, so the idle-owner help (remote_free_queue.hpp) still reaches them.
Page* heap_queue_find_free(Heap* heap, uint32_t bin, Page** extendable) {
  *extendable = nullptr;
  Page* turned = nullptr;
  for (Page* page = heap->queues[bin].first; page != nullptr && page != turned;) {
    Page* next = page->next;
    if (page->free_list == nullptr) page_collect(page);
    if (page->free_list != nullptr) return page;
    bool can_extend = page->capacity() < page->reserved;
    if (can_extend && *extendable == nullptr) *extendable = page;
    if (page->local_refilled) {
      page->local_refilled = 0;
      if (next != nullptr) {  // the last page is at the back already
        bin_queue_remove(heap, page);
        queue_push_back(&heap->queues[bin], page);
      }
      if (turned == nullptr) turned = page;
    } else if (can_extend) {
      // stays: extended if no page has free blocks
    } else if (!page_try_to_full(heap, page)) {
      page_collect(page);  // remote frees arrived meanwhile
      return page;
    }
    page = next;
  }
  return nullptr;
}

// Segments of exited threads a refill reclaims, at most, before it touches new memory.
constexpr uint32_t kReclaimsBeforeNewMemory = 4;

// The page to allocate `bin` from, with a non-empty free list, at the front of its queue.
// Free blocks of pages in use come before new memory (an extension of a page's never-used tail, or
// a new page): the heap's own, then those of segments of exited threads, reclaimed here (newest
// first) until the class has a page with free blocks. Their holes are filled instead of fresh
// memory being touched, and the pages of segments nobody reclaims empty out and decay ("Where the
// footprint goes", docs/allocator.md). `page` and `extendable`: what the caller's walk of the
// class queue found (heap_queue_find_free), so that the queue is not walked twice.
Page* heap_find_page(Heap* heap, uint32_t bin, Page* page, Page* extendable) {
  for (uint32_t n = 0; page == nullptr && n < kReclaimsBeforeNewMemory; ++n) {
    Segment* abandoned = abandoned_segments_pop();
    if (abandoned == nullptr) break;
    heap_reclaim_segment(heap, abandoned);
    page = heap_queue_find_free(heap, bin, &extendable);
  }
  if (page == nullptr && extendable != nullptr) {
    page = extendable;
    page_extend(page);
    footprint_note_growth();
  }
  if (page == nullptr) {
    page = heap_new_page(heap, bin);
    if (page == nullptr) return nullptr;
    bin_queue_push_front(heap, page);
  } else if (heap->queues[bin].first != page) {
    bin_queue_remove(heap, page);
    bin_queue_push_front(heap, page);
  }
  return page;
}

// Size classes above the direct table may borrow a free block of the next kBorrowBins larger
// classes before they touch new memory (docs/allocator.md, "Borrowing from larger classes"): a
// block of class c + k (k <= 3: at most 37.5 % larger, 8 classes per power of two) is a valid block
// for a request of class c, and it is resident already, where the class's own page would extend
// into never-used memory. So the heap's memory for these sizes follows the high-water mark of the
// classes together, not of each class (jemalloc shares page runs between its large sizes). The
// block stays its page's: free, usable size and the counters see the larger class. Natural
// alignment (heap_malloc_aligned: a class's blocks are aligned to the largest power of two dividing
// its size, up to kMaxNaturalAlignment) is kept: a class borrows only from classes whose blocks are
// aligned at least as well.
constexpr uint32_t kBorrowBins = 3;

size_t natural_alignment_of_bin(uint32_t bin) {
  size_t size = class_size_of_bin(bin);
  size_t lowest_bit = size & (~size + 1);
  return lowest_bit < kMaxNaturalAlignment ? lowest_bit : kMaxNaturalAlignment;
}

// The page of a larger class (up to kBorrowBins above `bin`) with a free block, at the front of its
// queue; nullptr if none. Looked at only when `bin`'s own pages have no free block.
Page* heap_find_borrowed_page(Heap* heap, uint32_t bin) {
  const size_t alignment = natural_alignment_of_bin(bin);
  for (uint32_t larger = bin + 1; larger <= bin + kBorrowBins && larger < kBinCount; ++larger) {
    if (heap->queues[larger].first == nullptr || natural_alignment_of_bin(larger) < alignment)
      continue;
    Page* extendable = nullptr;
    Page* page = heap_queue_find_free(heap, larger, &extendable);
    if (page == nullptr) continue;
    if (heap->queues[larger].first != page) {
      bin_queue_remove(heap, page);
      bin_queue_push_front(heap, page);
    }
    return page;
  }
  return nullptr;
}

}  // namespace

namespace {

// local_free becomes the list malloc pops (which checks each block: page_pop_check), free_list
// being empty; its blocks counted without a walk (count_local_frees_without_walk), except on a cut
// page (the heap profile), which holds some behind its cut: counted by walking (`profiling`).
[[gnu::always_inline]] inline void page_take_local_frees(Heap* heap, Page* page, bool profiling) {
  if (profiling) {
    page_count_local_frees(heap, page);
  } else {
    count_local_frees_without_walk(heap, page);
  }
  page->free_list = page->local_free;
  page->local_free = nullptr;
  page->local_free_counted = 0;
  page->local_refilled = 1;
}

}  // namespace

// An empty free list takes the other threads' frees whole, as they are (the counted list, page.hpp:
// no block read; the owner's own frees wait on local_free for the next refill), or else the owner's
// own frees; a free list that has blocks gets the other threads' frees spliced in front (their
// chain walked for its tail: the decay's pass, trim, a helper-touched page).
void page_collect(Page* page) {
  uintptr_t thread_free = page->thread_free.load(std::memory_order_relaxed);
  bool remote = thread_free_pointer(thread_free) != nullptr;
  if (page->free_list == nullptr && page->local_free != nullptr && !(remote && kThreadFreeCounted))
    page_take_local_frees(segment_of(page)->owner_heap, page, heap_profile_active());
  if (!remote) return;
  // Acquire: the blocks' next pointers written by remote freers (release CAS) are visible.
  while (!page->thread_free.compare_exchange_weak(thread_free, thread_free & kDelayedStateMask,
                                                  std::memory_order_acquire,
                                                  std::memory_order_relaxed)) {
  }
  Block* head = thread_free_pointer(thread_free);
  uint32_t count;
  if (page->free_list == nullptr && kThreadFreeCounted) {
    count = thread_free_count(thread_free);
    USGC_CHECK(count != 0 && count <= page->used,
               "heap corruption: page %p has %u remote frees but %u blocks in use",
               static_cast<void*>(page->start), count, page->used);
    page->free_list = head;
  } else {
    Block* tail = remote_chain_tail(page, head, &count);
    tail->next = page->free_list;
    page->free_list = head;
  }
  page->used -= count;
}

void* heap_malloc_sample_page(Heap* heap, uint32_t bin) {
  PageQueue* queue = &heap->sample_queues[bin];
  Page* page = queue->first;
  // The first page with a free block, after collecting each; empty ones go back to the segment.
  while (page != nullptr) {
    Page* next = page->next;
    page_collect(page);
    if (page->free_list == nullptr && page->capacity() < page->reserved) page_extend(page);
    if (page->free_list != nullptr) break;
    page = next;
  }
  if (page == nullptr) {
    page = heap_new_page(heap, bin);
    if (page == nullptr) return nullptr;
    page->set_flag(kPageHasSampled);
    page_refresh_fast_free_owner(page);  // its frees take the generic path
    queue_push_front(queue, page);
  } else if (queue->first != page) {
    queue_remove(queue, page);
    queue_push_front(queue, page);
  }
  // Pages behind the first that became empty (their blocks came back by other paths).
  for (Page* other = page->next; other != nullptr;) {
    Page* next = other->next;
    page_collect(other);
    if (other->used == 0) {
      queue_remove(queue, other);
      page_free_to_segment(heap, other);
    }
    other = next;
  }
  return page_take_block(heap, page, page->free_list);
}

namespace {

// Purges when a decay deadline (heap_decay.cpp) has passed or the free-resident cap is exceeded:
// a few loads per refill, the purge itself out of line.
void heap_maybe_purge(Heap* heap) {
  if (footprint_over_cap()) {
    uint64_t now = kernel::coarse_monotonic_ms();
    if (now >= t_pressure_next_ms) {
      heap_purge_pressure(heap, now);
      return;
    }
  }
  uint64_t deadline = heap->next_purge_ms;
  uint64_t cache_deadline = g_cache_next_purge_ms.load(std::memory_order_relaxed);
  uint64_t large_deadline = g_large_next_purge_ms.load(std::memory_order_relaxed);
  uint64_t abandoned_deadline = g_abandoned_next_purge_ms.load(std::memory_order_relaxed);
  if (deadline == 0 && cache_deadline == 0 && large_deadline == 0 && abandoned_deadline == 0)
    return;
  uint64_t now = kernel::coarse_monotonic_ms();
  if ((deadline != 0 && now >= deadline) || (cache_deadline != 0 && now >= cache_deadline) ||
      (large_deadline != 0 && now >= large_deadline) ||
      (abandoned_deadline != 0 && now >= abandoned_deadline)) {
    heap_purge(heap, now, false);
  }
}

// The refill's clock duties, statistics publication (stats_export.hpp) and the decay, look at the
// clock at most once per kDutyCycles TSC cycles per thread (0.2-0.5 ms at 1-3 GHz): the coarse
// clock they read ticks every 1-4 ms, and a thread refilling often (churn_1t: one malloc in ten)
// read it on every refill, two vDSO calls each time. A deadline is therefore seen at most that
// much later. With USGC_DECAY_MS=0 (purge at once) every refill looks.
constexpr uint64_t kDutyCycles = uint64_t{1} << 19;
constinit thread_local uint64_t t_duties_cycle __attribute__((tls_model("initial-exec"))) = 0;

// Whether the duties look at the clock now; *cycle: the counter, to note when they do.
[[gnu::always_inline]] inline bool heap_refill_duties_due(uint64_t* cycle) {
  *cycle = kernel::cycle_counter();
  // Unsigned: a counter that went back (another CPU's) gives a large difference, and looks.
  return *cycle - t_duties_cycle >= kDutyCycles || *cycle == 0 || g_decay_ms == 0;
}

[[gnu::noinline]] void heap_refill_duties_now(Heap* heap, uint64_t cycle) {
  t_duties_cycle = cycle;
  stats_export_maybe_publish();
  heap_maybe_purge(heap);
}

// The check inline, the duties out of line: most refills have none due (a function that saved
// registers for the duties cost every refill about 20 instructions for the check alone).
[[gnu::always_inline]] inline void heap_refill_duties(Heap* heap) {
  uint64_t cycle;
  if (heap_refill_duties_due(&cycle)) heap_refill_duties_now(heap, cycle);
}

// The real slow path: a new heap, large objects, or a size class whose current page is empty.
// Delayed frees and the decay are looked at here, once per refill, not per allocation.
[[gnu::noinline]] void* heap_malloc_refill(Heap* heap, size_t size) {
  if (heap == &g_empty_heap) {
    heap = thread_heap_create();
    if (heap == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
  }
  if (heap_has_frees_to_take(heap)) {
    // The drains free into full pages: a helper must not be at them meanwhile.
    kernel::SpinLockGuard guard(heap->help_lock);
    heap_take_help_results(heap);
    if (remote_inbox_has_blocks(heap)) {
      remote_inbox_drain(heap);
      if (heap->sample_recut_bins != 0) heap_profile_recut_marked(heap);
    }
    if (heap->delayed_free.load(std::memory_order_relaxed) != nullptr)
      heap_drain_delayed_frees(heap);
  }
  heap_refill_duties(heap);
  // Large objects after the decay check: a program that only makes large requests decays too.
  if (size > kMediumObjectMax) return large_malloc(heap, size, false);
  uint32_t bin = bin_of_size(size);
  // The cut invariant (heap_profile_cut.cpp): heap_find_page collects the class's pages (a cut
  // page's empty list would take its local_free) and its reclaim of exited threads' segments may
  // make a reclaimed page the class's first, which update_direct_slots cuts. heap_malloc_profiled
  // marks the class it serves busy, so none of that cuts it; a thread's first allocation, which it
  // does not serve, is marked here, and its class cut once the block is taken.
  bool mark_busy =
      heap_profile_active() && bin < kDirectBinCount && heap->sample_cut_busy_bin == kBinCount;
  if (mark_busy) {
    if (heap->queues[bin].first != nullptr) heap_profile_uncut(heap, heap->queues[bin].first);
    heap->sample_cut_busy_bin = bin;
  }
  // Above the direct table, a larger class's free block before new memory (kBorrowBins).
  Page* extendable = nullptr;
  Page* page = heap_queue_find_free(heap, bin, &extendable);
  Page* borrowed =
      page == nullptr && bin >= kDirectBinCount ? heap_find_borrowed_page(heap, bin) : nullptr;
  page = borrowed != nullptr ? borrowed : heap_find_page(heap, bin, page, extendable);
  void* block = page != nullptr ? page_take_block(heap, page, page->free_list) : nullptr;
  if (mark_busy) {
    heap->sample_cut_busy_bin = kBinCount;
    heap_profile_cut_front(heap, bin);
  }
  if (block == nullptr) errno = ENOMEM;
  return block;
}

}  // namespace

namespace {

// Whether a page's thread_free holds blocks (other threads' frees, page.hpp), relaxed: a hint.
inline bool thread_free_holds_blocks(const Page* page) {
  return page->thread_free.load(std::memory_order_relaxed) > kDelayedStateMask;
}

// The refill's common cases without the refill ("The owner's own frees", docs/allocator.md): a
// direct class's current page (the page its slots name) has an empty free list, and either
//   - it has frees of its owner's own (local_free): they become its free list; or
//   - it has none at all, its last blocks came from such frees (local_refilled), and the next page
//     of its queue has own frees: the page is turned to the back (what heap_queue_find_free's walk
//     does to it) and the next page's frees become that page's list;
// and nothing else is due: no heap profile (its cuts), no other threads' frees to take (the inbox,
// delayed frees, help results, either page's thread_free), no foreign blocks of the class, no duty
// of the clock. So the page and the block are those the whole refill would take. Or the slots
// name the class's foreign block page, all its blocks taken, and the class's first page has a
// free list: the slots are pointed back at that page and its block taken, as heap_malloc_unsampled
// would. Anything else returns nullptr: the whole slow path. No call: about 60 instructions against
// 150 (own frees) and 370 (a turn) through the refill, 25 against 100 for the foreign page.
// g_empty_page and the foreign block pages have neither local_free nor local_refilled.
[[gnu::always_inline]] inline void* heap_refill_from_own_frees(Heap* heap, Page* page) {
  if (page->free_list != nullptr) return nullptr;
  Page* next = page->next;
  bool turn = page->local_free == nullptr;
  if (turn && !page->local_refilled) {
    // The class's foreign block page? (its bin is the class's, set when the slots were pointed)
    uint32_t bin = page->bin;
    Page* first = heap->queues[bin].first;
    if (page != &heap->foreign_blocks.pages[bin] || first == nullptr ||
        first->free_list == nullptr || heap_profile_active())
      return nullptr;
    set_direct_slots(heap, bin, first);
    return page_take_block(heap, first, first->free_list);
  }
  if (turn && (next == nullptr || next->local_free == nullptr || next->free_list != nullptr ||
               thread_free_holds_blocks(next)))
    return nullptr;
  uint64_t cycle;
  if (thread_free_holds_blocks(page) || heap_profile_active() || heap_has_frees_to_take(heap) ||
      heap->foreign_blocks.pages[page->bin].free_list != nullptr || heap_refill_duties_due(&cycle))
    return nullptr;
  if (turn) {
    page->local_refilled = 0;
    PageQueue* queue = &heap->queues[page->bin];
    queue_remove(queue, page);
    queue_push_back(queue, page);
    set_direct_slots(heap, page->bin, next);
    page = next;
  }
  page_take_local_frees(heap, page, false);
  return page_take_block(heap, page, page->free_list);
}

}  // namespace

[[gnu::nothrow]] void* heap_malloc_generic(size_t size, Heap* heap) {
  if (size <= kDirectMaxSize) {
    void* block = heap_refill_from_own_frees(heap, heap->direct_pages[direct_slot_of_size(size)]);
    if (block != nullptr) return block;
  }
  // The heap profile samples on this path only (a thread's very first allocation, made before it
  // has a heap, is not counted).
  if (__builtin_expect(heap_profile_active(), 0) && heap != &g_empty_heap)
    return heap_malloc_profiled(heap, size);
  return heap_malloc_unsampled(heap, size);
}

void* heap_malloc_unsampled(Heap* heap, size_t size) {
  // Sizes above the direct table but within the size classes: the queue's first page.
  if (size <= kMediumObjectMax) {
    uint32_t bin = bin_of_size(size);
    // The class's foreign blocks (foreign_block_cache.hpp) first; once they are gone the
    // direct slots go back to the class's first page.
    if (bin < kForeignBins) {
      Page* foreign = &heap->foreign_blocks.pages[bin];
      Page* direct = heap->direct_pages[direct_slot_of_size(size)];
      if (foreign->free_list != nullptr) {
        if (direct != foreign) set_direct_slots(heap, bin, foreign);
        return page_take_block(heap, foreign, foreign->free_list);
      }
      if (direct == foreign) update_direct_slots(heap, bin);
    }
    Page* page = heap->queues[bin].first;
    if (page != nullptr) {
      if (page->free_list != nullptr) return page_take_block(heap, page, page->free_list);
      // The common refill, without the refill's search: the class's current page has blocks its
      // owner freed (local_free) or other threads freed onto it (thread_free), and no other
      // thread left frees to take elsewhere. The refill's other duties, due or not, are the same
      // (statistics, the decay); then, as heap_find_page would (the first page with free blocks
      // after a collect), the page's lists are collected.
      if ((page->local_free != nullptr ||
           page->thread_free.load(std::memory_order_relaxed) > kDelayedStateMask) &&
          !heap_has_frees_to_take(heap) && !heap_profile_active()) {
        heap_refill_duties(heap);
        page = heap->queues[bin].first;  // the decay may have given empty pages back
        if (page != nullptr) {
          if (page->free_list == nullptr) page_collect(page);
          if (page->free_list != nullptr) return page_take_block(heap, page, page->free_list);
        }
      }
    }
  }
  return heap_malloc_refill(heap, size);
}

}  // namespace usgc::alloc
