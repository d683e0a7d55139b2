// gc/block.cpp — the block pool: chunks from the OS, free blocks per NUMA node, large mappings,
// heap limit.
//
// Lock: g_block_pool.pool_lock guards every node's free lists, the chunk registry's growth and
// the large object registry. It is a leaf (nothing else is taken under it) and it is held only
// around list operations and the occasional mapping (and binding) of a chunk, never while sweeping
// or marking, and never across a system call that returns pages.
//
// The pool invariant: a free block's slots are zero. Sweepers zero what they free (arena blocks
// are zeroed by release_block); a block whose slot pages went back to the OS reads zero too
// (MADV_DONTNEED on a private anonymous mapping), and so does a fresh chunk.
//
// Per node (block.hpp, "NUMA placement"): two free lists, their length, and the node's committed
// and in-use bytes. A block's home node never changes: it goes back to the pool it came from, so a
// node's pool only ever holds memory placed on that node. A node's pool that cannot grow (out of
// chunks or refused by the OS) lends a free block of another node rather than failing.
//   resident   free blocks whose slot pages may be resident, newest first (a doubly linked list
//              through next_in_heap / previous_free, each with free_since_ms): release_block
//              pushes at the front, takers pop the front (the warmest block), the return pass
//              takes from the back, where the blocks that waited longest are.
//   returned   free blocks whose slot pages are not resident: returned by the pass
//              (SlotPages::kReturned), or never touched (kUntouched: a fresh chunk's blocks, in
//              address order). Taken only when the resident list is empty, before a new chunk is
//              mapped. A small block taken back after a return has its slot pages populated
//              (MADV_POPULATE_WRITE, one call of ~14 us) rather than faulted in one by one (~11 us
//              each, 15 of them): it is made as resident as it was before its return, no more
//              (arena blocks and fresh ones keep faulting on first touch, as before).
//
// Returning pages: gc/block_page_return.cpp (release_block keeps a block's pages; the return pass
// gives them back after the decay, off every pause). The pool's state: gc/block_pool_state.hpp.
// Hot path: none (block slow path); with one node every block is node 0's and the only extra
// work is one load of the topology's node count per block taken.
#include "gc/block.hpp"

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "gc/block_pool_state.hpp"
#include "gc/gc_state.hpp"
#include "gc/object_header.hpp"
#include "gc/verify_log.hpp"
#include "kernel_iface/advise_batch.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/intrusive_list.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "numa/numa.hpp"

namespace usgc::gc {

constinit std::atomic<uint32_t> g_shared_mark_epoch{2};

void Block::renew_shared_marks() {
  for (;;) {
    const uint32_t epoch = g_shared_mark_epoch.load(std::memory_order_relaxed);
    uint32_t state = mark_epoch.load(std::memory_order_acquire);
    if (state == epoch) return;
    if (state & 1) {  // another thread is clearing: the words are not ours to set yet
      kernel::yield_cpu();
      continue;
    }
    // Acquire: the previous renewal's clearing happened-before ours (words written in order).
    if (!mark_epoch.compare_exchange_strong(state, epoch + 1, std::memory_order_acquire)) continue;
    for (auto& word : mark_bits) word.store(0, std::memory_order_relaxed);
    for (auto& card : cards) card.store(0, std::memory_order_relaxed);
    // Release: pairs with shared_marks_current's acquire: a reader that sees the epoch sees the
    // cleared words, and a marker's fetch_or follows the clearing stores.
    mark_epoch.store(epoch, std::memory_order_release);
    verify_log(VerifyEvent::kRenew, this, nullptr, epoch, state);
    return;
  }
}

constinit BlockPool g_block_pool;
constinit ReturnTotals g_return_totals;

namespace {

constexpr uint32_t kMaxChunks = 1u << 16;  // 256 GiB of small-object heap

// The large object registry (BlockPool::large_objects), under the pool lock.
using LargeObjectList = kernel::IntrusiveList<Block, &Block::large_next, &Block::large_previous>;

// The chunk registry (apart from the pool: 512 KiB of pointers stays in .bss): chunks[i] written
// once, under g_block_pool.pool_lock, before chunk_count's release store publishes it; readers
// (for_each_block_in_use, conservative root scans) load chunk_count with acquire and read below.
struct ChunkRegistry {
  char* chunks[kMaxChunks] = {};
  std::atomic<uint32_t> chunk_count{0};
};
constinit ChunkRegistry g_chunk_registry;

bool reserve_bytes(size_t bytes) {
  size_t limit = g_block_pool.heap_limit_bytes.load(std::memory_order_relaxed);
  size_t in_use = g_block_pool.bytes_in_use.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  if (limit != 0 && in_use > limit) {
    g_block_pool.bytes_in_use.fetch_sub(bytes, std::memory_order_relaxed);
    return false;
  }
  return true;
}

int valid_node(int node) {
  return node >= 0 && node < numa::kMaxNodes ? node : 0;
}

void note_node_used(int node) {
  int span = g_block_pool.node_span.load(std::memory_order_relaxed);
  while (node + 1 > span &&
         !g_block_pool.node_span.compare_exchange_weak(span, node + 1, std::memory_order_relaxed)) {
  }
}

// Places a fresh mapping on `node` before anything touches it: preferred-node binding when there
// is more than one node. A refusal leaves first touch to place it (the taker runs on the node).
void place_on_node(void* mapping, size_t bytes, int node) {
  if (numa::topology().node_count > 1) (void)numa::bind_to_node(mapping, bytes, numa::NodeId{node});
}

// Under g_block_pool.pool_lock: maps a chunk for `node` and pushes its blocks on that node's free
// stack.
bool grow_locked(int node) {
  uint32_t count = g_chunk_registry.chunk_count.load(std::memory_order_relaxed);
  if (count == kMaxChunks) return false;
  auto mapping = kernel::map_aligned(kChunkBytes, kChunkBytes);
  if (!mapping.ok()) return false;
  char* chunk = static_cast<char*>(mapping.value());
  place_on_node(chunk, kChunkBytes, node);
  NodePool& pool = g_block_pool.nodes[node];
  // Untouched: the blocks go on the returned list (first block on top), committed but for their
  // slot pages.
  for (uint32_t b = kBlocksPerChunk; b-- > 0;) {
    auto* block = reinterpret_cast<Block*>(chunk + size_t{b} * kBlockBytes);
    block->node = static_cast<uint8_t>(node);
    block->slot_pages = SlotPages::kUntouched;
    block->next_in_heap = pool.returned_blocks;
    pool.returned_blocks = block;
  }
  pool.free_block_count.fetch_add(kBlocksPerChunk, std::memory_order_relaxed);
  pool.returned_block_count.fetch_add(kBlocksPerChunk, std::memory_order_relaxed);
  pool.bytes_committed.fetch_add(kChunkBytes - kBlocksPerChunk * returnable_bytes_per_block(),
                                 std::memory_order_relaxed);
  note_node_used(node);
  g_chunk_registry.chunks[count] = chunk;
  // Release: the chunk's slot above before the count (pairs with chunk_count()'s acquire load).
  g_chunk_registry.chunk_count.store(count + 1, std::memory_order_release);
  return true;
}

// Under g_block_pool.pool_lock: pops a free block of `pool`, the warmest first (the front of the
// resident list, else the returned stack); nullptr when both are empty.
Block* pop_from_node_locked(NodePool& pool) {
  Block* block = ResidentList::pop_front(pool.resident_first, pool.resident_last);
  if (block != nullptr) {
    if (pool.resident_first == nullptr) pool.oldest_resident_ms.store(0, std::memory_order_relaxed);
  } else {
    block = pool.returned_blocks;
    if (block == nullptr) return nullptr;
    pool.returned_blocks = block->next_in_heap;
    pool.returned_block_count.fetch_sub(1, std::memory_order_relaxed);
  }
  pool.free_block_count.fetch_sub(1, std::memory_order_relaxed);
  return block;
}

// Under g_block_pool.pool_lock: pops a free block of `node`, growing that node's pool when it is
// empty, and borrowing another node's free block when it cannot grow. nullptr when there is none at
// all.
Block* pop_free_block_locked(int node) {
  if (Block* block = pop_from_node_locked(g_block_pool.nodes[node])) return block;
  if (grow_locked(node)) return pop_from_node_locked(g_block_pool.nodes[node]);
  for (NodePool& other : g_block_pool.nodes) {
    if (Block* block = pop_from_node_locked(other)) return block;
  }
  return nullptr;
}

void format(Block* block, BlockKind kind, uint32_t size_class, uint64_t owner_heap_id) {
  // The header page may hold a previous life's fields; the slots are zero (pool invariant).
  // The pool's own fields (node, slot_pages) survive. A minor mark's card scan may still
  // read this block's previous format while we write (gc/parallel_mark.cpp): what it reads (kind,
  // size_class, the epoch, bitmap and cards) is written with atomic stores, the rest with memset.
  static_assert(std::is_standard_layout_v<Block>, "offsetof(Block, ...) below");
  constexpr size_t kPlainBegin = offsetof(Block, slot_bytes);
  constexpr size_t kPlainEnd = offsetof(Block, mark_epoch);
  static_assert(offsetof(Block, kind) < kPlainBegin && offsetof(Block, size_class) < kPlainBegin &&
                    offsetof(Block, node) < kPlainBegin &&
                    offsetof(Block, slot_pages) < kPlainBegin &&
                    offsetof(Block, mark_bits) >= kPlainEnd && offsetof(Block, cards) >= kPlainEnd,
                "format's memset spares the fields a concurrent scan reads");
  std::memset(reinterpret_cast<char*>(block) + kPlainBegin, 0, kPlainEnd - kPlainBegin);
  for (auto& word : block->mark_bits) word.store(0, std::memory_order_relaxed);
  for (auto& card : block->cards) card.store(0, std::memory_order_relaxed);
  // Zero bitmap and cards: current (a stale epoch would only make the first mark clear them).
  block->mark_epoch.store(g_shared_mark_epoch.load(std::memory_order_relaxed),
                          std::memory_order_relaxed);
  __atomic_store_n(&block->size_class, kind == BlockKind::kSmall ? size_class : 0,
                   __ATOMIC_RELAXED);
  block->owner_heap_id = owner_heap_id;
  if (kind == BlockKind::kSmall) {
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
  // Release: pairs with the card scan's and the conservative scan's acquire loads of kind: a scan
  // that sees this kind sees the format above.
  __atomic_store_n(reinterpret_cast<uint8_t*>(&block->kind), static_cast<uint8_t>(kind),
                   __ATOMIC_RELEASE);
}

}  // namespace

int block_node_of_caller() {
  const numa::Topology& topology = numa::topology();
  if (topology.node_count == 1) return 0;
  return valid_node(numa::current_node().value);
}

Block* acquire_block(BlockKind kind, uint32_t size_class, uint64_t owner_heap_id,
                     AcquireFailure* failure) {
  return acquire_block_on_node(block_node_of_caller(), kind, size_class, owner_heap_id, failure);
}

Block* acquire_block_on_node(int node, BlockKind kind, uint32_t size_class, uint64_t owner_heap_id,
                             AcquireFailure* failure) {
  node = valid_node(node);
  if (!reserve_bytes(kBlockBytes)) {
    *failure = AcquireFailure::kHeapLimit;
    return nullptr;
  }
  Block* block = nullptr;
  {
    kernel::FutexMutexGuard guard(g_block_pool.pool_lock);
    block = pop_free_block_locked(node);
    if (block == nullptr) {
      g_block_pool.bytes_in_use.fetch_sub(kBlockBytes, std::memory_order_relaxed);
      *failure = AcquireFailure::kOutOfMemory;
      return nullptr;
    }
  }
  NodePool& home = g_block_pool.nodes[block->node];
  home.bytes_in_use.fetch_add(kBlockBytes, std::memory_order_relaxed);
  if (block->slot_pages != SlotPages::kTouched) {  // its slot pages come back (zero)
    const size_t returnable = returnable_bytes_per_block();
    if (block->slot_pages == SlotPages::kReturned && kind == BlockKind::kSmall) {
      // File comment ("returned"): populated in one call; a refusal leaves them to fault in.
      (void)kernel::advise_one(
          {reinterpret_cast<char*>(block) + (kBlockBytes - returnable), returnable},
          kernel::BatchAdvice::kPopulateWrite);
    }
    block->slot_pages = SlotPages::kTouched;
    home.bytes_committed.fetch_add(returnable, std::memory_order_relaxed);
    g_return_totals.blocks_taken_not_resident.fetch_add(1, std::memory_order_relaxed);
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
  NodePool& home = g_block_pool.nodes[block->node];
  // The block keeps its pages: release_block runs inside pauses; the return pass
  // (gc/block_page_return.cpp) gives them back if it stays free for the decay. The clock is read
  // before the lock (the vDSO's coarse clock: a few nanoseconds).
  const uint64_t now_ms = kernel::coarse_monotonic_ms();
  block->free_since_ms = now_ms != 0 ? now_ms : 1;  // never 0 (0: no resident block)
  home.bytes_in_use.fetch_sub(kBlockBytes, std::memory_order_relaxed);
  {
    kernel::FutexMutexGuard guard(g_block_pool.pool_lock);
    // Relaxed: a concurrent scan that sees kFree skips the block; one that read the old kind
    // re-reads kind and size_class before it trusts a slot (gc/parallel_mark.cpp).
    __atomic_store_n(reinterpret_cast<uint8_t*>(&block->kind),
                     static_cast<uint8_t>(BlockKind::kFree), __ATOMIC_RELAXED);
    ResidentList::push_front(home.resident_first, home.resident_last, block);
    if (home.resident_last == block)
      home.oldest_resident_ms.store(block->free_since_ms, std::memory_order_relaxed);
    home.free_block_count.fetch_add(1, std::memory_order_relaxed);
  }
  g_block_pool.bytes_in_use.fetch_sub(kBlockBytes, std::memory_order_relaxed);
}

Block* acquire_large(size_t object_bytes, uint64_t owner_heap_id, AcquireFailure* failure) {
  size_t mapping_bytes = (kBlockHeaderBytes + object_bytes + kBlockBytes - 1) & ~kBlockMask;
  if (!reserve_bytes(mapping_bytes)) {
    *failure = AcquireFailure::kHeapLimit;
    return nullptr;
  }
  auto mapping = kernel::map_aligned(mapping_bytes, kBlockBytes);
  if (!mapping.ok()) {
    g_block_pool.bytes_in_use.fetch_sub(mapping_bytes, std::memory_order_relaxed);
    *failure = AcquireFailure::kOutOfMemory;
    return nullptr;
  }
  int node = block_node_of_caller();
  place_on_node(mapping.value(), mapping_bytes, node);
  auto* block = static_cast<Block*>(mapping.value());
  block->node = static_cast<uint8_t>(node);
  format(block, BlockKind::kLarge, kNoSizeClass, owner_heap_id);
  note_node_used(node);
  g_block_pool.nodes[node].bytes_committed.fetch_add(mapping_bytes, std::memory_order_relaxed);
  g_block_pool.nodes[node].bytes_in_use.fetch_add(mapping_bytes, std::memory_order_relaxed);
  block->slot_bytes = static_cast<uint32_t>(object_bytes > UINT32_MAX ? UINT32_MAX : object_bytes);
  block->mapping_bytes = mapping_bytes;
  {
    kernel::FutexMutexGuard guard(g_block_pool.pool_lock);
    LargeObjectList::push_front(g_block_pool.large_objects, block);
  }
  *failure = AcquireFailure::kNone;
  return block;
}

void release_large(Block* block) {
  {
    kernel::FutexMutexGuard guard(g_block_pool.pool_lock);
    LargeObjectList::remove(g_block_pool.large_objects, block);
  }
  size_t bytes = block->mapping_bytes;
  g_block_pool.nodes[block->node].bytes_committed.fetch_sub(bytes, std::memory_order_relaxed);
  g_block_pool.nodes[block->node].bytes_in_use.fetch_sub(bytes, std::memory_order_relaxed);
  g_block_pool.bytes_in_use.fetch_sub(bytes, std::memory_order_relaxed);
  kernel::Status status = kernel::unmap(block, bytes);
  USGC_CHECK(status.ok(), "gc: unmapping a large object of %zu bytes failed (errno %d)", bytes,
             status.error());
}

size_t heap_bytes_in_use() {
  return g_block_pool.bytes_in_use.load(std::memory_order_relaxed);
}
size_t heap_limit_bytes() {
  return g_block_pool.heap_limit_bytes.load(std::memory_order_relaxed);
}
void set_heap_limit_bytes(size_t bytes) {
  g_block_pool.heap_limit_bytes.store(bytes, std::memory_order_relaxed);
}
size_t heap_headroom_bytes() {
  size_t limit = heap_limit_bytes();
  if (limit == 0) return SIZE_MAX;
  size_t in_use = heap_bytes_in_use();
  return in_use >= limit ? 0 : limit - in_use;
}

NodePoolBytes node_pool_bytes(int node) {
  NodePoolBytes figures;
  if (node < 0 || node >= numa::kMaxNodes) return figures;
  const NodePool& pool = g_block_pool.nodes[node];
  figures.bytes_committed = pool.bytes_committed.load(std::memory_order_relaxed);
  figures.bytes_in_use = pool.bytes_in_use.load(std::memory_order_relaxed);
  figures.free_blocks = pool.free_block_count.load(std::memory_order_relaxed);
  figures.returned_blocks = pool.returned_block_count.load(std::memory_order_relaxed);
  return figures;
}

int node_pool_span() {
  return g_block_pool.node_span.load(std::memory_order_relaxed);
}

uint32_t chunk_count() {
  // Acquire: pairs with grow_locked's release store: the chunks below the count are published.
  return g_chunk_registry.chunk_count.load(std::memory_order_acquire);
}
char* chunk_at(uint32_t index) {
  return g_chunk_registry.chunks[index];
}
void* large_shared_object_containing(uintptr_t address) {
  kernel::FutexMutexGuard guard(g_block_pool.pool_lock);
  for (Block* large = g_block_pool.large_objects; large != nullptr; large = large->large_next) {
    auto begin = reinterpret_cast<uintptr_t>(large);
    if (address < begin + kBlockHeaderBytes || address >= begin + large->mapping_bytes) continue;
    // Acquire, as the conservative scan's header loads (conservative_roots.cpp). It pairs with no
    // release: the allocator writes the header with a plain store after the block joined the
    // registry; a header not written yet reads 0 and answers nullptr.
    const uint64_t header =
        __atomic_load_n(reinterpret_cast<uint64_t*>(large->slots_begin()), __ATOMIC_ACQUIRE);
    return header != 0 && is_shared_class(header) ? large->slots_begin() + kHeaderBytes : nullptr;
  }
  return nullptr;
}

Block* first_large_object() {
  return g_block_pool.large_objects;
}

void for_each_large_object_locked(void (*fn)(Block* large, void* context), void* context) {
  kernel::FutexMutexGuard guard(g_block_pool.pool_lock);
  for (Block* large = g_block_pool.large_objects; large != nullptr; large = large->large_next)
    fn(large, context);
}

}  // namespace usgc::gc
