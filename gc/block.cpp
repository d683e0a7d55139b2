// gc/block.cpp — the block pool: chunks from the OS, free blocks, large mappings, heap limit.
//
// Lock: g_pool_lock guards the free-block stack, the chunk registry's growth and the large
// object registry. It is a leaf (nothing else is taken under it) and it is held only around
// list operations and the occasional mapping of a chunk, never while sweeping or marking.
// Free blocks keep zero slots (sweepers zero what they free); beyond kRetainedFreeBlocks the
// pool gives the pages of a released block back to the OS (zero again on the next touch).
#include "gc/block.hpp"

#include <cstring>

#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::gc {
namespace {

constexpr uint32_t kMaxChunks = 1u << 16;  // 256 GiB of small-object heap
constexpr uint32_t kRetainedFreeBlocks = 64;

kernel::FutexMutex<kernel::LockRank::kBlockPool> g_pool_lock;
char* g_chunks[kMaxChunks];
std::atomic<uint32_t> g_chunk_count{0};
Block* g_free_blocks = nullptr;  // linked through next_in_heap; under g_pool_lock
std::atomic<uint32_t> g_free_block_count{
    0};                            // written under g_pool_lock; read as a hint without it
Block* g_large_objects = nullptr;  // under g_pool_lock
std::atomic<size_t> g_bytes_in_use{0};
std::atomic<size_t> g_heap_limit_bytes{0};

bool reserve_bytes(size_t bytes) {
  size_t limit = g_heap_limit_bytes.load(std::memory_order_relaxed);
  size_t in_use = g_bytes_in_use.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  if (limit != 0 && in_use > limit) {
    g_bytes_in_use.fetch_sub(bytes, std::memory_order_relaxed);
    return false;
  }
  return true;
}

// Under g_pool_lock: maps a chunk and pushes its blocks on the free stack.
bool grow_locked() {
  uint32_t count = g_chunk_count.load(std::memory_order_relaxed);
  if (count == kMaxChunks) return false;
  auto mapping = kernel::map_aligned(kChunkBytes, kChunkBytes);
  if (!mapping.ok()) return false;
  char* chunk = static_cast<char*>(mapping.value());
  for (uint32_t b = kBlocksPerChunk; b-- > 0;) {
    auto* block = reinterpret_cast<Block*>(chunk + size_t{b} * kBlockBytes);
    block->next_in_heap = g_free_blocks;
    g_free_blocks = block;
  }
  g_free_block_count += kBlocksPerChunk;
  g_chunks[count] = chunk;
  g_chunk_count.store(count + 1, std::memory_order_release);
  return true;
}

void format(Block* block, BlockKind kind, uint32_t size_class, uint64_t owner_heap_id) {
  // The header page may hold a previous life's fields; the slots are zero (pool invariant).
  std::memset(static_cast<void*>(block), 0, sizeof(Block));
  block->kind = kind;
  block->owner_heap_id = owner_heap_id;
  if (kind == BlockKind::kSmall) {
    block->size_class = size_class;
    block->slot_bytes = kSlotBytes[size_class];
    block->slot_count =
        static_cast<uint32_t>((kBlockBytes - kBlockHeaderBytes) / block->slot_bytes);
    block->slot_reciprocal = ((uint64_t{1} << 32) + block->slot_bytes - 1) / block->slot_bytes;
    // One run: the whole block.
    auto* run = reinterpret_cast<FreeRun*>(block->slots_begin());
    run->end = block->slots_end();
    run->next = nullptr;
    block->free_runs = run;
  } else {
    block->slot_count = 1;
    block->slot_bytes = static_cast<uint32_t>(kBlockBytes - kBlockHeaderBytes);
    block->slot_reciprocal = 0;  // every offset is slot 0
  }
}

}  // namespace

Block* acquire_block(BlockKind kind, uint32_t size_class, uint64_t owner_heap_id,
                     AcquireFailure* failure) {
  if (!reserve_bytes(kBlockBytes)) {
    *failure = AcquireFailure::kHeapLimit;
    return nullptr;
  }
  Block* block = nullptr;
  {
    kernel::FutexMutexGuard guard(g_pool_lock);
    if (g_free_blocks == nullptr && !grow_locked()) {
      g_bytes_in_use.fetch_sub(kBlockBytes, std::memory_order_relaxed);
      *failure = AcquireFailure::kOutOfMemory;
      return nullptr;
    }
    block = g_free_blocks;
    g_free_blocks = block->next_in_heap;
    --g_free_block_count;
  }
  format(block, kind, size_class, owner_heap_id);
  *failure = AcquireFailure::kNone;
  return block;
}

void release_block(Block* block) {
  USGC_ASSERT(block->kind == BlockKind::kSmall || block->kind == BlockKind::kArena,
              "release_block: not a block");
  if (block->kind == BlockKind::kArena)
    std::memset(block->slots_begin(), 0, kBlockBytes - kBlockHeaderBytes);
  // Beyond the retained blocks the pages go back to the OS (the slots are zero already: this keeps
  // the RSS of a shrinking heap down). It must happen before the block is on the free list: once
  // there another thread may take it and allocate, and a later MADV_DONTNEED would zero its
  // objects. (The count is read without the lock: a hint.)
  if (g_free_block_count.load(std::memory_order_relaxed) >= kRetainedFreeBlocks) {
    (void)kernel::decommit(block->slots_begin(), kBlockBytes - kBlockHeaderBytes);
  }
  {
    kernel::FutexMutexGuard guard(g_pool_lock);
    block->kind = BlockKind::kFree;
    block->next_in_heap = g_free_blocks;
    g_free_blocks = block;
    ++g_free_block_count;
  }
  g_bytes_in_use.fetch_sub(kBlockBytes, std::memory_order_relaxed);
}

Block* acquire_large(size_t object_bytes, uint64_t owner_heap_id, AcquireFailure* failure) {
  size_t mapping_bytes = (kBlockHeaderBytes + object_bytes + kBlockBytes - 1) & ~kBlockMask;
  if (!reserve_bytes(mapping_bytes)) {
    *failure = AcquireFailure::kHeapLimit;
    return nullptr;
  }
  auto mapping = kernel::map_aligned(mapping_bytes, kBlockBytes);
  if (!mapping.ok()) {
    g_bytes_in_use.fetch_sub(mapping_bytes, std::memory_order_relaxed);
    *failure = AcquireFailure::kOutOfMemory;
    return nullptr;
  }
  auto* block = static_cast<Block*>(mapping.value());
  format(block, BlockKind::kLarge, kNoSizeClass, owner_heap_id);
  block->slot_bytes = static_cast<uint32_t>(object_bytes > UINT32_MAX ? UINT32_MAX : object_bytes);
  block->mapping_bytes = mapping_bytes;
  {
    kernel::FutexMutexGuard guard(g_pool_lock);
    block->large_next = g_large_objects;
    if (g_large_objects != nullptr) g_large_objects->large_previous = block;
    g_large_objects = block;
  }
  *failure = AcquireFailure::kNone;
  return block;
}

void release_large(Block* block) {
  {
    kernel::FutexMutexGuard guard(g_pool_lock);
    if (block->large_previous != nullptr)
      block->large_previous->large_next = block->large_next;
    else
      g_large_objects = block->large_next;
    if (block->large_next != nullptr) block->large_next->large_previous = block->large_previous;
  }
  size_t bytes = block->mapping_bytes;
  g_bytes_in_use.fetch_sub(bytes, std::memory_order_relaxed);
  kernel::Status status = kernel::unmap(block, bytes);
  USGC_CHECK(status.ok(), "gc: unmapping a large object of %zu bytes failed (errno %d)", bytes,
             status.error());
}

size_t heap_bytes_in_use() {
  return g_bytes_in_use.load(std::memory_order_relaxed);
}
size_t heap_limit_bytes() {
  return g_heap_limit_bytes.load(std::memory_order_relaxed);
}
void set_heap_limit_bytes(size_t bytes) {
  g_heap_limit_bytes.store(bytes, std::memory_order_relaxed);
}
size_t heap_headroom_bytes() {
  size_t limit = heap_limit_bytes();
  if (limit == 0) return SIZE_MAX;
  size_t in_use = heap_bytes_in_use();
  return in_use >= limit ? 0 : limit - in_use;
}

uint32_t chunk_count() {
  return g_chunk_count.load(std::memory_order_acquire);
}
char* chunk_at(uint32_t index) {
  return g_chunks[index];
}
Block* first_large_object() {
  return g_large_objects;
}

}  // namespace usgc::gc
