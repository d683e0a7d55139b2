// alloc/huge_chunks.cpp — huge mappings given back and built by 4 MiB chunks (slow paths only).
//
// A huge segment (large_objects.cpp) is one mapping of several 4 MiB chunks. Two operations let
// its resident memory flow to and from the process segment cache, so that one pool of resident
// memory serves huge objects, large arenas and thread heaps alike (jemalloc's dirty extents serve
// every size the same way), instead of each keeping its own high-water mark:
//   - a huge object that shrinks by whole chunks gives them back (segment_split_tail): each
//     trailing chunk beyond the object becomes an empty 4 MiB segment of its own, in place (no
//     system call), and goes to the cache with whatever pages its old tenant made resident;
//   - a huge mapping that is made or grown (segment_fill_from_cache) takes, for its chunks that
//     are still fresh, cached empty segments whose memory is resident, by moving their pages there
//     with mremap (kernel::move_mapping: page tables move, no byte is copied, nothing faults).
// Without them a huge object that grew to 6.6 MiB and shrank to half kept 8 MiB resident until it
// was freed, and every huge object faulted in its chunks beyond the first (realloc_growth: the
// huge cache and live huge mappings held 40 of the peak's 64 MiB; docs/allocator.md).
//
// Invariants:
//   - "chunk-aligned mappings": every mapping, move and unmap of segment memory covers whole
//     4 MiB-aligned chunks, so a VMA never ends inside a chunk and the process's mappings never
//     outnumber its mapped chunks (a chunk moved in from elsewhere keeps its own anon_vma and does
//     not merge with its neighbours, but it stays one VMA); vm.max_map_count is never approached
//     by this code (tests/alloc/huge_chunks_test.cpp bounds the count over a long loop).
//   - Only empty cached segments move, and only those with no purge in flight
//     (segment_cache_take_resident): a queued MADV_DONTNEED never lands on memory that moved.
//   - A split chunk is nobody's but the caller's (the object's owner resizing it) until it is in
//     the cache; a moved chunk's old range is tombstoned like an unmapped segment.
#include <cstring>

#include "alloc/footprint.hpp"
#include "alloc/heap.hpp"
#include "alloc/large_arena.hpp"
#include "kernel_iface/address_sanitizer.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::alloc {

void segment_split_tail(Segment* segment, size_t keep_bytes) {
  size_t bytes = segment->segment_bytes;
  if (keep_bytes >= bytes || keep_bytes == 0 || keep_bytes % kSegmentBytes != 0) return;
  segment->segment_bytes = keep_bytes;
  uint64_t now = kernel::coarse_monotonic_ms();
  for (size_t offset = keep_bytes; offset < bytes; offset += kSegmentBytes) {
    auto* chunk = reinterpret_cast<Segment*>(segment->base() + offset);
    kernel::asan_unpoison(chunk, kSegmentHeaderBytes);  // asan build: was the object's tail
    std::memset(static_cast<void*>(chunk), 0, sizeof(Segment));
    chunk->segment_bytes = kSegmentBytes;
    chunk->node = segment->node;
    // An empty huge-format header: segment_format treats every page as dirty (it may be).
    chunk->kind = SegmentKind::kHuge;
    chunk->page_shift = kSegmentShift;
    chunk->page_count = 1;
    chunk->data_is_fresh = 0;
    segment_register_split(chunk);
    segment_cache_put(chunk, now);
    footprint_add(g_large_footprint.chunks_given_back, 1);
  }
}

void segment_fill_from_cache(Segment* segment, size_t from_bytes) {
  size_t bytes = segment->segment_bytes;
  int node = segment->node;
  bool filled_header_chunk = false;
  bool filled = false;
  for (size_t offset = from_bytes; offset < bytes; offset += kSegmentBytes) {
    Segment* cached = segment_cache_take_resident(node);
    if (cached == nullptr) break;
    uint64_t cached_dirty_bytes = cached->cache_dirty_bytes;  // census (footprint.hpp)
    segment_forget(cached);  // its old range is tombstoned: the pages leave it
    kernel::Status moved =
        kernel::move_mapping(cached, kSegmentBytes, kSegmentBytes, segment->base() + offset);
    if (!moved.ok()) {
      // The map-count limit (or no mremap: wasm32): the chunk stays fresh, and the cached
      // segment, still where it was, goes back to the cache.
      segment_remember(cached);
      cached->cache_dirty_bytes = cached_dirty_bytes;
      footprint_add(g_footprint.cached_segment_bytes_dirty,
                    static_cast<int64_t>(cached_dirty_bytes));
      segment_cache_put(cached, kernel::coarse_monotonic_ms());
      break;
    }
    filled = true;
    if (offset == 0) filled_header_chunk = true;
    footprint_add(g_large_footprint.chunks_taken, 1);
  }
  if (filled_header_chunk) {
    // The chunk brought the cached segment's header: start from zero again, as a fresh map.
    std::memset(static_cast<void*>(segment), 0, sizeof(Segment));
    segment->segment_bytes = bytes;
    segment->node = node;
  }
  if (filled) segment->data_is_fresh = 0;
}

}  // namespace usgc::alloc
