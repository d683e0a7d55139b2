// alloc/heap_segments.cpp — pages taken from and given back to the thread heap's segments, and
// the heap's own segment lists and cache (slow paths only).
//
// A small or medium segment is owned by one heap (segment.hpp, "segment ownership"): its pages
// are formatted for a size class by heap_new_page and given back by page_free_to_segment; a
// segment whose last page comes back is released (heap_release_empty_segment) to the heap's few
// cached segments or the process cache (segment.cpp), from which heap_take_empty_segment takes.
//
// Invariants:
//   - "available list": a segment is on the heap's available list of its kind exactly while it
//     has a free page (free_pages > 0) and belongs to the heap (in_available_list says which).
//   - The footprint census (footprint.hpp) moves a page's bytes between page_bytes_in_use and
//     page_bytes_free_dirty, and a released segment's dirty pages to cached_segment_bytes_dirty,
//     at the same place the page's or segment's state changes.
//   - A page given back was checked first: its lists hold only blocks it handed out (an invalid
//     pointer the free fast path pushed is reported here at the latest).
//   - A released segment is fresh (data_is_fresh) only if every page is fresh or its purge has
//     landed (the decommit ticket rule, segment.hpp).
// Owner only.
#include "alloc/footprint.hpp"
#include "alloc/heap_slow_paths.hpp"

namespace usgc::alloc {

// Takes a free page of `kind` from the heap's segments, formats it for `bin`.
Page* heap_new_page(Heap* heap, uint32_t bin) {
  int kind_index = bin_uses_small_pages(bin) ? 0 : 1;
  SegmentKind kind = kind_index == 0 ? SegmentKind::kSmall : SegmentKind::kMedium;
  Segment* segment = heap->available_segments[kind_index];
  // Segments of exited threads first (their memory is already resident), then empty ones.
  for (int attempts = 0; segment == nullptr && attempts < 8; ++attempts) {
    Segment* abandoned = abandoned_segments_pop();
    if (abandoned == nullptr) break;
    heap_reclaim_segment(heap, abandoned);
    segment = heap->available_segments[kind_index];
  }
  if (segment == nullptr) {
    segment = heap_take_empty_segment(heap);
    if (segment == nullptr) return nullptr;
    segment_format(segment, kind);
    footprint_add(g_footprint.page_bytes_free_dirty, segment_free_dirty_bytes(segment));
    segment->owner_heap = heap;
    segment->owner_thread.store(heap->thread_id, std::memory_order_relaxed);
    heap_owned_push(heap, segment);
    heap_available_push(heap, segment);
  }
  // Prefer a resident (dirty) page; then a fresh one; then a purged one. Page 0 comes last: its
  // frees take the generic path (kPageHoldsSegmentHeader).
  Page* chosen = nullptr;
  for (uint32_t n = 0; n < segment->page_count; ++n) {
    uint32_t i = n + 1 == segment->page_count ? 0 : n + 1;
    Page* page = &segment->pages[i];
    if (page->in_use) continue;
    if (page->memory == PageMemory::kDirty) {
      chosen = page;
      break;
    }
    if (chosen == nullptr ||
        (chosen->memory == PageMemory::kPurged && page->memory == PageMemory::kFresh))
      chosen = page;
  }
  USGC_CHECK(chosen != nullptr, "heap: segment %p on the available list has no free page",
             static_cast<void*>(segment));
  uint32_t index = segment->index_of(chosen);
  int64_t area_bytes = segment->page_area_end(index) - segment->page_area_start(index);
  if (chosen->memory == PageMemory::kDirty)
    footprint_add(g_footprint.page_bytes_free_dirty, -area_bytes);
  footprint_add(g_footprint.page_bytes_in_use, area_bytes);
  footprint_note_growth();
  page_unpurge(segment, index);
  chosen->memory = PageMemory::kDirty;
  chosen->in_use = 1;
  chosen->bin = static_cast<uint8_t>(bin);
  chosen->block_size = class_size_of_bin(bin);
  chosen->start = segment->page_area_start(index);
  chosen->reserved = static_cast<uint32_t>(
      static_cast<size_t>(segment->page_area_end(index) - chosen->start) / chosen->block_size);
  chosen->used = 0;
  chosen->free_list = chosen->local_free = nullptr;
  chosen->local_free_counted = 0;
  chosen->local_refilled = 0;
  chosen->purge_deadline_ms = 0;  // not seen empty (heap_retire_idle_pages)
  chosen->clear_flags();
  if (index == 0) chosen->set_flag(kPageHoldsSegmentHeader);
  chosen->block_magic = block_magic_of(chosen->block_size);
  // Malloc checks the blocks of pages the free fast path may push onto (page.hpp, "pop check").
  chosen->pop_checked = kind == SegmentKind::kSmall && index != 0 ? 1 : 0;
  set_capacity_and_pop_limit(chosen, 0);
  chosen->thread_free.store(kNoDelayed, std::memory_order_relaxed);
  // Release: pairs with the acquire load of a remote freer in the delayed path.
  chosen->heap.store(heap, std::memory_order_release);
  page_refresh_fast_free_owner(chosen);
  segment->used_pages++;
  if (--segment->free_pages == 0) heap_available_remove(heap, segment);
  page_extend(chosen);
  return chosen;
}

bool page_free_to_segment(Heap* heap, Page* page) {
  Segment* segment = segment_of(page);
  // An invalid pointer the free fast path pushed made `used` reach 0 one block early: it is still
  // on one of the lists (malloc's pop check did not meet it), found here before the page goes.
  page_count_local_frees(heap, page);
  if (page->pop_checked) page_check_list(page, page->free_list);
  page_reset_to_free(page);
  uint32_t index = segment->index_of(page);
  int64_t area_bytes = segment->page_area_end(index) - segment->page_area_start(index);
  footprint_add(g_footprint.page_bytes_in_use, -area_bytes);
  // A page a helper emptied is purged already (kPurged, its ticket kept); any other is dirty.
  if (page->memory != PageMemory::kPurged) {
    footprint_add(g_footprint.page_bytes_free_dirty, area_bytes);
    page->memory = PageMemory::kDirty;
    page->purge_deadline_ms = kernel::coarse_monotonic_ms() + g_decay_ms;
    if (heap->next_purge_ms == 0 || page->purge_deadline_ms < heap->next_purge_ms) {
      heap->next_purge_ms = page->purge_deadline_ms;
    }
  }
  segment->used_pages--;
  segment->free_pages++;
  if (segment->used_pages == 0) {
    heap_release_empty_segment(heap, segment);
    return true;
  }
  heap_available_push(heap, segment);
  return false;
}

void page_reset_to_free(Page* page) {
  footprint_add(g_footprint.page_bytes_touched,
                -static_cast<int64_t>(page->capacity() * page->block_size));
  page->in_use = 0;
  page->block_size = 0;
  page->pop_checked = 0;
  set_capacity_and_pop_limit(page, 0);
  page->reserved = page->used = 0;
  page->free_list = page->local_free = nullptr;
  page->local_free_counted = 0;
  page->local_refilled = 0;
  page->clear_flags();
  page->bin = kBinCount;
  page->fast_free_owner.store(0, std::memory_order_relaxed);
  page->thread_free.store(kNoDelayed, std::memory_order_relaxed);
  page->heap.store(nullptr, std::memory_order_relaxed);
}

void heap_available_push(Heap* heap, Segment* segment) {
  if (segment->in_available_list) return;
  Segment** head = &heap->available_segments[segment->kind == SegmentKind::kSmall ? 0 : 1];
  AvailableSegmentList::push_front(*head, segment);
  segment->in_available_list = 1;
}

void heap_available_remove(Heap* heap, Segment* segment) {
  if (!segment->in_available_list) return;
  Segment** head = &heap->available_segments[segment->kind == SegmentKind::kSmall ? 0 : 1];
  AvailableSegmentList::remove(*head, segment);
  segment->in_available_list = 0;
}

void heap_owned_push(Heap* heap, Segment* segment) {
  OwnedSegmentList::push_front(heap->owned_segments, segment);
}

void heap_release_empty_segment(Heap* heap, Segment* segment) {
  // Leave the heap's lists.
  heap_available_remove(heap, segment);
  if (OwnedSegmentList::is_linked(heap->owned_segments, segment))
    OwnedSegmentList::remove(heap->owned_segments, segment);
  segment->owned_next = segment->owned_prev = nullptr;
  segment->available_next = segment->available_prev = nullptr;
  segment->owner_thread.store(0, std::memory_order_relaxed);
  segment->owner_heap = nullptr;
  // The whole data area is fresh only if every page is fresh or its purge has landed; pages
  // whose purge is still in flight are waited for (decommit ticket rule) before reuse.
  bool has_pages = segment->kind == SegmentKind::kSmall || segment->kind == SegmentKind::kMedium;
  bool fresh = has_pages;
  if (has_pages) {
    for (uint32_t i = 0; i < segment->page_count; ++i) {
      page_unpurge(segment, i);
      if (segment->pages[i].memory == PageMemory::kDirty) fresh = false;
    }
  }
  segment->data_is_fresh = fresh ? 1 : 0;
  segment->cache_purged = 0;
  // Its dirty pages leave the census's free pages for its cached segments (footprint.hpp).
  int64_t dirty_bytes = has_pages ? segment_free_dirty_bytes(segment) : 0;
  footprint_add(g_footprint.page_bytes_free_dirty, -dirty_bytes);
  footprint_add(g_footprint.cached_segment_bytes_dirty, dirty_bytes);
  segment->cache_dirty_bytes = static_cast<uint64_t>(dirty_bytes);
  uint64_t now = kernel::coarse_monotonic_ms();
  if (heap != &g_empty_heap && heap->cached_segment_count < kHeapCachedSegments &&
      segment->segment_bytes == kSegmentBytes) {
    segment->cache_deadline_ms = now + g_decay_ms;
    heap->cached_segments[heap->cached_segment_count++] = segment;
    if (heap->next_purge_ms == 0 || segment->cache_deadline_ms < heap->next_purge_ms) {
      heap->next_purge_ms = segment->cache_deadline_ms;
    }
    return;
  }
  segment_cache_put(segment, now);
}

Segment* heap_take_empty_segment(Heap* heap) {
  if (heap->cached_segment_count != 0) {
    Segment* segment = heap->cached_segments[--heap->cached_segment_count];
    segment_unpurge_data(segment);
    segment_leave_cache(segment);
    return segment;
  }
  Segment* segment = segment_cache_take(heap->node);
  if (segment != nullptr) {
    segment_leave_cache(segment);
    return segment;
  }
  kernel::Result<Segment*> mapped = segment_map_new(kSegmentBytes, heap->node);
  return mapped.ok() ? mapped.value() : nullptr;
}

}  // namespace usgc::alloc
