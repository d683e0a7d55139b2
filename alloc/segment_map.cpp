// alloc/segment_map.cpp — the registry of segment mappings: the segment map (which 4 MiB chunks
// are usgc's segments, their continuations or tombstones), the reservation counters, and the
// calls that map, unmap, move and (huge_chunks.cpp) split, forget or re-register a segment.
// Slow paths only; the fast path reads g_segment_map inline (heap.hpp).
//
// Invariants (segment.hpp names them):
//   - "segment of a pointer" / the segment map: every mapping of segment memory is registered
//     here before its first block is handed out and tombstoned when it is unmapped or moved away;
//     entries are written relaxed (the freeing thread got the block through a synchronization
//     with the allocating thread).
//   - The counters (g_segment_counters: bytes_reserved, segments, node_bytes_reserved) change with
//     the map, in the same call: a registered range is counted, a tombstoned one is not (a split
//     chunk was counted as part of its huge segment and keeps its bytes counted).
//   - Every range registered, tombstoned or moved covers whole 4 MiB-aligned chunks ("chunk-aligned
//     mappings", huge_chunks.cpp).
#include "alloc/footprint.hpp"
#include "alloc/large_arena.hpp"
#include "alloc/segment.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "numa/numa.hpp"

namespace usgc::alloc {

std::atomic<uint8_t> g_segment_map[kSegmentMapEntries];
SegmentCounters g_segment_counters;

namespace {

// Takes the range, not the header: after a remap the old header is no longer mapped.
void set_map_entries(const void* segment_start, size_t segment_bytes, bool live) {
  uintptr_t first = reinterpret_cast<uintptr_t>(segment_start) >> kSegmentShift;
  size_t chunks = segment_bytes >> kSegmentShift;
  g_segment_map[first].store(live ? kMapSegment | kSegmentShift : kMapTombstone,
                             std::memory_order_relaxed);
  for (size_t i = 1; i < chunks; ++i) {
    uint8_t value = live ? static_cast<uint8_t>(i + kMapContinuation - 1 > kMapContinuationMax
                                                    ? kMapContinuationMax
                                                    : i + kMapContinuation - 1)
                         : kMapTombstone;
    g_segment_map[first + i].store(value, std::memory_order_relaxed);
  }
}

void count_node_bytes(int node, size_t bytes, bool add) {
  static_assert(kCountedNodes == numa::kMaxNodes);
  int index = node >= 0 && node < kCountedNodes ? node : 0;
  std::atomic<uint64_t>& counter = g_segment_counters.node_bytes_reserved[index];
  if (add)
    counter.fetch_add(bytes, std::memory_order_relaxed);
  else
    counter.fetch_sub(bytes, std::memory_order_relaxed);
}

}  // namespace

PointerOrigin classify_pointer(const void* pointer, Segment** segment) {
  uintptr_t chunk = reinterpret_cast<uintptr_t>(pointer) >> kSegmentShift;
  if (chunk >= kSegmentMapEntries) return PointerOrigin::kForeign;
  uint8_t value = g_segment_map[chunk].load(std::memory_order_relaxed);
  while (value >= kMapContinuation && value <= kMapContinuationMax) {
    size_t back = value - kMapContinuation + 1;
    if (back > chunk) return PointerOrigin::kForeign;
    chunk -= back;
    value = g_segment_map[chunk].load(std::memory_order_relaxed);
  }
  if (value == kMapTombstone) return PointerOrigin::kTombstone;
  if (value < kMapSegment) return PointerOrigin::kForeign;
  Segment* found = reinterpret_cast<Segment*>(chunk << kSegmentShift);
  if (reinterpret_cast<uintptr_t>(pointer) >= reinterpret_cast<uintptr_t>(found->end())) {
    return PointerOrigin::kForeign;
  }
  *segment = found;
  return PointerOrigin::kSegment;
}

kernel::Result<Segment*> segment_map_new(size_t bytes, int node) {
  kernel::Result<void*> mapped = kernel::map_aligned(bytes, kSegmentBytes);
  if (!mapped.ok()) return kernel::Result<Segment*>::failure(mapped.error());
  Segment* segment = static_cast<Segment*>(mapped.value());
  if (numa::topology().node_count > 1) {
    // Placement is a preference: a failed bind leaves first-touch placement, still correct.
    kernel::Status bound = numa::bind_to_node(segment, bytes, numa::NodeId{node});
    if (!bound.ok()) node = numa::current_node().value;
  }
  // The mapping is zero: only the fields that are not zero are set.
  segment->segment_bytes = bytes;
  segment->node = node;
  segment->data_is_fresh = 1;
  set_map_entries(segment, bytes, true);
  g_segment_counters.bytes_reserved.fetch_add(bytes, std::memory_order_relaxed);
  g_segment_counters.segments.fetch_add(1, std::memory_order_relaxed);
  count_node_bytes(node, bytes, true);
  return kernel::Result<Segment*>::success(segment);
}

void segment_forget(Segment* segment) {
  segment_leave_cache(segment);
  size_t bytes = segment->segment_bytes;
  if (segment->cache_purged) {
    g_segment_counters.bytes_purged.fetch_sub(bytes - kSegmentHeaderBytes,
                                              std::memory_order_relaxed);
  }
  set_map_entries(segment, bytes, false);
  count_node_bytes(segment->node, bytes, false);
  g_segment_counters.bytes_reserved.fetch_sub(bytes, std::memory_order_relaxed);
  g_segment_counters.segments.fetch_sub(1, std::memory_order_relaxed);
}

void segment_remember(Segment* segment) {
  size_t bytes = segment->segment_bytes;
  set_map_entries(segment, bytes, true);
  count_node_bytes(segment->node, bytes, true);
  g_segment_counters.bytes_reserved.fetch_add(bytes, std::memory_order_relaxed);
  g_segment_counters.segments.fetch_add(1, std::memory_order_relaxed);
}

void segment_register_split(Segment* segment) {
  set_map_entries(segment, segment->segment_bytes, true);
  g_segment_counters.segments.fetch_add(1, std::memory_order_relaxed);
}

void segment_unmap(Segment* segment) {
  size_t bytes = segment->segment_bytes;
  segment_forget(segment);
  kernel::Status status = kernel::unmap(segment, bytes);
  // munmap of our own aligned mapping fails only when the kernel cannot split a VMA (ENOMEM
  // at the map-count limit); the range stays mapped, tombstoned, and is never used again.
  if (!status.ok())
    kernel::print_message("segment unmap failed (errno %d); %zu bytes leaked", status.error(),
                          bytes);
}

kernel::Result<Segment*> segment_remap(Segment* segment, size_t new_bytes) {
  kernel::Result<void*> target = kernel::reserve_aligned(new_bytes, kSegmentBytes);
  if (!target.ok()) return kernel::Result<Segment*>::failure(target.error());
  size_t old_bytes = segment->segment_bytes;
  kernel::Status moved = kernel::move_mapping(segment, old_bytes, new_bytes, target.value());
  if (!moved.ok()) {
    (void)kernel::unmap(target.value(), new_bytes);  // our own fresh reservation: cannot fail
    return kernel::Result<Segment*>::failure(moved.error());
  }
  // The old range is gone (mremap unmapped it): tombstone it, register the new one.
  set_map_entries(segment, old_bytes, false);
  Segment* moved_segment = static_cast<Segment*>(target.value());
  moved_segment->segment_bytes = new_bytes;
  set_map_entries(moved_segment, new_bytes, true);
  g_segment_counters.bytes_reserved.fetch_add(new_bytes - old_bytes, std::memory_order_relaxed);
  count_node_bytes(moved_segment->node, new_bytes - old_bytes, true);
  // Its new chunks take resident cached memory rather than fault in (huge_chunks.cpp).
  segment_fill_from_cache(moved_segment, old_bytes);
  return kernel::Result<Segment*>::success(moved_segment);
}

}  // namespace usgc::alloc
