// alloc/foreign_block_cache.cpp — the keeping free and the flush of the foreign block cache; the
// design is in foreign_block_cache.hpp.
//
// The keeping free (heap_free_foreign_or_generic) is the path of most cross-thread frees, so it is
// written for its instruction count, like the fast paths: one straight run of loads and compares,
// with nothing written before the last test. It makes every check heap_free_generic makes for a
// remote free (an in-use page of a direct class, an exact block start the page has handed out, no
// free marker, not an emptied page, no aligned or sampled blocks, no heap profile) first: a block
// failing one goes to heap_free_generic (foreign_cache_refuse), which starts over and reports or
// frees it. Then the cache's own rules (foreign_block_cache.hpp): a block they turn away is freed
// at once, into its page's chain, which goes onto the page in one CAS (foreign_cache_turned_away,
// page_free_batch.hpp), where heap_free_generic would push it alone after the same checks. Every
// call is a tail call and the rare paths take few arguments, so the path runs in the caller-saved
// registers (2026-12-06: it pushed and popped five registers on every free, and found the page
// again that the fast path had). "The block is another heap's" is page->heap: neither null (an
// abandoned segment: its blocks go to thread_free) nor the calling thread's heap (the owner's own
// block, on a page with a slow-free flag or marked, which the generic path frees or reports). A
// thread without a heap has g_empty_heap, whose class queues are empty, so the "this thread
// allocates the class" test turns it away.
#include "alloc/foreign_block_cache.hpp"

#include <array>

#include "alloc/heap.hpp"
#include "alloc/heap_profile.hpp"
#include "alloc/remote_free_queue.hpp"

namespace usgc::alloc {

namespace {

// kForeignBlocksPerBin and kForeignBytesPerBin as one bound per class: a class keeps a block while
// it holds fewer than this many ((blocks + 1) * size <= kForeignBytesPerBin).
constexpr std::array<uint8_t, kForeignBins> kForeignBlockLimit =
    block_bounds_by_class(kForeignBytesPerBin, kForeignBlocksPerBin);
static_assert(kForeignBlocksPerBin <= UINT8_MAX);

// The class's direct slots point at its foreign page, made poppable (the pop check passes: every
// block on it was validated). Taken when a block joins an empty list.
[[gnu::noinline]] void foreign_cache_point_direct_slots(Heap* heap, uint32_t bin) {
  Page* foreign = &heap->foreign_blocks.pages[bin];
  if (heap->direct_pages[kDirectSlotRanges[bin].last] == foreign) return;
  foreign->bin = static_cast<uint8_t>(bin);
  foreign->block_magic = 0;
  foreign->pop_limit = UINT64_MAX;
  set_direct_slots(heap, bin, foreign);
}

}  // namespace

// The keeping free: keeps `pointer`, a block of `segment` (a segment of 64 KiB pages), in the
// calling thread's foreign block cache if it is another heap's block that the rules allow. The
// checks of a remote free come first, then the cache's own rules, so that a block turned away by
// the latter only is freed at once (into its page's chain) instead of being checked again by
// heap_free_generic. Every call is a tail call (a jump with the arguments in
// their registers): so the path keeps its values in the caller-saved registers and saves none of
// its own (10 instructions a free, measured 2026-12-06).
namespace {

// A block the keeping free does not keep or free: heap_free_generic checks it, reports or frees it
// (the segment found again from the pointer, so the keeping free need not keep it in a register).
[[gnu::noinline, gnu::nothrow]] void foreign_cache_refuse(void* pointer, Caller caller) {
  heap_free_generic(pointer, segment_of(pointer), caller);
}

// A block that passed every check of a remote free but not the cache's rules: marked, counted and
// added to its page's chain (`heap` this thread's; page_free_batch.hpp), which goes onto the page's
// thread_free list in one CAS when it reaches its bound or its slot is wanted (a full page's chain
// tells the owner with its first block). Apart from the keeping free, and given only three values,
// so that the keeping free's registers suffice (one saved; a fourth argument cost it another). The
// page's heap is not tested again: the keeping free found it neither null nor this heap; had its
// thread exited or this heap reclaimed the segment since, the chain's post finds the page in
// kNeverDelayed (or its owner's states) and remote_free_into_full_page's page_remote_free frees the
// block onto thread_free, valid in every ownership state (2026-12-06: the tests cost 4
// instructions of every turned-away block).
[[gnu::noinline]] void foreign_cache_turned_away(Block* block, Page* page, Heap* heap) {
  uint32_t bin = page->bin;  // the page's, while the block is in use
  if (heap == &g_empty_heap) return remote_free_block(page, block, bin);  // makes the heap
  block->free_marker = free_marker();
  counter_increment(heap->counters.free_count_by_bin[bin]);
  counter_increment(heap->counters.remote_free_count);
  // Gathered with the page's other turned-away blocks, posted in one CAS (page_free_batch.hpp).
  page_free_batch_add(heap, &heap->page_free_batch_window, heap->page_free_batches, page, block);
}

}  // namespace

[[gnu::nothrow]] void heap_free_foreign_or_generic(void* pointer, Segment* segment, Caller caller,
                                                   uintptr_t page_bytes) {
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  // segment->page_of(address) for the 64 KiB pages the fast path checked (its map byte), from the
  // page's offset the fast path computed (page_at).
  Page* page = page_at(segment, page_bytes);
  // One register for the page: the compiler would otherwise keep the segment and the page's
  // offset apart (for its addressing modes) beside the page, and save registers for them.
  __asm__("" : "+r"(page));
  // A direct class: an in-use page of a small segment (a free page and a large span have
  // kBinCount).
  size_t bin = page->bin;  // size_t: indexes without a zero extension each time
  if (bin >= kForeignBins) return foreign_cache_refuse(pointer, caller);
  // An exact block start the page has handed out (block_is_handed_out; the offset bound keeps the
  // multiplication's condition: an offset within the page).
  uint64_t offset = address - reinterpret_cast<uintptr_t>(page->start);
  if (offset >= (uint64_t{1} << kSmallPageShift) || !block_is_handed_out(page, offset))
    return foreign_cache_refuse(pointer, caller);
  Heap* heap = t_heap;
  Heap* destination = page->heap.load(std::memory_order_relaxed);
  if (destination == heap || destination == nullptr) return foreign_cache_refuse(pointer, caller);
  Block* block = static_cast<Block*>(pointer);
  const uintptr_t marker = free_marker();
  // A double free: reported there.
  if (block->free_marker == marker) return foreign_cache_refuse(pointer, caller);
  if ((page->flags() & (kPageHasAligned | kPageHasSampled)) != 0)
    return foreign_cache_refuse(pointer, caller);
  if ((page->thread_free.load(std::memory_order_relaxed) & kDelayedStateMask) == kEmptied ||
      heap_profile_active())
    return foreign_cache_refuse(pointer, caller);
  // The cache's own rules: this thread allocates the class (a thread without a heap has
  // g_empty_heap, whose queues are empty), and the class holds fewer than its bound.
  Page* foreign = &heap->foreign_blocks.pages[bin];
  __asm__("" : "+r"(foreign));  // formed once (the compiler would form it again for each field)
  uint32_t blocks = foreign_page_blocks(foreign);
  if (heap->queues[bin].first == nullptr || blocks >= kForeignBlockLimit[bin])
    return foreign_cache_turned_away(block, page, heap);
  block->free_marker = marker;
  block->next = foreign->free_list;
  foreign->free_list = block;
  foreign->local_free_counted++;
  counter_increment(heap->counters.free_count_by_bin[bin]);
  counter_increment(heap->counters.remote_free_count);
  // A list that had blocks is where the slots point already, unless a queue change pointed them
  // back at the class's page: then malloc's slow path takes the blocks (heap_malloc_unsampled).
  if (blocks == 0) return foreign_cache_point_direct_slots(heap, static_cast<uint32_t>(bin));
}

void foreign_cache_flush(Heap* heap) {
  for (Page& foreign : heap->foreign_blocks.pages) {
    Block* block = foreign.free_list;
    foreign.free_list = nullptr;
    foreign.used = foreign.local_free_counted = 0;  // the foreign count
    while (block != nullptr) {
      Block* next = block->next;
      Segment* segment = segment_of(block);
      Page* page = segment->page_of(reinterpret_cast<uintptr_t>(block));
      // As remote_free_block: the page's heap may have changed since the block was kept (its
      // thread exited, another heap reclaimed the segment, possibly this one).
      Heap* destination = page->heap.load(std::memory_order_relaxed);
      if (destination == nullptr || destination == heap) {
        page_remote_free(page, block);
      } else {
        // No help: the callers may hold their own help_lock.
        if ((page_thread_free_push(page, block) & 3) != 0)
          remote_free_into_full_page(heap, destination, page, block, false);
      }
      block = next;
    }
  }
}

void foreign_cache_clear(Heap* heap) {
  for (Page& foreign : heap->foreign_blocks.pages) {
    foreign.free_list = nullptr;
    foreign.used = foreign.local_free_counted = 0;  // the foreign count
  }
}

}  // namespace usgc::alloc
