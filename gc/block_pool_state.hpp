// gc/block_pool_state.hpp — the block pool's state, shared by the pool (gc/block.cpp: takers,
// releasers, chunks, large objects) and its page return pass (gc/block_page_return.cpp). Internal
// to those two files: nothing else includes it.
//
// Invariants (gc/block.cpp's file comment has the whole picture): every node's free lists and the
// large object registry are under g_block_pool.pool_lock, a leaf lock; a free block is on exactly
// one of its home node's lists (resident or returned) or in one return batch in flight, and
// free_block_count counts all three; the counters are relaxed and read by statistics only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gc/block.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/intrusive_list.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "numa/numa.hpp"

namespace usgc::gc {

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
extern constinit ReturnTotals g_return_totals;

// The bytes of a block from the first page boundary after its header to its end: what a return
// gives back (0 where the OS page is as large as a block: nothing to return).
inline size_t returnable_bytes_per_block() {
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

extern constinit BlockPool g_block_pool;

}  // namespace usgc::gc
