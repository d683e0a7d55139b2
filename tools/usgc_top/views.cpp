// tools/usgc_top/views.cpp — the table row and the detail view (see views.hpp).
#include "tools/usgc_top/views.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "tools/usgc_top/text.hpp"
#include "usgc/object.h"

namespace usgc::top {

// The command name of the block's process (its comm, up to 15 bytes, chosen by that process),
// escaped with printable_text.
std::string command_of(const usgc_stats_block& block) {
  return printable_text(block.command, strnlen(block.command, sizeof(block.command)));
}

// The bound of the bucket holding the given quantile ("< 1 us", "< 2^i us", ">= 262.14ms"), or "-".
std::string histogram_quantile_text(const uint64_t* buckets, double quantile) {
  int bucket = histogram_quantile_bucket(buckets, quantile);
  if (bucket < 0) return "-";
  if (bucket == 0) return "< 1 us";
  std::string bound = human_duration_ns(histogram_bucket_bound_ns(bucket));
  return (bucket == USGC_STATS_HISTOGRAM_BUCKETS - 1 ? ">= " : "< ") + bound;
}

// "p50 / p99 / max" of a pause histogram and its exact maximum, or "-" when it is empty.
std::string pause_summary_text(const uint64_t* buckets, uint64_t max_pause_ns) {
  uint64_t pauses = histogram_total(buckets);
  if (pauses == 0) return "-";
  return histogram_quantile_text(buckets, 0.5) + " / " + histogram_quantile_text(buckets, 0.99) +
         " / " + human_duration_ns(max_pause_ns) + " (" + std::to_string(pauses) + " pauses)";
}

std::string gc_rate_text(const Process& process) {
  if (!has_gc_figures(process.block)) return "-";
  return human_rate(process.rates.collections_per_s);
}

std::string row_header() {
  char text[200];
  std::snprintf(text, sizeof(text), "%7s %-15s %9s %9s %9s %9s %9s %7s %9s %6s %8s %8s", "PID",
                "COMMAND", "IN USE", "GC HEAP", "COMMITTED", "RSS", "ALLOC/s", "THREADS",
                "DECOMMITS", "GC/s", "PAUSE", "MAXPAUSE");
  return text;
}

std::string row_text(const Process& process) {
  const usgc_stats_block& b = process.block;
  char text[240];
  bool gc = has_gc_figures(b);
  std::snprintf(text, sizeof(text),
                "%7d %-15s %9s %9s %9s %9s %9s %7" PRIu64 " %9" PRIu64 " %6s %8s %8s", b.pid,
                command_of(b).c_str(), human_bytes(b.bytes_in_use).c_str(),
                uses_gc_heap(b) ? human_bytes(gc_heap_bytes_in_use(b)).c_str() : "-",
                human_bytes(b.bytes_committed).c_str(), human_bytes(b.rss_bytes).c_str(),
                human_rate(process.rates.allocations_per_s).c_str(), b.threads,
                b.decommits_io_uring + b.decommits_madvise, gc_rate_text(process).c_str(),
                gc ? human_duration_ns(b.last_pause_ns).c_str() : "-",
                gc ? human_duration_ns(worst_pause_ns(b)).c_str() : "-");
  return text;
}

std::string age_text(uint64_t unix_ns) {
  if (unix_ns == 0) return "-";
  auto now_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  if (now_ns < unix_ns) return "0.0s ago";
  char text[48];
  double seconds = static_cast<double>(now_ns - unix_ns) / 1e9;
  std::snprintf(text, sizeof(text), "%.1fs ago", seconds);
  return text;
}

// Lines of the detail view (also printed by --once -p PID). Every piece of text from the block is
// a number or went through printable_text (command_of).
std::vector<std::string> detail_lines(const Process& process) {
  const usgc_stats_block& b = process.block;
  std::vector<std::string> lines;
  auto add = [&lines](const char* label, const std::string& value) {
    char text[200];
    std::snprintf(text, sizeof(text), "  %-26s %s", label, value.c_str());
    lines.push_back(text);
  };
  auto number = [](uint64_t value) { return std::to_string(value); };
  auto per_second = [](double rate) { return human_rate(rate) + (rate >= 0 ? "/s" : ""); };
  lines.push_back("process " + std::to_string(b.pid) + " (" + command_of(b) + "), uid " +
                  std::to_string(b.uid));
  add("started", age_text(b.start_time_unix_ns));
  add("figures taken", age_text(b.update_time_unix_ns) + " (update " + number(b.publish_count) +
                           ", every " + number(b.publish_interval_ms) + " ms while allocating)");
  lines.push_back("malloc heap");
  add("bytes reserved", human_bytes(b.bytes_reserved) + " (" + number(b.bytes_reserved) + ")");
  add("bytes committed", human_bytes(b.bytes_committed) + " (" + number(b.bytes_committed) + ")");
  add("bytes in use", human_bytes(b.bytes_in_use) + " (" + number(b.bytes_in_use) + ")");
  uint64_t small =
      b.bytes_in_use >= b.bytes_large_in_use ? b.bytes_in_use - b.bytes_large_in_use : 0;
  add("  small and medium", human_bytes(small));
  add("  large", human_bytes(b.bytes_large_in_use));
  add("resident (RSS)", human_bytes(b.rss_bytes));
  add("segments", number(b.segments));
  lines.push_back("allocation");
  add("mallocs", number(b.malloc_count));
  add("frees", number(b.free_count) + " (remote " + number(b.remote_free_count) + ")");
  add("allocation rate", per_second(process.rates.allocations_per_s));
  add("threads with a heap", number(b.threads));
  lines.push_back("return to the OS");
  add("decommits io_uring", number(b.decommits_io_uring));
  add("decommits (process_)madvise", number(b.decommits_madvise));
  add("bytes decommitted", human_bytes(b.bytes_decommitted));
  lines.push_back("NUMA (" + number(b.numa_nodes) + (b.numa_nodes == 1 ? " node)" : " nodes)"));
  uint32_t shown = std::min<uint32_t>(std::max<uint32_t>(b.numa_nodes, 1), USGC_STATS_MAX_NODES);
  for (uint32_t node = 0; node < shown; ++node) {
    std::string label = "node " + std::to_string(node) + " reserved";
    add(label.c_str(), (b.flags & USGC_STATS_FLAG_NODE_BYTES) != 0
                           ? human_bytes(b.node_bytes_reserved[node])
                           : std::string("unknown"));
  }
  lines.push_back("GC heap");
  if (!uses_gc_heap(b)) {
    add("bytes in use", "- (no GC objects: the goroutine runtime's collector is not in use)");
  } else {
    uint64_t gc_in_use = gc_heap_bytes_in_use(b);
    add("bytes in use", human_bytes(gc_in_use) + " (" + number(gc_in_use) + ")");
    add("  stack-local", human_bytes(b.gc_bytes_in_use[USGC_STACK_LOCAL]));
    add("  goroutine-private", human_bytes(b.gc_bytes_in_use[USGC_GOROUTINE_PRIVATE]));
    add("  goroutine-shared", human_bytes(b.gc_bytes_in_use[USGC_GOROUTINE_SHARED]));
    add("  global", human_bytes(b.gc_bytes_in_use[USGC_GLOBAL_SHARED]));
    add("GC bytes committed",
        human_bytes(b.gc_bytes_committed) + " (" + number(b.gc_bytes_committed) + ")");
    for (uint32_t node = 0; node < shown; ++node) {  // beside the allocator's per-node figures
      std::string label = "GC node " + std::to_string(node) + " committed/in use";
      add(label.c_str(), human_bytes(uint64_t{b.gc_node_committed_kib[node]} * 1024) + " / " +
                             human_bytes(uint64_t{b.gc_node_in_use_kib[node]} * 1024));
    }
    add("malloc + GC in use", human_bytes(heap_bytes_in_use(b)));
    add("barrier slow paths", number(b.barrier_slow_paths) + " (" +
                                  per_second(process.rates.barrier_slow_paths_per_s) + ")");
    add("publications", number(b.publications) + " (" +
                            per_second(process.rates.publications_per_s) + "), " +
                            number(b.objects_published) + " objects published");
  }
  lines.push_back("runtime and GC");
  bool gc = has_gc_figures(b);
  add("goroutines", gc || b.goroutines != 0 ? number(b.goroutines) : "-");
  add("collections", gc ? number(b.collections[USGC_STATS_GC_PRIVATE]) + " private, " +
                              number(b.collections[USGC_STATS_GC_SHARED]) + " shared, " +
                              number(b.collections[USGC_STATS_GC_SHARED_MINOR]) +
                              " shared minor; " + number(b.collections[USGC_STATS_GC_EXPLICIT]) +
                              " of them explicit"
                        : "-");
  add("collections per second", gc ? per_second(process.rates.collections_per_s) : "-");
  add("last / worst pause",
      gc ? human_duration_ns(b.last_pause_ns) + " / " + human_duration_ns(worst_pause_ns(b)) : "-");
  add("private pauses p50/p99/max",
      pause_summary_text(b.private_pause_histogram, b.private_max_pause_ns));
  add("shared pauses p50/p99/max", pause_summary_text(b.pause_histogram, b.max_pause_ns));
  add("time in GC", gc ? human_duration_ns(b.gc_time_ns) : "-");
  uint64_t stops = total_stops(b);
  add("stops of the world", stops != 0 ? number(stops) : "-");
  add("time to safepoint p50/p99",
      stops != 0 ? histogram_quantile_text(b.time_to_safepoint_histogram, 0.5) + " / " +
                       histogram_quantile_text(b.time_to_safepoint_histogram, 0.99)
                 : "-");
  return lines;
}

// A JSON string body. The callers pass printable_text output, so only '"' and '\\' need escaping;

}  // namespace usgc::top
