// gc/conservative_roots.cpp — conservative roots of goroutines stopped at asynchronous
// safepoints (gc/conservative_roots.hpp: the rule and its invariants).
#include "gc/conservative_roots.hpp"

#include <atomic>

#include "gc/block.hpp"
#include "gc/object_header.hpp"

namespace usgc::gc {

void* object_containing(uintptr_t word) {
  const uint32_t chunks = chunk_count();
  for (uint32_t c = 0; c < chunks; ++c) {
    auto begin = reinterpret_cast<uintptr_t>(chunk_at(c));
    if (word < begin || word >= begin + kChunkBytes) continue;
    // Chunks stay mapped. A block of a chunk may be released and formatted again by its owner
    // while a concurrent scan reads it: the slot is computed from the format read first, and the
    // answer kept only when the format (kind and size class, which decide the geometry) is the
    // same after the header was read.
    Block* block = block_of(reinterpret_cast<const void*>(word));
    // Acquire (kind, size class, then the header): the block's format is read before the slot it
    // locates (kind pairs with format's release store, gc/block.cpp); the fence and re-check
    // below reject a format that changed meanwhile (a seqlock's read side).
    const BlockKind kind = static_cast<BlockKind>(
        __atomic_load_n(reinterpret_cast<uint8_t*>(&block->kind), __ATOMIC_ACQUIRE));
    const uint32_t size_class = __atomic_load_n(&block->size_class, __ATOMIC_ACQUIRE);
    if (kind != BlockKind::kSmall) return nullptr;  // free block, or the arena (precise)
    auto* address = reinterpret_cast<char*>(word);
    if (address < block->slots_begin() || address >= block->slots_end()) return nullptr;
    char* slot = block->slot_at(block->slot_index_of(address));
    if (slot >= block->slots_end()) return nullptr;
    const uint64_t header = __atomic_load_n(reinterpret_cast<uint64_t*>(slot), __ATOMIC_ACQUIRE);
    // Acquire fence: the header load above before the re-reads of the format below (the seqlock
    // read side's second check).
    std::atomic_thread_fence(std::memory_order_acquire);
    if (static_cast<BlockKind>(
            __atomic_load_n(reinterpret_cast<uint8_t*>(&block->kind), __ATOMIC_RELAXED)) != kind ||
        __atomic_load_n(&block->size_class, __ATOMIC_RELAXED) != size_class)
      return nullptr;
    // A free slot's first word is 0, or a free run's end pointer (class bits 0).
    return header != 0 && is_shared_class(header) ? slot + kHeaderBytes : nullptr;
  }
  return large_shared_object_containing(word);
}

// Not instrumented by AddressSanitizer (make asan): the scan reads every word of another
// goroutine's stack, the redzones ASan poisons around its locals included.
__attribute__((no_sanitize_address)) void for_each_conservative_root(
    const Mutator& m, void (*visit)(void* object, void* context), void* context) {
  // Acquire: pairs with the goroutine's release store before it acknowledged the stop or gave
  // its P up, so the words below were written before we read them.
  uintptr_t low = m.conservative_low.load(std::memory_order_acquire);
  uintptr_t high = m.stack_top;
  if (low == 0 || high <= low) return;
  low &= ~uintptr_t{7};
  for (uintptr_t at = low; at + sizeof(uintptr_t) <= high; at += sizeof(uintptr_t)) {
    uintptr_t word = *reinterpret_cast<const uintptr_t*>(at);
    if (word < 4096) continue;  // null and small integers: never an object
    void* object = object_containing(word);
    if (object != nullptr) visit(object, context);
  }
}

}  // namespace usgc::gc
