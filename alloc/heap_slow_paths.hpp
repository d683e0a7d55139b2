// alloc/heap_slow_paths.hpp — what the thread heap's slow-path files share among themselves
// (internal to alloc/: the GC and the public API include heap.hpp, never this).
//
// The thread heap's slow paths are split by concept:
//   alloc/heap.cpp           the malloc slow path: page finding, collecting a page's lists,
//                            the refill, the sample pages' allocation;
//   alloc/page_queues.cpp    the class queues, the full queue, the direct slots, extending a page;
//   alloc/heap_segments.cpp  pages taken from and given back to the heap's segments;
//   alloc/heap_free.cpp      the free paths: local, remote, delayed, retiring a page;
//   alloc/free_checks.cpp    validation of freed pointers and free lists, counting local frees;
//   alloc/heap_decay.cpp     the decay: purging free pages and segments, the free-resident cap,
//                            malloc_trim.
// Every function here runs on the owner thread of `heap` (the private-heap rule of heap.hpp)
// unless it says otherwise; none is on a fast path.
#pragma once

#include <cstdint>

#include "alloc/heap.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"

namespace usgc::alloc {

inline void queue_remove(PageQueue* queue, Page* page) {
  PageQueueList::remove(queue->first, queue->last, page);
}

inline void queue_push_front(PageQueue* queue, Page* page) {
  PageQueueList::push_front(queue->first, queue->last, page);
}

inline void queue_push_back(PageQueue* queue, Page* page) {
  PageQueueList::push_back(queue->first, queue->last, page);
}

// Points the direct-table slots of `bin` at the first page of its queue (page_queues.cpp).
void update_direct_slots(Heap* heap, uint32_t bin);

inline void bin_queue_remove(Heap* heap, Page* page) {
  bool was_first = heap->queues[page->bin].first == page;
  queue_remove(&heap->queues[page->bin], page);
  if (was_first) update_direct_slots(heap, page->bin);
}

inline void bin_queue_push_front(Heap* heap, Page* page) {
  queue_push_front(&heap->queues[page->bin], page);
  update_direct_slots(heap, page->bin);
}

// A sample page (kPageHasSampled) in this heap's sample queue of its class. A sample page of an
// exited thread's heap that another heap reclaimed sits in a class queue instead, and is freed
// like any page there. The sample queues are short: a few pages per class.
inline bool in_sample_queue(const Heap* heap, const Page* page) {
  if (!page->has_flag(kPageHasSampled)) return false;
  for (const Page* sample = heap->sample_queues[page->bin].first; sample != nullptr;
       sample = sample->next) {
    if (sample == page) return true;
  }
  return false;
}

// Whether other threads left this heap frees to take (its remote inbox, the delayed frees of its
// full pages) or a helper left results ("Idle owner help"): what the refill drains, under the
// help lock, before it looks for a page. Relaxed loads, a hint: what arrives after is taken by a
// later refill. The inbox lanes hold 0 (empty), kInboxClosed or a chain.
inline bool heap_has_frees_to_take(const Heap* heap) {
  static_assert(kInboxClosed == 1 && kInboxLanes == 4, "a word above 1 holds blocks; 4 lanes");
  auto holds = [](const std::atomic<uintptr_t>& word) -> uint32_t {  // 0 or 1: no branch each
    return word.load(std::memory_order_relaxed) > kInboxClosed ? 1 : 0;
  };
  return (holds(heap->remote_inbox[0]) | holds(heap->remote_inbox[1]) |
          holds(heap->remote_inbox[2]) | holds(heap->remote_inbox[3]) |
          holds(heap->inbox_held_back)) != 0 ||
         heap->delayed_free.load(std::memory_order_relaxed) != nullptr ||
         heap->helped_pages.load(std::memory_order_relaxed) != 0;
}

// A chain of `page`'s remote frees taken whole from its thread_free (page_collect; a helper's
// collect of a full page): returns its last block and its length in *count, checked against `used`
// (the blocks count in it until collected).
inline Block* remote_chain_tail(const Page* page, Block* head, uint32_t* count) {
  Block* tail = head;
  uint32_t length = 1;
  while (tail->next != nullptr) {
    tail = tail->next;
    ++length;
  }
  USGC_CHECK(length <= page->used,
             "heap corruption: page %p has %u remote frees but %u blocks in use",
             static_cast<void*>(page->start), length, page->used);
  *count = length;
  return tail;
}

// page_queues.cpp
void page_extend(Page* page);
void page_unfull(Heap* heap, Page* page);

// heap_segments.cpp
Page* heap_new_page(Heap* heap, uint32_t bin);

// free_checks.cpp
// Reports the first block of the list from `first` that is not a block the page handed out
// (the exact-block test); returns the list's length. A dependent walk: only where a page is freed,
// trimmed, abandoned or counted for statistics, never to hand a list to malloc.
uint32_t page_check_list(const Page* page, const Block* first);

// Adds `frees` to the heap's counter of the page's class (owner-only writer: relaxed load+store,
// see counter_increment).
inline void count_frees(Heap* heap, const Page* page, uint64_t frees) {
  if (frees == 0) return;
  std::atomic<uint64_t>& counter = heap->counters.free_count_by_bin[page->bin];
  counter.store(counter.load(std::memory_order_relaxed) + frees, std::memory_order_relaxed);
}

// The fast path's frees on the local_free of a page whose free_list is empty, counted without a
// walk: every block of the page not in use is on local_free (remote frees still count in `used`),
// so it holds capacity - used blocks, of which local_free_counted were counted already. Returns
// that length (page_collect; thread exit).
inline uint32_t count_local_frees_without_walk(Heap* heap, const Page* page) {
  uint32_t length = page->capacity() - page->used;
  USGC_CHECK(length >= page->local_free_counted,
             "heap corruption: page %p has %u free blocks, %u counted on its local free list",
             static_cast<void*>(page->start), length, page->local_free_counted);
  count_frees(heap, page, length - page->local_free_counted);
  return length;
}

// heap_decay.cpp
// The free-resident cap's purge (footprint.hpp), at most once per kPressureIntervalMs per thread:
// t_pressure_next_ms is the earliest time of the next (this thread's only).
extern constinit thread_local uint64_t t_pressure_next_ms
    __attribute__((tls_model("initial-exec")));
[[gnu::noinline]] void heap_purge_pressure(Heap* heap, uint64_t now_ms);
// heap_purge with the pages and segments whose deadline is at or before horizon_ms due (the
// free-resident cap purges early: footprint.hpp); now_ms stamps what is freed meanwhile.
void heap_purge_until(Heap* heap, uint64_t now_ms, uint64_t horizon_ms, bool force);
// An empty page stays in its class queue: make sure a purge pass comes (heap_retire_idle_pages).
inline void heap_arm_idle_page_decay(Heap* heap) {
  if (heap->next_purge_ms == 0) heap->next_purge_ms = kernel::coarse_monotonic_ms() + g_decay_ms;
}

}  // namespace usgc::alloc
