// tools/usgc_top/model.hpp — usgc-top's model: the processes of one sample of the statistics
// blocks (alloc/stats_reader.hpp does the trusted reading), their rates between two samples, the
// figures derived from a block, and the sort orders. No terminal output here.
//
// Invariants: a Process only ever holds a block the reader accepted (the calling user's, well
// formed); every note is built from escaped text (printable_text) and the reader's fixed texts.
// Rates are taken between two updates of the same process (pid and start time), on the writer's
// CLOCK_MONOTONIC. Single-threaded (the tool's main thread); not on any hot path.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "alloc/stats_reader.hpp"
#include "usgc/stats_block.h"

namespace usgc::top {

// Per-second rates of a process's counters between two updates of its block; -1: not known yet
// (one sample so far).
struct Rates {
  double allocations_per_s = -1;         // malloc_count
  double collections_per_s = -1;         // collections[PRIVATE] + collections[SHARED]
  double barrier_slow_paths_per_s = -1;  // barrier_slow_paths
  double publications_per_s = -1;        // publications
};

struct Process {
  usgc_stats_block block;
  Rates rates;
};

struct Snapshot {
  std::vector<Process> processes;
  std::vector<std::string> notes;
};

// The counters behind Rates, in the same order.
struct RatedCounters {
  uint64_t allocations;
  uint64_t collections;
  uint64_t barrier_slow_paths;
  uint64_t publications;
};

// Previous figures per process, for rates: keyed by pid, checked by start time.
struct RateSample {
  uint64_t start_time_ticks;
  uint64_t update_monotonic_ns;
  RatedCounters counters;
  Rates rates;
};

// ---- figures derived from one block ----
// The collections GC/s counts (private and shared).
uint64_t rated_collections(const usgc_stats_block& block);
RatedCounters rated_counters_of(const usgc_stats_block& block);
// The GC heap in use: the sum over the ownership classes (usgc/object.h, usgc_ownership).
uint64_t gc_heap_bytes_in_use(const usgc_stats_block& block);
// The process's heap in use: the malloc heap and the GC heap (separate mappings, no overlap).
uint64_t heap_bytes_in_use(const usgc_stats_block& block);
// (now - before) / seconds, or -1 if the counter went backwards (it never should).
double rate_between(uint64_t before, uint64_t now, double seconds);
uint64_t total_collections(const usgc_stats_block& block);
// The GC exists for this process once it reports a collection; until then its columns are "-".
bool has_gc_figures(const usgc_stats_block& block);
// The process has used the GC heap (allocated in it or collected); else its GC heap shows "-".
bool uses_gc_heap(const usgc_stats_block& block);
// The worst pause of either kind.
uint64_t worst_pause_ns(const usgc_stats_block& block);
uint64_t histogram_total(const uint64_t* buckets);
uint64_t total_stops(const usgc_stats_block& block);
// The bucket of a histogram (usgc/stats_block.h: pause and time-to-safepoint buckets) that holds
// the given quantile, or -1 when the histogram is empty.
int histogram_quantile_bucket(const uint64_t* buckets, double quantile);
// The bound of a bucket in nanoseconds: its upper bound (durations are below it), except for the
// last bucket, which has none: its lower bound (durations are at or above it).
uint64_t histogram_bucket_bound_ns(int bucket);

// ---- sorting ----
enum class SortKey { kMemory, kAllocRate, kPid, kCommand };

const char* sort_key_name(SortKey key);
void sort_processes(std::vector<Process>& processes, SortKey key);

// ---- sampling ----
// Scans /dev/shm for the calling user's blocks; keeps the previous figures of each process for
// its rates.
class Sampler {
 public:
  Snapshot sample();

 private:
  struct ScanOutput {
    Snapshot* snapshot;
  };
  static void visit(const alloc::StatsBlockEntry& entry, void* context);

  std::map<int, RateSample> previous_;
};

}  // namespace usgc::top
