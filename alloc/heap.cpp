// alloc/heap.cpp — the thread heap's slow paths for small and medium objects: refilling the
// fast path's free lists, page queues, full pages, remote and delayed frees, the decay.
// See heap.hpp (fast paths, concurrency) and page.hpp (free lists, delayed-free states).
#include "alloc/heap.hpp"

#include <cerrno>
#include <cstring>

#include "alloc/asan_tracking.hpp"
#include "alloc/footprint.hpp"
#include "alloc/heap_profile.hpp"
#include "alloc/large_arena.hpp"
#include "alloc/stats_export.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"

namespace usgc::alloc {

constinit Page g_empty_page{};
constinit Heap g_empty_heap{};
constinit thread_local Heap* t_heap __attribute__((tls_model("initial-exec"))) = &g_empty_heap;
constinit thread_local bool t_thread_heap_exited __attribute__((tls_model("initial-exec"))) = false;
uintptr_t g_free_marker_key = 0;
std::atomic<uint64_t> g_heapless_free_count_by_bin[kBinCount];
std::atomic<uint64_t> g_heapless_remote_free_count{0};

namespace {

constexpr size_t kExtendBytes = 4096;  // a page's free list grows by about one OS page at a time

Block* pointer_of(uintptr_t thread_free) {
  return reinterpret_cast<Block*>(thread_free & ~kDelayedStateMask);
}

bool bin_has_direct_slots(uint32_t bin) {
  return class_size_of_bin(bin) <= kDirectMaxSize;
}

// Points the direct-table slots of `bin` at the first page of its queue.
void update_direct_slots(Heap* heap, uint32_t bin) {
  if (!bin_has_direct_slots(bin)) return;
  set_direct_slots(heap, bin,
                   heap->queues[bin].first != nullptr ? heap->queues[bin].first : &g_empty_page);
  // The heap profile's cut follows the first page (the cut invariant, heap_profile_cut.cpp).
  if (heap_profile_active()) heap_profile_cut_front(heap, bin);
}

void queue_remove(PageQueue* queue, Page* page) {
  PageQueueList::remove(queue->first, queue->last, page);
}

void queue_push_front(PageQueue* queue, Page* page) {
  PageQueueList::push_front(queue->first, queue->last, page);
}

void queue_push_back(PageQueue* queue, Page* page) {
  PageQueueList::push_back(queue->first, queue->last, page);
}

void bin_queue_remove(Heap* heap, Page* page) {
  bool was_first = heap->queues[page->bin].first == page;
  queue_remove(&heap->queues[page->bin], page);
  if (was_first) update_direct_slots(heap, page->bin);
}

void bin_queue_push_front(Heap* heap, Page* page) {
  queue_push_front(&heap->queues[page->bin], page);
  update_direct_slots(heap, page->bin);
}

// Adds about kExtendBytes of never-used blocks to the free list (owner only).
void page_extend(Page* page) {
  uint32_t count = static_cast<uint32_t>(kExtendBytes / page->block_size);
  if (count == 0) count = 1;
  uint32_t capacity = page->capacity();
  if (count > page->reserved - capacity) count = page->reserved - capacity;
  uint8_t* first = page->start + size_t{capacity} * page->block_size;
  Block* head = page->free_list;
  // Build back to front so the list runs in address order.
  for (uint32_t i = count; i-- > 0;) {
    Block* block = reinterpret_cast<Block*>(first + size_t{i} * page->block_size);
    block->next = head;
    block->free_marker = free_marker_of(page);
    head = block;
  }
  // asan build: every block of the page not handed out yet is poisoned (the new ones and those
  // beyond them, so an overflow into the untouched rest of a page is reported too).
  track_fresh_blocks(first, size_t{page->reserved - capacity} * page->block_size);
  page->free_list = head;
  set_capacity_and_pop_limit(page, capacity + count);
  footprint_add(g_footprint.page_bytes_touched, static_cast<int64_t>(count * page->block_size));
}

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

void page_unfull(Heap* heap, Page* page) {
  queue_remove(&heap->full_queue, page);
  page->clear_flag(kPageInFullQueue);
  page_refresh_fast_free_owner(page);
  uintptr_t thread_free = page->thread_free.load(std::memory_order_relaxed);
  // Back to plain remote frees; a kDelayedFreeing freer resets the state itself.
  while ((thread_free & kDelayedStateMask) == kUseDelayed &&
         !page->thread_free.compare_exchange_weak(thread_free, thread_free & ~kDelayedStateMask,
                                                  std::memory_order_relaxed)) {
  }
  // To the back (as mimalloc): the page gathers more frees before allocation reaches it, so a
  // page is not moved between the queues for every single block.
  heap_queue_push_back(heap, page);
}

// Takes a free page of `kind` from the heap's segments, formats it for `bin`.
Page* heap_new_page(Heap* heap, uint32_t bin) {
  int kind_index = bin_uses_small_pages(bin) ? 0 : 1;
  SegmentKind kind = kind_index == 0 ? SegmentKind::kSmall : SegmentKind::kMedium;
  Segment* segment = heap->available_segments[kind_index];
  // Segments of exited threads first (their memory is already resident), then empty ones.
  for (int attempts = 0; segment == nullptr && attempts < 8; ++attempts) {
    Segment* abandoned = abandoned_segments_pop();
    if (abandoned == nullptr) break;
    heap_reclaim_segment(heap, abandoned);
    segment = heap->available_segments[kind_index];
  }
  if (segment == nullptr) {
    segment = heap_take_empty_segment(heap);
    if (segment == nullptr) return nullptr;
    segment_format(segment, kind);
    footprint_add(g_footprint.page_bytes_free_dirty, segment_free_dirty_bytes(segment));
    segment->owner_heap = heap;
    segment->owner_thread.store(heap->thread_id, std::memory_order_relaxed);
    heap_owned_push(heap, segment);
    heap_available_push(heap, segment);
  }
  // Prefer a resident (dirty) page; then a fresh one; then a purged one. Page 0 comes last: its
  // frees take the generic path (kPageHoldsSegmentHeader).
  Page* chosen = nullptr;
  for (uint32_t n = 0; n < segment->page_count; ++n) {
    uint32_t i = n + 1 == segment->page_count ? 0 : n + 1;
    Page* page = &segment->pages[i];
    if (page->in_use) continue;
    if (page->memory == PageMemory::kDirty) {
      chosen = page;
      break;
    }
    if (chosen == nullptr ||
        (chosen->memory == PageMemory::kPurged && page->memory == PageMemory::kFresh))
      chosen = page;
  }
  USGC_CHECK(chosen != nullptr, "heap: segment %p on the available list has no free page",
             static_cast<void*>(segment));
  uint32_t index = segment->index_of(chosen);
  int64_t area_bytes = segment->page_area_end(index) - segment->page_area_start(index);
  if (chosen->memory == PageMemory::kDirty)
    footprint_add(g_footprint.page_bytes_free_dirty, -area_bytes);
  footprint_add(g_footprint.page_bytes_in_use, area_bytes);
  footprint_note_growth();
  page_unpurge(segment, index);
  chosen->memory = PageMemory::kDirty;
  chosen->in_use = 1;
  chosen->bin = static_cast<uint8_t>(bin);
  chosen->block_size = class_size_of_bin(bin);
  chosen->start = segment->page_area_start(index);
  chosen->reserved = static_cast<uint32_t>(
      static_cast<size_t>(segment->page_area_end(index) - chosen->start) / chosen->block_size);
  chosen->used = 0;
  chosen->free_list = chosen->local_free = nullptr;
  chosen->local_free_counted = 0;
  chosen->purge_deadline_ms = 0;  // not seen empty (heap_retire_idle_pages)
  chosen->clear_flags();
  if (index == 0) chosen->set_flag(kPageHoldsSegmentHeader);
  chosen->block_magic = block_magic_of(chosen->block_size);
  // Malloc checks the blocks of pages the free fast path may push onto (page.hpp, "pop check").
  chosen->pop_checked = kind == SegmentKind::kSmall && index != 0 ? 1 : 0;
  set_capacity_and_pop_limit(chosen, 0);
  chosen->thread_free.store(kNoDelayed, std::memory_order_relaxed);
  // Release: pairs with the acquire load of a remote freer in the delayed path.
  chosen->heap.store(heap, std::memory_order_release);
  page_refresh_fast_free_owner(chosen);
  segment->used_pages++;
  if (--segment->free_pages == 0) heap_available_remove(heap, segment);
  page_extend(chosen);
  return chosen;
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

// A sample page (kPageHasSampled) in this heap's sample queue of its class. A sample page of an
// exited thread's heap that another heap reclaimed sits in a class queue instead, and is freed
// like any page there. The sample queues are short: a few pages per class.
bool in_sample_queue(const Heap* heap, const Page* page) {
  if (!page->has_flag(kPageHasSampled)) return false;
  for (const Page* sample = heap->sample_queues[page->bin].first; sample != nullptr;
       sample = sample->next) {
    if (sample == page) return true;
  }
  return false;
}

}  // namespace

// heap_purge with the pages and segments whose deadline is at or before horizon_ms due (the
// free-resident cap purges early: footprint.hpp); now_ms stamps what is freed meanwhile.
void heap_purge_until(Heap* heap, uint64_t now_ms, uint64_t horizon_ms, bool force);

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
constinit thread_local uint64_t t_pressure_next_ms __attribute__((tls_model("initial-exec"))) = 0;

[[gnu::noinline]] void heap_purge_pressure(Heap* heap, uint64_t now_ms) {
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

// An empty page stays in its class queue: make sure a purge pass comes (heap_retire_idle_pages).
void heap_arm_idle_page_decay(Heap* heap) {
  if (heap->next_purge_ms == 0) heap->next_purge_ms = kernel::coarse_monotonic_ms() + g_decay_ms;
}

}  // namespace

void page_remote_free(Page* page, Block* block) {
  block->free_marker = free_marker_of(page);
  uintptr_t thread_free = page->thread_free.load(std::memory_order_relaxed);
  for (;;) {
    uintptr_t state = thread_free & kDelayedStateMask;
    if (state == kUseDelayed) {
      // Acquire: pairs with the owner's release when it set kUseDelayed (page->heap is valid).
      if (page->thread_free.compare_exchange_weak(
              thread_free, (thread_free & ~kDelayedStateMask) | kDelayedFreeing,
              std::memory_order_acquire, std::memory_order_relaxed)) {
        Heap* owner = page->heap.load(std::memory_order_acquire);
        Block* head = owner->delayed_free.load(std::memory_order_relaxed);
        do {
          block->next = head;
          // Release: the owner's acquire exchange sees the block's contents.
        } while (!owner->delayed_free.compare_exchange_weak(head, block, std::memory_order_release,
                                                            std::memory_order_relaxed));
        thread_free = page->thread_free.load(std::memory_order_relaxed);
        // Release: the owner, waiting for kDelayedFreeing to end (abandon), may then drop the heap.
        while (!page->thread_free.compare_exchange_weak(
            thread_free, (thread_free & ~kDelayedStateMask) | kNoDelayed, std::memory_order_release,
            std::memory_order_relaxed)) {
        }
        return;
      }
      continue;
    }
    if (state == kEmptied) report_double_free(Caller::kFree, block);  // every block was free
    if (state == kDelayedFreeing) {
      kernel::cpu_relax();
      thread_free = page->thread_free.load(std::memory_order_relaxed);
      continue;
    }
    block->next = pointer_of(thread_free);
    // Release: the owner's acquire exchange in page_collect sees block->next and the marker.
    if (page->thread_free.compare_exchange_weak(
            thread_free, reinterpret_cast<uintptr_t>(block) | state, std::memory_order_release,
            std::memory_order_relaxed)) {
      return;
    }
  }
}

namespace {

void count_remote_free(uint32_t bin) {
  Heap* heap = t_heap;
  if (heap != &g_empty_heap) {
    counter_increment(heap->counters.free_count_by_bin[bin]);
    counter_increment(heap->counters.remote_free_count);
  } else {
    g_heapless_free_count_by_bin[bin].fetch_add(1, std::memory_order_relaxed);
    g_heapless_remote_free_count.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace

void remote_free_block(Page* page, Block* block, uint32_t bin) {
  Heap* heap = t_heap;
  if (heap == &g_empty_heap && !t_thread_heap_exited) heap = thread_heap_create();
  Heap* destination = page->heap.load(std::memory_order_relaxed);
  if (heap == nullptr || heap == &g_empty_heap || destination == nullptr || destination == heap) {
    page_remote_free(page, block);
    count_remote_free(bin);
    return;
  }
  size_t block_bytes = page->block_size;  // read before the batch may be posted
  block->free_marker = free_marker_of(page);
  count_remote_free(bin);
  // (Blocks this thread keeps for itself took heap_free_foreign_or_generic's short path.)
  remote_batch_add(heap->remote_batches, heap, destination, block, block_bytes);
}

void set_direct_slots(Heap* heap, uint32_t bin, Page* page) {
  DirectSlotRange range = kDirectSlotRanges[bin];
  for (size_t slot = range.first; slot <= range.last; ++slot) heap->direct_pages[slot] = page;
}

const char* caller_name(Caller caller) {
  switch (caller) {
    case Caller::kFree:
      return "free";
    case Caller::kRealloc:
      return "realloc";
    case Caller::kUsableSize:
      return "malloc_usable_size";
    case Caller::kDelete:
      return "operator delete";
    case Caller::kFreeSized:
      return "free_sized";
  }
  return "free";
}

void report_invalid_pointer(Caller caller, const void* pointer) {
  kernel::fatal(
      "%s(): pointer %p points inside usgc's heap but was never returned by malloc (invalid "
      "pointer)",
      caller_name(caller), pointer);
}

void report_invalid_pointer_found_later(const void* pointer) {
  kernel::fatal(
      "free(): pointer %p points inside usgc's heap but was never returned by malloc (invalid "
      "pointer; found when the page's free list was checked, after the call that freed it)",
      pointer);
}

void report_double_free(Caller caller, const void* pointer) {
  kernel::fatal("%s(): pointer %p was already freed (double free)", caller_name(caller), pointer);
}

void Heap::reset_queues() {
  for (Page*& slot : direct_pages) slot = &g_empty_page;
  for (PageQueue& queue : queues) queue = PageQueue{};
  full_queue = PageQueue{};
  available_segments[0] = available_segments[1] = nullptr;
  owned_segments = nullptr;
  for (Segment*& cached : cached_segments) cached = nullptr;
  cached_segment_count = 0;
  next_purge_ms = 0;
  delayed_free.store(nullptr, std::memory_order_relaxed);
  for (RemoteBatch& batch : remote_batches) batch = RemoteBatch{};
  foreign_cache_clear(this);  // flushed at abandon
  for (PageQueue& queue : sample_queues) queue = PageQueue{};
}

Block* page_block_of(Page* page, const void* pointer, Caller caller) {
  const uint8_t* p = static_cast<const uint8_t*>(pointer);
  if (!page->in_use || p < page->start) report_invalid_pointer(caller, pointer);
  size_t offset = static_cast<size_t>(p - page->start);
  bool has_aligned = page->has_flag(kPageHasAligned);
  uint8_t* block;
  if (page->reserved == 1) {  // large or huge: one block
    if (offset >= page->block_size) report_invalid_pointer(caller, pointer);
    block = page->start;
  } else {
    if (block_is_handed_out(page, offset)) {  // exact block starts: the common case
      block = page->start + offset;
    } else {
      // Not a block start: only an aligned_alloc pointer (checked below) may lie inside a block.
      if (!has_aligned || offset >= size_t{page->capacity()} * page->block_size)
        report_invalid_pointer(caller, pointer);
      block = page->start + offset / page->block_size * page->block_size;
    }
  }
  // An interior pointer is valid only if aligned_alloc returned it (it left its marker).
  if (block != p && !(has_aligned && kernel::unchecked_load(reinterpret_cast<const uintptr_t*>(p) -
                                                            1) == aligned_marker_of(p))) {
    report_invalid_pointer(caller, pointer);
  }
  return reinterpret_cast<Block*>(block);
}

namespace {

// The exact-block test of a page's lists (block_is_handed_out, with the page's fields loaded once).
struct ListCheck {
  uintptr_t start;
  uint64_t magic;
  uint64_t limit;
  explicit ListCheck(const Page* page)
      : start(reinterpret_cast<uintptr_t>(page->start)),
        magic(page->block_magic),
        limit(uint64_t{page->capacity()} * block_step_of(page->block_size, page->block_magic)) {}
  // Reports `block` unless it is a block the page handed out. Checked before its link is
  // followed: a pointer into a block may have had its link overwritten by the program since.
  void check(const Block* block) const {
    if (__builtin_expect((reinterpret_cast<uintptr_t>(block) - start) * magic >= limit, 0))
      report_invalid_pointer_found_later(block);
  }
};

// Reports the first block of the list from `first` that is not a block the page handed out
// (the exact-block test); returns the list's length. A dependent walk: only where a page is freed,
// trimmed, abandoned or counted for statistics, never to hand a list to malloc.
uint32_t page_check_list(const Page* page, const Block* first) {
  const ListCheck list_check(page);
  uint32_t length = 0;
  for (const Block* block = first; block != nullptr; block = block->next) {
    list_check.check(block);
    ++length;
  }
  return length;
}

// Adds `frees` to the heap's counter of the page's class (owner-only writer: relaxed load+store,
// see counter_increment).
void count_frees(Heap* heap, const Page* page, uint64_t frees) {
  if (frees == 0) return;
  std::atomic<uint64_t>& counter = heap->counters.free_count_by_bin[page->bin];
  counter.store(counter.load(std::memory_order_relaxed) + frees, std::memory_order_relaxed);
}

}  // namespace

void page_count_local_frees(Heap* heap, Page* page) {
  if (page->local_free != nullptr) pages_count_local_frees(heap, &page, 1);
}

void pages_count_local_frees(Heap* heap, Page* const* pages, uint32_t count) {
  constexpr uint32_t kSideBySide = 8;
  for (uint32_t first = 0; first < count; first += kSideBySide) {
    const uint32_t walks = count - first < kSideBySide ? count - first : kSideBySide;
    const Block* cursor[kSideBySide];
    uint32_t length[kSideBySide];
    for (uint32_t i = 0; i < walks; ++i) {
      cursor[i] = pages[first + i]->local_free;
      length[i] = 0;
    }
    // One step of every walk per round: the loads of the walks' next blocks are independent.
    for (bool any = true; any;) {
      any = false;
      for (uint32_t i = 0; i < walks; ++i) {
        const Block* block = cursor[i];
        if (block == nullptr) continue;
        ListCheck(pages[first + i]).check(block);
        ++length[i];
        cursor[i] = block->next;
        any = true;
      }
    }
    for (uint32_t i = 0; i < walks; ++i) {
      Page* page = pages[first + i];
      USGC_CHECK(length[i] >= page->local_free_counted,
                 "heap corruption: page %p has %u blocks on its local free list, %u counted",
                 static_cast<void*>(page->start), length[i], page->local_free_counted);
      count_frees(heap, page, length[i] - page->local_free_counted);
      page->local_free_counted = length[i];
    }
  }
}

void segment_count_local_frees(Heap* heap, Segment* segment) {
  Page* pages[kMaxPagesPerSegment];
  uint32_t count = 0;
  for (uint32_t i = 0; i < segment->page_count; ++i) {
    if (segment->pages[i].in_use && segment->pages[i].local_free != nullptr)
      pages[count++] = &segment->pages[i];
  }
  pages_count_local_frees(heap, pages, count);
}

void heap_count_local_frees(Heap* heap) {
  kernel::SpinLockGuard guard(heap->help_lock);  // full pages' local_free
  for (Segment* segment = heap->owned_segments; segment != nullptr; segment = segment->owned_next)
    segment_count_local_frees(heap, segment);
}

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
  Block* tail = head;
  uint32_t count = 1;
  while (tail->next != nullptr) {
    tail = tail->next;
    ++count;
  }
  USGC_CHECK(count <= page->used,
             "heap corruption: page %p has %u remote frees but %u blocks in use",
             static_cast<void*>(page->start), count, page->used);
  tail->next = page->free_list;
  page->free_list = head;
  page->used -= count;
}

void heap_queue_push_back(Heap* heap, Page* page) {
  queue_push_back(&heap->queues[page->bin], page);
  if (heap->queues[page->bin].first == page) update_direct_slots(heap, page->bin);
}

void page_local_free(Heap* heap, Page* page, Block* block, bool count_free) {
  block->next = page->local_free;
  block->free_marker = free_marker_of(page);
  page->local_free = block;
  page->local_free_counted++;  // checked by the caller
  if (count_free) counter_increment(heap->counters.free_count_by_bin[page->bin]);
  if (--page->used == 0) {
    heap_page_retire(heap, page);
  } else if (page->has_flag(kPageInFullQueue)) {
    page_unfull(heap, page);
  }
}

void page_free_remote_block(Heap* heap, Page* page, Block* block) {
  // Validated and marked by the freeing thread: straight onto free_list, which only the owner
  // touches, so the next malloc of the size class finds it without a collect.
  // The cut invariant (heap_profile_cut.cpp): on a cut page the block joins the part behind the
  // cut; an uncut page's class is marked: its first page may need a cut now (the drain's caller
  // cuts once per drain, not once per block).
  bool profiling = heap_profile_active();
  bool was_empty = page->free_list == nullptr;
  bool into_cut = profiling && heap_profile_free_into_cut(heap, page, block);
  if (!into_cut) {
    block->next = page->free_list;
    page->free_list = block;
  }
  page->used--;
  if (in_sample_queue(heap, page)) {  // not in a class queue; taken again when it is first
    if (page->used == 0) heap_page_retire(heap, page);
    return;
  }
  if (page->has_flag(kPageInFullQueue)) page_unfull(heap, page);
  if (page->used == 0) heap_arm_idle_page_decay(heap);  // not retired here: see the decay
  // A page that has blocks again goes to the front of its queue, so the next refill takes the
  // returned blocks (already resident) instead of extending the current page into fresh memory.
  if (was_empty && heap->queues[page->bin].first != page) {
    bin_queue_remove(heap, page);
    bin_queue_push_front(heap, page);
  }
  if (profiling && !into_cut && page->bin < kDirectBinCount)
    heap->sample_recut_bins |= uint64_t{1} << page->bin;  // heap_profile_recut_marked, after
}

[[gnu::nothrow]] void heap_page_retire_of(void* pointer, Segment* segment) {
  heap_page_retire(segment->owner_heap, segment->page_of(reinterpret_cast<uintptr_t>(pointer)));
}

void heap_page_retire(Heap* heap, Page* page) {
  if (in_sample_queue(heap, page)) {  // the current sample page stays (as a queue's first)
    PageQueue* queue = &heap->sample_queues[page->bin];
    if (queue->first == page) return;
    queue_remove(queue, page);
  } else if (page->has_flag(kPageInFullQueue)) {
    queue_remove(&heap->full_queue, page);
    page->clear_flag(kPageInFullQueue);
  } else {
    PageQueue* queue = &heap->queues[page->bin];
    // Keep the page allocation is taking from (the queue's first): a program freeing its last
    // block of a size often allocates one again at once, and freeing it would format a new
    // page for the next allocation. It decays if it stays empty (heap_retire_idle_pages).
    if (queue->first == page) {
      heap_arm_idle_page_decay(heap);
      return;
    }
    bin_queue_remove(heap, page);
  }
  page_free_to_segment(heap, page);
}

bool page_free_to_segment(Heap* heap, Page* page) {
  Segment* segment = segment_of(page);
  // An invalid pointer the free fast path pushed made `used` reach 0 one block early: it is still
  // on one of the lists (malloc's pop check did not meet it), found here before the page goes.
  page_count_local_frees(heap, page);
  if (page->pop_checked) page_check_list(page, page->free_list);
  page_reset_to_free(page);
  uint32_t index = segment->index_of(page);
  int64_t area_bytes = segment->page_area_end(index) - segment->page_area_start(index);
  footprint_add(g_footprint.page_bytes_in_use, -area_bytes);
  // A page a helper emptied is purged already (kPurged, its ticket kept); any other is dirty.
  if (page->memory != PageMemory::kPurged) {
    footprint_add(g_footprint.page_bytes_free_dirty, area_bytes);
    page->memory = PageMemory::kDirty;
    page->purge_deadline_ms = kernel::coarse_monotonic_ms() + g_decay_ms;
    if (heap->next_purge_ms == 0 || page->purge_deadline_ms < heap->next_purge_ms) {
      heap->next_purge_ms = page->purge_deadline_ms;
    }
  }
  segment->used_pages--;
  segment->free_pages++;
  if (segment->used_pages == 0) {
    heap_release_empty_segment(heap, segment);
    return true;
  }
  heap_available_push(heap, segment);
  return false;
}

void page_reset_to_free(Page* page) {
  footprint_add(g_footprint.page_bytes_touched,
                -static_cast<int64_t>(page->capacity() * page->block_size));
  page->in_use = 0;
  page->block_size = 0;
  page->pop_checked = 0;
  set_capacity_and_pop_limit(page, 0);
  page->reserved = page->used = 0;
  page->free_list = page->local_free = nullptr;
  page->local_free_counted = 0;
  page->clear_flags();
  page->bin = kBinCount;
  page->fast_free_owner.store(0, std::memory_order_relaxed);
  page->thread_free.store(kNoDelayed, std::memory_order_relaxed);
  page->heap.store(nullptr, std::memory_order_relaxed);
}

void heap_available_push(Heap* heap, Segment* segment) {
  if (segment->in_available_list) return;
  Segment** head = &heap->available_segments[segment->kind == SegmentKind::kSmall ? 0 : 1];
  AvailableSegmentList::push_front(*head, segment);
  segment->in_available_list = 1;
}

void heap_available_remove(Heap* heap, Segment* segment) {
  if (!segment->in_available_list) return;
  Segment** head = &heap->available_segments[segment->kind == SegmentKind::kSmall ? 0 : 1];
  AvailableSegmentList::remove(*head, segment);
  segment->in_available_list = 0;
}

void heap_owned_push(Heap* heap, Segment* segment) {
  OwnedSegmentList::push_front(heap->owned_segments, segment);
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

void heap_take_help_results(Heap* heap) {
  if (heap->helped_pages.load(std::memory_order_relaxed) == 0) return;
  heap->helped_pages.store(0, std::memory_order_relaxed);
  for (Page* page = heap->full_queue.first; page != nullptr;) {
    Page* next = page->next;
    if (page_was_emptied(page)) {
      // Every block came back and the memory is purged (kPurged): give the page back.
      queue_remove(&heap->full_queue, page);
      page->clear_flag(kPageInFullQueue);
      page_free_to_segment(heap, page);
    } else if (page->local_free != nullptr) {
      page_unfull(heap, page);  // blocks a helper freed: allocation may take them now
    }
    page = next;
  }
}

void heap_drain_delayed_frees(Heap* heap) {
  // Acquire: pairs with the remote freers' release CAS; their blocks' contents are visible.
  Block* block = heap->delayed_free.exchange(nullptr, std::memory_order_acquire);
  while (block != nullptr) {
    Block* next = block->next;
    Segment* segment = segment_of(block);
    page_local_free(heap, segment->page_of(reinterpret_cast<uintptr_t>(block)), block, false);
    block = next;
  }
}

namespace {

// The real slow path: a new heap, large objects, or a size class whose current page is empty.
// Delayed frees and the decay are looked at here, once per refill, not per allocation.
[[gnu::noinline]] void* heap_malloc_refill(Heap* heap, size_t size) {
  stats_export_maybe_publish();
  if (heap == &g_empty_heap) {
    heap = thread_heap_create();
    if (heap == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
  }
  if (remote_inbox_has_blocks(heap) ||
      heap->delayed_free.load(std::memory_order_relaxed) != nullptr ||
      heap->helped_pages.load(std::memory_order_relaxed) != 0) {
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
  heap_maybe_purge(heap);
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
    if (page != nullptr && page->free_list != nullptr)
      return page_take_block(heap, page, page->free_list);
  }
  return heap_malloc_refill(heap, size);
}

[[gnu::nothrow]] void heap_free_generic(void* pointer, Segment* segment, Caller caller) {
  if (segment->kind == SegmentKind::kLarge || segment->kind == SegmentKind::kHuge) {
    if (heap_profile_active()) {
      // Keyed by the block's start: a huge object's mapping, or a large object's span.
      void* start = segment->kind == SegmentKind::kHuge ? segment->pages[0].start
                                                        : large_span_block_start(segment, pointer);
      if (start != nullptr) heap_profile_forget(start);
    }
    large_free(segment, pointer, caller);
    return;
  }
  Page* page = segment->page_of(reinterpret_cast<uintptr_t>(pointer));
  // page_block_of's common case inline (the path of every remote free): a block start the page
  // has handed out; every other pointer (aligned_alloc's interior pointers, errors) takes it.
  const uint8_t* bytes = static_cast<const uint8_t*>(pointer);
  Block* block;
  if (__builtin_expect(page->in_use && bytes >= page->start && page->reserved != 1 &&
                           block_is_handed_out(page, static_cast<size_t>(bytes - page->start)),
                       1)) {
    block = static_cast<Block*>(pointer);
  } else {
    block = page_block_of(page, pointer, caller);
  }
  if (block->free_marker == free_marker_of(page)) report_double_free(caller, pointer);
  // A page a helper emptied: its memory was zeroed with the markers ("Idle owner help").
  if (page_was_emptied(page)) report_double_free(caller, pointer);
  if (page->has_flag(kPageHasSampled)) heap_profile_forget(block);
  if (segment->owner_thread.load(std::memory_order_relaxed) == current_thread_id()) {
    Heap* heap = segment->owner_heap;
    if (page->has_flag(kPageInFullQueue)) {  // a helper may be at the page: its lock
      kernel::SpinLockGuard guard(heap->help_lock);
      if (page_was_emptied(page)) report_double_free(caller, pointer);
      page_local_free(heap, page, block, true);
      return;
    }
    page_local_free(heap, page, block, true);
  } else {
    uint32_t bin = page->bin;  // read before the block is published: the page may be reused after
    remote_free_block(page, block, bin);
  }
}

[[gnu::nothrow]] void heap_free_slow(void* pointer, Caller caller) {
  // The map byte of the pointer's bits 22..46 may be a segment's: only bits 47..63 can make it
  // foreign then (heap_free's map index drops them).
  Segment* segment = segment_of(pointer);
  if ((uint64_t{reinterpret_cast<uintptr_t>(pointer)} >> kUserAddressBits) != 0 ||
      !segment_map_is_segment(segment))
    return free_outside_segment(pointer, caller);
  heap_free_generic(pointer, segment, caller);
}

void free_outside_segment(void* pointer, Caller caller) {
  if (pointer == nullptr) return;
  Segment* segment = nullptr;
  switch (classify_pointer(pointer, &segment)) {
    case PointerOrigin::kSegment:
      heap_free_generic(pointer, segment, caller);  // an interior pointer of a huge aligned object
      return;
    case PointerOrigin::kTombstone:
      kernel::fatal(
          "%s(): pointer %p points into memory usgc already returned to the OS (double free)",
          caller_name(caller), pointer);
    case PointerOrigin::kForeign: {
      static std::atomic<bool> reported{false};
      if (!reported.exchange(true, std::memory_order_relaxed)) {
        kernel::print_message("%s(): pointer %p was not allocated by usgc; ignored (reported once)",
                              caller_name(caller), pointer);
      }
      return;
    }
  }
}

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

void heap_release_empty_segment(Heap* heap, Segment* segment) {
  // Leave the heap's lists.
  heap_available_remove(heap, segment);
  if (OwnedSegmentList::is_linked(heap->owned_segments, segment))
    OwnedSegmentList::remove(heap->owned_segments, segment);
  segment->owned_next = segment->owned_prev = nullptr;
  segment->available_next = segment->available_prev = nullptr;
  segment->owner_thread.store(0, std::memory_order_relaxed);
  segment->owner_heap = nullptr;
  // The whole data area is fresh only if every page is fresh or its purge has landed; pages
  // whose purge is still in flight are waited for (decommit ticket rule) before reuse.
  bool has_pages = segment->kind == SegmentKind::kSmall || segment->kind == SegmentKind::kMedium;
  bool fresh = has_pages;
  if (has_pages) {
    for (uint32_t i = 0; i < segment->page_count; ++i) {
      page_unpurge(segment, i);
      if (segment->pages[i].memory == PageMemory::kDirty) fresh = false;
    }
  }
  segment->data_is_fresh = fresh ? 1 : 0;
  segment->cache_purged = 0;
  // Its dirty pages leave the census's free pages for its cached segments (footprint.hpp).
  int64_t dirty_bytes = has_pages ? segment_free_dirty_bytes(segment) : 0;
  footprint_add(g_footprint.page_bytes_free_dirty, -dirty_bytes);
  footprint_add(g_footprint.cached_segment_bytes_dirty, dirty_bytes);
  segment->cache_dirty_bytes = static_cast<uint64_t>(dirty_bytes);
  uint64_t now = kernel::coarse_monotonic_ms();
  if (heap != &g_empty_heap && heap->cached_segment_count < kHeapCachedSegments &&
      segment->segment_bytes == kSegmentBytes) {
    segment->cache_deadline_ms = now + g_decay_ms;
    heap->cached_segments[heap->cached_segment_count++] = segment;
    if (heap->next_purge_ms == 0 || segment->cache_deadline_ms < heap->next_purge_ms) {
      heap->next_purge_ms = segment->cache_deadline_ms;
    }
    return;
  }
  segment_cache_put(segment, now);
}

Segment* heap_take_empty_segment(Heap* heap) {
  if (heap->cached_segment_count != 0) {
    Segment* segment = heap->cached_segments[--heap->cached_segment_count];
    segment_unpurge_data(segment);
    segment_leave_cache(segment);
    return segment;
  }
  Segment* segment = segment_cache_take(heap->node);
  if (segment != nullptr) {
    segment_leave_cache(segment);
    return segment;
  }
  kernel::Result<Segment*> mapped = segment_map_new(kSegmentBytes, heap->node);
  return mapped.ok() ? mapped.value() : nullptr;
}

bool heap_trim() {
  Heap* heap = t_heap;
  uint64_t purged_before = g_segment_counters.bytes_purged.load(std::memory_order_relaxed);
  uint64_t reserved_before = g_segment_counters.bytes_reserved.load(std::memory_order_relaxed);
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
         g_segment_counters.bytes_reserved.load(std::memory_order_relaxed) < reserved_before;
}

}  // namespace usgc::alloc
