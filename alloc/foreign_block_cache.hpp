// alloc/foreign_block_cache.hpp — other threads' blocks kept by the thread that freed them, for
// its own allocations of the same size class (the per-thread caches of tcmalloc and jemalloc,
// which take any object of the class).
//
// Why: a remote free sends the block back to its owner (remote_free_queue.hpp), and the owner's
// drain loads and writes every block again: a cache miss per block on a line the freeing thread
// has just read and written (the free marker). A thread that frees other threads' blocks and
// also allocates blocks of the same classes (a ring of threads; Larson's server threads, which
// free what exited threads allocated and allocate the replacements) can hand those blocks out
// itself instead: they are in its cache, they cross no inbox, and no new memory is taken for
// the replacements.
//
// The cache: per direct size class (<= kDirectMaxSize) a Page that is in no segment, whose
// free_list is a LIFO of blocks of other heaps' pages that this thread freed, validated and
// marked exactly as for a batch. While it has blocks the class's direct-table slots point to it,
// so the malloc fast path pops from it unchanged (its pop check passes by construction, see
// ForeignBlockCache); once it is empty the next malloc of the class takes the slow path, which
// points the slots back at the class's first page (heap_malloc_unsampled). Rules:
//   - "buffered blocks keep their page" (remote_free_queue.hpp) holds: a cached block still counts
//     in its page's `used`, so the page and its segment stay; handing it out changes no page
//     count (it was in use for its page all along), and whoever frees it next frees it as any
//     block of its page (the owner's fast path, or a remote free, which may cache it again).
//   - double frees are reported on the call: a cached block carries the free marker, so a second
//     free by this thread, the owner or any other reports it with the usual message; malloc's pop
//     clears the marker.
//   - bounds: a block is kept only if this thread allocates the class itself (it has a page of
//     the class in its queue: a thread that only frees keeps nothing and frees onto the page), its
//     page has no aligned or sampled blocks, the heap profile is off (the profile's cuts follow
//     the direct table's real pages), and the class holds fewer than kForeignBlocksPerBin blocks
//     and kForeignBytesPerBin bytes; anything else goes back to its page (remote_free_queue.hpp),
//     gathered with the page's other turned-away blocks into one chain (page_free_batch.hpp).
//   - flushed with the batches (remote_batches_flush: the decay's purge, trim, thread exit): an
//     exiting or trimming thread keeps no other thread's memory. A heap profile switched on while
//     blocks are cached sees the mallocs that take them unsampled (at most the bounds above).
//
// The keeping free (foreign_block_cache.cpp): when the free fast path does not push a block itself
// it jumps to heap_free_foreign_or_generic, which makes a remote free's checks on a straight path
// of its own and keeps the block if every rule above holds; a block that passed the checks but
// not the cache's rules (this thread does not allocate the class, or the class is full) is freed
// right there, into its page's chain (page_free_batch.hpp); anything else goes on to
// heap_free_generic, which makes all its checks again (so every error is reported there, with the
// usual message). In workloads where memory crosses threads most frees are remote frees that are
// kept (shared_slots: 175 000 of 220 000 frees), so this path, not the generic one, is their cost
// (docs/benchmarks.md, "the keeping free").
//
// Owner thread only (the heap's own thread): no atomics. Hot paths: the remote free (the keeping
// free) and malloc's fast path (which cannot tell a foreign page from a real one); nothing is added
// to the malloc or free fast paths' instructions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "alloc/page.hpp"
#include "alloc/size_classes.hpp"

namespace usgc::alloc {

struct Heap;

// The classes with a direct-table slot (heap.hpp's kDirectBinCount): only these are cached.
inline constexpr uint32_t kForeignBins = bin_of_size(kDirectMaxSize) + 1;
inline constexpr uint32_t kForeignBlocksPerBin = 64;

// A bound per direct class of "at most `blocks` blocks and `bytes` bytes" (at least one block), as
// a table the paths read instead of dividing (the foreign block cache's, the chains' of
// page_free_batch.hpp).
constexpr std::array<uint8_t, kForeignBins> block_bounds_by_class(size_t bytes, uint32_t blocks) {
  std::array<uint8_t, kForeignBins> bounds{};
  for (uint32_t bin = 0; bin < kForeignBins; ++bin) {
    size_t by_bytes = bytes / class_size_of_bin(bin);
    if (by_bytes == 0) by_bytes = 1;
    bounds[bin] = static_cast<uint8_t>(by_bytes < blocks ? by_bytes : blocks);
  }
  return bounds;
}
inline constexpr size_t kForeignBytesPerBin = 16 * 1024;

// One class's cached blocks, as a Page the malloc fast path can pop from: `free_list` is the LIFO
// of blocks; block_magic 0 and pop_limit UINT64_MAX make the pop check pass (every block was
// validated on its free); `bin` is the class (the fast path counts the malloc under it); `used`
// counts the pops (the malloc fast path's and slow path's) and `local_free_counted` the blocks
// pushed, both modulo 2^32 and both set to 0 whenever the list is emptied other than by pops, so
// the list holds local_free_counted - used blocks ("foreign count": 0 exactly when free_list is
// null). It is in no segment and no queue: only the direct table and this cache point to it, and no
// other field is read.
struct ForeignBlockCache {
  Page pages[kForeignBins] = {};
};

// The blocks on a foreign page's list (the foreign count).
inline uint32_t foreign_page_blocks(const Page* page) {
  return page->local_free_counted - page->used;
}

// Sends every cached block back to its owner (batched, no idle-owner help: the callers may hold
// their own heap's help_lock) and empties the cache. The direct table may still point to the
// (now empty) pages: malloc's slow path points it back at the class's first page.
void foreign_cache_flush(Heap* heap);
// Empties the cache without sending anything back (a heap whose cache was flushed, or a new one).
void foreign_cache_clear(Heap* heap);

}  // namespace usgc::alloc
