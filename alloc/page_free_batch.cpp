// alloc/page_free_batch.cpp — posting the chains of remote frees gathered per page; the design and
// invariants are in page_free_batch.hpp.
#include "alloc/page_free_batch.hpp"

#include <array>

#include "alloc/foreign_block_cache.hpp"
#include "alloc/heap.hpp"
#include "alloc/remote_free_queue.hpp"

namespace usgc::alloc {

namespace {

// kPageFreeBatchBytes and kPageFreeBatchBlocks as one bound per class: a chain is posted when it
// holds this many blocks (1: a block of the class is posted at once). Only the classes the foreign
// block cache looks at (its kForeignBins) turn blocks away.
constexpr std::array<uint8_t, kForeignBins> kPageFreeBatchLimit =
    block_bounds_by_class(kPageFreeBatchBytes, kPageFreeBatchBlocks);
static_assert(kPageFreeBatchBlocks <= UINT8_MAX);

// post_chain when the page is in neither kNoDelayed nor kFullNotified, or its word changed under
// the first CAS: the chain's first block goes the one-block way (remote_free_into_full_page, `help`
// as there: the tell, the wait or the push) and the rest is tried again.
[[gnu::noinline]] void post_chain_slow(Heap* heap, Page* page, Block* first, Block* last,
                                       uint32_t blocks, bool help) {
  uintptr_t word = page->thread_free.load(std::memory_order_relaxed);
  for (;;) {
    uintptr_t state = word & kDelayedStateMask;
    if ((state & 3) != 0) {  // neither kNoDelayed nor kFullNotified (page.hpp)
      Block* rest = first->next;
      // The page is still held by the rest of the chain, if any, while this block is freed.
      remote_free_into_full_page(heap, page->heap.load(std::memory_order_relaxed), page, first,
                                 help);
      if (--blocks == 0) return;
      first = rest;
      word = page->thread_free.load(std::memory_order_relaxed);
      continue;
    }
    last->next = thread_free_pointer(word);
    // Release: as in post_chain.
    if (page->thread_free.compare_exchange_weak(word, thread_free_pushed_chain(word, first, blocks),
                                                std::memory_order_release,
                                                std::memory_order_relaxed)) {
      return;
    }
  }
}

// Pushes the chain first..last of `blocks` blocks of `page` onto the page's thread_free with one
// release CAS if the page is in kNoDelayed or kFullNotified (inline: the common case); anything
// else is post_chain_slow's. The page is not read after the chain's last block is pushed ("buffered
// blocks keep their page" until then).
[[gnu::always_inline]] inline void post_chain(Heap* heap, Page* page, Block* first, Block* last,
                                              uint32_t blocks, bool help) {
  uintptr_t word = page->thread_free.load(std::memory_order_relaxed);
  if (__builtin_expect((word & 3) == 0, 1)) {
    last->next = thread_free_pointer(word);
    // Release: the owner's acquire exchange in page_collect (a helper's in its collect) sees every
    // block's next and marker. The count goes up by the chain's length (the counted list).
    if (page->thread_free.compare_exchange_strong(
            word, thread_free_pushed_chain(word, first, blocks), std::memory_order_release,
            std::memory_order_relaxed)) {
      return;
    }
  }
  post_chain_slow(heap, page, first, last, blocks, help);
}

// Counts a post of `blocks` blocks from the free path in the heap's window; at the window's end,
// pushes alone for a while if its chains were short ("short chains are not gathered").
void count_post(Heap* heap, uint32_t blocks) {
  PageFreeBatchWindow& window = heap->page_free_batch_window;
  window.blocks += blocks;
  if (++window.posts < kPageFreeBatchWindowPosts) return;
  if (window.blocks < kPageFreeBatchMinBlocksPerPost * kPageFreeBatchWindowPosts)
    window.bypass_frees = kPageFreeBatchBypassFrees;
  window.posts = window.blocks = 0;
}

}  // namespace

void page_free_batch_add_slow(Heap* heap, PageFreeBatch* batch, Page* page, Block* block) {
  if (batch->page == page) {  // the block brings the chain to its bound: posted whole
    block->next = batch->first;
    Block* last = batch->last;
    uint32_t blocks = batch->blocks + 1;
    *batch = PageFreeBatch{};  // empty before the post, which may flush the slots (a help)
    count_post(heap, blocks);
    return post_chain(heap, page, block, last, blocks, true);
  }
  uint32_t limit = kPageFreeBatchLimit[page->bin];  // the page's class, while the block is in use
  if (limit <= 1) return post_chain(heap, page, block, block, 1, true);
  PageFreeBatch previous = *batch;
  *batch = PageFreeBatch{page, block, block, 1, limit};
  if (previous.page != nullptr) {
    count_post(heap, previous.blocks);
    post_chain(heap, previous.page, previous.first, previous.last, previous.blocks, true);
  }
}

void page_free_batches_flush(Heap* heap) {
  for (PageFreeBatch& batch : heap->page_free_batches) {
    if (batch.page == nullptr) continue;
    PageFreeBatch previous = batch;
    batch = PageFreeBatch{};
    post_chain(heap, previous.page, previous.first, previous.last, previous.blocks, false);
  }
}

}  // namespace usgc::alloc
