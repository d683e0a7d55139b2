// tools/usgc_top/json.cpp — the --json output (see json.hpp).
#include "tools/usgc_top/json.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>

#include "tools/usgc_top/views.hpp"
#include "usgc/object.h"

namespace usgc::top {

namespace {

std::string json_escape(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// JSON pieces; each prints `"name": value, `.
void print_json_rate(const char* name, double rate) {
  if (rate >= 0) {
    std::printf("\"%s\": %.1f, ", name, rate);
  } else {
    std::printf("\"%s\": null, ", name);
  }
}

void print_json_histogram(const char* name, const uint64_t* buckets) {
  std::printf("\"%s\": [", name);
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS; ++i)
    std::printf("%s%" PRIu64, i ? ", " : "", buckets[i]);
  std::printf("], ");
}

// The bucket bound of a quantile in ns (see histogram_bucket_bound_ns), null when empty.
void print_json_quantile(const char* name, const uint64_t* buckets, double quantile) {
  int bucket = histogram_quantile_bucket(buckets, quantile);
  if (bucket < 0) {
    std::printf("\"%s\": null, ", name);
  } else {
    std::printf("\"%s\": %" PRIu64 ", ", name, histogram_bucket_bound_ns(bucket));
  }
}

// A figure that is null until the process reports a collection (like the existing GC keys).
void print_json_gc_figure(const char* name, bool known, uint64_t value) {
  if (known) {
    std::printf("\"%s\": %" PRIu64 ", ", name, value);
  } else {
    std::printf("\"%s\": null, ", name);
  }
}

void print_json_gc_fields(const Process& process) {
  const usgc_stats_block& b = process.block;
  bool gc = has_gc_figures(b);
  std::printf("\"gc_bytes_in_use\": {\"stack_local\": %" PRIu64 ", \"private\": %" PRIu64
              ", \"shared\": %" PRIu64 ", \"global\": %" PRIu64 "}, ",
              b.gc_bytes_in_use[USGC_STACK_LOCAL], b.gc_bytes_in_use[USGC_GOROUTINE_PRIVATE],
              b.gc_bytes_in_use[USGC_GOROUTINE_SHARED], b.gc_bytes_in_use[USGC_GLOBAL_SHARED]);
  std::printf("\"gc_heap_bytes_in_use\": %" PRIu64 ", \"heap_bytes_in_use\": %" PRIu64
              ", \"gc_bytes_committed\": %" PRIu64 ", ",
              gc_heap_bytes_in_use(b), heap_bytes_in_use(b), b.gc_bytes_committed);
  std::printf("\"collections_by_kind\": ");
  if (gc) {
    std::printf("{\"private\": %" PRIu64 ", \"shared\": %" PRIu64 ", \"shared_minor\": %" PRIu64
                ", \"explicit\": %" PRIu64 "}, ",
                b.collections[USGC_STATS_GC_PRIVATE], b.collections[USGC_STATS_GC_SHARED],
                b.collections[USGC_STATS_GC_SHARED_MINOR], b.collections[USGC_STATS_GC_EXPLICIT]);
  } else {
    std::printf("null, ");
  }
  print_json_rate("collections_per_s", gc ? process.rates.collections_per_s : -1);
  print_json_gc_figure("gc_time_ns", gc, b.gc_time_ns);
  print_json_gc_figure("private_max_pause_ns", gc, b.private_max_pause_ns);
  print_json_gc_figure("worst_pause_ns", gc, worst_pause_ns(b));
  print_json_histogram("private_pause_histogram_us", b.private_pause_histogram);
  print_json_histogram("pause_histogram_us", b.pause_histogram);
  print_json_quantile("private_pause_p50_ns", b.private_pause_histogram, 0.5);
  print_json_quantile("private_pause_p99_ns", b.private_pause_histogram, 0.99);
  print_json_quantile("shared_pause_p50_ns", b.pause_histogram, 0.5);
  print_json_quantile("shared_pause_p99_ns", b.pause_histogram, 0.99);
  std::printf("\"barrier_slow_paths\": %" PRIu64 ", ", b.barrier_slow_paths);
  print_json_rate("barrier_slow_paths_per_s", process.rates.barrier_slow_paths_per_s);
  std::printf("\"publications\": %" PRIu64 ", ", b.publications);
  print_json_rate("publications_per_s", process.rates.publications_per_s);
  std::printf("\"objects_published\": %" PRIu64 ", ", b.objects_published);
}

}  // namespace

void print_json(const Snapshot& snapshot) {
  std::printf("[");
  bool first = true;
  for (const Process& process : snapshot.processes) {
    const usgc_stats_block& b = process.block;
    std::printf("%s\n  {\"pid\": %d, \"uid\": %u, \"command\": \"%s\", ", first ? "" : ",", b.pid,
                b.uid, json_escape(command_of(b)).c_str());
    first = false;
    std::printf("\"start_time_unix_ns\": %" PRIu64 ", \"update_time_unix_ns\": %" PRIu64
                ", \"publish_count\": %" PRIu64 ", ",
                b.start_time_unix_ns, b.update_time_unix_ns, b.publish_count);
    std::printf("\"bytes_reserved\": %" PRIu64 ", \"bytes_committed\": %" PRIu64
                ", \"bytes_in_use\": %" PRIu64 ", \"bytes_large_in_use\": %" PRIu64
                ", \"rss_bytes\": %" PRIu64 ", ",
                b.bytes_reserved, b.bytes_committed, b.bytes_in_use, b.bytes_large_in_use,
                b.rss_bytes);
    std::printf("\"malloc_count\": %" PRIu64 ", \"free_count\": %" PRIu64
                ", \"remote_free_count\": %" PRIu64 ", ",
                b.malloc_count, b.free_count, b.remote_free_count);
    print_json_rate("alloc_rate_per_s", process.rates.allocations_per_s);
    std::printf("\"segments\": %" PRIu64 ", \"threads\": %" PRIu64
                ", \"decommits_io_uring\": %" PRIu64 ", \"decommits_madvise\": %" PRIu64
                ", \"bytes_decommitted\": %" PRIu64 ", \"numa_nodes\": %u, ",
                b.segments, b.threads, b.decommits_io_uring, b.decommits_madvise,
                b.bytes_decommitted, b.numa_nodes);
    std::printf("\"node_bytes_reserved\": ");
    if ((b.flags & USGC_STATS_FLAG_NODE_BYTES) == 0) {
      std::printf("null, ");
    } else {
      uint32_t shown =
          std::min<uint32_t>(std::max<uint32_t>(b.numa_nodes, 1), USGC_STATS_MAX_NODES);
      std::printf("[");
      for (uint32_t node = 0; node < shown; ++node)
        std::printf("%s%" PRIu64, node ? ", " : "", b.node_bytes_reserved[node]);
      std::printf("], ");
    }
    print_json_histogram("time_to_safepoint_histogram_us", b.time_to_safepoint_histogram);
    print_json_gc_fields(process);
    if (has_gc_figures(b)) {
      std::printf("\"goroutines\": %" PRIu64 ", \"collections\": [%" PRIu64 ", %" PRIu64
                  ", %" PRIu64 ", %" PRIu64 "], \"last_pause_ns\": %" PRIu64
                  ", \"max_pause_ns\": %" PRIu64 "}",
                  b.goroutines, b.collections[0], b.collections[1], b.collections[2],
                  b.collections[3], b.last_pause_ns, b.max_pause_ns);
    } else {
      std::printf("\"goroutines\": %" PRIu64
                  ", \"collections\": null, \"last_pause_ns\": null, \"max_pause_ns\": null}",
                  b.goroutines);
    }
  }
  std::printf("%s]\n", first ? "" : "\n");
}

}  // namespace usgc::top
