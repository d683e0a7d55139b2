// alloc/free_checks.cpp — the checks of freed pointers and of free lists, and the counting of the
// free fast path's frees (slow paths only; the fast path's own checks are inline in heap.hpp).
//
// The free fast path (heap_free, heap.hpp) pushes a block onto its page's local_free with the
// exact-block test and the free marker only; the rest of the detection happens here:
//   - page_block_of: a pointer that is not a block start the page handed out is an invalid
//     pointer, unless aligned_alloc returned it (its marker is right before it);
//   - the list checks (ListCheck, page_check_list): before a list is handed to malloc, given back,
//     trimmed, abandoned or counted, every block on it must be a block the page handed out; one
//     that is not was an invalid pointer the fast path accepted, reported with "found when the
//     page's free list was checked";
//   - the counting of local frees: the fast path does not count its frees; they are counted when
//     the list is collected or walked (local_free_counted: how many of local_free's blocks are
//     counted already). A list longer than the page's blocks not in use is heap corruption.
// Every report is one line naming the call and the pointer (kernel::fatal: no allocation).
#include "alloc/heap_profile.hpp"
#include "alloc/heap_slow_paths.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/spin_lock.hpp"

namespace usgc::alloc {

const char* caller_name(Caller caller) {
  switch (caller) {
    case Caller::kFree:
      return "free";
    case Caller::kRealloc:
      return "realloc";
    case Caller::kUsableSize:
      return "malloc_usable_size";
    case Caller::kDelete:
      return "operator delete";
    case Caller::kFreeSized:
      return "free_sized";
  }
  return "free";
}

void report_invalid_pointer(Caller caller, const void* pointer) {
  kernel::fatal(
      "%s(): pointer %p points inside usgc's heap but was never returned by malloc (invalid "
      "pointer)",
      caller_name(caller), pointer);
}

void report_invalid_pointer_found_later(const void* pointer) {
  kernel::fatal(
      "free(): pointer %p points inside usgc's heap but was never returned by malloc (invalid "
      "pointer; found when the page's free list was checked, after the call that freed it)",
      pointer);
}

void report_double_free(Caller caller, const void* pointer) {
  kernel::fatal("%s(): pointer %p was already freed (double free)", caller_name(caller), pointer);
}

Block* page_block_of(Page* page, const void* pointer, Caller caller) {
  const uint8_t* p = static_cast<const uint8_t*>(pointer);
  if (!page->in_use || p < page->start) report_invalid_pointer(caller, pointer);
  size_t offset = static_cast<size_t>(p - page->start);
  bool has_aligned = page->has_flag(kPageHasAligned);
  uint8_t* block;
  if (page->reserved == 1) {  // large or huge: one block
    if (offset >= page->block_size) report_invalid_pointer(caller, pointer);
    block = page->start;
  } else {
    if (block_is_handed_out(page, offset)) {  // exact block starts: the common case
      block = page->start + offset;
    } else {
      // Not a block start: only an aligned_alloc pointer (checked below) may lie inside a block.
      if (!has_aligned || offset >= size_t{page->capacity()} * page->block_size)
        report_invalid_pointer(caller, pointer);
      block = page->start + offset / page->block_size * page->block_size;
    }
  }
  // An interior pointer is valid only if aligned_alloc returned it (it left its marker).
  if (block != p && !(has_aligned && kernel::unchecked_load(reinterpret_cast<const uintptr_t*>(p) -
                                                            1) == aligned_marker_of(p))) {
    report_invalid_pointer(caller, pointer);
  }
  return reinterpret_cast<Block*>(block);
}

namespace {

// The exact-block test of a page's lists (block_is_handed_out, with the page's fields loaded once).
struct ListCheck {
  uintptr_t start;
  uint64_t magic;
  uint64_t limit;
  explicit ListCheck(const Page* page)
      : start(reinterpret_cast<uintptr_t>(page->start)),
        magic(page->block_magic),
        limit(uint64_t{page->capacity()} * block_step_of(page->block_size, page->block_magic)) {}
  // Reports `block` unless it is a block the page handed out. Checked before its link is
  // followed: a pointer into a block may have had its link overwritten by the program since.
  void check(const Block* block) const {
    if (__builtin_expect((reinterpret_cast<uintptr_t>(block) - start) * magic >= limit, 0))
      report_invalid_pointer_found_later(block);
  }
};

}  // namespace

// See heap_slow_paths.hpp.
uint32_t page_check_list(const Page* page, const Block* first) {
  const ListCheck list_check(page);
  uint32_t length = 0;
  for (const Block* block = first; block != nullptr; block = block->next) {
    list_check.check(block);
    ++length;
  }
  return length;
}

void page_count_local_frees(Heap* heap, Page* page) {
  if (page->local_free != nullptr) pages_count_local_frees(heap, &page, 1);
}

void pages_count_local_frees(Heap* heap, Page* const* pages, uint32_t count) {
  constexpr uint32_t kSideBySide = 8;
  for (uint32_t first = 0; first < count; first += kSideBySide) {
    const uint32_t walks = count - first < kSideBySide ? count - first : kSideBySide;
    const Block* cursor[kSideBySide];
    uint32_t length[kSideBySide];
    for (uint32_t i = 0; i < walks; ++i) {
      cursor[i] = pages[first + i]->local_free;
      length[i] = 0;
    }
    // One step of every walk per round: the loads of the walks' next blocks are independent.
    for (bool any = true; any;) {
      any = false;
      for (uint32_t i = 0; i < walks; ++i) {
        const Block* block = cursor[i];
        if (block == nullptr) continue;
        ListCheck(pages[first + i]).check(block);
        ++length[i];
        cursor[i] = block->next;
        any = true;
      }
    }
    for (uint32_t i = 0; i < walks; ++i) {
      Page* page = pages[first + i];
      USGC_CHECK(length[i] >= page->local_free_counted,
                 "heap corruption: page %p has %u blocks on its local free list, %u counted",
                 static_cast<void*>(page->start), length[i], page->local_free_counted);
      count_frees(heap, page, length[i] - page->local_free_counted);
      page->local_free_counted = length[i];
    }
  }
}

void segment_count_local_frees(Heap* heap, Segment* segment, bool walk_every_list) {
  Page* pages[kMaxPagesPerSegment];
  uint32_t count = 0;
  for (uint32_t i = 0; i < segment->page_count; ++i) {
    Page* page = &segment->pages[i];
    if (!page->in_use || page->local_free == nullptr) continue;
    if (walk_every_list || page->free_list != nullptr) {
      pages[count++] = page;
      continue;
    }
    page->local_free_counted = count_local_frees_without_walk(heap, page);
  }
  pages_count_local_frees(heap, pages, count);
}

void heap_count_local_frees(Heap* heap) {
  kernel::SpinLockGuard guard(heap->help_lock);  // full pages' local_free
  for (Segment* segment = heap->owned_segments; segment != nullptr; segment = segment->owned_next)
    segment_count_local_frees(heap, segment, true);
}

}  // namespace usgc::alloc
