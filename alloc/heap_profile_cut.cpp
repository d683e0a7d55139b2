// alloc/heap_profile_cut.cpp — the heap profile's sampling of the direct size classes at zero
// fast-path cost: free-list cuts (the scheme, its statistics and its cost are in
// heap_profile.hpp, "Sampling" and "Hot path").
//
// A cut (HeapSampleCut, one per direct class, in the heap) splits the free list of the class's
// current page (the first of its queue, which the direct table points to) in two: the fast path
// pops the first part, `needed` = sample_at - index blocks, and finds the list empty exactly when
// the allocation with index sample_at comes; the second part (`rest`) waits in the cut. The slow
// path then joins the parts (heap_profile_join: O(1), the first part's last block `tail` links to
// `rest`, or the list becomes `rest` when the first part is gone), takes the block, samples it,
// draws the next sample_at and cuts again.
//
// The cut invariant: a class's cut is on the first page of its queue or nowhere, and while a page
// is cut nothing but the fast path's pops changes its free list. So `tail` is still on the list
// exactly while the list is not empty (pops take from the head; tail is the last of the first
// part), and joining never writes into a block the program holds. Every slow path that would
// break this joins first or works around the cut: page_free_remote_block puts a cut page's
// returned block behind the cut (heap_profile_free_into_cut: O(1), the first part keeps its
// length; an uncut page's class is marked and cut again once the drain is over,
// heap_profile_recut_marked), update_direct_slots changes the first page (heap_profile_cut_front),
// trim and abandon walk all pages (heap_profile_uncut_all); heap_malloc_profiled joins the class
// it serves and marks it busy, so the refill's queue changes do not cut it under its feet (the
// refill marks the class of a thread's first allocation itself, which heap_malloc_profiled does
// not serve: its reclaim of an exited thread's segment may make a page the first, and the page
// search would collect that cut page).
//
// Execution context: the owning thread's malloc and free slow paths (no lock, no allocation).
// Nothing here runs while profiling is off: every caller checks heap_profile_active() first.
#include "alloc/heap_profile.hpp"

#include "kernel_iface/fatal.hpp"

namespace usgc::alloc {

namespace {

uint64_t allocations_of(const Heap* heap, uint32_t bin) {
  return heap->counters.malloc_count_by_bin[bin].load(std::memory_order_relaxed);
}

// The allocations of class `bin` before the next sampled one, from a fresh countdown.
uint64_t draw_skip(uint32_t bin) {
  int64_t countdown = heap_profile_next_countdown();
  return static_cast<uint64_t>(countdown) / class_size_of_bin(bin);
}

void join(HeapSampleCut* cut) {
  Page* page = cut->page;
  if (page == nullptr) return;
  if (page->free_list != nullptr) {
    USGC_CHECK(cut->tail != nullptr, "heap profile: cut invariant broken on page %p (bin %u)",
               static_cast<void*>(page->start), page->bin);
    cut->tail->next = cut->rest;  // the first part is not used up: tail is its last block
  } else {
    page->free_list = cut->rest;
  }
  cut->page = nullptr;
  cut->tail = cut->rest = nullptr;
}

// Cuts the first page of the class's queue `needed` blocks from the head (or at its end, when it
// is shorter), unless the page cannot hold that many free blocks.
void cut_front(Heap* heap, uint32_t bin) {
  HeapSampleCut* cut = &heap->sample_cuts[bin];
  join(cut);
  if (bin == heap->sample_cut_busy_bin) return;  // heap_malloc_profiled cuts it when done
  Page* page = heap->queues[bin].first;
  if (page == nullptr || page->free_list == nullptr) return;
  uint64_t index = allocations_of(heap, bin);
  uint64_t needed = cut->sample_at > index ? cut->sample_at - index : 0;
  // The list holds at most capacity - used blocks (the others of the page's free blocks are on
  // local_free or with remote freers): no walk when the sample lies beyond this page.
  if (needed >= page->capacity() - page->used) return;
  if (needed == 0) {
    cut->page = page;
    cut->tail = nullptr;
    cut->rest = page->free_list;
    page->free_list = nullptr;
    return;
  }
  // The needed-th block, or the list's last: a list shorter than `needed` is cut at its end (an
  // empty rest), so blocks returned to the page later go behind the cut without another walk.
  Block* tail = page->free_list;
  for (uint64_t i = 1; i < needed && tail->next != nullptr; ++i) tail = tail->next;
  cut->page = page;
  cut->tail = tail;
  cut->rest = tail->next;
  tail->next = nullptr;
}

}  // namespace

void heap_profile_heap_created(Heap* heap) {
  heap->sample_countdown_bytes = heap_profile_next_countdown();
  heap->sample_cut_busy_bin = kBinCount;
  heap->sample_recut_bins = 0;
  for (uint32_t bin = 0; bin < kDirectBinCount; ++bin) {
    HeapSampleCut& cut = heap->sample_cuts[bin];
    cut.page = nullptr;
    cut.tail = cut.rest = nullptr;
    cut.sample_at = heap_profile_active() ? allocations_of(heap, bin) + draw_skip(bin) : 0;
  }
}

bool heap_profile_uncut(Heap* heap, Page* page) {
  if (page->bin >= kDirectBinCount || heap->sample_cuts[page->bin].page != page) return false;
  join(&heap->sample_cuts[page->bin]);
  return true;
}

bool heap_profile_free_into_cut(Heap* heap, Page* page, Block* block) {
  if (page->bin >= kDirectBinCount) return false;
  HeapSampleCut& cut = heap->sample_cuts[page->bin];
  if (cut.page != page) return false;
  block->next =
      cut.rest;  // which block the sampled allocation gets does not matter, its index does
  cut.rest = block;
  return true;
}

void heap_profile_cut_front(Heap* heap, uint32_t bin) {
  if (bin < kDirectBinCount) cut_front(heap, bin);
}

void heap_profile_recut_marked(Heap* heap) {
  uint64_t bins = heap->sample_recut_bins;
  heap->sample_recut_bins = 0;
  for (; bins != 0; bins &= bins - 1) cut_front(heap, static_cast<uint32_t>(__builtin_ctzll(bins)));
}

void heap_profile_uncut_all(Heap* heap) {
  for (HeapSampleCut& cut : heap->sample_cuts) join(&cut);
}

void heap_profile_cut_all(Heap* heap) {
  for (uint32_t bin = 0; bin < kDirectBinCount; ++bin) cut_front(heap, bin);
}

void* heap_malloc_profiled(Heap* heap, size_t size) {
  if (size > kDirectMaxSize) {  // the byte countdown (heap_profile_count)
    if (size <= kMediumObjectMax && heap->sample_countdown_bytes - static_cast<int64_t>(size) < 0) {
      // Sampled: from a sample page ("Sample pages"), so no ordinary page gets a sample.
      if (void* pointer = heap_malloc_sample_page(heap, bin_of_size(size))) {
        heap_profile_sample(heap, pointer, size);
        return pointer;
      }
    }
    void* pointer = heap_malloc_unsampled(heap, size);
    if (pointer != nullptr) heap_profile_count(heap, pointer, size);
    return pointer;
  }
  uint32_t bin = bin_of_size(size);
  HeapSampleCut& cut = heap->sample_cuts[bin];
  join(&cut);
  heap->sample_cut_busy_bin = bin;
  void* pointer = nullptr;
  uint64_t index = allocations_of(heap, bin);  // this allocation's (page_take_block counts it)
  if (index >= cut.sample_at) {
    pointer = heap_malloc_sample_page(heap, bin);
    if (pointer != nullptr) {
      cut.sample_at = index + 1 + draw_skip(bin);
      heap_profile_record(pointer, size, class_size_of_bin(bin));
    }
  }
  if (pointer == nullptr) pointer = heap_malloc_unsampled(heap, size);
  heap->sample_cut_busy_bin = kBinCount;
  cut_front(heap, bin);
  return pointer;
}

}  // namespace usgc::alloc
