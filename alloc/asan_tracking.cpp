// alloc/asan_tracking.cpp — see asan_tracking.hpp. Compiled empty outside the asan build.
#include "alloc/asan_tracking.hpp"

#if USGC_ASAN

#include "kernel_iface/fatal.hpp"

namespace usgc::alloc {

void track_allocated(void* pointer, size_t size) {
  if (pointer == nullptr) return;
  size_t usable = heap_usable_size(pointer, Caller::kUsableSize);
  kernel::asan_poison(pointer, usable);
  kernel::asan_unpoison(pointer, size);
}

void track_freeing(const void* pointer, Caller caller) {
  if (pointer == nullptr) return;
  Segment* segment = segment_of(pointer);
  // A pointer usgc never owned, or into memory it unmapped: the free reports it.
  if (!segment_map_is_segment(segment) &&
      classify_pointer(pointer, &segment) != PointerOrigin::kSegment) {
    return;
  }
  // A bad or freed pointer stops here with the free's own message (the same checks).
  kernel::asan_poison(pointer, heap_usable_size(pointer, caller));
}

void track_usable(const void* pointer, size_t usable) {
  kernel::asan_unpoison(pointer, usable);
}

namespace {

// Called from ASan's report (never allocates, takes no lock): one line on what usgc knows of an
// address in its malloc heap, nothing for other addresses.
void describe_heap_address(const void* address) {
  Segment* segment = nullptr;
  if (classify_pointer(address, &segment) != PointerOrigin::kSegment) return;
  uintptr_t at = reinterpret_cast<uintptr_t>(address);
  if (at < reinterpret_cast<uintptr_t>(segment) + kSegmentHeaderBytes) return;  // the header
  if (segment->kind == SegmentKind::kLarge) {
    kernel::print_message("address %p is in a large-object segment of usgc's malloc heap", address);
    return;
  }
  Page* page = segment->page_of_any(at);
  if (!page->in_use || page->block_size == 0 || at < reinterpret_cast<uintptr_t>(page->start)) {
    kernel::print_message("address %p is in a free page of usgc's malloc heap (use after free)",
                          address);
    return;
  }
  size_t offset = at - reinterpret_cast<uintptr_t>(page->start);
  uintptr_t block = reinterpret_cast<uintptr_t>(page->start) +
                    (page->reserved == 1 ? 0 : offset / page->block_size * page->block_size);
  if (page->reserved == 1 && offset >= page->block_size) {
    kernel::print_message("address %p is %zu bytes past the end of a %zu-byte large block at %p",
                          address, offset - page->block_size, page->block_size,
                          reinterpret_cast<void*>(block));
    return;
  }
  bool free = page->reserved == 1
                  ? (segment->kind == SegmentKind::kHuge &&
                     segment->large_in_use.load(std::memory_order_relaxed) == 0)
                  : reinterpret_cast<const Block*>(block)->free_marker == free_marker_of(page);
  kernel::print_message(
      "address %p is %zu bytes into a %zu-byte block at %p of usgc's malloc heap, which is %s",
      address, static_cast<size_t>(at - block), page->block_size, reinterpret_cast<void*>(block),
      free ? "free (a use after free, or of a block never handed out)"
           : "allocated (an access past the bytes asked for)");
}

[[gnu::constructor]] void install_describer() {
  kernel::set_asan_report_describer(describe_heap_address);
}

}  // namespace

}  // namespace usgc::alloc

#endif  // USGC_ASAN
