// bench/gc_numa.cpp — what the GC heap's per-node block pools cost: allocation throughput and
// shared collection time with the machine's real topology (one node here) against a fake
// topology of two nodes over the same CPUs, in the same run.
//
// Each round starts the runtime (USGC_PROCS=2 unless --procs), runs the same workload once per
// topology (the order alternates between rounds so drift favours neither), and stops it:
//   case=alloc    2 goroutines each allocate --objects 32-byte objects, half private and half
//                 shared, all garbage (private and shared collections run on their budgets):
//                 metric=objects_per_s over the whole phase (collections included), and
//                 objects_per_cpu_s against the process's CPU time (robust on a loaded machine).
//   case=collect  a shared live structure of --live objects (lists rooted in global roots), then
//                 --collections explicit full shared collections: metric=pause_ms, the median
//                 stop-the-world pause as usgc_gc_get_stats reports it, and pause_min_ms, the
//                 round's shortest (the least disturbed by other processes).
// With one real node the fake 2-node topology makes every block take a node lookup
// (sched_getcpu), splits the pools and partial lists in two, and orders the markers' steals by
// node; a real second node would add remote-memory effects this machine cannot show.
// Output: RESULT lines (bench/run_all.sh's format), per topology the median over rounds, and
// the ratio fake2/real of each metric (impl=fake_2_nodes_vs_real); SAMPLE lines give each round; a
// NOTE line says the machine's nodes.
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "numa/numa.hpp"
#include "usgc/usgc.h"

namespace {

struct Options {
  int rounds = 5;
  uint32_t procs = 2;
  long objects = 2000000;
  long live = 200000;
  int collections = 10;
};
Options g_options;

struct Item {
  void* next;
  uint64_t value[2];
};

usgc_type_id g_item_type = 0;

struct Figures {
  double objects_per_s = 0;
  double objects_per_cpu_s = 0;
  double pause_ms = 0;
  double pause_min_ms = 0;
};

uint64_t process_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void allocate_garbage(void* argument) {
  auto* done = static_cast<usgc_waitgroup*>(argument);
  for (long i = 0; i < g_options.objects; ++i) {
    void* object =
        usgc_alloc(g_item_type, (i & 1) ? USGC_GOROUTINE_SHARED : USGC_GOROUTINE_PRIVATE);
    if (object == nullptr) {
      std::printf("ERROR usgc_alloc: %s\n", usgc_last_error());
      std::exit(1);
    }
    static_cast<Item*>(object)->value[0] = static_cast<uint64_t>(i);
    if ((i & 1023) == 0) usgc_safepoint_poll();
  }
  usgc_waitgroup_done(done);
}

void* g_roots[16];

void workload(void* argument) {
  auto* figures = static_cast<Figures*>(argument);
  usgc_waitgroup done = USGC_WAITGROUP_INIT;
  uint64_t start = usgc::bench::now_ns();
  uint64_t start_cpu = process_cpu_ns();
  for (int g = 0; g < 2; ++g) {
    usgc_waitgroup_add(&done, 1);
    if (usgc_go(allocate_garbage, &done, nullptr) != 0) {
      std::printf("ERROR usgc_go failed\n");
      std::exit(1);
    }
  }
  usgc_waitgroup_wait(&done);
  double seconds = static_cast<double>(usgc::bench::now_ns() - start) / 1e9;
  double cpu_seconds = static_cast<double>(process_cpu_ns() - start_cpu) / 1e9;
  figures->objects_per_s = 2.0 * static_cast<double>(g_options.objects) / seconds;
  figures->objects_per_cpu_s = 2.0 * static_cast<double>(g_options.objects) / cpu_seconds;

  // A shared live structure: 16 lists in global roots.
  for (void*& root : g_roots) {
    root = nullptr;
    usgc_global_root_add(&root);
  }
  for (long i = 0; i < g_options.live; ++i) {
    void*& root = g_roots[i % 16];
    auto* item = static_cast<Item*>(usgc_alloc(g_item_type, USGC_GOROUTINE_SHARED));
    if (item == nullptr) {
      std::printf("ERROR usgc_alloc: %s\n", usgc_last_error());
      std::exit(1);
    }
    usgc_write(item, &item->next, root);
    usgc_global_store(&root, item);
  }
  std::vector<double> pauses;
  for (int c = 0; c < g_options.collections; ++c) {
    usgc_gc_stats before{};
    before.version = USGC_GC_STATS_VERSION;
    usgc_gc_get_stats(&before);
    usgc_gc_collect(USGC_GC_SHARED);
    usgc_gc_stats after{};
    after.version = USGC_GC_STATS_VERSION;
    usgc_gc_get_stats(&after);
    pauses.push_back(
        static_cast<double>(after.shared_pause_total_ns - before.shared_pause_total_ns) / 1e6);
  }
  figures->pause_ms = usgc::bench::median(pauses);
  figures->pause_min_ms = *std::min_element(pauses.begin(), pauses.end());
  for (void*& root : g_roots) {
    usgc_global_root_remove(&root);
    root = nullptr;
  }
  usgc_gc_collect(USGC_GC_SHARED);
}

Figures run_once(int fake_nodes) {
  usgc::numa::inject_fake_topology(fake_nodes);
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = g_options.procs;
  Figures figures;
  if (int error = usgc_init(&config); error != 0) {
    std::printf("ERROR usgc_init: %s\n", std::strerror(error));
    std::exit(1);
  }
  if (usgc_run_main(workload, &figures) != 0) {
    std::printf("ERROR usgc_run_main failed\n");
    std::exit(1);
  }
  usgc_shutdown();
  usgc::numa::inject_fake_topology(0);
  return figures;
}

void result(const char* test_case, const char* impl, const char* metric, double value,
            const char* unit) {
  std::printf("RESULT suite=gc_numa case=%s impl=%s metric=%s value=%.4f unit=%s\n", test_case,
              impl, metric, value, unit);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string option = argv[i];
    long value = std::strtol(argv[i + 1], nullptr, 10);
    if (option == "--rounds") {
      g_options.rounds = static_cast<int>(value);
    } else if (option == "--procs") {
      g_options.procs = static_cast<uint32_t>(value);
    } else if (option == "--objects") {
      g_options.objects = value;
    } else if (option == "--live") {
      g_options.live = value;
    } else if (option == "--collections") {
      g_options.collections = static_cast<int>(value);
    } else {
      std::fprintf(stderr,
                   "usage: gc_numa [--rounds N] [--procs N] [--objects N] [--live N] "
                   "[--collections N]\n");
      return 2;
    }
  }
  if (g_options.rounds < 1 || g_options.objects < 1 || g_options.collections < 1) {
    std::fprintf(stderr, "gc_numa: rounds, objects and collections must be positive\n");
    return 2;
  }
  usgc::numa::initialize();
  std::printf("NOTE suite=gc_numa real_nodes=%d cpus=%d procs=%u\n",
              usgc::numa::topology().node_count, usgc::numa::topology().cpu_count, g_options.procs);
  size_t offsets[] = {offsetof(Item, next)};
  usgc_type_info info = {"BenchItem", USGC_KIND_OBJECT, sizeof(Item), offsets, 1};
  g_item_type = usgc_register_type(&info);
  if (g_item_type == 0) {
    std::printf("ERROR usgc_register_type: %s\n", usgc_last_error());
    return 1;
  }
  // [0]: real topology, [1]: fake 2 nodes
  std::vector<double> alloc[2], alloc_cpu[2], pause[2], pause_min[2];
  for (int round = 0; round < g_options.rounds; ++round) {
    for (int k = 0; k < 2; ++k) {
      int which = (round + k) % 2;
      Figures figures = run_once(which == 0 ? 0 : 2);
      std::printf(
          "SAMPLE suite=gc_numa round=%d impl=%s objects_per_s=%.0f objects_per_cpu_s=%.0f "
          "pause_ms=%.4f pause_min_ms=%.4f\n",
          round, which == 0 ? "real_topology" : "fake_2_nodes", figures.objects_per_s,
          figures.objects_per_cpu_s, figures.pause_ms, figures.pause_min_ms);
      alloc[which].push_back(figures.objects_per_s);
      alloc_cpu[which].push_back(figures.objects_per_cpu_s);
      pause[which].push_back(figures.pause_ms);
      pause_min[which].push_back(figures.pause_min_ms);
    }
  }
  const char* impls[2] = {"real_topology", "fake_2_nodes"};
  for (int which = 0; which < 2; ++which) {
    result("alloc", impls[which], "objects_per_s", usgc::bench::median(alloc[which]), "1/s");
    result("alloc", impls[which], "objects_per_cpu_s", usgc::bench::median(alloc_cpu[which]),
           "1/s");
    result("collect", impls[which], "pause_ms", usgc::bench::median(pause[which]), "ms");
    result("collect", impls[which], "pause_min_ms", usgc::bench::median(pause_min[which]), "ms");
  }
  auto ratio = [&](const char* test_case, const char* metric, const std::vector<double>* values) {
    result(test_case, "fake_2_nodes_vs_real", metric,
           usgc::bench::median(values[1]) / usgc::bench::median(values[0]), "ratio");
  };
  ratio("alloc", "objects_per_s", alloc);
  ratio("alloc", "objects_per_cpu_s", alloc_cpu);
  ratio("collect", "pause_ms", pause);
  ratio("collect", "pause_min_ms", pause_min);
  return 0;
}
