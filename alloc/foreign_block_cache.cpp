// alloc/foreign_block_cache.cpp — the flush of the foreign block cache; the design is in
// foreign_block_cache.hpp.
#include "alloc/foreign_block_cache.hpp"

#include "alloc/heap.hpp"

namespace usgc::alloc {

void foreign_cache_flush(Heap* heap) {
  for (Page& foreign : heap->foreign_blocks.pages) {
    Block* block = foreign.free_list;
    foreign.free_list = nullptr;
    while (block != nullptr) {
      Block* next = block->next;
      Segment* segment = segment_of(block);
      Page* page = segment->page_of(reinterpret_cast<uintptr_t>(block));
      // As remote_free_block: the page's heap may have changed since the block was kept (its
      // thread exited, another heap reclaimed the segment, possibly this one).
      Heap* destination = page->heap.load(std::memory_order_relaxed);
      if (destination == nullptr || destination == heap) {
        page_remote_free(page, block);
      } else {
        remote_batch_add_quiet(heap, destination, block, page->block_size);
      }
      block = next;
    }
  }
}

}  // namespace usgc::alloc
