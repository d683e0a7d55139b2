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

int usgc::alloc::malloc_stats_read(usgc_malloc_stats* stats, bool count_callers_frees) {
  if (stats == nullptr || stats->version != USGC_MALLOC_STATS_VERSION) return EINVAL;
  // The caller's figures are exact (its fast-path frees are counted by walking its pages).
  if (count_callers_frees && t_heap != &g_empty_heap) heap_count_local_frees(t_heap);
  uint64_t mallocs[kBinCount] = {};
  uint64_t frees[kBinCount] = {};
  uint64_t remote_frees = g_heapless_remote_free_count.load(std::memory_order_relaxed);
  uint64_t threads = 0;
  for (uint32_t bin = 0; bin < kBinCount; ++bin)
    frees[bin] = g_heapless_free_count_by_bin[bin].load(std::memory_order_relaxed);
  for (Heap* heap = heap_registry_first(); heap != nullptr; heap = heap->registry_next) {
    for (uint32_t bin = 0; bin < kBinCount; ++bin) {
      mallocs[bin] += heap->counters.malloc_count_by_bin[bin].load(std::memory_order_relaxed);
      frees[bin] += heap->counters.free_count_by_bin[bin].load(std::memory_order_relaxed);
    }
    remote_frees += heap->counters.remote_free_count.load(std::memory_order_relaxed);
    threads += heap->in_use.load(std::memory_order_relaxed);
  }
  uint64_t malloc_count = g_large_counters.malloc_count.load(std::memory_order_relaxed);
  uint64_t free_count = g_large_counters.free_count.load(std::memory_order_relaxed);
  uint64_t bytes_large = g_large_counters.bytes_in_use.load(std::memory_order_relaxed);
  uint64_t bytes_in_use = bytes_large;
  for (uint32_t bin = 0; bin < kBinCount; ++bin) {
    malloc_count += mallocs[bin];
    free_count += frees[bin];
    // Remote frees of one bin may be counted before the allocations they free are read.
    if (mallocs[bin] > frees[bin])
      bytes_in_use += (mallocs[bin] - frees[bin]) * class_size_of_bin(bin);
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
  stats->decommits_madvise = decommits.madvise_calls;
  stats->bytes_decommitted = decommits.bytes_decommitted;
  stats->threads = threads;
  return 0;
}
