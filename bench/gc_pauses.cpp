// bench/gc_pauses.cpp — the pauses a goroutine program feels, as the collector paces itself
// (bench/gc_costs.cpp times explicit collections; this one times the budget-triggered ones).
//
// Cases (--cases picks them; default all):
//   private-live<N>mib   N = 1, 8, 64: a goroutine holds N MiB of live private trees (depth 10),
//                        then allocates garbage trees (depth 6) and, every 64 of them, replaces a
//                        random live tree (old garbage, as a program's caches churn). Every
//                        private pause is timed: each loop iteration (one garbage tree) that
//                        paused gives one sample, the sum of its pauses (usgc_gc_stats'
//                        private_pause_total_ns and histogram: collections, and the mark slices
//                        and lazy sweeps of an incremental old-generation cycle). RESULT
//                        p50/p99/max in ms, collections, pauses, and the throughput of the loop
//                        (Mnodes/s). Re-run in the same run with USGC_GC_INCREMENTAL=0 as
//                        impl=usgc-onepause (full private collections in one pause).
//   shared-with-private-live<N>mib   N = 8, 64: a goroutine holds N MiB of live private trees and
//                        a small shared forest; shared minor and full collections are requested
//                        (usgc_gc_collect) and their stopped-world pauses read from the stats.
//                        A collector that traces private heaps pays for the N MiB in every one.
//   shared-parked<N>k    N = 10, 100, 1000 (thousand goroutines; --quick: 10, 100): N goroutines
//                        parked on a channel receive, a small shared forest; shared full and minor
//                        collections requested, their stopped-world pauses read from the stats.
//                        The stop must not grow with the parked goroutines: their roots are
//                        scanned by the concurrent markers.
//   shared-live<N>mib    N = 10, 64, 256 (--quick: 10): N MiB of live shared trees; shared full
//                        and minor collections requested: the pauses must not grow with the live
//                        shared heap (marked concurrently).
//   shared-busy          4 MiB of live shared trees, and two goroutines that keep allocating
//                        private garbage trees (their nurseries always partly full) and small
//                        shared ones, running on the Ps when the world stops; shared minor and
//                        full collections requested: the stops must not scan the nurseries of
//                        the goroutines that were running. Also re-run with
//                        USGC_SAFEPOINT_WAIT=sleep as impl=usgc-sleep (the stop protocol before:
//                        the collector sleeps while the last Ps arrive, every stopped thread is
//                        woken by a system call), with USGC_SAFEPOINT_ACK=trampoline as
//                        impl=usgc-trampoline (the acknowledgement protocol before), and with
//                        USGC_SAFEPOINT_CLAIM=0 as impl=usgc-noclaim (Ps between goroutines
//                        not claimed by the collector).
//                        All three run twice in the same run: impl=usgc (concurrent marking) and
//                        impl=usgc-stw, the same binary re-run with USGC_GC_CONCURRENT=0 (the
//                        whole mark inside one stop, the design before). Pauses (the stopped
//                        world, both stops summed): p50, p99 and max in ms.
//   stop-during-private-mark   one goroutine runs full private collections of 64 MiB of live
//                        private trees back to back; another stops the world over and over
//                        (usgc_stop_the_world): RESULT time to safepoint p50/p99/max in us. A
//                        private marking that never polls holds every stop up.
// Output: RESULT lines (bench/run_all.sh's format), NOTE lines; ERROR and exit status 1 when a
// count is wrong (the live trees are checked after each case). On stderr, every stop of a shared
// collection whose pause reached 1 ms, stretch by stretch with the collector thread's account
// (USGC_TRACE_PAUSE_US=1000 unless the environment sets it: gc/shared_pause_probe.hpp; clock
// reads inside the pause, the account read outside it), so a long pause of any run is attributed.
//
// Usage: gc_pauses [--cases "..."] [--quick] [--busy-collections N] [--impl NAME] (--impl: the name
// printed, set for the re-run with USGC_GC_CONCURRENT=0)
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "bench/gc_tree.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace {

using usgc::bench::count_tree;
using usgc::bench::has_word;
using usgc::bench::now_ns;
using usgc::bench::percentile;

using Node = usgc::bench::TreeNode;

usgc_type_id g_node_type = 0;  // registered in main, then read-only
int g_errors = 0;
bool g_quick = false;
int g_busy_collections = 0;  // --busy-collections: shared-busy's collections of each kind (0: 20)

constexpr int kLiveDepth = 10;  // 2047 nodes, 48 KiB of 24-byte slots
constexpr uint64_t kLiveNodes = (uint64_t{2} << kLiveDepth) - 1;
constexpr uint64_t kLiveTreeBytes = kLiveNodes * 24;
constexpr int kGarbageDepth = 6;
constexpr uint64_t kGarbageNodes = (uint64_t{2} << kGarbageDepth) - 1;

std::string g_impl = "usgc";  // usgc-stw in the re-run with USGC_GC_CONCURRENT=0

void result(const std::string& name, const char* metric, double value, const char* unit) {
  std::printf("RESULT suite=gc_pauses case=%s impl=%s metric=%s value=%.3f unit=%s\n", name.c_str(),
              g_impl.c_str(), metric, value, unit);
}

void error(const std::string& name, const std::string& reason) {
  std::printf("ERROR suite=gc_pauses case=%s impl=usgc reason=\"%s\"\n", name.c_str(),
              reason.c_str());
  std::fflush(stdout);
  ++g_errors;
}

void* new_node(usgc_ownership ownership) {
  void* node = usgc_alloc(g_node_type, ownership);
  if (node == nullptr) {
    std::printf("ERROR suite=gc_pauses case=alloc impl=usgc reason=\"usgc_alloc: %s\"\n",
                usgc_last_error());
    std::exit(1);
  }
  return node;
}

void* build_tree(int depth, usgc_ownership ownership) {
  return usgc::bench::build_tree(depth, ownership, new_node);
}

usgc_gc_stats gc_stats() {
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  usgc_gc_get_stats(&stats);
  return stats;
}

uint64_t pause_count(const uint64_t (&histogram)[USGC_GC_HISTOGRAM_BUCKETS]) {
  uint64_t count = 0;
  for (uint64_t bucket : histogram) count += bucket;
  return count;
}

void print_quantiles(const std::string& name, const char* prefix, std::vector<uint64_t> ns,
                     double scale, const char* unit) {
  if (ns.empty()) return;
  std::sort(ns.begin(), ns.end());
  std::string p = prefix;
  result(name, (p + "p50").c_str(), static_cast<double>(percentile(ns, 0.5)) / scale, unit);
  result(name, (p + "p99").c_str(), static_cast<double>(percentile(ns, 0.99)) / scale, unit);
  result(name, (p + "max").c_str(), static_cast<double>(ns.back()) / scale, unit);
}

// A forest of `trees` live trees of `ownership` in root slot *forest (a ref array).
void build_forest(void** forest, uint64_t trees, usgc_ownership ownership) {
  *forest = usgc_alloc_array(USGC_TYPE_REF_ARRAY, trees, ownership);
  USGC_ROOTS(tree, 1);
  for (uint64_t i = 0; i < trees; ++i) {
    tree[0] = build_tree(kLiveDepth, ownership);
    usgc_array_write(*forest, i, tree[0]);
    usgc_safepoint_poll();
  }
}

void check_forest(const std::string& name, void* forest, uint64_t trees) {
  uint64_t nodes = 0;
  for (uint64_t i = 0; i < trees; ++i) nodes += count_tree(usgc_array_read(forest, i));
  if (nodes != trees * kLiveNodes)
    error(name, "live trees lost or changed: counted " + std::to_string(nodes) +
                    " nodes, expected " + std::to_string(trees * kLiveNodes));
}

// ---- private-live<N>mib ----

struct PrivateJob {
  uint64_t live_mib;
};

void private_main(void* argument) {
  const auto* job = static_cast<const PrivateJob*>(argument);
  std::string name = "private-live" + std::to_string(job->live_mib) + "mib";
  uint64_t trees = std::max<uint64_t>(job->live_mib * (1u << 20) / kLiveTreeBytes, 1);
  USGC_ROOTS(roots, 2);
  build_forest(&roots[0], trees, USGC_GOROUTINE_PRIVATE);
  // Garbage: max(256 MiB, 8 x live) of depth-6 trees (quick: a quarter).
  uint64_t garbage_bytes = std::max<uint64_t>(256, 8 * job->live_mib) << 20;
  if (g_quick) garbage_bytes /= 4;
  uint64_t rounds = garbage_bytes / (kGarbageNodes * 24);
  std::vector<uint64_t> pauses;
  usgc_gc_stats before = gc_stats();
  uint64_t seen = before.private_collections;
  uint64_t seen_pauses = pause_count(before.private_pause_histogram);
  uint64_t seen_pause_ns = before.private_pause_total_ns;
  uint64_t collections = 0;
  uint64_t random = 0x9E3779B97F4A7C15ull;
  uint64_t start = now_ns();
  for (uint64_t r = 0; r < rounds; ++r) {
    roots[1] = build_tree(kGarbageDepth, USGC_GOROUTINE_PRIVATE);
    if (r % 64 == 63) {  // a live tree replaced: the old one becomes old garbage
      random = random * 6364136223846793005ull + 1442695040888963407ull;
      roots[1] = build_tree(kLiveDepth, USGC_GOROUTINE_PRIVATE);
      usgc_array_write(roots[0], (random >> 33) % trees, roots[1]);
    }
    // Every private pause of this iteration (collections, and the slices and lazy sweeps of an
    // incremental old-generation cycle), summed: one sample per iteration that paused.
    usgc_gc_stats stats = gc_stats();
    uint64_t pause_events = pause_count(stats.private_pause_histogram);
    if (pause_events != seen_pauses) {
      pauses.push_back(stats.private_pause_total_ns - seen_pause_ns);
      seen_pauses = pause_events;
      seen_pause_ns = stats.private_pause_total_ns;
    }
    collections += stats.private_collections - seen;
    seen = stats.private_collections;
    usgc_safepoint_poll();
  }
  double seconds = static_cast<double>(now_ns() - start) / 1e9;
  check_forest(name, roots[0], trees);
  print_quantiles(name, "pause_", pauses, 1e6, "ms");
  result(name, "collections", static_cast<double>(collections), "count");
  result(name, "pauses", static_cast<double>(pauses.size()), "count");
  double nodes =
      static_cast<double>(rounds) * kGarbageNodes + static_cast<double>(rounds / 64) * kLiveNodes;
  result(name, "throughput", nodes / seconds / 1e6, "Mnodes/s");
  std::printf("NOTE suite=gc_pauses case=%s live_trees=%" PRIu64 " garbage_mib=%" PRIu64
              " seconds=%.2f\n",
              name.c_str(), trees, garbage_bytes >> 20, seconds);
  std::fflush(stdout);
}

// ---- shared-with-private-live<N>mib ----

void shared_with_private_main(void* argument) {
  const auto* job = static_cast<const PrivateJob*>(argument);
  std::string name = "shared-with-private-live" + std::to_string(job->live_mib) + "mib";
  uint64_t trees = std::max<uint64_t>(job->live_mib * (1u << 20) / kLiveTreeBytes, 1);
  USGC_ROOTS(roots, 3);
  build_forest(&roots[0], trees, USGC_GOROUTINE_PRIVATE);
  build_forest(&roots[1], 16, USGC_GOROUTINE_SHARED);  // 0.75 MiB of shared live data
  usgc_gc_collect(USGC_GC_PRIVATE);
  usgc_gc_collect(USGC_GC_SHARED);
  int collections = g_quick ? 5 : 30;
  std::vector<uint64_t> minor, full;
  for (int i = 0; i < collections; ++i) {
    for (int k = 0; k < 64; ++k) roots[2] = build_tree(kGarbageDepth, USGC_GOROUTINE_SHARED);
    usgc_gc_collect(USGC_GC_SHARED_MINOR);
    minor.push_back(gc_stats().last_pause_ns);
    for (int k = 0; k < 64; ++k) roots[2] = build_tree(kGarbageDepth, USGC_GOROUTINE_SHARED);
    usgc_gc_collect(USGC_GC_SHARED);
    full.push_back(gc_stats().last_pause_ns);
  }
  check_forest(name, roots[0], trees);
  check_forest(name, roots[1], 16);
  print_quantiles(name, "minor_pause_", minor, 1e6, "ms");
  print_quantiles(name, "full_pause_", full, 1e6, "ms");
  std::fflush(stdout);
}

// ---- shared-parked<N>k and shared-live<N>mib ----

struct SharedJob {
  uint64_t parked = 0;    // goroutines parked on a receive meanwhile
  uint64_t live_mib = 0;  // live shared trees (0: a small forest)
};

struct ParkedGroup {
  usgc_chan* wake = nullptr;
  usgc_waitgroup started = USGC_WAITGROUP_INIT;
  usgc_waitgroup finished = USGC_WAITGROUP_INIT;
};

void parked_goroutine(void* argument) {
  auto* group = static_cast<ParkedGroup*>(argument);
  USGC_ROOTS(roots, 1);  // an (empty) frame, as a goroutine of a real program has
  usgc_waitgroup_done(&group->started);
  bool ok = false;
  usgc_chan_recv(group->wake, nullptr, &ok);  // parked until the channel is closed
  usgc_waitgroup_done(&group->finished);
}

void shared_main(void* argument) {
  const auto* job = static_cast<const SharedJob*>(argument);
  std::string name = job->parked != 0 ? "shared-parked" + std::to_string(job->parked / 1000) + "k"
                                      : "shared-live" + std::to_string(job->live_mib) + "mib";
  uint64_t trees =
      job->live_mib != 0 ? std::max<uint64_t>(job->live_mib * (1u << 20) / kLiveTreeBytes, 1) : 16;
  USGC_ROOTS(roots, 2);
  build_forest(&roots[0], trees, USGC_GOROUTINE_SHARED);
  ParkedGroup group;
  group.wake = usgc_chan_make(0, 0);
  usgc_waitgroup_add(&group.started, static_cast<int64_t>(job->parked));
  usgc_waitgroup_add(&group.finished, static_cast<int64_t>(job->parked));
  for (uint64_t i = 0; i < job->parked; ++i) {
    if (usgc_go(parked_goroutine, &group, nullptr) != 0) {
      error(name, "usgc_go failed after " + std::to_string(i) + " goroutines");
      usgc_waitgroup_add(&group.started, -static_cast<int64_t>(job->parked - i));
      usgc_waitgroup_add(&group.finished, -static_cast<int64_t>(job->parked - i));
      break;
    }
  }
  usgc_waitgroup_wait(&group.started);
  usgc_gc_collect(USGC_GC_SHARED);
  int collections = g_quick ? 3 : 8;
  std::vector<uint64_t> minor, full;
  for (int i = 0; i < collections; ++i) {
    for (int k = 0; k < 64; ++k) roots[1] = build_tree(kGarbageDepth, USGC_GOROUTINE_SHARED);
    usgc_gc_collect(USGC_GC_SHARED_MINOR);
    minor.push_back(gc_stats().last_pause_ns);
    for (int k = 0; k < 64; ++k) roots[1] = build_tree(kGarbageDepth, USGC_GOROUTINE_SHARED);
    usgc_gc_collect(USGC_GC_SHARED);
    full.push_back(gc_stats().last_pause_ns);
  }
  usgc_chan_close(group.wake);
  usgc_waitgroup_wait(&group.finished);
  usgc_chan_destroy(group.wake);
  check_forest(name, roots[0], trees);
  print_quantiles(name, "minor_pause_", minor, 1e6, "ms");
  print_quantiles(name, "full_pause_", full, 1e6, "ms");
  std::fflush(stdout);
}

// ---- shared-busy ----

struct BusyGroup {
  std::atomic<bool> stop{false};
  usgc_waitgroup finished = USGC_WAITGROUP_INIT;
};

void busy_goroutine(void* argument) {
  auto* group = static_cast<BusyGroup*>(argument);
  USGC_ROOTS(roots, 2);
  while (!group->stop.load(std::memory_order_relaxed)) {
    roots[0] = build_tree(kGarbageDepth, USGC_GOROUTINE_PRIVATE);
    roots[1] = build_tree(2, USGC_GOROUTINE_SHARED);
    usgc_safepoint_poll();
  }
  usgc_waitgroup_done(&group->finished);
}

void busy_main(void*) {
  const std::string name = "shared-busy";
  constexpr uint64_t kTrees = 84;  // about 4 MiB
  USGC_ROOTS(roots, 2);
  build_forest(&roots[0], kTrees, USGC_GOROUTINE_SHARED);
  BusyGroup group;
  constexpr int kBusy = 2;
  usgc_waitgroup_add(&group.finished, kBusy);
  for (int i = 0; i < kBusy; ++i) {
    if (usgc_go(busy_goroutine, &group, nullptr) != 0) {
      error(name, "usgc_go failed");
      usgc_waitgroup_add(&group.finished, -(kBusy - i));
      break;
    }
  }
  usgc_gc_collect(USGC_GC_SHARED);
  int collections = g_busy_collections > 0 ? g_busy_collections : g_quick ? 5 : 20;
  std::vector<uint64_t> minor, full;
  for (int i = 0; i < collections; ++i) {
    for (int k = 0; k < 16; ++k) roots[1] = build_tree(kGarbageDepth, USGC_GOROUTINE_SHARED);
    usgc_gc_collect(USGC_GC_SHARED_MINOR);
    minor.push_back(gc_stats().last_pause_ns);
    for (int k = 0; k < 16; ++k) roots[1] = build_tree(kGarbageDepth, USGC_GOROUTINE_SHARED);
    usgc_gc_collect(USGC_GC_SHARED);
    full.push_back(gc_stats().last_pause_ns);
  }
  group.stop.store(true, std::memory_order_relaxed);
  usgc_waitgroup_wait(&group.finished);
  check_forest(name, roots[0], kTrees);
  print_quantiles(name, "minor_pause_", minor, 1e6, "ms");
  print_quantiles(name, "full_pause_", full, 1e6, "ms");
  std::fflush(stdout);
}

// The same cases with USGC_GC_CONCURRENT=0 (impl=usgc-stw), in a child run of this binary.
void run_stop_the_world_peer(const char* self, const std::string& cases, bool quick) {
  std::string command = "USGC_GC_CONCURRENT=0 '" + std::string(self) +
                        "' --impl usgc-stw --cases '" + cases + "'" + (quick ? " --quick" : "");
  std::fflush(stdout);
  if (std::system(command.c_str()) != 0) {
    std::printf("ERROR suite=gc_pauses case=peer impl=usgc-stw reason=\"the re-run failed\"\n");
    ++g_errors;
  }
}

// The shared-busy case re-run in a child with one setting of the stop protocol changed back
// (`environment`, e.g. USGC_SAFEPOINT_WAIT=sleep), reported as impl=`impl`.
void run_shared_busy_peer(const char* self, const char* environment, const char* impl, bool quick) {
  std::string command = std::string(environment) + " '" + std::string(self) + "' --impl " + impl +
                        " --cases shared-busy --busy-collections " +
                        std::to_string(g_busy_collections) + (quick ? " --quick" : "");
  std::fflush(stdout);
  if (std::system(command.c_str()) != 0) {
    std::printf("ERROR suite=gc_pauses case=peer impl=%s reason=\"the re-run failed\"\n", impl);
    ++g_errors;
  }
}

// The shared-busy case's peers, each the protocol before one change:
//   impl=usgc-sleep       USGC_SAFEPOINT_WAIT=sleep: the requester gives its P up and sleeps
//                         while the last Ps arrive, the stopped threads sleep and are woken one
//                         system call each;
//   impl=usgc-trampoline  USGC_SAFEPOINT_ACK=trampoline: a poll fault acknowledges after
//                         sigreturn and the trampoline, the last acknowledger always wakes the
//                         collector, the monitor probes Ps that just stopped;
//   impl=usgc-noclaim     USGC_SAFEPOINT_CLAIM=0: a P in its scheduler loop (between goroutines)
//                         is not claimed by the collector; its thread acknowledges when it looks.
void run_shared_busy_peers(const char* self, bool quick) {
  run_shared_busy_peer(self, "USGC_SAFEPOINT_WAIT=sleep", "usgc-sleep", quick);
  run_shared_busy_peer(self, "USGC_SAFEPOINT_ACK=trampoline", "usgc-trampoline", quick);
  run_shared_busy_peer(self, "USGC_SAFEPOINT_CLAIM=0", "usgc-noclaim", quick);
}

// The private cases with USGC_GC_INCREMENTAL=0 (impl=usgc-onepause: every full private
// collection one pause, the design before incremental old-generation cycles), in a child run.
void run_one_pause_peer(const char* self, bool quick) {
  std::string command = "USGC_GC_INCREMENTAL=0 '" + std::string(self) +
                        "' --impl usgc-onepause --cases private" + (quick ? " --quick" : "");
  std::fflush(stdout);
  if (std::system(command.c_str()) != 0) {
    std::printf(
        "ERROR suite=gc_pauses case=peer impl=usgc-onepause reason=\"the re-run failed\"\n");
    ++g_errors;
  }
}

// ---- stop-during-private-mark ----

struct StopJob {
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  usgc_waitgroup done = USGC_WAITGROUP_INIT;
  uint64_t collections = 0;
};

void collecting_goroutine(void* argument) {
  auto* job = static_cast<StopJob*>(argument);
  {
    uint64_t trees = 64 * (1u << 20) / kLiveTreeBytes;
    USGC_ROOTS(roots, 1);
    build_forest(&roots[0], trees, USGC_GOROUTINE_PRIVATE);
    job->ready.store(1, std::memory_order_release);
    while (!job->stop.load(std::memory_order_acquire)) {
      usgc_gc_collect(USGC_GC_PRIVATE);
      ++job->collections;
      usgc_safepoint_poll();
    }
    check_forest("stop-during-private-mark", roots[0], trees);
  }
  usgc_waitgroup_done(&job->done);
}

void stop_main(void*) {
  StopJob job;
  usgc_waitgroup_add(&job.done, 1);
  usgc_go(collecting_goroutine, &job, nullptr);
  while (job.ready.load(std::memory_order_acquire) == 0) usgc_yield();
  std::vector<uint64_t> ttsp;
  int stops = g_quick ? 50 : 400;
  for (int i = 0; i < stops; ++i) {
    usgc_stop_info info{};
    if (usgc_stop_the_world(&info) != 0) {
      error("stop-during-private-mark", "usgc_stop_the_world failed");
      break;
    }
    usgc_start_the_world();
    ttsp.push_back(info.time_to_safepoint_ns);
    timespec pause{0, 2000000};  // 2 ms between stops: they land anywhere in the collections
    nanosleep(&pause, nullptr);
  }
  job.stop.store(true, std::memory_order_release);
  usgc_waitgroup_wait(&job.done);
  print_quantiles("stop-during-private-mark", "ttsp_", ttsp, 1e3, "us");
  std::printf(
      "NOTE suite=gc_pauses case=stop-during-private-mark stops=%d "
      "full_private_collections=%" PRIu64 "\n",
      stops, job.collections);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string cases =
      "private shared-with-private shared-parked shared-live shared-busy stop-during-private-mark";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--cases" && i + 1 < argc) {
      cases = argv[++i];
    } else if (arg == "--quick") {
      g_quick = true;
    } else if (arg == "--busy-collections" && i + 1 < argc) {
      g_busy_collections = std::atoi(argv[++i]);
    } else if (arg == "--impl" && i + 1 < argc) {
      g_impl = argv[++i];
    } else {
      std::fprintf(
          stderr,
          "usage: gc_pauses [--cases \"private shared-with-private shared-parked "
          "shared-live shared-busy stop-during-private-mark\"] [--quick] [--busy-collections N] "
          "[--impl "
          "NAME]\n");
      return 2;
    }
  }
  // Incremental old-generation cycles are the default (USGC_GC_INCREMENTAL=1): impl=usgc measures
  // them unless the environment says otherwise, usgc-onepause the one-pause collections.
  setenv("USGC_GC_INCREMENTAL", "1", /*overwrite=*/0);
  setenv("USGC_TRACE_PAUSE_US", "1000", /*overwrite=*/0);  // long shared stops, stretch by stretch
  usgc_config config;
  if (usgc_config_from_environment(&config) != 0 || usgc_init(&config) != 0) {
    std::printf("ERROR suite=gc_pauses case=setup impl=usgc reason=\"usgc_init failed\"\n");
    return 1;
  }
  static const size_t kOffsets[] = {offsetof(Node, left), offsetof(Node, right)};
  usgc_type_info info{};
  info.name = "Node";
  info.kind = USGC_KIND_OBJECT;
  info.size = sizeof(Node);
  info.pointer_offsets = kOffsets;
  info.pointer_count = 2;
  g_node_type = usgc_register_type(&info);
  if (g_node_type == 0) return 1;
  std::printf("NOTE suite=gc_pauses quick=%d\n", g_quick ? 1 : 0);
  if (has_word(cases, "private")) {
    for (uint64_t mib : {1, 8, 64}) {
      PrivateJob job{mib};
      usgc_run_main(private_main, &job);
    }
  }
  if (has_word(cases, "shared-with-private")) {
    for (uint64_t mib : {8, 64}) {
      PrivateJob job{mib};
      usgc_run_main(shared_with_private_main, &job);
    }
  }
  if (has_word(cases, "shared-parked")) {
    for (uint64_t thousands : {10, 100, 1000}) {
      if (g_quick && thousands == 1000) continue;
      SharedJob job{thousands * 1000, 0};
      usgc_run_main(shared_main, &job);
    }
  }
  if (has_word(cases, "shared-live")) {
    for (uint64_t mib : {10, 64, 256}) {
      if (g_quick && mib != 10) continue;
      SharedJob job{0, mib};
      usgc_run_main(shared_main, &job);
    }
  }
  if (has_word(cases, "shared-busy")) usgc_run_main(busy_main, nullptr);
  if (has_word(cases, "stop-during-private-mark") && g_impl == "usgc")
    usgc_run_main(stop_main, nullptr);
  usgc_shutdown();
  if (g_impl == "usgc" && has_word(cases, "private")) run_one_pause_peer(argv[0], g_quick);
  if (g_impl == "usgc" && has_word(cases, "shared-busy")) {
    run_shared_busy_peers(argv[0], g_quick);
  }
  if (g_impl == "usgc" && (has_word(cases, "shared-parked") || has_word(cases, "shared-live") ||
                           has_word(cases, "shared-busy"))) {
    std::string peer_cases;
    if (has_word(cases, "shared-parked")) peer_cases += "shared-parked ";
    if (has_word(cases, "shared-live")) peer_cases += "shared-live ";
    if (has_word(cases, "shared-busy")) peer_cases += "shared-busy";
    run_stop_the_world_peer(argv[0], peer_cases, g_quick);
  }
  return g_errors == 0 ? 0 : 1;
}
