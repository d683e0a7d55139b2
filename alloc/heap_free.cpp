// alloc/heap_free.cpp — the thread heap's free slow paths: a free into a page the fast path cannot
// take, remote frees (onto the page's thread_free; a full page's first block onto its owner's
// delayed list; batched only while the heap profile is on), the delayed frees of full pages,
// retiring an empty page.
//
// Invariants:
//   - "owner lists": free_list and local_free are the owner's; other threads push onto the page's
//     thread_free only (a lock-free stack, its low bits the delayed-free state, page.hpp), or, for
//     a page in the full queue not told yet (kUseDelayed), onto the owner heap's delayed_free list
//     (a helper, holding help_lock, may free into a full page: remote_free_queue.hpp).
//   - A remote free is validated and marked (free marker) by the freeing thread before the block is
//     published; a double free of a block already marked is reported there, or, batched, when the
//     batch is processed (remote_free_queue.cpp) — always with the one-line message naming it.
//   - A page's `used` counts its blocks not on free_list or local_free (remote frees count until
//     collected); a page whose `used` reaches 0 is retired (heap_page_retire), except the class's
//     current page, which is kept and decays (heap_decay.cpp).
//   - A full page a helper may be at (kPageInFullQueue) is freed into under the heap's help_lock
//     ("Idle owner help", heap_lifecycle.cpp).
// The fast paths (heap_free, heap.hpp) never get here for a local free into a page with room.
#include "alloc/heap_profile.hpp"
#include "alloc/heap_slow_paths.hpp"
#include "alloc/large_arena.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/spin_lock.hpp"

namespace usgc::alloc {

bool page_remote_free(Page* page, Block* block) {
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
        // The owner is told: later remote frees push onto the page (kFullNotified). Release: the
        // owner, waiting for kDelayedFreeing to end (abandon, unfull), may then drop the heap.
        while (!page->thread_free.compare_exchange_weak(
            thread_free, (thread_free & ~kDelayedStateMask) | kFullNotified,
            std::memory_order_release, std::memory_order_relaxed)) {
        }
        return true;
      }
      continue;
    }
    if (state == kEmptied) report_double_free(Caller::kFree, block);  // every block was free
    if (state == kDelayedFreeing) {
      kernel::cpu_relax();
      thread_free = page->thread_free.load(std::memory_order_relaxed);
      continue;
    }
    block->next = thread_free_pointer(thread_free);
    // Release: the owner's acquire exchange in page_collect sees block->next and the marker.
    if (page->thread_free.compare_exchange_weak(
            thread_free, thread_free_pushed(thread_free, block, state), std::memory_order_release,
            std::memory_order_relaxed)) {
      return false;
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
  block->free_marker = free_marker_of(page);
  count_remote_free(bin);
  // (Blocks this thread keeps for itself took heap_free_foreign_or_generic's short path.) Onto
  // the page (a full one's first block onto the owner's delayed list); every block while the heap
  // profile cuts free lists (its drain keeps the cuts: page_free_remote_block) into the batch.
  if (heap_profile_active()) {
    remote_batch_add(heap->remote_batches, heap, destination, block, page->block_size);
    return;
  }
  if ((page_thread_free_push(page, block) & 3) != 0)  // neither kNoDelayed nor kFullNotified
    remote_free_into_full_page(heap, destination, page, block);
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
  // An owner that drains is not idle ("Idle owner help", remote_free_queue.hpp): most frees into
  // its full pages tell it through this list, not its inbox.
  heap->inbox_posts.store(0, std::memory_order_relaxed);
  heap->last_drain_ms.store(kernel::coarse_monotonic_ms(), std::memory_order_relaxed);
  // Acquire: pairs with the remote freers' release CAS; their blocks' contents are visible.
  Block* block = heap->delayed_free.exchange(nullptr, std::memory_order_acquire);
  while (block != nullptr) {
    Block* next = block->next;
    Segment* segment = segment_of(block);
    page_local_free(heap, segment->page_of(reinterpret_cast<uintptr_t>(block)), block, false);
    block = next;
  }
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

}  // namespace usgc::alloc
