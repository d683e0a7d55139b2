// alloc/large_objects.cpp — objects above the size classes: one object per segment.
//
// Large objects (up to 4 MiB minus the header) take a whole 4 MiB segment from the thread
// heap's segment cache, the process cache, or a new mapping; huge objects get a mapping of
// their own, rounded up to 4 MiB, kept in a small cache for the decay, then unmapped.
// Neither belongs to a thread: any thread frees them (segment.hpp "Ownership"); the exchange
// on large_in_use makes a double free a clear error even when two threads race on it.
// A reused segment keeps what earlier, bigger objects dirtied beyond the new one until the
// segment is purged: trimming that at once tripled realloc_growth's time (objects then grew
// into freshly faulted pages, 8x the faults) for 6% less peak RSS. Both are sized in 4 KiB steps,
// so realloc grows or shrinks them in place up to the end of their mapping, and beyond it moves
// their pages to a larger mapping with mremap: no byte is copied.
#include <cerrno>
#include <cstring>

#include "alloc/heap.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"

namespace usgc::alloc {

LargeCounters g_large_counters;

void* large_malloc(Heap* heap, size_t size, bool zero) {
  if (size > kMaxRequestBytes) {
    errno = ENOMEM;
    return nullptr;
  }
  Segment* segment;
  SegmentKind kind;
  if (size <= kLargeObjectMax) {
    kind = SegmentKind::kLarge;
    segment = heap_take_empty_segment(heap);
  } else {
    kind = SegmentKind::kHuge;
    size_t bytes = align_up(size + kSegmentHeaderBytes, kSegmentBytes);
    segment = segment_cache_take_huge(bytes);
    if (segment == nullptr) {
      kernel::Result<Segment*> mapped = segment_map_new(bytes, heap->node);
      segment = mapped.ok() ? mapped.value() : nullptr;
    }
  }
  if (segment == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  segment_format(segment, kind);
  Page* page = &segment->pages[0];
  page->in_use = 1;
  page->bin = kBinCount;
  page->start = segment->base() + kSegmentHeaderBytes;
  page->block_size = align_up(size == 0 ? 1 : size, kLargeGranularity);
  page->reserved = page->used = 1;
  page->set_capacity(1);
  page->memory = PageMemory::kDirty;
  segment->large_in_use.store(1, std::memory_order_relaxed);
  if (zero && !segment->data_is_fresh) std::memset(page->start, 0, size);
  segment->data_is_fresh = 0;
  g_large_counters.malloc_count.fetch_add(1, std::memory_order_relaxed);
  g_large_counters.bytes_in_use.fetch_add(page->block_size, std::memory_order_relaxed);
  return page->start;
}

void large_free(Segment* segment, void* pointer, Caller caller) {
  Page* page = &segment->pages[0];
  if (segment->large_in_use.load(std::memory_order_relaxed) == 0)
    report_double_free(caller, pointer);
  page_block_of(page, pointer, caller);  // aborts on a pointer that is not the object's
  // acq_rel: exactly one of two racing frees sees 1; the winner's later reuse of the segment
  // happens after the object's last use by this thread.
  if (segment->large_in_use.exchange(0, std::memory_order_acq_rel) != 1)
    report_double_free(caller, pointer);
  g_large_counters.free_count.fetch_add(1, std::memory_order_relaxed);
  g_large_counters.bytes_in_use.fetch_sub(page->block_size, std::memory_order_relaxed);
  page->in_use = 0;
  page->block_size = 0;
  page->clear_flags();
  segment->data_is_fresh = 0;
  segment->cache_purged = 0;
  Heap* heap = t_heap;
  if (heap != &g_empty_heap && segment->kind == SegmentKind::kLarge) {
    heap_release_empty_segment(heap, segment);
  } else {
    segment_cache_put(segment, kernel::coarse_monotonic_ms());
  }
}

void* large_resize(Segment* segment, void* pointer, size_t size) {
  Page* page = &segment->pages[0];
  if (pointer != page->start || size > kMaxRequestBytes) return nullptr;
  size_t new_block_size = align_up(size == 0 ? 1 : size, kLargeGranularity);
  size_t old_block_size = page->block_size;
  if (size > static_cast<size_t>(segment->end() - page->start)) {
    // Beyond the mapping. Copying into resident memory a cached huge segment already has is
    // cheaper than faulting in the fresh pages a remap adds (measured: realloc_growth), so
    // with such a segment at hand let the caller allocate and copy.
    size_t new_bytes = align_up(size + kSegmentHeaderBytes, kSegmentBytes);
    if (segment_cache_has_huge(new_bytes)) return nullptr;
    // Otherwise move the pages to a bigger mapping (no copy) and make the object huge.
    kernel::Result<Segment*> moved = segment_remap(segment, new_bytes);
    if (!moved.ok()) return nullptr;
    segment = moved.value();
    segment->kind = SegmentKind::kHuge;
    page = &segment->pages[0];
    page->start = segment->base() + kSegmentHeaderBytes;
  }
  page->block_size = new_block_size;
  if (new_block_size >= old_block_size) {
    g_large_counters.bytes_in_use.fetch_add(new_block_size - old_block_size,
                                            std::memory_order_relaxed);
  } else {
    g_large_counters.bytes_in_use.fetch_sub(old_block_size - new_block_size,
                                            std::memory_order_relaxed);
  }
  return page->start;
}

}  // namespace usgc::alloc
