// alloc/footprint.cpp — the footprint census's peak snapshot and its report (USGC_TRACE=footprint).
// See footprint.hpp for the counters and who keeps them. Slow paths only: nothing here runs
// unless the trace is on, except footprint_initialize at process start.
#include "alloc/footprint.hpp"

#include "alloc/heap.hpp"
#include "alloc/large_arena.hpp"
#include "alloc/stats_export.hpp"
#include "kernel_iface/decommit_queue.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"
#if !defined(__wasm32__)
#include "kernel_iface/process_info.hpp"
#endif

namespace usgc::alloc {

FootprintCounters g_footprint;
bool g_footprint_trace = false;

namespace {

// The census at its peak. Written by the thread that holds g_snapshot_busy; read at exit.
struct FootprintSnapshot {
  int64_t total_bytes;  // in_use + free_dirty + cached_dirty
  int64_t page_bytes_in_use;
  int64_t abandoned_page_bytes_in_use;
  int64_t page_bytes_touched;
  int64_t page_bytes_free_dirty;
  int64_t cached_segment_bytes_dirty;
  int64_t purge_backlog_bytes;
  uint64_t live_block_bytes;  // small and medium blocks handed out and not freed
  uint64_t large_bytes_in_use;
  int64_t large_span_page_bytes;
  int64_t large_free_bytes_dirty;
  int64_t huge_cached_bytes;
  uint64_t segments;
  uint64_t heaps_in_use;
  uint64_t resident_bytes;  // the process's RSS when the snapshot was taken: the peak's measure
};
FootprintSnapshot g_peak = {};

// The snapshotting thread's own heap by size class at the peak (only the owner may walk its
// queues): pages in use (class queues and full queue), their touched part, their blocks handed
// out. Written and read with g_peak, under g_snapshot_busy.
struct ClassCensus {
  uint32_t pages;
  uint64_t touched_bytes;
  uint64_t used_bytes;
};
ClassCensus g_peak_classes[kBinCount] = {};

void add_page(ClassCensus* classes, const Page* page) {
  if (page->bin >= kBinCount) return;
  ClassCensus& entry = classes[page->bin];
  entry.pages++;
  entry.touched_bytes += uint64_t{page->capacity()} * page->block_size;
  entry.used_bytes += uint64_t{page->used} * page->block_size;
}

void census_own_heap(ClassCensus* classes) {
  for (uint32_t bin = 0; bin < kBinCount; ++bin) classes[bin] = {};
  const Heap* heap = t_heap;
  if (heap == &g_empty_heap) return;
  for (uint32_t bin = 0; bin < kBinCount; ++bin)
    for (const Page* page = heap->queues[bin].first; page != nullptr; page = page->next)
      add_page(classes, page);
  for (const Page* page = heap->full_queue.first; page != nullptr; page = page->next)
    add_page(classes, page);
}
// One snapshot at a time; a thread that finds it taken skips (the next growth looks again).
std::atomic<bool> g_snapshot_busy{false};
// Snapshot only when the resident set grew by this much over the last one (a walk of every heap).
constexpr int64_t kSnapshotStepBytes = 64 << 10;

int64_t load(const std::atomic<int64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

int64_t purge_backlog_bytes() {
  int64_t queued = load(g_footprint.bytes_purge_queued);
  int64_t done =
      static_cast<int64_t>(kernel::DecommitQueue::process().counters().bytes_decommitted);
  return queued > done ? queued - done : 0;
}

void print_kib(const char* key, int64_t bytes, const char* what) {
  kernel::print_message("footprint: %s=%ld KiB (%s)", key,
                        static_cast<long>((bytes < 0 ? 0 : bytes) >> 10), what);
}

// Runs at exit (after the program's destructors), not after _exit or a fatal signal.
__attribute__((destructor)) void footprint_at_exit() {
  if (!g_footprint_trace) return;
  while (g_snapshot_busy.exchange(true, std::memory_order_acquire)) {
  }
  const FootprintSnapshot& peak = g_peak;
  kernel::print_message("footprint: census at its peak (USGC_TRACE=footprint)");
  print_kib("resident", static_cast<int64_t>(peak.resident_bytes), "the process's RSS then");
  print_kib("live_blocks", static_cast<int64_t>(peak.live_block_bytes),
            "small and medium blocks allocated, not freed");
  print_kib("pages_in_use", peak.page_bytes_in_use, "pages formatted for a size class");
  print_kib("pages_in_use_abandoned", peak.abandoned_page_bytes_in_use,
            "of them in segments of exited threads");
  print_kib("pages_in_use_touched", peak.page_bytes_touched,
            "of them blocks ever handed out (the rest was never touched)");
  print_kib("free_blocks_in_touched",
            peak.page_bytes_touched - static_cast<int64_t>(peak.live_block_bytes),
            "touched minus live: free blocks in pages in use");
  print_kib("free_pages_dirty", peak.page_bytes_free_dirty, "free pages waiting for the decay");
  print_kib("cached_segments_dirty", peak.cached_segment_bytes_dirty,
            "empty cached segments not purged yet");
  print_kib("decommit_backlog", peak.purge_backlog_bytes, "queued purges not completed");
  print_kib("large_in_use", static_cast<int64_t>(peak.large_bytes_in_use),
            "large and huge objects");
  print_kib("large_span_pages", peak.large_span_page_bytes,
            "pages of live large spans (objects plus rounding)");
  print_kib("large_free_pages_dirty", peak.large_free_bytes_dirty,
            "free pages of large segments waiting for the decay");
  print_kib("huge_cached", peak.huge_cached_bytes, "huge mappings in the cache");
  print_kib("segment_headers", static_cast<int64_t>(peak.segments * kSegmentHeaderBytes),
            "upper bound: a header per mapped segment");
  kernel::print_message("footprint: segments=%lu heaps_in_use=%lu",
                        static_cast<unsigned long>(peak.segments),
                        static_cast<unsigned long>(peak.heaps_in_use));
  for (uint32_t bin = 0; bin < kBinCount; ++bin) {
    const ClassCensus& entry = g_peak_classes[bin];
    if (entry.pages == 0) continue;
    kernel::print_message(
        "footprint: class=%lu pages=%u touched=%lu KiB handed_out=%lu KiB (the peak thread's heap)",
        static_cast<unsigned long>(class_size_of_bin(bin)), entry.pages,
        static_cast<unsigned long>(entry.touched_bytes >> 10),
        static_cast<unsigned long>(entry.used_bytes >> 10));
  }
  kernel::print_message(
      "footprint: huge_chunks_given_back=%ld huge_chunks_taken=%ld (whole run, 4 MiB each)",
      static_cast<long>(load(g_large_footprint.chunks_given_back)),
      static_cast<long>(load(g_large_footprint.chunks_taken)));
  print_kib("huge_tails_returned", load(g_large_footprint.tail_bytes_returned),
            "whole run: pages past live huge objects returned by their decay or a trim");
  kernel::print_message(
      "footprint: cap_purges=%lu cap_purged=%lu KiB (whole run)",
      static_cast<unsigned long>(g_footprint.pressure_purges.load(std::memory_order_relaxed)),
      static_cast<unsigned long>(g_footprint.pressure_bytes.load(std::memory_order_relaxed) >> 10));
  g_snapshot_busy.store(false, std::memory_order_release);
}

}  // namespace

void footprint_initialize() {
  g_footprint_trace = kernel::read_environment_choice(kernel::EnvironmentVariableId::kTrace, 0) ==
                      kernel::kTraceFootprint;
}

void footprint_note_growth_slow() {
  // The peak is the resident set's: what the census explains. Without one to read (wasm32), the
  // census's own total.
  int64_t total = load(g_footprint.page_bytes_in_use) + load(g_footprint.page_bytes_free_dirty) +
                  load(g_footprint.cached_segment_bytes_dirty);
  uint64_t resident_bytes = 0;
#if !defined(__wasm32__)  // WASI has no resident set to read
  kernel::Result<uint64_t> resident = kernel::read_resident_bytes();
  if (resident.ok()) resident_bytes = resident.value();
#endif
  int64_t measure = resident_bytes != 0 ? static_cast<int64_t>(resident_bytes) : total;
  int64_t peak_measure =
      g_peak.resident_bytes != 0 ? static_cast<int64_t>(g_peak.resident_bytes) : g_peak.total_bytes;
  if (measure < peak_measure + kSnapshotStepBytes) return;  // a racy hint; rechecked below
  // Acquire/release: the snapshot's fields pass from one holder to the next (and to the exit).
  if (g_snapshot_busy.exchange(true, std::memory_order_acquire)) return;
  peak_measure =
      g_peak.resident_bytes != 0 ? static_cast<int64_t>(g_peak.resident_bytes) : g_peak.total_bytes;
  if (measure >= peak_measure + kSnapshotStepBytes) {
    FootprintSnapshot snapshot = {};
    snapshot.total_bytes = total;
    snapshot.resident_bytes = resident_bytes;
    snapshot.page_bytes_in_use = load(g_footprint.page_bytes_in_use);
    snapshot.abandoned_page_bytes_in_use = load(g_footprint.abandoned_page_bytes_in_use);
    snapshot.page_bytes_touched = load(g_footprint.page_bytes_touched);
    snapshot.page_bytes_free_dirty = load(g_footprint.page_bytes_free_dirty);
    snapshot.cached_segment_bytes_dirty = load(g_footprint.cached_segment_bytes_dirty);
    snapshot.purge_backlog_bytes = purge_backlog_bytes();
    const HeapCountTotals totals = sum_heap_counts();
    snapshot.live_block_bytes = totals.live_block_bytes;
    snapshot.large_bytes_in_use = g_large_counters.bytes_in_use.load(std::memory_order_relaxed);
    snapshot.large_span_page_bytes = load(g_large_footprint.span_page_bytes);
    snapshot.large_free_bytes_dirty = load(g_large_footprint.free_bytes_dirty);
    snapshot.huge_cached_bytes = load(g_large_footprint.huge_cached_bytes);
    snapshot.segments = g_segment_counters.segments.load(std::memory_order_relaxed);
    snapshot.heaps_in_use = totals.heaps_in_use;
    g_peak = snapshot;
    census_own_heap(g_peak_classes);
  }
  g_snapshot_busy.store(false, std::memory_order_release);
}

}  // namespace usgc::alloc
