// alloc/page_queues.cpp — the thread heap's page queues and direct slots (slow paths only).
//
// A heap keeps, per size class, a queue of its pages in use (`queues[bin]`), the pages without
// a free block in one full queue, and the direct table (`direct_pages`) the malloc fast path reads:
// each small class's slots point at the first page of its queue, or at g_empty_page.
//
// Invariants:
//   - "the direct-slot rule": a direct class's slots name the first page of its queue (or
//     g_empty_page when the queue is empty, or the class's foreign-block page while it has blocks,
//     foreign_block_cache.hpp); every change of a queue's first page goes through
//     update_direct_slots, which also keeps the heap profile's cut (heap_profile_cut.cpp).
//   - A page is in exactly one queue: its class queue, the full queue (kPageInFullQueue set, its
//     thread_free in kUseDelayed, so that the next remote free tells the heap through its delayed
//     list, or kFullNotified once one did) or its sample queue.
// Owner only: every function here runs on the heap's thread (the private-heap rule, heap.hpp).
#include <cstring>

#include "alloc/asan_tracking.hpp"
#include "alloc/footprint.hpp"
#include "alloc/heap_profile.hpp"
#include "alloc/heap_slow_paths.hpp"
#include "kernel_iface/cpu.hpp"

namespace usgc::alloc {

namespace {

constexpr size_t kExtendBytes = 4096;  // a page's free list grows by about one OS page at a time

bool bin_has_direct_slots(uint32_t bin) {
  return class_size_of_bin(bin) <= kDirectMaxSize;
}

}  // namespace

// Points the direct-table slots of `bin` at the first page of its queue.
void update_direct_slots(Heap* heap, uint32_t bin) {
  if (!bin_has_direct_slots(bin)) return;
  set_direct_slots(heap, bin,
                   heap->queues[bin].first != nullptr ? heap->queues[bin].first : &g_empty_page);
  // The heap profile's cut follows the first page (the cut invariant, heap_profile_cut.cpp).
  if (heap_profile_active()) heap_profile_cut_front(heap, bin);
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
  for (PageFreeBatch& batch : page_free_batches) batch = PageFreeBatch{};  // flushed at abandon
  page_free_batch_window = PageFreeBatchWindow{};
  foreign_cache_clear(this);  // flushed at abandon
  for (PageQueue& queue : sample_queues) queue = PageQueue{};
}

void heap_queue_push_back(Heap* heap, Page* page) {
  queue_push_back(&heap->queues[page->bin], page);
  if (heap->queues[page->bin].first == page) update_direct_slots(heap, page->bin);
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

void page_unfull(Heap* heap, Page* page) {
  queue_remove(&heap->full_queue, page);
  page->clear_flag(kPageInFullQueue);
  page_refresh_fast_free_owner(page);
  // Back to plain remote frees (kNoDelayed, the blocks on thread_free kept: collected with the
  // page's). A kDelayedFreeing freer is waited for: it would set kFullNotified, which says "full"
  // to a helper ("Idle owner help", remote_free_queue.hpp), on a page the fast paths use again.
  uintptr_t thread_free = page->thread_free.load(std::memory_order_relaxed);
  for (;;) {
    uintptr_t state = thread_free & kDelayedStateMask;
    if (state == kDelayedFreeing) {
      kernel::cpu_relax();
      thread_free = page->thread_free.load(std::memory_order_relaxed);
      continue;
    }
    if (state != kUseDelayed && state != kFullNotified) break;
    if (page->thread_free.compare_exchange_weak(thread_free, thread_free & ~kDelayedStateMask,
                                                std::memory_order_relaxed)) {
      break;
    }
  }
  // To the back (as mimalloc): the page gathers more frees before allocation reaches it, so a
  // page is not moved between the queues for every single block.
  heap_queue_push_back(heap, page);
}

}  // namespace usgc::alloc
