// tools/usgc_top/model.cpp — sampling, rates, derived figures and sorting (see model.hpp).
#include "tools/usgc_top/model.hpp"

#include <algorithm>
#include <cstring>

#include "kernel_iface/process_info.hpp"
#include "tools/usgc_top/text.hpp"

namespace usgc::top {

// The collections GC/s counts: private and shared (explicit ones are a subset of these; minor
// shared collections are reserved and counted in neither).
uint64_t rated_collections(const usgc_stats_block& block) {
  return block.collections[USGC_STATS_GC_PRIVATE] + block.collections[USGC_STATS_GC_SHARED];
}

RatedCounters rated_counters_of(const usgc_stats_block& block) {
  return {block.malloc_count, rated_collections(block), block.barrier_slow_paths,
          block.publications};
}

// The GC heap in use: the sum over the ownership classes (usgc/object.h, usgc_ownership).
uint64_t gc_heap_bytes_in_use(const usgc_stats_block& block) {
  uint64_t total = 0;
  for (uint64_t bytes : block.gc_bytes_in_use) total += bytes;
  return total;
}

// The process's heap in use: the malloc heap and the GC heap (separate mappings, no overlap).
uint64_t heap_bytes_in_use(const usgc_stats_block& block) {
  return block.bytes_in_use + gc_heap_bytes_in_use(block);
}

// (now - before) / seconds, or -1 if the counter went backwards (it never should).
double rate_between(uint64_t before, uint64_t now, double seconds) {
  return now >= before ? static_cast<double>(now - before) / seconds : -1;
}

uint64_t total_collections(const usgc_stats_block& block) {
  uint64_t total = 0;
  for (uint64_t count : block.collections) total += count;
  return total;
}

// The GC exists for this process once it reports a collection; until then its columns are "-".
bool has_gc_figures(const usgc_stats_block& block) {
  return total_collections(block) != 0;
}

// The process has used the GC heap (allocated in it or collected); else its GC heap shows "-".
bool uses_gc_heap(const usgc_stats_block& block) {
  return has_gc_figures(block) || gc_heap_bytes_in_use(block) != 0 || block.gc_bytes_committed != 0;
}

// The worst pause of either kind.
uint64_t worst_pause_ns(const usgc_stats_block& block) {
  return std::max(block.max_pause_ns, block.private_max_pause_ns);
}

uint64_t histogram_total(const uint64_t* buckets) {
  uint64_t total = 0;
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS; ++i) total += buckets[i];
  return total;
}

uint64_t total_stops(const usgc_stats_block& block) {
  return histogram_total(block.time_to_safepoint_histogram);
}

// The bucket of a histogram (usgc/stats_block.h: pause and time-to-safepoint buckets) that holds
// the given quantile, or -1 when the histogram is empty.
int histogram_quantile_bucket(const uint64_t* buckets, double quantile) {
  uint64_t total = histogram_total(buckets);
  if (total == 0) return -1;
  uint64_t rank = static_cast<uint64_t>(quantile * static_cast<double>(total - 1)) + 1;
  uint64_t seen = 0;
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS; ++i) {
    seen += buckets[i];
    if (seen >= rank) return i;
  }
  return -1;
}

// The bound of a bucket in nanoseconds: its upper bound (durations are below it), except for the
// last bucket, which has none: its lower bound (durations are at or above it).
uint64_t histogram_bucket_bound_ns(int bucket) {
  if (bucket == USGC_STATS_HISTOGRAM_BUCKETS - 1) return (1ull << (bucket - 1)) * 1000;
  return (1ull << bucket) * 1000;
}

const char* sort_key_name(SortKey key) {
  switch (key) {
    case SortKey::kMemory:
      return "memory";
    case SortKey::kAllocRate:
      return "alloc rate";
    case SortKey::kPid:
      return "pid";
    case SortKey::kCommand:
      return "command";
  }
  return "?";
}

Snapshot Sampler::sample() {
  Snapshot snapshot;
  ScanOutput output{&snapshot};
  kernel::Status status =
      alloc::scan_stats_blocks(kernel::current_user_id(), true, &Sampler::visit, &output);
  if (!status.ok()) {
    snapshot.notes.push_back(std::string("cannot list ") + USGC_STATS_BLOCK_DIRECTORY + ": " +
                             std::strerror(status.error()));
  }
  std::map<int, RateSample> next;
  for (Process& process : snapshot.processes) {
    const usgc_stats_block& block = process.block;
    RateSample current{block.start_time_ticks, block.update_monotonic_ns, rated_counters_of(block),
                       Rates{}};
    auto previous = previous_.find(block.pid);
    if (previous != previous_.end() &&
        previous->second.start_time_ticks == block.start_time_ticks) {
      const RateSample& before = previous->second;
      if (block.update_monotonic_ns > before.update_monotonic_ns) {
        double seconds =
            static_cast<double>(block.update_monotonic_ns - before.update_monotonic_ns) / 1e9;
        const RatedCounters& was = before.counters;
        const RatedCounters& now = current.counters;
        current.rates.allocations_per_s = rate_between(was.allocations, now.allocations, seconds);
        current.rates.collections_per_s = rate_between(was.collections, now.collections, seconds);
        current.rates.barrier_slow_paths_per_s =
            rate_between(was.barrier_slow_paths, now.barrier_slow_paths, seconds);
        current.rates.publications_per_s =
            rate_between(was.publications, now.publications, seconds);
      } else {
        // No new update in between: the process has not refilled since (idle, or allocating
        // only from warm pages). Keep the figures of the last interval it published.
        current = before;
      }
    }
    process.rates = current.rates;
    next[block.pid] = current;
  }
  previous_ = std::move(next);
  return snapshot;
}

void Sampler::visit(const alloc::StatsBlockEntry& entry, void* context) {
  Snapshot* snapshot = static_cast<ScanOutput*>(context)->snapshot;
  // The name is anyone's choice (any user may create files in /dev/shm): escaped.
  std::string path = std::string(USGC_STATS_BLOCK_DIRECTORY) + "/" +
                     printable_text(entry.name, strnlen(entry.name, sizeof(entry.name)));
  if (alloc::writer_state_is_stale(entry.writer)) {
    snapshot->notes.push_back(
        std::string(entry.removed ? "removed stale " : "stale (could not remove) ") + path + " (" +
        alloc::writer_state_text(entry.writer) + ")");
    return;
  }
  if (entry.read.error != alloc::StatsReadError::kNone) {
    std::string note = "skipped " + path + ": " + alloc::stats_read_error_text(entry.read.error);
    switch (entry.read.error) {
      case alloc::StatsReadError::kBadVersion:
        note += " " + std::to_string(entry.read.detail) + " (this usgc-top reads version " +
                std::to_string(USGC_STATS_BLOCK_VERSION) + ")";
        break;
      case alloc::StatsReadError::kShortFile:
        note += " (" + std::to_string(entry.read.detail) + " bytes, want " +
                std::to_string(sizeof(usgc_stats_block)) + ")";
        break;
      case alloc::StatsReadError::kOpenFailed:
      case alloc::StatsReadError::kReadFailed:
        note += std::string(" (") + std::strerror(static_cast<int>(entry.read.detail)) + ")";
        break;
      default:
        break;
    }
    snapshot->notes.push_back(note);
    return;
  }
  snapshot->processes.push_back(Process{entry.block, Rates{}});
}

void sort_processes(std::vector<Process>& processes, SortKey key) {
  std::stable_sort(processes.begin(), processes.end(), [key](const Process& a, const Process& b) {
    switch (key) {
      case SortKey::kMemory:
        if (heap_bytes_in_use(a.block) != heap_bytes_in_use(b.block)) {
          return heap_bytes_in_use(a.block) > heap_bytes_in_use(b.block);
        }
        break;
      case SortKey::kAllocRate:
        if (a.rates.allocations_per_s != b.rates.allocations_per_s) {
          return a.rates.allocations_per_s > b.rates.allocations_per_s;
        }
        break;
      case SortKey::kCommand: {
        int order = std::strncmp(a.block.command, b.block.command, sizeof(a.block.command));
        if (order != 0) return order < 0;
        break;
      }
      case SortKey::kPid:
        break;
    }
    return a.block.pid < b.block.pid;
  });
}

}  // namespace usgc::top
