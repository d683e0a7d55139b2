// gc_costs: what the collector's operations cost, beside the seed's claims (docs/design.md "What
// the seed claims") and a peer measured in the same run — the program of suite=gc_costs
// (bench/run_gc_costs.sh runs it; bench/gc_instructions.sh runs its --callgrind-case mode).
//
// Every usgc case runs inside a goroutine (usgc_run_main). Objects are of one registered type,
// `Node`: 16 bytes, two reference fields (a 24-byte slot with its header). A reference held
// across an allocation is in a shadow-stack root (USGC_ROOTS); the collector is precise.
//
// Cases (--cases picks them; the default is "tsc alloc barrier pause-private pause-shared"):
//   tsc             the TSC rate: rdtsc against CLOCK_MONOTONIC over three 100 ms windows. Cycle
//                   figures below are TSC (reference) cycles at that rate, not core clock cycles:
//                   a core that turbos above the TSC rate does more per TSC cycle.
//   alloc-*         ns per object, allocating M objects in a loop and dropping them at once
//                   (so each figure includes the amortized collections that garbage causes):
//                     alloc-stack           usgc_alloc(STACK_LOCAL), a USGC_ROOTS frame popped
//                                           every 64 allocations (the pop frees them)
//                     alloc-private         usgc_alloc(GOROUTINE_PRIVATE)
//                     alloc-private-inline  usgc_alloc_private_fast with the type's layout
//                     alloc-shared          usgc_alloc(GOROUTINE_SHARED)
//                     alloc-global          usgc_alloc(GLOBAL_SHARED)
//                     alloc-malloc          impl=glibc: malloc(16), both fields set to null (usgc
//                                           objects come zeroed), free: the machine's peer
//                     alloc-malloc-batch64  impl=glibc: 64 mallocs, then their 64 frees
//                   metric=ns_per_object, tsc_cycles_per_object, ratio_vs_malloc (usgc / the
//                   malloc-free pair), and the seed's claim (impl=seed claim_low, claim_high in
//                   cycles: stack 1-2, private 3-5, shared 10-15, global 20-30).
//   barrier-*       ns per store, a ring of 1024 targets and 1024 values:
//                     barrier-plain         a plain store (the floor; impl=plain)
//                     barrier-same          usgc_write, target and value private: both old by
//                                           the time it is timed (the warm-up's collections
//                                           promote the rings), so usgc_write's second path
//                     barrier-cross         usgc_write, target GOROUTINE_SHARED, value shared:
//                                           the slow path (release store, card mark)
//                     barrier-publish       a new private object stored into a shared target:
//                                           the slow path publishes it. Measured as (allocate +
//                                           store) minus (allocate alone): metric=ns_per_publish
//                   claims: same-goroutine 2-3 cycles, cross-goroutine 8-12.
//   pause-private   a goroutine builds 1, 8, 64 MiB of live private trees, then C times: churns
//                   live/2 bytes of garbage, then usgc_gc_collect(USGC_GC_PRIVATE), timed here;
//                   p50/p99/max in ms. Claim 1-5 ms; target p99 < 1 ms. The live trees are
//                   counted afterwards (a wrong count is an ERROR line: nothing live may be lost).
//   pause-shared    16, 64, 256 MiB of live GOROUTINE_SHARED trees (grown in place), then C
//                   times: churn 1 MiB of shared garbage, usgc_gc_collect(USGC_GC_SHARED); then C
//                   times the same with USGC_GC_SHARED_MINOR (metrics minor_p50/p99/max).
//                   The pause is the collector's own (usgc_gc_stats.last_pause_ns: request to
//                   restart, time to safepoint and marking); collect_call is the whole call
//                   (sweeping after the restart included); ttsp is the stop's time to safepoint
//                   (usgc_runtime_stats.time_to_safepoint_last_ns). Claim 10-50 ms; target p99 <
//                   10 ms at 256 MiB. Only the collecting goroutine runs: ttsp is its floor.
//   scaling         (with --procs N, one runtime per process) 8 goroutines each build W lists of
//                   16 private nodes (usgc_alloc, usgc_write), keeping every 8th list in a ring of
//                   256 and dropping the rest; metric=mobjects_per_s of the whole,
//                   case=scaling-procs<N> (SAMPLE lines per repetition, RESULT with the median;
//                   --reps, default 3). run_gc_costs.sh runs --procs 1 and 2 and divides. The
//                   NOTE's idle_tail_percent: the P-time left without a worker at the end (the
//                   goroutines do not finish together; the floor's threads split work exactly).
//   scaling-floor   the same churn with malloc/free in 1 and 2 threads (the same total work):
//                   case=scaling-floor-threads1|2, ratio threads2/threads1: what this machine's
//                   two vCPUs give any program.
//
// --callgrind-case=<case> --count=N: runs only that case's loop, N times, inside the function
// callgrind_measured_loop (bench/gc_instructions.sh counts Ir inside it with --toggle-collect).
// Cases: stack, private, private-inline, shared, global, malloc, plain, barrier-same,
// barrier-cross, barrier-publish, alloc-for-publish.
//
// Output: RESULT, NOTE, SAMPLE lines (bench/run_all.sh's format); ERROR lines and exit status 1
// for a failed call or a wrong count. --quick: about 10x less work.
//
// Usage: gc_costs [--cases "..."] [--procs N] [--reps R] [--quick]
//        gc_costs --callgrind-case=<case> --count=N
//
// The cases live in bench/gc_costs_{alloc,barrier,pauses,scaling}.hpp, what they share in
// bench/gc_costs_support.hpp; this file holds the callgrind mode and the command line.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "bench/gc_costs_alloc.hpp"
#include "bench/gc_costs_barrier.hpp"
#include "bench/gc_costs_pauses.hpp"
#include "bench/gc_costs_scaling.hpp"
#include "bench/gc_costs_support.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"

namespace {

using namespace usgc::bench::gc_costs;
using usgc::bench::has_word;
using usgc::bench::words;

// ---- callgrind mode --------------------------------------------------------------------------

struct CallgrindJob {
  std::string which;
  uint64_t count = 0;
  bool known = true;
};

// The only function bench/gc_instructions.sh counts (--toggle-collect): its Ir over two counts.
__attribute__((noinline)) void callgrind_measured_loop(const std::string& which, uint64_t count,
                                                       Node* const* targets, void* const* values) {
  if (which == "stack")
    loop_stack(count);
  else if (which == "private")
    loop_usgc_alloc(count, USGC_GOROUTINE_PRIVATE);
  else if (which == "private-inline")
    loop_private_inline(count);
  else if (which == "shared")
    loop_usgc_alloc(count, USGC_GOROUTINE_SHARED);
  else if (which == "global")
    loop_usgc_alloc(count, USGC_GLOBAL_SHARED);
  else if (which == "malloc")
    loop_malloc(count);
  else if (which == "plain")
    loop_store<Store::kPlain>(targets, values, count);
  else if (which == "barrier-same" || which == "barrier-cross")
    loop_store<Store::kUsgc>(targets, values, count);
  else if (which == "barrier-publish")
    loop_publish(targets, count);
  else if (which == "alloc-for-publish")
    loop_alloc_for_publish(count);
}

void callgrind_main(void* argument) {
  auto* job = static_cast<CallgrindJob*>(argument);
  g_case = "callgrind-" + job->which;
  USGC_ROOTS(rings, 2);
  std::vector<Node*> targets, values;
  bool shared = job->which == "barrier-cross" || job->which == "barrier-publish";
  make_ring(&rings[0], shared ? USGC_GOROUTINE_SHARED : USGC_GOROUTINE_PRIVATE, &targets);
  make_ring(&rings[1], shared ? USGC_GOROUTINE_SHARED : USGC_GOROUTINE_PRIVATE, &values);
  callgrind_measured_loop(job->which, job->count, targets.data(),
                          reinterpret_cast<void* const*>(values.data()));
}

// ---- main ------------------------------------------------------------------------------------

int usage() {
  std::fprintf(stderr,
               "usage: gc_costs [--cases \"tsc alloc barrier pause-private pause-shared\"] [--reps "
               "R] [--quick]\n"
               "       gc_costs --cases scaling --procs N [--quick]\n"
               "       gc_costs --cases scaling-floor [--quick]\n"
               "       gc_costs --callgrind-case=<case> --count=N\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cases = "tsc alloc barrier pause-private pause-shared";
  bool quick = false;
  int reps = 0;
  uint32_t procs = 0;
  std::string callgrind_case;
  uint64_t callgrind_count = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--cases" && has_value)
      cases = argv[++i];
    else if (arg == "--reps" && has_value)
      reps = std::atoi(argv[++i]);
    else if (arg == "--procs" && has_value)
      procs = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    else if (arg == "--quick")
      quick = true;
    else if (arg.rfind("--callgrind-case=", 0) == 0)
      callgrind_case = arg.substr(17);
    else if (arg.rfind("--count=", 0) == 0)
      callgrind_count = std::strtoull(arg.c_str() + 8, nullptr, 10);
    else
      return usage();
  }
  bool reps_given = reps > 0;
  if (!reps_given) reps = quick ? 3 : 7;
  int scaling_reps = reps_given ? reps : (quick ? 1 : 3);

  if (has_word(cases, "scaling-floor") && callgrind_case.empty()) {
    scaling_floor(quick ? 12500 : 125000, scaling_reps);
    if (words(cases).size() == 1) return 0;
  }
  if (has_word(cases, "tsc") && callgrind_case.empty()) measure_tsc();

  usgc_config config;
  check(usgc_config_from_environment(&config), "setup", "usgc_config_from_environment");
  if (procs != 0) config.procs = procs;
  check(usgc_init(&config), "setup", "usgc_init");
  static const size_t kOffsets[] = {offsetof(Node, left), offsetof(Node, right)};
  usgc_type_info info{};
  info.name = "Node";
  info.kind = USGC_KIND_OBJECT;
  info.size = sizeof(Node);
  info.pointer_offsets = kOffsets;
  info.pointer_count = 2;
  g_node_type = usgc_register_type(&info);
  if (g_node_type == 0)
    fail("setup", std::string("usgc_register_type failed: ") + usgc_last_error());
  check(usgc_type_layout_of(g_node_type, &g_node_layout), "setup", "usgc_type_layout_of");

  if (!callgrind_case.empty()) {
    CallgrindJob job{callgrind_case, callgrind_count};
    static const char* kKnown[] = {
        "stack", "private",      "private-inline", "shared",          "global",           "malloc",
        "plain", "barrier-same", "barrier-cross",  "barrier-publish", "alloc-for-publish"};
    if (std::find_if(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return callgrind_case == k; }) == std::end(kKnown) ||
        callgrind_count == 0)
      return usage();
    check(usgc_run_main(callgrind_main, &job), "callgrind", "usgc_run_main");
    wait_for_goroutines();
    check(usgc_shutdown(), "callgrind", "usgc_shutdown");
    return 0;
  }

  usgc_runtime_stats runtime_stats{};
  runtime_stats.version = USGC_RUNTIME_STATS_VERSION;
  check(usgc_runtime_get_stats(&runtime_stats), "setup", "usgc_runtime_get_stats");
  std::printf("NOTE suite=gc_costs procs=%u quick=%d reps=%d node_bytes=%zu slot_bytes=%u\n",
              runtime_stats.procs, quick ? 1 : 0, reps, sizeof(Node), g_node_layout.slot_bytes);
  std::fflush(stdout);

  if (has_word(cases, "alloc")) {
    CostJob job{quick ? 200000u : 2000000u, reps};
    check(usgc_run_main(alloc_main, &job), "alloc", "usgc_run_main");
    wait_for_goroutines();
  }
  if (has_word(cases, "barrier")) {
    CostJob job{quick ? 2000000u : 20000000u, reps};
    check(usgc_run_main(barrier_main, &job), "barrier", "usgc_run_main");
    wait_for_goroutines();
  }
  if (has_word(cases, "pause-private")) {
    for (uint64_t mib : {1, 8, 64}) {
      PauseJob job{mib, quick ? (mib == 64 ? 3 : 10) : (mib == 1 ? 200 : mib == 8 ? 60 : 20)};
      check(usgc_run_main(private_pause_main, &job), "pause-private", "usgc_run_main");
      wait_for_goroutines();
    }
  }
  if (has_word(cases, "pause-shared")) {
    SharedPauseJob job;
    job.live_mib = {16, 64, 256};
    job.collections = quick ? std::vector<int>{5, 3, 2} : std::vector<int>{40, 20, 10};
    check(usgc_run_main(shared_pause_main, &job), "pause-shared", "usgc_run_main");
    wait_for_goroutines();
  }
  if (has_word(cases, "scaling")) {
    scaling(runtime_stats.procs, quick ? 12500 : 125000, scaling_reps);
  }
  check(usgc_shutdown(), "shutdown", "usgc_shutdown");
  return 0;
}
