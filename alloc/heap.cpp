// alloc/heap.cpp — the thread heap's malloc slow path for small and medium objects: refilling the
// fast path's free lists (heap_malloc_refill: the drains of remote and delayed frees and the
// decay are looked at here, once per refill), the foreign blocks and sample pages.
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
    if (pointer_of(thread_free) != nullptr) return false;
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

// The first page of the class queue with free blocks, after collecting each page's remote frees
// and moving the pages that have neither free blocks nor room to extend to the full queue;
// nullptr if none has free blocks. *extendable: the first page with room to extend, or nullptr.
Page* heap_queue_find_free(Heap* heap, uint32_t bin, Page** extendable) {
  *extendable = nullptr;
  for (Page* page = heap->queues[bin].first; page != nullptr;) {
    Page* next = page->next;
    if (page->free_list == nullptr) page_collect(page);
    if (page->free_list != nullptr) return page;
    if (page->capacity() < page->reserved) {
      if (*extendable == nullptr) *extendable = page;
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
// footprint goes", docs/allocator.md).
Page* heap_find_page(Heap* heap, uint32_t bin) {
  Page* extendable = nullptr;
  Page* page = heap_queue_find_free(heap, bin, &extendable);
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

void page_collect(Page* page) {
  if (page->free_list == nullptr && page->local_free != nullptr) {
    // local_free becomes the list malloc pops (which checks each block: page_pop_check). The fast
    // path's frees on it are counted without a walk: with free_list empty every block not in use
    // is on local_free (remote frees still count in `used`), so it holds capacity - used blocks.
    // A cut page (the heap profile) holds some behind its cut: counted by walking.
    Heap* heap = segment_of(page)->owner_heap;
    if (heap_profile_active()) {
      page_count_local_frees(heap, page);
    } else {
      uint32_t length = page->capacity() - page->used;
      USGC_CHECK(length >= page->local_free_counted,
                 "heap corruption: page %p has %u free blocks, %u counted on its local free list",
                 static_cast<void*>(page->start), length, page->local_free_counted);
      count_frees(heap, page, length - page->local_free_counted);
    }
    page->free_list = page->local_free;
    page->local_free = nullptr;
    page->local_free_counted = 0;
  }
  uintptr_t thread_free = page->thread_free.load(std::memory_order_relaxed);
  if (pointer_of(thread_free) == nullptr) return;
  // Acquire: the blocks' next pointers written by remote freers (release CAS) are visible.
  while (!page->thread_free.compare_exchange_weak(thread_free, thread_free & kDelayedStateMask,
                                                  std::memory_order_acquire,
                                                  std::memory_order_relaxed)) {
  }
  Block* head = pointer_of(thread_free);
  uint32_t count;
  Block* tail = remote_chain_tail(page, head, &count);
  tail->next = page->free_list;
  page->free_list = head;
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

void heap_refill_duties(Heap* heap) {
  uint64_t cycle = kernel::cycle_counter();
  // Unsigned: a counter that went back (another CPU's) gives a large difference, and looks.
  if (cycle - t_duties_cycle < kDutyCycles && cycle != 0 && g_decay_ms != 0) return;
  t_duties_cycle = cycle;
  stats_export_maybe_publish();
  heap_maybe_purge(heap);
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
  Page* page = nullptr;
  Page* extendable = nullptr;
  if (bin >= kDirectBinCount && heap_queue_find_free(heap, bin, &extendable) == nullptr)
    page = heap_find_borrowed_page(heap, bin);
  if (page == nullptr) page = heap_find_page(heap, bin);
  void* block = page != nullptr ? page_take_block(heap, page, page->free_list) : nullptr;
  if (mark_busy) {
    heap->sample_cut_busy_bin = kBinCount;
    heap_profile_cut_front(heap, bin);
  }
  if (block == nullptr) errno = ENOMEM;
  return block;
}

}  // namespace

[[gnu::nothrow]] void* heap_malloc_generic(size_t size, Heap* heap) {
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
