// bench/gc_footprint.cpp — the GC heap's resident memory after it grew and shrank: does a private
// heap that peaked at N MiB give its pages back once its blocks stayed free for the decay
// (USGC_DECAY_MS, gc/block.hpp "returning free blocks' pages")?
//
// One goroutine builds a private list of --mib MiB of 32-byte nodes, drops it and runs a private
// collection (its blocks go back to the pool), then parks for --wait-ms (default 1000, four times
// the default decay) and reads its RSS (/proc/self/statm) and the GC pool's committed bytes
// (usgc_gc_get_node_stats) at three moments: at the peak, right after the collection, after the
// wait. Public API only, so the same source builds against any usgc.
//
// Output:
//   RESULT suite=gc_footprint case=grow<N>-shrink impl=usgc metric=rss_peak_kib|rss_dropped_kib|
//          rss_after_wait_kib|gc_committed_peak_kib|gc_committed_after_wait_kib value=... unit=KiB
//   RESULT ... metric=rss_after_wait_vs_peak value=<after wait / peak> unit=ratio
// Usage: gc_footprint [--mib=N] [--wait-ms=N]
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "usgc/usgc.h"

namespace {

struct ListNode {
  void* next;
  int64_t value;
};  // with its 8-byte header: a 32-byte slot (24 rounds up)

usgc_type_id g_type = 0;
long g_mib = 128;
long g_wait_ms = 1000;

struct Moment {
  uint64_t rss_kib = 0;
  uint64_t committed_kib = 0;
};
Moment g_peak;
Moment g_dropped;
Moment g_after_wait;

uint64_t rss_kib() {
  unsigned long size = 0;
  unsigned long resident = 0;
  FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return 0;
  if (std::fscanf(statm, "%lu %lu", &size, &resident) != 2) resident = 0;
  std::fclose(statm);
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) / 1024;
}

uint64_t gc_committed_kib() {
  usgc_gc_node_stats nodes[8];
  uint32_t count = 0;
  if (usgc_gc_get_node_stats(nodes, 8, &count) != 0) return 0;
  uint64_t bytes = 0;
  for (uint32_t node = 0; node < count && node < 8; ++node) bytes += nodes[node].bytes_committed;
  return bytes / 1024;
}

Moment now() {
  return Moment{rss_kib(), gc_committed_kib()};
}

void body(void*) {
  USGC_ROOTS(roots, 2);
  const long nodes = g_mib * 1024 * 1024 / 32;
  for (long i = 0; i < nodes; ++i) {
    auto* node = static_cast<ListNode*>(usgc_alloc(g_type, USGC_GOROUTINE_PRIVATE));
    if (node == nullptr) {
      std::fprintf(stderr, "gc_footprint: usgc_alloc failed: %s\n", usgc_last_error());
      std::exit(1);
    }
    roots[1] = node;
    node->value = i;
    usgc_write(node, &node->next, roots[0]);
    roots[0] = node;
  }
  g_peak = now();
  roots[0] = roots[1] = nullptr;
  usgc_gc_collect(USGC_GC_PRIVATE);
  g_dropped = now();
  usgc_sleep_ns(static_cast<uint64_t>(g_wait_ms) * 1000 * 1000);
  g_after_wait = now();
}

void result(const char* metric, uint64_t kib) {
  std::printf("RESULT suite=gc_footprint case=grow%ld-shrink impl=usgc metric=%s value=%" PRIu64
              " unit=KiB\n",
              g_mib, metric, kib);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--mib=", 6) == 0) {
      g_mib = std::strtol(argv[i] + 6, nullptr, 10);
    } else if (std::strncmp(argv[i], "--wait-ms=", 10) == 0) {
      g_wait_ms = std::strtol(argv[i] + 10, nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: gc_footprint [--mib=N] [--wait-ms=N]\n");
      return 2;
    }
  }
  if (g_mib < 1 || g_wait_ms < 0) {
    std::fprintf(stderr, "gc_footprint: --mib must be >= 1 and --wait-ms >= 0\n");
    return 2;
  }
  size_t offsets[] = {0};
  usgc_type_info info = {"ListNode", USGC_KIND_OBJECT, sizeof(ListNode), offsets, 1};
  g_type = usgc_register_type(&info);
  usgc_config config;
  if (g_type == 0 || usgc_config_from_environment(&config) != 0 || usgc_init(&config) != 0 ||
      usgc_run_main(body, nullptr) != 0 || usgc_shutdown() != 0) {
    std::fprintf(stderr, "gc_footprint: %s\n", usgc_last_error());
    return 1;
  }
  result("rss_peak_kib", g_peak.rss_kib);
  result("rss_dropped_kib", g_dropped.rss_kib);
  result("rss_after_wait_kib", g_after_wait.rss_kib);
  result("gc_committed_peak_kib", g_peak.committed_kib);
  result("gc_committed_after_wait_kib", g_after_wait.committed_kib);
  std::printf(
      "RESULT suite=gc_footprint case=grow%ld-shrink impl=usgc metric=rss_after_wait_vs_peak"
      " value=%.3f unit=ratio\n",
      g_mib,
      g_peak.rss_kib != 0
          ? static_cast<double>(g_after_wait.rss_kib) / static_cast<double>(g_peak.rss_kib)
          : 0.0);
  return 0;
}
