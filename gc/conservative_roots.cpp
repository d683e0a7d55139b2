// gc/conservative_roots.cpp — conservative roots of goroutines stopped at asynchronous
// safepoints (gc/conservative_roots.hpp: the rule and its invariants).
#include "gc/conservative_roots.hpp"

#include "gc/block.hpp"
#include "gc/object_header.hpp"

namespace usgc::gc {
namespace {

// A shared collection marks only SHARED and GLOBAL objects (private ones are their goroutine's),
// so a word counts when its slot's header has one of those classes. A free slot's first word is
// 0, or, at the head of a free run, the run's end pointer (16-byte aligned: class bits 0).
void* shared_object_at(char* slot) {
  const uint64_t header = __atomic_load_n(reinterpret_cast<uint64_t*>(slot), __ATOMIC_RELAXED);
  return header != 0 && is_shared_class(header) ? slot + kHeaderBytes : nullptr;
}

}  // namespace

void* object_containing(uintptr_t word) {
  // Interior pointers need not be aligned (a byte array's element): any address counts.
  const uint32_t chunks = chunk_count();
  for (uint32_t c = 0; c < chunks; ++c) {
    auto begin = reinterpret_cast<uintptr_t>(chunk_at(c));
    if (word < begin || word >= begin + kChunkBytes) continue;
    Block* block = block_of(reinterpret_cast<const void*>(word));
    if (block->kind != BlockKind::kSmall) return nullptr;  // free block, or the arena (precise)
    auto* address = reinterpret_cast<char*>(word);
    if (address < block->slots_begin() || address >= block->slots_end()) return nullptr;
    return shared_object_at(block->slot_at(block->slot_index_of(address)));
  }
  for (Block* large = first_large_object(); large != nullptr; large = large->large_next) {
    auto begin = reinterpret_cast<uintptr_t>(large);
    if (word < begin + kBlockHeaderBytes || word >= begin + large->mapping_bytes) continue;
    return shared_object_at(large->slots_begin());
  }
  return nullptr;
}

void for_each_conservative_root(const Mutator& m, void (*visit)(void* object, void* context),
                                void* context) {
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
