// gc/block_page_return.cpp — the block pool's page return: free blocks that stayed free longer
// than the decay give their slot pages back to the OS, off every pause and every goroutine.
//
// release_block runs inside pauses (sweep steps, collections) and keeps the pages: a 60 KiB
// MADV_DONTNEED cost about 0.27 ms there on this VM, nearly all of it the TLB flush each madvise(2)
// makes (docs/benchmarks.md), plus up to 15 faults of ~11 us when the block is taken again.
// return_free_block_pages, on the runtime's scavenger thread, returns blocks free for longer than
// the decay in batches: it unlinks up to kUnlinkPerLockHold blocks per hold of the lock (so the
// hold stays a few microseconds), advises the whole batch with one process_madvise(2) (one TLB
// flush for up to 256 ranges: ~10 us per block measured, against ~270 us per madvise), then splices
// the batch onto the returned list in one hold. Blocks in the batch are on no list meanwhile
// (counted in free_block_count): a taker gets another block. A block's returnable range starts at
// the first page boundary after its header (the header page also holds the first slots: they stay
// resident and zero) and ends with the block; adjacent blocks' ranges are never contiguous (a
// header page lies between), so a batch is one range per block. bytes_committed counts a block
// whole while its slot pages may be resident, its header page only otherwise (returned or fresh).
//
// Invariants: a block in a batch is on no free list and still counted in free_block_count; only
// this pass moves a block from the resident list to the returned one; a block whose advice failed
// goes back on the resident list as if released now.
#include <cstdint>

#include "gc/block.hpp"
#include "gc/block_pool_state.hpp"
#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/trace.hpp"
#include "kernel_iface/advise_batch.hpp"
#include "kernel_iface/clock.hpp"

namespace usgc::gc {

namespace {

// A return batch: at most this many blocks per system call (process_madvise takes up to 1024
// ranges), unlinked at most kUnlinkPerLockHold at a time.
constexpr uint32_t kReturnBatchBlocks = 256;
constexpr uint32_t kUnlinkPerLockHold = 32;

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

}  // namespace usgc::gc
