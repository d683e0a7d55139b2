// alloc/malloc_stats.cpp — usgc_malloc_get_stats: the process's allocator figures, summed over
// every heap in the registry. Reads only relaxed counters; never stops or locks an allocating
// thread. Figures are a consistent-enough snapshot, not an atomic one (as mallinfo's).
#include <cerrno>

#include "alloc/heap.hpp"
#include "alloc/stats_export.hpp"
#include "kernel_iface/decommit_queue.hpp"
#include "numa/numa.hpp"
#include "usgc/usgc.h"

using namespace usgc::alloc;

extern "C" int usgc_malloc_get_stats(usgc_malloc_stats* stats) {
  return usgc::alloc::malloc_stats_read(stats, true);
}

usgc::alloc::HeapCountTotals usgc::alloc::sum_heap_counts() {
  HeapCountTotals totals;
  totals.remote_frees = g_heapless_remote_free_count.load(std::memory_order_relaxed);
  for (uint32_t bin = 0; bin < kBinCount; ++bin)
    totals.frees[bin] = g_heapless_free_count_by_bin[bin].load(std::memory_order_relaxed);
  for (Heap* heap = heap_registry_first(); heap != nullptr; heap = heap->registry_next) {
    for (uint32_t bin = 0; bin < kBinCount; ++bin) {
      totals.mallocs[bin] +=
          heap->counters.malloc_count_by_bin[bin].load(std::memory_order_relaxed);
      totals.frees[bin] += heap->counters.free_count_by_bin[bin].load(std::memory_order_relaxed);
    }
    totals.remote_frees += heap->counters.remote_free_count.load(std::memory_order_relaxed);
    totals.heaps_in_use += heap->in_use.load(std::memory_order_relaxed);
  }
  for (uint32_t bin = 0; bin < kBinCount; ++bin)
    if (totals.mallocs[bin] > totals.frees[bin])
      totals.live_block_bytes += (totals.mallocs[bin] - totals.frees[bin]) * class_size_of_bin(bin);
  return totals;
}

int usgc::alloc::malloc_stats_read(usgc_malloc_stats* stats, bool count_callers_frees) {
  if (stats == nullptr || stats->version != USGC_MALLOC_STATS_VERSION) return EINVAL;
  // The caller's figures are exact (its fast-path frees are counted by walking its pages).
  if (count_callers_frees && t_heap != &g_empty_heap) heap_count_local_frees(t_heap);
  const HeapCountTotals totals = sum_heap_counts();
  uint64_t malloc_count = g_large_counters.malloc_count.load(std::memory_order_relaxed);
  uint64_t free_count = g_large_counters.free_count.load(std::memory_order_relaxed);
  uint64_t bytes_large = g_large_counters.bytes_in_use.load(std::memory_order_relaxed);
  uint64_t bytes_in_use = bytes_large + totals.live_block_bytes;
  uint64_t remote_frees = totals.remote_frees;
  uint64_t threads = totals.heaps_in_use;
  for (uint32_t bin = 0; bin < kBinCount; ++bin) {
    malloc_count += totals.mallocs[bin];
    free_count += totals.frees[bin];
  }
  usgc::kernel::DecommitCounters decommits = usgc::kernel::DecommitQueue::process().counters();
  uint64_t reserved = g_segment_counters.bytes_reserved.load(std::memory_order_relaxed);
  uint64_t purged = g_segment_counters.bytes_purged.load(std::memory_order_relaxed);
  stats->numa_nodes = static_cast<uint32_t>(usgc::numa::topology().node_count);
  stats->bytes_reserved = reserved;
  stats->bytes_committed = purged < reserved ? reserved - purged : 0;
  stats->bytes_in_use = bytes_in_use;
  stats->bytes_large_in_use = bytes_large;
  stats->malloc_count = malloc_count;
  stats->free_count = free_count;
  stats->remote_free_count = remote_frees;
  stats->segments = g_segment_counters.segments.load(std::memory_order_relaxed);
  stats->decommits_io_uring = decommits.io_uring_operations;
  stats->decommits_madvise = decommits.madvise_calls + decommits.batched_operations;
  stats->bytes_decommitted = decommits.bytes_decommitted;
  stats->threads = threads;
  return 0;
}
