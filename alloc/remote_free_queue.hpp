// alloc/remote_free_queue.hpp — remote frees: onto the block's page (mimalloc's thread-free lists;
// a full page's first block onto its owner's delayed list, mimalloc's delayed free), and, while the
// heap profile is on, in batches: per-destination buffers on the freeing thread, one message queue
// (an "inbox") per heap (snmalloc's remote queues).
//
// Onto the page, full pages by the delayed list. The freeing thread validates the pointer
// (page_block_of) and the double-free marker, and sets the marker. If the block's page is in state
// kNoDelayed (its owner's and not full: page.hpp) or kFullNotified (full, its owner told already),
// the block is pushed onto the page's thread_free list with one CAS (page_thread_free_push, below);
// the owner takes the whole list with one exchange when it collects the page (page_collect: the
// refill of that class, the decay's pass, trim, thread exit); the word counts the list's blocks
// ("the counted list", page.hpp), so a page with an empty free list takes the list as it is, no
// block read, and one with blocks still walks it for its tail and splices. The first remote free
// into a FULL page (kUseDelayed: the owner's full queue) tells the owner: mimalloc's delayed free,
// its block pushed onto the owner heap's delayed_free list (kUseDelayed -> kDelayedFreeing ->
// kFullNotified, page_remote_free); the owner's next refill drains that list, which moves the page
// back to its class queue (kNoDelayed), where the blocks on its thread_free are collected like any
// other page's. A tell counts as one post to the owner (remote_free_into_full_page: a page of
// blocks will follow onto the page), and leaves the owner in the freer's batch slot, so that the
// idle-owner help below is triggered by tells as it was by posts. Only while the heap profile is on
// are blocks batched (its drain keeps the free lists' cuts). Measured (docs/allocator.md): a block
// onto its page costs the freeing thread about 13 instructions fewer than the batch append, and the
// owner about 40 fewer than the inbox drain (which freed block by block into each block's page);
// the CAS is on the page's second cache line, which the owner's fast paths never touch.
//
// In batches. A batched free of a block of another thread's heap H does not touch H's page: the
// freeing thread appends the validated, marked block to a local batch for H (RemoteBatch, one of
// kRemoteBatchSlots slots on the freeing thread's own heap, chosen by a hash of H). A batch is
// posted when it holds kRemoteBatchBlocks blocks or kRemoteBatchBytes bytes, when its slot is
// wanted for another destination, when the freeing thread exits, trims, or purges: the whole
// chain is spliced onto H's inbox with ONE compare-and-swap (release). So a batched remote free
// costs no atomic operation at all in the common case, and none on a cache line the owner uses. (A
// block of a class the freeing thread allocates itself may instead stay with it for its own
// mallocs: foreign_block_cache.hpp. Such a block obeys every rule below for a block in a batch.
// A block that cache turns away waits on the freeing thread in its page's chain and goes onto the
// page with the chain, one CAS for the chain: page_free_batch.hpp.)
//
// The owner drains its inbox when it runs out of local free memory (the refill slow path), at
// malloc_trim and at thread exit: one exchange (acquire) per lane takes every batch posted so
// far, and each block goes onto its page's local_free list as an owner free.
//
// Lanes: the inbox is kInboxLanes stacks on one cache line, and a freer posts its successive
// batches for a destination to successive lanes. The drain walks the lanes' chains side by
// side. Each step of a chain is a load of a block the freeing thread wrote last, a cache miss
// that the walk must wait for (measured: over 95 % of the drain's time on one load, a fifth of
// producer_consumer's and mt_program's cycles); the lanes' loads are independent, so their
// misses overlap. Ownership may have moved
// since the freer chose H (H's thread exited and another heap reclaimed the segment): a block
// whose segment H's thread does not own (segment->owner_thread, "a thread reading its own id
// there is the owner") is forwarded to its page's thread_free list, the unbatched remote path,
// which is valid for every owner state including abandoned segments.
//
// Invariants:
//   - "buffered blocks keep their page": a block in a batch or an inbox is still counted in its
//     page's `used`, so the page and its segment cannot be freed or reused under it.
//   - "closed inbox": each lane of a heap's inbox is kInboxClosed from its thread's exit (which
//     closes the lanes one by one, draining each) until the heap is
//     handed to a new thread; a freer whose post finds it closed frees each block of the batch
//     through thread_free instead. So no block is ever stranded in the inbox of a heap nobody
//     drains (heaps in the pool are never drained).
//   - Double and invalid frees are caught before a block enters a batch (the freer's check of
//     the marker, which it then sets), so they are reported on the call that made them, with
//     the same message as an unbatched free.
//
// Idle owner help. An owner drains its inbox and delayed list only on its own slow paths, so an
// owner that stops allocating (a main thread waiting in pthread_join while workers free what it
// made) kept every page whose blocks came back through them: measured, 127 pages holding 12 KiB of
// live blocks. No other thread may drain for it in general: the owner's fast paths write `used`,
// `local_free` and `free_list` of its current pages with plain stores. But a FULL page (the
// owner's full queue, thread_free state kUseDelayed or kFullNotified) is outside every fast path:
// it is in no direct-table slot nor class queue (malloc), and its fast-free owner is 0 (free). So:
//   - each post counts in the destination's `inbox_posts`, and so does each tell of a full page
//     (a page of blocks to come onto it); the owner's drains (inbox and delayed frees) reset it
//     and note the time (`last_drain_ms`). A poster (or teller) that finds kHelpAfterPosts or more
//     (up to 2 MiB of blocks, or 32 pages) and no drain for the decay
//     (USGC_DECAY_MS) takes the owner to be idle and helps: it try-locks the destination's
//     help_lock and, holding it, takes the inbox lanes (CAS, never over kInboxClosed) and the
//     delayed_free list (exchange), frees each block of a full page of that heap into the page
//     (local_free, used, as the owner's drain would), takes that page's thread_free whole (the
//     blocks freed onto it after the owner was told) and sets the page back to kUseDelayed, so
//     that the next remote free into it tells again (the delayed list is the help's way back to a
//     page). Every other block goes, as one chain, onto the heap's held-back stack
//     (`inbox_held_back`), which the owner drains and closes with the lanes but no helper takes:
//     no block is walked by two helps. A full page whose
//     `used` reaches 0 is entirely free: the helper sets its state to kEmptied and purges its
//     memory at once (its owner has not drained for the decay: the decay's reason to keep memory
//     resident, reuse by an active allocator, does not hold). The owner retires kEmptied pages
//     (memory kPurged, their decommit ticket kept: the ticket rule holds when the page is reused)
//     and takes the pages with freed blocks off its full queue when it next runs a slow path
//     (`helped_pages`).
//   - the owner holds help_lock whenever it touches a page of its full queue: its inbox and
//     delayed-free drains, a free into a full page, trim, statistics, thread exit, fork. It
//     takes a page to the full queue without the lock, but only by the release CAS to
//     kUseDelayed after its last write to the page's free lists and `used`; the helper reads the
//     state with acquire (kFullNotified is written by a freer's RMW, which continues that release
//     sequence) and touches only pages in state kUseDelayed or kFullNotified of a segment the
//     heap's thread owns. The owner moves a page out of those states only under help_lock, and
//     waits for a kDelayedFreeing freer first (page_unfull), so no freer sets kFullNotified on a
//     page the owner took back. So a full page's fields are written by one side at a time.
//   - a kEmptied page's memory is zero: its blocks carry no marker, so every free path also
//     tests the state (heap_free_generic, page_remote_free), and reports a free of one of its
//     blocks as a double free, with the usual message.
//   - a page that is not full is never touched by a helper: its blocks stay on its thread_free
//     (batched ones are held back), and the owner takes them when it runs. An idle owner's current
//     pages (one per size class) keep their blocks until it runs again.
//
//   - a freer's last posts, at its thread's exit (remote_batches_flush_at_exit), help every
//     destination that has not drained for the decay, whatever its count of posts: no later post
//     of that thread will, and up to kHelpAfterPosts - 1 posts would otherwise wait for the owner.
//     A slot that only names a destination it told (no block) is looked at the same way.
//
// Hot path: none of this is on the free fast path (the owner's own frees); it is the path of
// every cross-thread free: one CAS onto the page (for the first block into a full page, the
// tell: three on the page, one on the owner's delayed list and the count of one post); one CAS per
// chain for the blocks the foreign block cache turns away (page_free_batch.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/page.hpp"

namespace usgc::alloc {

struct Heap;

inline constexpr uint32_t kRemoteBatchSlots = 8;
inline constexpr uint32_t kRemoteBatchBlocks = 64;
inline constexpr size_t kRemoteBatchBytes = 64 * 1024;
// The inbox value of a heap whose thread exited ("closed inbox").
inline constexpr uintptr_t kInboxClosed = 1;
// Stacks per inbox (see "Lanes"); 4 x 8 bytes share the inbox's cache line.
inline constexpr uint32_t kInboxLanes = 4;
// Posts since the owner's last drain after which a poster helps it if that drain is older than
// the decay ("Idle owner help"): 32 x 64 blocks or 64 KiB.
inline constexpr uint32_t kHelpAfterPosts = 32;

// One destination's pending blocks on the freeing thread (owner-thread only, no atomics). A slot
// may name a destination and hold no block: this thread told it of a full page since the slot's
// last post (remote_free_into_full_page), and its exit looks whether the owner needs help.
struct RemoteBatch {
  Heap* destination;  // nullptr: slot unused
  Block* first;       // chain through Block::next, first..last (nullptr: none)
  Block* last;
  uint32_t blocks;
  uint32_t bytes;
  uint32_t posts;  // batches posted from this slot: the next post goes to lane posts % kInboxLanes
};

// One of kSlots slots (a power of two) for `bits`: the top bits of a multiplicative (Fibonacci)
// hash, which spreads addresses a fixed stride apart.
template <uint32_t kSlots>
inline uint32_t hash_slot_of(uint64_t bits) {
  static_assert(kSlots >= 2 && (kSlots & (kSlots - 1)) == 0, "the slot is the hash's top bits");
  return static_cast<uint32_t>((bits * 0x9E3779B97F4A7C15ull) >> (64 - __builtin_ctz(kSlots)));
}

// The slot of `heap`'s batches that holds destination's batch. Heaps are carved from one
// metadata chunk a few KiB apart: a multiplicative hash spreads them.
inline uint32_t remote_batch_slot_of(const Heap* destination) {
  return hash_slot_of<kRemoteBatchSlots>(reinterpret_cast<uintptr_t>(destination) >> 6);
}

// remote_batch_add when the block does not simply join a batch for its destination that stays
// below the thresholds: takes the slot, posts, helps an idle owner.
[[gnu::noinline]] void remote_batch_add_slow(Heap* heap, Heap* destination, Block* block,
                                             size_t block_bytes);

// Appends a validated, marked block of `block_bytes` to `heap`'s batch for `destination`
// (heap is the calling thread's own heap, destination another heap). Posts batches as needed.
// Inline, the common case (the slot holds destination's batch and the block does not fill it) a
// dozen instructions on the path of every remote free; the rest is remote_batch_add_slow.
inline void remote_batch_add(RemoteBatch* batches, Heap* heap, Heap* destination, Block* block,
                             size_t block_bytes) {
  RemoteBatch* batch = &batches[remote_batch_slot_of(destination)];
  // A batch with a linked block has its `last` set.
  if (__builtin_expect(batch->destination == destination && batch->first != nullptr &&
                           batch->blocks + 1 < kRemoteBatchBlocks &&
                           batch->bytes + block_bytes < kRemoteBatchBytes,
                       1)) {
    block->next = batch->first;
    batch->first = block;
    batch->blocks++;
    batch->bytes += static_cast<uint32_t>(block_bytes);
    return;
  }
  remote_batch_add_slow(heap, destination, block, block_bytes);
}
// The remote free onto the page ("Onto the page, full pages by the delayed list" above): pushes a
// validated, marked block onto page->thread_free (release CAS, mimalloc's thread-free list) if the
// page is in state kNoDelayed (its owner's, not full) or kFullNotified (full, its owner told), and
// returns that state; the owner takes the whole list with one exchange when it collects the page
// (page_collect: on a refill that reaches the page, the decay's pass, trim, thread exit). For any
// other state it returns the state, having written nothing but the block's next word: the caller
// frees the block through page_remote_free (kUseDelayed: the delayed list; kDelayedFreeing: waits;
// kNeverDelayed: pushes; kEmptied: reports). After a push the caller must not read the page: its
// owner may collect the block, empty the page and give it back at once.
// `thread_free` is the word as the caller last loaded it (any value: the CAS corrects it).
inline uintptr_t page_thread_free_push(Page* page, Block* block, uintptr_t thread_free) {
  uintptr_t state;
  do {
    state = thread_free & kDelayedStateMask;
    if ((state & 3) != 0) return state;  // neither kNoDelayed nor kFullNotified (page.hpp)
    block->next = thread_free_pointer(thread_free);
    // Release: the owner's acquire exchange in page_collect (a helper's in its collect) sees
    // block->next and the marker. The count goes up with the push (the counted list, page.hpp).
  } while (!page->thread_free.compare_exchange_weak(
      thread_free, thread_free_pushed(thread_free, block, state), std::memory_order_release,
      std::memory_order_relaxed));
  return state;
}
inline uintptr_t page_thread_free_push(Page* page, Block* block) {
  return page_thread_free_push(page, block, page->thread_free.load(std::memory_order_relaxed));
}
// A remote free (validated, marked block; `heap` the calling thread's, `destination` another heap)
// whose push found its page in neither kNoDelayed nor kFullNotified: page_remote_free frees it (for
// a full page, kUseDelayed, onto the owner's delayed list: the tell); a tell counts as one post
// for the idle-owner help ("Idle owner help"). `help`: false for a caller that may hold a
// help_lock. Before it helps, the caller's chains of turned-away blocks are posted
// (page_free_batches_flush): those of the owner's full pages are then on them for the help.
[[gnu::noinline]] void remote_free_into_full_page(Heap* heap, Heap* destination, Page* page,
                                                  Block* block, bool help = true);
// Posts every pending batch of `heap` (thread exit, trim, purge), after sending back the blocks
// of its foreign block cache (foreign_block_cache.hpp) and posting its chains of turned-away blocks
// (page_free_batch.hpp).
void remote_batches_flush(Heap* heap);
// remote_batches_flush for a thread about to exit, holding no lock: then helps every destination
// that has not drained for the decay, whatever its count of posts ("Idle owner help": no later
// post of this thread will, and the posts it left below kHelpAfterPosts would otherwise wait).
void remote_batches_flush_at_exit(Heap* heap);
// True if the owner should drain (a relaxed load of the inbox head).
bool remote_inbox_has_blocks(const Heap* heap);
// Owner: takes every posted block and frees it locally (or forwards it, see above).
void remote_inbox_drain(Heap* heap);
// Owner at thread exit: closes the inbox and frees what was in it.
void remote_inbox_close(Heap* heap);
// A new thread takes the heap: the inbox is open (and empty) again.
void remote_inbox_open(Heap* heap);
// A thread other than the owner helps `heap`'s idle owner (see "Idle owner help"); returns at
// once if another helper or the owner holds help_lock.
void remote_inbox_help(Heap* heap);

}  // namespace usgc::alloc
