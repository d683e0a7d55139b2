// million_goroutines: a million parked goroutines — what each costs to start and keep, whether
// their memory comes back when they end, and whether stops grow with them. suite=million, run by
// bench/run_runtime.sh beside bench/go/million.go (the same work in Go), one process per case.
//
// Cases (--case picks one):
//   parked  N goroutines (default 1 000 000) each blocked on a receive from one unbuffered
//           channel: metric=ns_per_goroutine (from the first usgc_go until all N have parked, / N)
//           and rss_bytes_per_goroutine ((RSS parked - RSS before) / N, /proc/self/statm),
//           minor_faults_per_goroutine (getrusage; a page populated ahead in a batch counts as a
//           fault there too), page_table_bytes_per_goroutine (VmPTE) and cpu_ns_per_goroutine
//           (the process's user + system CPU time over the same interval, / N).
//           Then, with the N parked (impl=usgc) and before spawning them (impl=usgc-0-parked,
//           the same process): 200 usgc_stop_the_world from the main goroutine, metric=ttsp_p50,
//           ttsp_p99, ttsp_max (us), and 5 shared collections, metric=shared_pause_max (us).
//   burst   N goroutines (default 500 000) park as above, the channel closes, all end; 500 ms
//           later: metric=rss_growth_percent (RSS then - RSS before, in % of RSS before) and
//           rss_after_burst_bytes (RSS then - RSS before), with rss_peak_bytes_per_goroutine.
// Output: RESULT lines (bench/run_all.sh's format); ERROR on a failed call (exit status 1).
// Usage: million_goroutines --case parked|burst [--goroutines N] [--procs P]
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace {

using usgc::bench::now_ns;

[[noreturn]] void fail(const char* what, int error) {
  std::printf("ERROR suite=million impl=usgc reason=\"%s failed: %s\"\n", what,
              std::strerror(error));
  std::fflush(stdout);
  std::exit(1);
}

int64_t resident_bytes() {
  FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) fail("open /proc/self/statm", errno);
  long long size_pages = 0;
  long long resident_pages = 0;
  int fields = std::fscanf(statm, "%lld %lld", &size_pages, &resident_pages);
  std::fclose(statm);
  if (fields != 2) fail("read /proc/self/statm", EIO);
  return resident_pages * 4096;
}

// Minor page faults of the process so far (getrusage).
int64_t minor_faults() {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) fail("getrusage", errno);
  return usage.ru_minflt;
}

// CPU time of the whole process so far (user + system, getrusage), in nanoseconds: on a loaded
// machine the wall-clock spawn time mostly measures the other tenants; this does not.
int64_t process_cpu_ns() {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) fail("getrusage", errno);
  return (static_cast<int64_t>(usage.ru_utime.tv_sec) + usage.ru_stime.tv_sec) * 1000000000 +
         (static_cast<int64_t>(usage.ru_utime.tv_usec) + usage.ru_stime.tv_usec) * 1000;
}

// The process's page tables (VmPTE of /proc/self/status), in bytes: a stack's first touched page
// also costs its share of a page-table page, which depends on how far apart stacks are.
int64_t page_table_bytes() {
  FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) fail("open /proc/self/status", errno);
  char line[256];
  long long kib = -1;
  while (std::fgets(line, sizeof line, status) != nullptr) {
    if (std::sscanf(line, "VmPTE: %lld kB", &kib) == 1) break;
  }
  std::fclose(status);
  if (kib < 0) fail("find VmPTE in /proc/self/status", EIO);
  return kib * 1024;
}

struct Options {
  std::string case_name = "parked";
  uint64_t goroutines = 0;
  uint32_t procs = 0;
};
Options g_options;

struct Gate {
  usgc_chan* chan = nullptr;
  std::atomic<uint64_t> parked{0};
};
Gate g_gate;

void parked_goroutine(void*) {
  g_gate.parked.fetch_add(1, std::memory_order_relaxed);
  int value = 0;
  bool ok = true;
  usgc_chan_recv(g_gate.chan, &value, &ok);
}

void result(const char* case_name, const char* impl, const char* metric, double value,
            const char* unit) {
  std::printf("RESULT suite=million case=%s impl=%s metric=%s value=%.1f unit=%s\n", case_name,
              impl, metric, value, unit);
  std::fflush(stdout);
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[index];
}

void measure_stops(const char* impl) {
  std::vector<double> ttsp_us;
  for (int i = 0; i < 200; ++i) {
    usgc_stop_info info;
    int error = usgc_stop_the_world(&info);
    if (error != 0) fail("usgc_stop_the_world", error);
    error = usgc_start_the_world();
    if (error != 0) fail("usgc_start_the_world", error);
    ttsp_us.push_back(static_cast<double>(info.time_to_safepoint_ns) / 1000.0);
    usgc_sleep_ns(200 * 1000);
  }
  result("parked", impl, "ttsp_p50", percentile(ttsp_us, 0.5), "us");
  result("parked", impl, "ttsp_p99", percentile(ttsp_us, 0.99), "us");
  result("parked", impl, "ttsp_max", percentile(ttsp_us, 1.0), "us");
  double pause_max_us = 0;
  for (int i = 0; i < 5; ++i) {
    int error = usgc_gc_collect(USGC_GC_SHARED);
    if (error != 0) fail("usgc_gc_collect(USGC_GC_SHARED)", error);
    usgc_gc_stats stats;
    std::memset(&stats, 0, sizeof stats);
    stats.version = USGC_GC_STATS_VERSION;
    error = usgc_gc_get_stats(&stats);
    if (error != 0) fail("usgc_gc_get_stats", error);
    double pause_us = static_cast<double>(stats.last_pause_ns) / 1000.0;
    if (pause_us > pause_max_us) pause_max_us = pause_us;
  }
  result("parked", impl, "shared_pause_max", pause_max_us, "us");
}

void spawn_parked(uint64_t count) {
  g_gate.parked.store(0, std::memory_order_relaxed);
  for (uint64_t i = 0; i < count; ++i) {
    int error = usgc_go(parked_goroutine, nullptr, nullptr);
    if (error != 0) {
      std::printf(
          "ERROR suite=million case=%s impl=usgc reason=\"usgc_go failed at goroutine "
          "%" PRIu64 ": %s\"\n",
          g_options.case_name.c_str(), i, std::strerror(error));
      std::fflush(stdout);
      std::exit(1);
    }
  }
  while (g_gate.parked.load(std::memory_order_relaxed) < count) usgc_yield();
}

void release_all() {
  int error = usgc_chan_close(g_gate.chan);
  if (error != 0) fail("usgc_chan_close", error);
  while (usgc_goroutine_count() > 1) usgc_sleep_ns(1000 * 1000);
}

void main_goroutine(void*) {
  g_gate.chan = usgc_chan_make(sizeof(int), 0);
  if (g_gate.chan == nullptr) fail("usgc_chan_make", ENOMEM);
  const uint64_t count = g_options.goroutines;
  if (g_options.case_name == "parked") {
    measure_stops("usgc-0-parked");
    int64_t rss_before = resident_bytes();
    int64_t faults_before = minor_faults();
    int64_t page_tables_before = page_table_bytes();
    int64_t cpu_before = process_cpu_ns();
    uint64_t start = now_ns();
    spawn_parked(count);
    uint64_t elapsed = now_ns() - start;
    int64_t cpu_spawn = process_cpu_ns() - cpu_before;
    int64_t rss_parked = resident_bytes();
    result("parked", "usgc", "minor_faults_per_goroutine",
           static_cast<double>(minor_faults() - faults_before) / count, "faults");
    result("parked", "usgc", "page_table_bytes_per_goroutine",
           static_cast<double>(page_table_bytes() - page_tables_before) / count, "bytes");
    result("parked", "usgc", "ns_per_goroutine", static_cast<double>(elapsed) / count, "ns");
    result("parked", "usgc", "cpu_ns_per_goroutine", static_cast<double>(cpu_spawn) / count, "ns");
    result("parked", "usgc", "rss_bytes_per_goroutine",
           static_cast<double>(rss_parked - rss_before) / count, "bytes");
    measure_stops("usgc");
    release_all();
  } else {
    int64_t rss_before = resident_bytes();
    spawn_parked(count);
    int64_t rss_peak = resident_bytes();
    release_all();
    usgc_sleep_ns(500 * 1000 * 1000);
    int64_t rss_after = resident_bytes();
    result("burst", "usgc", "rss_peak_bytes_per_goroutine",
           static_cast<double>(rss_peak - rss_before) / count, "bytes");
    result("burst", "usgc", "rss_after_burst_bytes", static_cast<double>(rss_after - rss_before),
           "bytes");
    result("burst", "usgc", "rss_growth_percent",
           100.0 * static_cast<double>(rss_after - rss_before) / static_cast<double>(rss_before),
           "percent");
  }
  usgc_chan_destroy(g_gate.chan);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--case" && i + 1 < argc) {
      g_options.case_name = argv[++i];
    } else if (arg == "--goroutines" && i + 1 < argc) {
      g_options.goroutines = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--procs" && i + 1 < argc) {
      g_options.procs = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      std::fprintf(stderr,
                   "usage: million_goroutines --case parked|burst [--goroutines N] [--procs P]\n");
      return 2;
    }
  }
  if (g_options.case_name != "parked" && g_options.case_name != "burst") {
    std::fprintf(stderr, "million_goroutines: unknown case '%s'\n", g_options.case_name.c_str());
    return 2;
  }
  if (g_options.goroutines == 0)
    g_options.goroutines = g_options.case_name == "parked" ? 1000000 : 500000;
  usgc_config config;
  int error = usgc_config_from_environment(&config);
  if (error != 0) fail("usgc_config_from_environment", error);
  if (g_options.procs != 0) config.procs = g_options.procs;
  error = usgc_init(&config);
  if (error != 0) fail("usgc_init", error);
  error = usgc_run_main(main_goroutine, nullptr);
  if (error != 0) fail("usgc_run_main", error);
  error = usgc_shutdown();
  if (error != 0) fail("usgc_shutdown", error);
  return 0;
}
