// alloc/large_objects.cpp — objects above the size classes: large spans and huge mappings.
//
// Large objects (up to 4 MiB minus the header) are spans of pages packed into the segments of
// their node's large arena (large_arena.hpp). Huge objects get a mapping of their own, rounded
// up to 4 MiB, kept in a small cache for the decay, then unmapped. A huge object belongs to no
// thread: any thread frees it (segment.hpp "Ownership"); the exchange on large_in_use makes a
// double free a clear error even when two threads race on it. Both are sized in 4 KiB steps, so
// realloc grows or shrinks them in place within their span or mapping, and a huge object (or a
// large object alone in its segment) grows beyond it by moving its pages to a larger mapping
// with mremap: no byte is copied.
#include <cerrno>
#include <cstring>

#include "alloc/footprint.hpp"
#include "alloc/heap.hpp"
#include "alloc/large_arena.hpp"
#include "kernel_iface/address_sanitizer.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"

namespace usgc::alloc {

LargeCounters g_large_counters;

namespace {

// A huge object of `size` bytes (kLargeObjectMax < size <= kMaxRequestBytes).
void* huge_malloc(Heap* heap, size_t size, bool zero) {
  size_t bytes = align_up(size + kSegmentHeaderBytes, kSegmentBytes);
  Segment* segment = segment_cache_take_huge(bytes);
  if (segment == nullptr) {
    kernel::Result<Segment*> mapped = segment_map_new(bytes, heap->node);
    segment = mapped.ok() ? mapped.value() : nullptr;
    // Resident memory of the segment cache instead of pages to fault in (huge_chunks.cpp); not
    // for calloc, which would have to zero it.
    if (segment != nullptr && !zero) segment_fill_from_cache(segment, 0);
  }
  if (segment == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  segment_format(segment, SegmentKind::kHuge);
  Page* page = &segment->pages[0];
  page->in_use = 1;
  page->bin = kBinCount;
  page->start = segment->base() + kSegmentHeaderBytes;
  page->block_size = align_up(size == 0 ? 1 : size, kLargeGranularity);
  page->reserved = page->used = 1;
  page->set_capacity(1);
  page->memory = PageMemory::kDirty;
  segment->large_in_use.store(1, std::memory_order_relaxed);
  if (zero && !segment->data_is_fresh) {
    kernel::asan_unpoison(page->start, size);  // asan build: a cached segment was poisoned
    std::memset(page->start, 0, size);
  } else if (!segment->data_is_fresh) {
    clear_free_marker_word(page->start);  // "handed out clean" (page.hpp)
  }
  segment->data_is_fresh = 0;
  g_large_counters.malloc_count.fetch_add(1, std::memory_order_relaxed);
  g_large_counters.bytes_in_use.fetch_add(page->block_size, std::memory_order_relaxed);
  // The mapping's last chunk past the object (resident if it came from the cache) decays.
  segment_tail_decay_schedule(segment, page->start + page->block_size,
                              kernel::coarse_monotonic_ms());
  footprint_note_growth();
  return page->start;
}

}  // namespace

void* large_malloc(Heap* heap, size_t size, bool zero) {
  if (size > kMaxRequestBytes) {
    errno = ENOMEM;
    return nullptr;
  }
  if (size <= kLargeObjectMax) return large_span_malloc(heap, size, zero);
  return huge_malloc(heap, size, zero);
}

void large_free(Segment* segment, void* pointer, Caller caller) {
  if (segment->kind == SegmentKind::kLarge) return large_span_free(segment, pointer, caller);
  Page* page = &segment->pages[0];
  if (segment->large_in_use.load(std::memory_order_relaxed) == 0)
    report_double_free(caller, pointer);
  page_block_of(page, pointer, caller);  // aborts on a pointer that is not the object's
  // acq_rel: exactly one of two racing frees sees 1; the winner's later reuse of the segment
  // happens after the object's last use by this thread.
  if (segment->large_in_use.exchange(0, std::memory_order_acq_rel) != 1)
    report_double_free(caller, pointer);
  segment_tail_decay_cancel(segment);  // its pages go to the cache with the rest (their decay)
  g_large_counters.free_count.fetch_add(1, std::memory_order_relaxed);
  g_large_counters.bytes_in_use.fetch_sub(page->block_size, std::memory_order_relaxed);
  page->in_use = 0;
  page->block_size = 0;
  page->clear_flags();
  segment->data_is_fresh = 0;
  segment->cache_purged = 0;
  segment_cache_put(segment, kernel::coarse_monotonic_ms());
}

void* large_resize(Segment* segment, void* pointer, size_t size) {
  if (segment->kind == SegmentKind::kLarge) {
    return size > kMaxRequestBytes ? nullptr : large_span_resize(segment, pointer, size);
  }
  Page* page = &segment->pages[0];
  if (pointer != page->start || size > kMaxRequestBytes) return nullptr;
  size_t new_block_size = align_up(size == 0 ? 1 : size, kLargeGranularity);
  size_t old_block_size = page->block_size;
  bool tail_changes = true;  // whether the tail decay's entry must be made again
  if (size > static_cast<size_t>(segment->end() - page->start)) {
    // Beyond the mapping. Copying into resident memory a cached huge segment already has is
    // cheaper than faulting in the fresh pages a remap adds (measured: realloc_growth), so
    // with such a segment at hand let the caller allocate and copy.
    size_t new_bytes = align_up(size + kSegmentHeaderBytes, kSegmentBytes);
    if (segment_cache_has_huge(new_bytes)) return nullptr;
    // Otherwise move the pages to a bigger mapping (no copy) and make the object huge.
    segment_tail_decay_cancel(segment);  // the table must not name the range that moves
    kernel::Result<Segment*> moved = segment_remap(segment, new_bytes);
    if (!moved.ok()) {
      segment_tail_decay_schedule(segment, page->start + old_block_size,
                                  kernel::coarse_monotonic_ms());
      return nullptr;
    }
    segment = moved.value();
    segment->kind = SegmentKind::kHuge;
    page = &segment->pages[0];
    page->start = segment->base() + kSegmentHeaderBytes;
  } else {
    size_t keep_bytes = align_up(size + kSegmentHeaderBytes, kSegmentBytes);
    tail_changes = keep_bytes < segment->segment_bytes ||
                   !segment_tail_decay_still_covers(segment, page->start + new_block_size);
    if (tail_changes) {
      // The holder is about to write into, or give away, pages the entry may name.
      segment_tail_decay_cancel(segment);
      // Whole chunks beyond the object go back to the segment cache (huge_chunks.cpp).
      segment_split_tail(segment, keep_bytes);
    }
  }
  page->block_size = new_block_size;
  // What is left of the mapping past the object decays (segment.cpp, "the tail decay").
  if (tail_changes) {
    segment_tail_decay_schedule(segment, page->start + new_block_size,
                                kernel::coarse_monotonic_ms());
  }
  if (new_block_size >= old_block_size) {
    g_large_counters.bytes_in_use.fetch_add(new_block_size - old_block_size,
                                            std::memory_order_relaxed);
  } else {
    g_large_counters.bytes_in_use.fetch_sub(old_block_size - new_block_size,
                                            std::memory_order_relaxed);
  }
  footprint_note_growth();
  return page->start;
}

}  // namespace usgc::alloc
