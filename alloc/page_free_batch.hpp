// alloc/page_free_batch.hpp — remote frees onto a page in chains: the blocks a thread frees into
// one page of another heap, gathered on the freeing thread and pushed onto the page's thread_free
// with ONE compare-and-swap (snmalloc's and jemalloc's freeing threads gather a destination's
// objects before they publish them; here the destination is a page, so the owner's collect and the
// counted list stay as they are).
//
// Why: a block the foreign block cache turns away (this thread does not allocate its class, or the
// class holds its bound: foreign_block_cache.hpp) was pushed onto its page at once, one CAS per
// block on the page's second cache line. In mt_program two indexer threads free the documents of
// two builder threads, block after block into the same pages: the CAS found the line in the other
// indexer's or the owner's cache almost every time (2026-12-06, perf: 75 % of
// foreign_cache_turned_away's samples on the instruction after the CAS). A document's blocks come
// in runs of one page (consecutive allocations of a class share a page), so most of those CASes
// can be one per run.
//
// The batch: kPageFreeBatchSlots slots on the freeing thread's heap, chosen by a hash of the page;
// each holds one page's chain (first..last through Block::next, newest first) and its length. A
// turned-away block joins its page's chain when the slot holds that page and the chain is below the
// class's bound (kPageFreeBatchBytes, at most kPageFreeBatchBlocks blocks: a table by class);
// otherwise the slot's chain is posted and the block starts a new one. Posting splices the whole
// chain onto the page's thread_free with one release CAS (the counted list: the word's count goes
// up by the chain's length in the same CAS, page.hpp), if the page is in kNoDelayed or
// kFullNotified, as page_thread_free_push does for one block; in any other state (a full page not
// told yet, its segment abandoned, a freer telling) the chain's first block goes the one-block way
// (remote_free_into_full_page: the tell, the wait or the push) and the rest is posted again.
//
// Invariants:
//   - "buffered blocks keep their page" (remote_free_queue.hpp): a block in a chain is counted in
//     its page's `used` until the owner collects it, so the page and its segment stay in use; so a
//     posting thread may read the page until its chain's last block is pushed, never after.
//   - double frees are reported on the call: a block joins a chain validated and marked (the free
//     marker) by the keeping free's checks, so a second free of it, by anyone, is reported there.
//   - bounded: at most kPageFreeBatchSlots chains of at most kPageFreeBatchBytes (one block of a
//     larger class) per thread; posted whenever the batches are (remote_batches_flush: the decay's
//     purge, trim, thread exit) and before this thread helps an idle owner (its blocks for the
//     owner's full pages are then in those pages: remote_free_into_full_page).
//   - short chains are not gathered: a freer whose frees hop between many pages (xmalloc_6p's
//     consumers: random sizes from six producers, about 40 pages in a row) posts chains of one or
//     two blocks, each after the slot's bookkeeping, and pays more instructions than the CASes it
//     saves (measured: +5-8 % of the workload's instructions, CPU no better). So each heap counts
//     its posts and their blocks; after kPageFreeBatchWindowPosts posts averaging fewer than
//     kPageFreeBatchMinBlocksPerPost blocks, its next kPageFreeBatchBypassFrees turned-away frees
//     push their block alone, as before, and then it gathers again for another window.
//   - the heap profile is off for every block that joins (the keeping free sends blocks to
//     heap_free_generic while it is on): a chain posted after it came on is pushed like the foreign
//     block cache's flushed blocks.
//
// Owner thread only (the heap's own thread; the slots have no atomics). On the path of a turned-
// away remote free only; nothing is added to the malloc or free fast paths.
#pragma once

#include <cstddef>
#include <cstdint>

#include "alloc/page.hpp"
#include "alloc/remote_free_queue.hpp"

namespace usgc::alloc {

struct Heap;

inline constexpr uint32_t kPageFreeBatchSlots = 16;
inline constexpr uint32_t kPageFreeBatchBlocks = 32;
inline constexpr size_t kPageFreeBatchBytes = 4 * 1024;
inline constexpr uint32_t kPageFreeBatchWindowPosts = 256;
inline constexpr uint32_t kPageFreeBatchMinBlocksPerPost = 8;
inline constexpr uint32_t kPageFreeBatchBypassFrees = 16384;

// A heap's record of its chains' lengths (owner-thread only): posts and blocks posted in the
// current window, and the turned-away frees left to push alone (0: gathering).
struct PageFreeBatchWindow {
  uint32_t posts;
  uint32_t blocks;
  uint32_t bypass_frees;
};

// One page's chain on the freeing thread (owner-thread only, no atomics).
struct PageFreeBatch {
  Page* page;    // nullptr: slot unused
  Block* first;  // chain through Block::next, first..last, newest first
  Block* last;
  uint32_t blocks;  // on the chain
  uint32_t limit;   // the chain is posted when it holds this many (the class's bound)
};

// The slot of a page's chain. Page descriptors are 128 bytes apart in their segment's header and
// segments 4 MiB apart: a multiplicative hash of the descriptor's address spreads both.
inline uint32_t page_free_batch_slot_of(const Page* page) {
  return hash_slot_of<kPageFreeBatchSlots>(reinterpret_cast<uintptr_t>(page) >> 7);
}

// page_free_batch_add when the block does not simply join its page's chain below the bound: posts
// the slot's chain (another page's, or the page's own with this block), or starts the page's.
[[gnu::noinline]] void page_free_batch_add_slow(Heap* heap, PageFreeBatch* batch, Page* page,
                                                Block* block);

// Adds a validated, marked block of `page` (another heap's page) to `heap`'s chain for the page
// (heap: the calling thread's own heap; `window` and `batches` its PageFreeBatchWindow and
// slots). Inline, the common case
// (gathering, the slot holds the page's chain and the block does not reach the bound) three
// stores, and while the heap pushes alone ("short chains are not gathered") the push onto the page
// as before; the rest is page_free_batch_add_slow or, for a full page, remote_free_into_full_page.
inline void page_free_batch_add(Heap* heap, PageFreeBatchWindow* window, PageFreeBatch* batches,
                                Page* page, Block* block) {
  if (window->bypass_frees != 0) {
    window->bypass_frees--;
    if ((page_thread_free_push(page, block) & 3) != 0)  // a full page to tell
      remote_free_into_full_page(heap, page->heap.load(std::memory_order_relaxed), page, block);
    return;
  }
  PageFreeBatch* batch = &batches[page_free_batch_slot_of(page)];
  if (__builtin_expect(batch->page == page && batch->blocks + 1 < batch->limit, 1)) {
    block->next = batch->first;
    batch->first = block;
    batch->blocks++;
    return;
  }
  page_free_batch_add_slow(heap, batch, page, block);
}

// Posts every chain of `heap` (no idle-owner help: the callers may hold their own help_lock).
void page_free_batches_flush(Heap* heap);

}  // namespace usgc::alloc
