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
// Returning pages (block.hpp): release_block runs inside pauses (sweep steps, collections) and
// keeps the pages: a 60 KiB MADV_DONTNEED cost about 0.27 ms there on this VM, nearly all of it
// the TLB flush each madvise(2) makes (docs/benchmarks.md), plus up to 15 faults of ~11 us when
// the block is taken again. return_free_block_pages, on the runtime's scavenger thread, returns
// blocks free for longer than the decay in batches: it unlinks up to kUnlinkPerLockHold blocks
// per hold of the lock (so the hold stays a few microseconds), advises the whole batch with one
// process_madvise(2) (one TLB flush for up to 256 ranges: ~10 us per block measured, against
// ~270 us per madvise), then splices the batch onto the returned list in one hold. Blocks in the
// batch are on no list meanwhile (counted in free_block_count): a taker gets another block.
// A block's returnable range starts at the first page boundary after its header (the header
// page also holds the first slots: they stay resident and zero) and ends with the block; adjacent
// blocks' ranges are never contiguous (a header page lies between), so a batch is one range per
// block. bytes_committed counts a block whole while its slot pages may be resident, its header
// page only otherwise (returned or fresh).
// Hot path: none (block slow path); with one node every block is node 0's and the only extra
// work is one load of the topology's node count per block taken.
#include "gc/block.hpp"

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/object_header.hpp"
#include "gc/trace.hpp"
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

namespace {

constexpr uint32_t kMaxChunks = 1u << 16;  // 256 GiB of small-object heap
// A return batch: at most this many blocks per system call (process_madvise takes up to 1024
// ranges), unlinked at most kUnlinkPerLockHold at a time.
constexpr uint32_t kReturnBatchBlocks = 256;
constexpr uint32_t kUnlinkPerLockHold = 32;

// The large object registry (BlockPool::large_objects), under the pool lock.
using LargeObjectList = kernel::IntrusiveList<Block, &Block::large_next, &Block::large_previous>;
// A node's resident free blocks (NodePool::resident_first/last), under the pool lock.
using ResidentList = kernel::IntrusiveList<Block, &Block::next_in_heap, &Block::previous_free>;

struct NodePool {
  // The two free lists (file comment), under g_block_pool.pool_lock.
  Block* resident_first = nullptr;   // newest
  Block* resident_last = nullptr;    // oldest
  Block* returned_blocks = nullptr;  // a stack through next_in_heap
  // resident_last's free_since_ms, 0 when the list is empty: written under the pool lock when
  // the back of the list changes; read relaxed by oldest_resident_free_block_ms (the monitor).
  std::atomic<uint64_t> oldest_resident_ms{0};
  // Free blocks (both lists and a return's batch in flight), and of those the returned ones.
  // Written under g_block_pool.pool_lock; read by statistics without it.
  std::atomic<uint32_t> free_block_count{0};
  std::atomic<uint32_t> returned_block_count{0};
  // Relaxed counters, written by takers, releasers and returns; read by statistics.
  std::atomic<size_t> bytes_committed{0};
  std::atomic<size_t> bytes_in_use{0};
};

// The return pass's totals (block.hpp, BlockPageReturnTotals): relaxed counters written by the
// pass (and the taker, blocks_taken_not_resident), read by statistics and tests.
struct ReturnTotals {
  std::atomic<uint64_t> blocks_returned{0};
  std::atomic<uint64_t> bytes_returned{0};
  std::atomic<uint64_t> system_calls{0};
  std::atomic<uint64_t> passes{0};
  std::atomic<uint64_t> passes_on_goroutines{0};
  std::atomic<uint64_t> blocks_taken_not_resident{0};
};
constinit ReturnTotals g_return_totals;

// The bytes of a block from the first page boundary after its header to its end: what a return
// gives back (0 where the OS page is as large as a block: nothing to return).
size_t returnable_bytes_per_block() {
  const size_t page = kernel::os_page_size();
  const size_t header_pages = (kBlockHeaderBytes + page - 1) / page * page;
  return header_pages < kBlockBytes ? kBlockBytes - header_pages : 0;
}

// The block pool's state. Locks: pool_lock (a leaf) as the fields say; the counters are relaxed.
struct BlockPool {
  kernel::FutexMutex<kernel::LockRank::kBlockPool> pool_lock;
  NodePool nodes[numa::kMaxNodes];  // each node's fields say their own lock or ordering
  // 1 + the highest node given memory: raised by CAS by whoever maps memory for a node (chunk
  // growth, large mappings); read by statistics (relaxed).
  std::atomic<int> node_span{1};
  Block* large_objects = nullptr;  // the large object registry: under pool_lock
  // Bytes taken from the OS for the heap: reserved (fetch_add) before mapping, given back on
  // failure and on release, by any thread; read by the limit check and statistics (relaxed).
  std::atomic<size_t> bytes_in_use{0};
  // USGC_HEAP_MAX (0 = none): written by set_heap_limit_bytes (configuration), read by every
  // reservation (relaxed: a stale limit only moves one reservation across it).
  std::atomic<size_t> heap_limit_bytes{0};
};
constinit BlockPool g_block_pool;

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
  // The block keeps its pages: release_block runs inside pauses (file comment, "Returning
  // pages"); the return pass gives them back if it stays free for the decay. The clock is read
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

namespace {

// Under g_block_pool.pool_lock: unlinks up to `limit` blocks from the back of the node's resident
// list that were released at or before cutoff_ms, appending them to batch. Returns how many.
uint32_t unlink_due_locked(NodePool& pool, uint64_t cutoff_ms, Block** batch, uint32_t limit) {
  uint32_t count = 0;
  while (count < limit && pool.resident_last != nullptr &&
         pool.resident_last->free_since_ms <= cutoff_ms) {
    Block* block = pool.resident_last;
    ResidentList::remove(pool.resident_first, pool.resident_last, block);
    batch[count++] = block;
  }
  pool.oldest_resident_ms.store(
      pool.resident_last != nullptr ? pool.resident_last->free_since_ms : 0,
      std::memory_order_relaxed);
  return count;
}

// Advises MADV_DONTNEED on the batch's slot pages: one process_madvise for all of them, else one
// madvise per block. Sets returned[i] for each block whose pages went back.
void advise_batch_dontneed(Block* const* batch, uint32_t count, size_t returnable, bool* returned,
                           BlockPageReturn& result) {
  kernel::AdviseRange ranges[kReturnBatchBlocks];
  for (uint32_t i = 0; i < count; ++i)
    ranges[i] = {reinterpret_cast<char*>(batch[i]) + (kBlockBytes - returnable), returnable};
  ++result.system_calls;
  if (kernel::advise_batch({ranges, count}, kernel::BatchAdvice::kDontNeed).ok()) {
    for (uint32_t i = 0; i < count; ++i) returned[i] = true;
    return;
  }
  // No process_madvise for this advice (a kernel before 6.13) or a refusal part-way: one call per
  // block (MADV_DONTNEED again on pages already returned is harmless).
  for (uint32_t i = 0; i < count; ++i) {
    ++result.system_calls;
    returned[i] = kernel::advise_one(ranges[i], kernel::BatchAdvice::kDontNeed).ok();
  }
}

// Puts a returned batch (all of one node) back: the blocks whose pages went back on the returned
// stack, the others on the resident list as if released now (they wait another decay).
void relink_batch(NodePool& pool, Block* const* batch, const bool* returned, uint32_t count,
                  size_t returnable, BlockPageReturn& result) {
  // The chain of returned blocks is built before the lock: the batch is the returner's.
  Block* chain_first = nullptr;
  Block* chain_last = nullptr;
  uint32_t returned_count = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (!returned[i]) continue;
    batch[i]->slot_pages = SlotPages::kReturned;
    batch[i]->next_in_heap = chain_first;
    if (chain_first == nullptr) chain_last = batch[i];
    chain_first = batch[i];
    ++returned_count;
  }
  const uint64_t now_ms = kernel::coarse_monotonic_ms();
  kernel::FutexMutexGuard guard(g_block_pool.pool_lock);
  if (chain_first != nullptr) {
    chain_last->next_in_heap = pool.returned_blocks;
    pool.returned_blocks = chain_first;
    pool.returned_block_count.fetch_add(returned_count, std::memory_order_relaxed);
  }
  for (uint32_t i = 0; i < count; ++i) {
    if (returned[i]) continue;
    batch[i]->free_since_ms = now_ms != 0 ? now_ms : 1;
    ResidentList::push_front(pool.resident_first, pool.resident_last, batch[i]);
    if (pool.resident_last == batch[i])
      pool.oldest_resident_ms.store(batch[i]->free_since_ms, std::memory_order_relaxed);
    ++result.failures;
  }
  pool.bytes_committed.fetch_sub(returned_count * returnable, std::memory_order_relaxed);
  result.blocks += returned_count;
}

}  // namespace

uint64_t oldest_resident_free_block_ms() {
  uint64_t oldest = 0;
  const int span = g_block_pool.node_span.load(std::memory_order_relaxed);
  for (int node = 0; node < span; ++node) {
    const uint64_t since =
        g_block_pool.nodes[node].oldest_resident_ms.load(std::memory_order_relaxed);
    if (since != 0 && (oldest == 0 || since < oldest)) oldest = since;
  }
  return oldest;
}

BlockPageReturn return_free_block_pages(uint64_t cutoff_ms, uint32_t max_blocks) {
  const uint64_t start_ns = kernel::monotonic_ns();
  BlockPageReturn result;
  g_return_totals.passes.fetch_add(1, std::memory_order_relaxed);
  if (current_mutator() != nullptr)
    g_return_totals.passes_on_goroutines.fetch_add(1, std::memory_order_relaxed);
  const size_t returnable = returnable_bytes_per_block();
  if (returnable == 0) return result;
  Block* batch[kReturnBatchBlocks];
  bool returned[kReturnBatchBlocks];
  const int span = g_block_pool.node_span.load(std::memory_order_relaxed);
  for (int node = 0; node < span && result.blocks + result.failures < max_blocks; ++node) {
    NodePool& pool = g_block_pool.nodes[node];
    for (;;) {
      const uint32_t budget = max_blocks - result.blocks - result.failures;
      const uint32_t limit = budget < kReturnBatchBlocks ? budget : kReturnBatchBlocks;
      uint32_t count = 0;
      while (count < limit) {
        const uint32_t step =
            limit - count < kUnlinkPerLockHold ? limit - count : kUnlinkPerLockHold;
        uint32_t unlinked;
        {
          kernel::FutexMutexGuard guard(g_block_pool.pool_lock);
          unlinked = unlink_due_locked(pool, cutoff_ms, batch + count, step);
        }
        count += unlinked;
        if (unlinked < step) break;  // nothing more is due on this node
      }
      if (count == 0) break;
      advise_batch_dontneed(batch, count, returnable, returned, result);
      relink_batch(pool, batch, returned, count, returnable, result);
      if (count < limit || result.blocks + result.failures >= max_blocks) break;
    }
  }
  g_return_totals.blocks_returned.fetch_add(result.blocks, std::memory_order_relaxed);
  g_return_totals.bytes_returned.fetch_add(uint64_t{result.blocks} * returnable,
                                           std::memory_order_relaxed);
  g_return_totals.system_calls.fetch_add(result.system_calls, std::memory_order_relaxed);
  if (g_config.trace && result.blocks != 0) {
    PoolReturnTrace trace{result.blocks,
                          result.blocks * returnable,
                          result.system_calls,
                          kernel::monotonic_ns() - start_ns,
                          0,
                          0,
                          0};
    for (int node = 0; node < span; ++node) {
      const NodePoolBytes figures = node_pool_bytes(node);
      trace.committed_bytes += figures.bytes_committed;
      trace.free_blocks += figures.free_blocks;
      if (figures.free_blocks > figures.returned_blocks)  // relaxed counters: may lag a moment
        trace.resident_free_blocks += figures.free_blocks - figures.returned_blocks;
    }
    trace_pool_return(trace);
  }
  return result;
}

BlockPageReturnTotals block_page_return_totals() {
  BlockPageReturnTotals totals;
  totals.blocks_returned = g_return_totals.blocks_returned.load(std::memory_order_relaxed);
  totals.bytes_returned = g_return_totals.bytes_returned.load(std::memory_order_relaxed);
  totals.system_calls = g_return_totals.system_calls.load(std::memory_order_relaxed);
  totals.passes = g_return_totals.passes.load(std::memory_order_relaxed);
  totals.passes_on_goroutines =
      g_return_totals.passes_on_goroutines.load(std::memory_order_relaxed);
  totals.blocks_taken_not_resident =
      g_return_totals.blocks_taken_not_resident.load(std::memory_order_relaxed);
  return totals;
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
