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
//                   --reps, default 3). run_gc_costs.sh runs --procs 1 and 2 and divides.
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
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace {

using usgc::bench::has_word;
using usgc::bench::median;
using usgc::bench::now_ns;
using usgc::bench::percentile;
using usgc::bench::words;

struct Node {
  void* left;
  void* right;
};

usgc_type_id g_node_type = 0;      // registered in main, then read-only
usgc_type_layout g_node_layout{};  // its layout, for the inline fast path
int g_errors = 0;

// ---- output ----------------------------------------------------------------------------------

void result(const std::string& case_name, const char* impl, const char* metric, double value,
            const char* unit) {
  std::printf("RESULT suite=gc_costs case=%s impl=%s metric=%s value=%.3f unit=%s\n",
              case_name.c_str(), impl, metric, value, unit);
  std::fflush(stdout);
}

[[noreturn]] void fail(const std::string& case_name, const std::string& reason) {
  std::printf("ERROR suite=gc_costs case=%s impl=usgc reason=\"%s\"\n", case_name.c_str(),
              reason.c_str());
  std::fflush(stdout);
  std::exit(1);
}

void check(int error, const char* case_name, const char* what) {
  if (error != 0) fail(case_name, std::string(what) + " failed: " + std::strerror(error));
}

std::string g_case = "setup";  // the case running, for fail() from deep inside

[[noreturn]] void fail_alloc(const char* what) {
  int error = errno;
  fail(g_case, std::string(what) + " failed: " + std::strerror(error) + ": " + usgc_last_error());
}

inline void escape(void* p) {
  asm volatile("" : : "r"(p) : "memory");
}

// ---- the TSC ---------------------------------------------------------------------------------

double g_tsc_ghz = 0;  // 0: not measured (cycles are then not printed)

void measure_tsc() {
  std::vector<double> rates;
  for (int i = 0; i < 3; ++i) {
    uint64_t t0 = now_ns();
    uint64_t c0 = __rdtsc();
    while (now_ns() - t0 < 100000000) {
    }
    uint64_t c1 = __rdtsc();
    uint64_t t1 = now_ns();
    rates.push_back(static_cast<double>(c1 - c0) / static_cast<double>(t1 - t0));
  }
  std::sort(rates.begin(), rates.end());
  double spread = (rates.back() - rates.front()) / rates[1] * 100.0;
  g_tsc_ghz = rates[1];
  result("tsc", "machine", "tsc_ghz", g_tsc_ghz, "GHz");
  std::printf(
      "NOTE suite=gc_costs case=tsc rdtsc against CLOCK_MONOTONIC over 3 windows of 100 ms: "
      "%.4f GHz (spread %.3f%%); cycle figures are TSC reference cycles at this rate "
      "(constant_tsc), not core cycles\n",
      g_tsc_ghz, spread);
  if (spread > 1.0) {
    std::printf("NOTE suite=gc_costs case=tsc spread above 1%%: cycle figures are not printed\n");
    g_tsc_ghz = 0;
  }
  std::fflush(stdout);
}

// ---- allocation ------------------------------------------------------------------------------

void* new_node(usgc_ownership ownership) {
  void* node = usgc_alloc(g_node_type, ownership);
  if (node == nullptr) fail_alloc("usgc_alloc");
  return node;
}

inline void* new_node_inline() {
  void* node = usgc_alloc_private_fast(&g_node_layout);
  if (node == nullptr) fail_alloc("usgc_alloc_private_fast");
  return node;
}

constexpr uint64_t kStackFrameObjects = 64;

__attribute__((noinline)) void loop_stack(uint64_t count) {
  for (uint64_t done = 0; done < count; done += kStackFrameObjects) {
    USGC_ROOTS(frame, 1);
    for (uint64_t i = 0; i < kStackFrameObjects; ++i) escape(new_node(USGC_STACK_LOCAL));
  }
}

__attribute__((noinline)) void loop_usgc_alloc(uint64_t count, usgc_ownership ownership) {
  for (uint64_t i = 0; i < count; ++i) escape(new_node(ownership));
}

__attribute__((noinline)) void loop_private_inline(uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) escape(new_node_inline());
}

__attribute__((noinline)) void loop_malloc(uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    auto* node = static_cast<Node*>(std::malloc(sizeof(Node)));
    if (node == nullptr) fail("alloc-malloc", "malloc failed");
    node->left = node->right = nullptr;
    escape(node);
    std::free(node);
  }
}

__attribute__((noinline)) void loop_malloc_batch(uint64_t count) {
  Node* batch[64];
  for (uint64_t done = 0; done < count; done += 64) {
    for (auto& slot : batch) {
      slot = static_cast<Node*>(std::malloc(sizeof(Node)));
      if (slot == nullptr) fail("alloc-malloc-batch64", "malloc failed");
      slot->left = slot->right = nullptr;
      escape(slot);
    }
    for (Node* node : batch) std::free(node);
  }
}

struct AllocCase {
  const char* name;
  const char* impl;
  double claim_low, claim_high;  // cycles; 0: no claim
  std::function<void(uint64_t)> run;
};

std::vector<AllocCase> alloc_cases() {
  return {
      {"alloc-stack", "usgc", 1, 2, [](uint64_t n) { loop_stack(n); }},
      {"alloc-private", "usgc", 3, 5,
       [](uint64_t n) { loop_usgc_alloc(n, USGC_GOROUTINE_PRIVATE); }},
      {"alloc-private-inline", "usgc", 3, 5, [](uint64_t n) { loop_private_inline(n); }},
      {"alloc-shared", "usgc", 10, 15,
       [](uint64_t n) { loop_usgc_alloc(n, USGC_GOROUTINE_SHARED); }},
      {"alloc-global", "usgc", 20, 30, [](uint64_t n) { loop_usgc_alloc(n, USGC_GLOBAL_SHARED); }},
      {"alloc-malloc", "glibc", 0, 0, [](uint64_t n) { loop_malloc(n); }},
      {"alloc-malloc-batch64", "glibc", 0, 0, [](uint64_t n) { loop_malloc_batch(n); }},
  };
}

// Prints a cost with its TSC-cycle equivalent and the seed's claim beside it.
void cost_results(const std::string& name, const char* impl, const char* metric, double ns,
                  double claim_low, double claim_high, const char* per) {
  result(name, impl, metric, ns, "ns");
  if (g_tsc_ghz > 0) {
    std::string cycles_metric = std::string("tsc_cycles_per_") + per;
    result(name, impl, cycles_metric.c_str(), ns * g_tsc_ghz, "cycles");
  }
  if (claim_high > 0) {
    result(name, "seed", "claim_low", claim_low, "cycles");
    result(name, "seed", "claim_high", claim_high, "cycles");
    if (g_tsc_ghz > 0) {
      std::printf(
          "NOTE suite=gc_costs case=%s measured %.2f ns = %.1f TSC cycles per %s at %.3f GHz; "
          "seed claims %g-%g cycles (%.2f-%.2f ns at that rate): %.1fx the claim's high end\n",
          name.c_str(), ns, ns * g_tsc_ghz, per, g_tsc_ghz, claim_low, claim_high,
          claim_low / g_tsc_ghz, claim_high / g_tsc_ghz, ns * g_tsc_ghz / claim_high);
    } else {
      std::printf(
          "NOTE suite=gc_costs case=%s measured %.2f ns per %s; seed claims %g-%g cycles "
          "(no trustworthy TSC rate: not converted)\n",
          name.c_str(), ns, per, claim_low, claim_high);
    }
  }
  std::fflush(stdout);
}

struct StatsSnapshot {
  usgc_gc_stats gc{};
  StatsSnapshot() {
    gc.version = USGC_GC_STATS_VERSION;
    if (usgc_gc_get_stats(&gc) != 0) fail(g_case, "usgc_gc_get_stats failed");
  }
};

struct CostJob {
  uint64_t count = 0;
  int reps = 0;
};

void alloc_main(void* argument) {
  const auto* job = static_cast<const CostJob*>(argument);
  std::vector<AllocCase> cases = alloc_cases();
  std::map<std::string, std::vector<double>> samples;
  std::map<std::string, uint64_t> private_collections, shared_collections;
  for (const AllocCase& c : cases) {  // warm-up: blocks, runs, the arena
    g_case = c.name;
    c.run(std::max<uint64_t>(job->count / 10, kStackFrameObjects));
  }
  for (int rep = 0; rep < job->reps; ++rep) {
    for (size_t k = 0; k < cases.size(); ++k) {
      const AllocCase& c = cases[(k + static_cast<size_t>(rep)) % cases.size()];
      g_case = c.name;
      StatsSnapshot before;
      uint64_t start = now_ns();
      c.run(job->count);
      uint64_t elapsed = now_ns() - start;
      StatsSnapshot after;
      samples[c.name].push_back(static_cast<double>(elapsed) / static_cast<double>(job->count));
      private_collections[c.name] += after.gc.private_collections - before.gc.private_collections;
      shared_collections[c.name] += after.gc.shared_collections - before.gc.shared_collections;
    }
  }
  double malloc_ns = median(samples["alloc-malloc"]);
  for (const AllocCase& c : cases) {
    double ns = median(samples[c.name]);
    cost_results(c.name, c.impl, "ns_per_object", ns, c.claim_low, c.claim_high, "object");
    if (std::strcmp(c.impl, "usgc") == 0) {
      result(c.name, c.impl, "ratio_vs_malloc", ns / malloc_ns, "ratio");
      std::printf(
          "NOTE suite=gc_costs case=%s objects=%" PRIu64 " reps=%d private_collections=%" PRIu64
          " shared_collections=%" PRIu64 " (in all repetitions; their cost is in the figure)\n",
          c.name, job->count, job->reps, private_collections[c.name], shared_collections[c.name]);
    }
  }
  std::fflush(stdout);
}

// ---- barriers --------------------------------------------------------------------------------

constexpr size_t kRing = 1024;

enum class Store { kPlain, kUsgc };

template <Store kStore>
__attribute__((noinline)) void loop_store(Node* const* targets, void* const* values,
                                          uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    Node* target = targets[i & (kRing - 1)];
    void* value = values[(i * 7) & (kRing - 1)];
    if constexpr (kStore == Store::kPlain) {
      target->left = value;
    } else {
      usgc_write(target, &target->left, value);
    }
    asm volatile("" : : : "memory");
  }
}

// A fresh private object per store, into a shared target: each store publishes one object.
__attribute__((noinline)) void loop_publish(Node* const* targets, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    void* value = new_node_inline();
    Node* target = targets[i & (kRing - 1)];
    usgc_write(target, &target->left, value);
    asm volatile("" : : : "memory");
  }
}

// The same allocations without the store: what loop_publish costs besides publishing.
__attribute__((noinline)) void loop_alloc_for_publish(uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    escape(new_node_inline());
    asm volatile("" : : : "memory");
  }
}

// Fills slot `slot` of the frame with a ref array of kRing nodes of `ownership`, and `out` with
// the raw pointers (valid while the array is rooted: the collector never moves objects).
void make_ring(void** slot, usgc_ownership ownership, std::vector<Node*>* out) {
  *slot = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kRing, ownership);
  if (*slot == nullptr) fail_alloc("usgc_alloc_array");
  for (size_t i = 0; i < kRing; ++i) usgc_array_write(*slot, i, new_node(ownership));
  out->clear();
  for (size_t i = 0; i < kRing; ++i) out->push_back(static_cast<Node*>(usgc_array_read(*slot, i)));
}

void barrier_main(void* argument) {
  const auto* job = static_cast<const CostJob*>(argument);
  g_case = "barrier";
  USGC_ROOTS(rings, 3);  // private targets, private values, shared nodes
  std::vector<Node*> private_targets, private_values, shared_nodes;
  make_ring(&rings[0], USGC_GOROUTINE_PRIVATE, &private_targets);
  make_ring(&rings[1], USGC_GOROUTINE_PRIVATE, &private_values);
  make_ring(&rings[2], USGC_GOROUTINE_SHARED, &shared_nodes);
  if (usgc_ownership_of(shared_nodes[0]) != USGC_GOROUTINE_SHARED ||
      usgc_ownership_of(private_targets[0]) != USGC_GOROUTINE_PRIVATE)
    fail("barrier", "ring objects have the wrong ownership class");
  auto* pv = reinterpret_cast<void* const*>(private_values.data());
  auto* sv = reinterpret_cast<void* const*>(shared_nodes.data());
  uint64_t publish_count = std::max<uint64_t>(job->count / 10, 1000);
  struct Variant {
    const char* name;
    uint64_t count;
    std::function<void(uint64_t)> run;
  };
  std::vector<Variant> variants = {
      {"barrier-plain", job->count,
       [&](uint64_t n) { loop_store<Store::kPlain>(private_targets.data(), pv, n); }},
      {"barrier-same", job->count,
       [&](uint64_t n) { loop_store<Store::kUsgc>(private_targets.data(), pv, n); }},
      {"barrier-cross", job->count,
       [&](uint64_t n) { loop_store<Store::kUsgc>(shared_nodes.data(), sv, n); }},
      {"barrier-publish", publish_count, [&](uint64_t n) { loop_publish(shared_nodes.data(), n); }},
      {"alloc-for-publish", publish_count, [&](uint64_t n) { loop_alloc_for_publish(n); }},
  };
  std::map<std::string, std::vector<double>> samples;
  for (const Variant& v : variants) v.run(std::max<uint64_t>(v.count / 10, 1));  // warm-up
  StatsSnapshot before;
  for (int rep = 0; rep < job->reps; ++rep) {
    for (size_t k = 0; k < variants.size(); ++k) {
      const Variant& v = variants[(k + static_cast<size_t>(rep)) % variants.size()];
      g_case = v.name;
      uint64_t start = now_ns();
      v.run(v.count);
      uint64_t elapsed = now_ns() - start;
      samples[v.name].push_back(static_cast<double>(elapsed) / static_cast<double>(v.count));
      // Published garbage counts toward no shared budget: collect it here, untimed.
      if (std::strcmp(v.name, "barrier-publish") == 0)
        check(usgc_gc_collect(USGC_GC_SHARED), v.name, "usgc_gc_collect");
    }
  }
  StatsSnapshot after;
  // The stores into shared targets left shared values there: still no private object in them.
  for (Node* node : shared_nodes) {
    void* value = usgc_read(node, &node->left);
    if (value != nullptr && usgc_ownership_of(value) != USGC_GOROUTINE_SHARED)
      fail("barrier-publish", "a shared object refers to an object that is not shared");
  }
  double plain = median(samples["barrier-plain"]);
  cost_results("barrier-plain", "plain", "ns_per_store", plain, 0, 0, "store");
  double same = median(samples["barrier-same"]);
  cost_results("barrier-same", "usgc", "ns_per_store", same, 2, 3, "store");
  result("barrier-same", "usgc", "ratio_vs_plain_store", same / plain, "ratio");
  double cross = median(samples["barrier-cross"]);
  cost_results("barrier-cross", "usgc", "ns_per_store", cross, 8, 12, "store");
  result("barrier-cross", "usgc", "ratio_vs_plain_store", cross / plain, "ratio");
  double with_store = median(samples["barrier-publish"]);
  double alloc_only = median(samples["alloc-for-publish"]);
  result("barrier-publish", "usgc", "ns_per_alloc_and_publishing_store", with_store, "ns");
  result("barrier-publish", "usgc", "ns_per_alloc_only", alloc_only, "ns");
  cost_results("barrier-publish", "usgc", "ns_per_publish", with_store - alloc_only, 0, 0,
               "publish");
  std::printf("NOTE suite=gc_costs case=barrier stores=%" PRIu64 " publishing_stores=%" PRIu64
              " reps=%d barrier_slow_paths=%" PRIu64 " objects_published=%" PRIu64
              " (the slow path counts itself in a process-wide atomic counter)\n",
              job->count, publish_count, job->reps,
              after.gc.barrier_slow_paths - before.gc.barrier_slow_paths,
              after.gc.objects_published - before.gc.objects_published);
  std::fflush(stdout);
}

// ---- pauses ----------------------------------------------------------------------------------

constexpr int kTreeDepth = 10;  // 2047 nodes
constexpr uint64_t kTreeNodes = (uint64_t{2} << kTreeDepth) - 1;
constexpr uint64_t kSlotBytes = 24;                       // header + 16-byte payload
constexpr uint64_t kTreeBytes = kTreeNodes * kSlotBytes;  // about 48 KiB

void* build_tree(int depth, usgc_ownership ownership) {
  if (depth == 0) return new_node(ownership);
  USGC_ROOTS(children, 2);
  children[0] = build_tree(depth - 1, ownership);
  children[1] = build_tree(depth - 1, ownership);
  auto* node = static_cast<Node*>(new_node(ownership));
  usgc_write(node, &node->left, children[0]);
  usgc_write(node, &node->right, children[1]);
  return node;
}

uint64_t count_tree(const void* tree) {
  const auto* node = static_cast<const Node*>(tree);
  const void* left = usgc_read(node, &node->left);
  const void* right = usgc_read(node, &node->right);
  if ((left == nullptr) != (right == nullptr)) return 1u << 30;  // malformed: fails the count
  if (left == nullptr) return 1;
  return 1 + count_tree(left) + count_tree(right);
}

// Allocates `bytes` of garbage: trees of depth 6 of `ownership`, dropped at once.
void churn(uint64_t bytes, usgc_ownership ownership) {
  const uint64_t per_tree = ((uint64_t{2} << 6) - 1) * kSlotBytes;
  for (uint64_t done = 0; done < bytes; done += per_tree) escape(build_tree(6, ownership));
}

// Grows the forest in root slot `forest` (a ref array of `capacity`) to `trees` trees.
void grow_forest(void** forest, uint64_t* have, uint64_t trees, usgc_ownership ownership) {
  USGC_ROOTS(tree, 1);
  for (; *have < trees; ++*have) {
    tree[0] = build_tree(kTreeDepth, ownership);
    usgc_array_write(*forest, *have, tree[0]);
    usgc_safepoint_poll();
  }
}

void check_forest(const std::string& name, void* forest, uint64_t trees) {
  uint64_t nodes = 0;
  for (uint64_t i = 0; i < trees; ++i) nodes += count_tree(usgc_array_read(forest, i));
  if (nodes != trees * kTreeNodes) {
    fail(name, "live trees lost or changed by collections: counted " + std::to_string(nodes) +
                   " nodes, expected " + std::to_string(trees * kTreeNodes));
  }
}

void pause_results(const std::string& name, const char* metric_prefix, std::vector<uint64_t> ns,
                   const char* unit = "ms") {
  std::sort(ns.begin(), ns.end());
  double scale = std::strcmp(unit, "ms") == 0 ? 1e6 : 1e3;
  std::string p = metric_prefix;
  result(name, "usgc", (p + "p50").c_str(), static_cast<double>(percentile(ns, 0.50)) / scale,
         unit);
  result(name, "usgc", (p + "p99").c_str(), static_cast<double>(percentile(ns, 0.99)) / scale,
         unit);
  result(name, "usgc", (p + "max").c_str(), static_cast<double>(ns.back()) / scale, unit);
}

// Upper bound (us) of the histogram bucket holding quantile q (buckets of usgc/gc.h).
double histogram_quantile_us(const uint64_t* after, const uint64_t* before, double q,
                             uint64_t* count) {
  uint64_t total = 0;
  for (int i = 0; i < USGC_GC_HISTOGRAM_BUCKETS; ++i) total += after[i] - before[i];
  *count = total;
  uint64_t seen = 0;
  for (int i = 0; i < USGC_GC_HISTOGRAM_BUCKETS; ++i) {
    seen += after[i] - before[i];
    if (total > 0 && static_cast<double>(seen) >= q * static_cast<double>(total))
      return static_cast<double>(uint64_t{1} << i);
  }
  return 0;
}

struct PauseJob {
  uint64_t live_mib = 0;
  int collections = 0;
};

void private_pause_main(void* argument) {
  const auto* job = static_cast<const PauseJob*>(argument);
  std::string name = "pause-private-live" + std::to_string(job->live_mib) + "mib";
  g_case = name;
  uint64_t trees = std::max<uint64_t>(job->live_mib * (1u << 20) / kTreeBytes, 1);
  USGC_ROOTS(roots, 1);
  roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, trees, USGC_GOROUTINE_PRIVATE);
  if (roots[0] == nullptr) fail_alloc("usgc_alloc_array");
  uint64_t have = 0;
  grow_forest(&roots[0], &have, trees, USGC_GOROUTINE_PRIVATE);
  check(usgc_gc_collect(USGC_GC_PRIVATE), name.c_str(), "usgc_gc_collect");
  StatsSnapshot before;
  std::vector<uint64_t> pauses;
  for (int i = 0; i < job->collections; ++i) {
    churn(trees * kTreeBytes / 2, USGC_GOROUTINE_PRIVATE);
    uint64_t start = now_ns();
    check(usgc_gc_collect(USGC_GC_PRIVATE), name.c_str(), "usgc_gc_collect");
    pauses.push_back(now_ns() - start);
  }
  StatsSnapshot after;
  check_forest(name, roots[0], trees);
  pause_results(name, "", pauses);
  result(name, "seed", "claim_low", 1, "ms");
  result(name, "seed", "claim_high", 5, "ms");
  result(name, "target", "p99_target", 1, "ms");
  uint64_t all = 0;
  double hist_p50 = histogram_quantile_us(after.gc.private_pause_histogram,
                                          before.gc.private_pause_histogram, 0.5, &all);
  double hist_p99 = histogram_quantile_us(after.gc.private_pause_histogram,
                                          before.gc.private_pause_histogram, 0.99, &all);
  std::printf("NOTE suite=gc_costs case=%s live_trees=%" PRIu64
              " live_mib=%.1f (slot bytes)"
              " timed_collections=%d garbage_per_collection_mib=%.1f; stats histogram (timed plus "
              "budget-triggered"
              " collections): %" PRIu64 " collections, p50 < %.0f us, p99 < %.0f us\n",
              name.c_str(), trees, static_cast<double>(trees * kTreeBytes) / (1 << 20),
              job->collections, static_cast<double>(trees * kTreeBytes / 2) / (1 << 20), all,
              hist_p50, hist_p99);
  std::fflush(stdout);
}

struct SharedPauseJob {
  std::vector<uint64_t> live_mib;
  std::vector<int> collections;
};

uint64_t runtime_ttsp_last_ns(uint64_t* stops) {
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  check(usgc_runtime_get_stats(&stats), g_case.c_str(), "usgc_runtime_get_stats");
  *stops = stats.stops;
  return stats.time_to_safepoint_last_ns;
}

void shared_pause_main(void* argument) {
  const auto* job = static_cast<const SharedPauseJob*>(argument);
  uint64_t capacity = job->live_mib.back() * (1u << 20) / kTreeBytes;
  USGC_ROOTS(roots, 1);
  g_case = "pause-shared";
  roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, capacity, USGC_GOROUTINE_SHARED);
  if (roots[0] == nullptr) fail_alloc("usgc_alloc_array");
  uint64_t have = 0;
  for (size_t k = 0; k < job->live_mib.size(); ++k) {
    std::string name = "pause-shared-live" + std::to_string(job->live_mib[k]) + "mib";
    g_case = name;
    uint64_t trees = job->live_mib[k] * (1u << 20) / kTreeBytes;
    uint64_t build_start = now_ns();
    grow_forest(&roots[0], &have, trees, USGC_GOROUTINE_SHARED);
    uint64_t build_ns = now_ns() - build_start;
    check(usgc_gc_collect(USGC_GC_SHARED), name.c_str(), "usgc_gc_collect");
    StatsSnapshot before;
    std::vector<uint64_t> pauses, calls, ttsps;
    for (int i = 0; i < job->collections[k]; ++i) {
      churn(1u << 20, USGC_GOROUTINE_SHARED);
      uint64_t stops_before = 0, stops_after = 0;
      runtime_ttsp_last_ns(&stops_before);
      uint64_t start = now_ns();
      check(usgc_gc_collect(USGC_GC_SHARED), name.c_str(), "usgc_gc_collect");
      calls.push_back(now_ns() - start);
      StatsSnapshot stats;
      pauses.push_back(stats.gc.last_pause_ns);
      uint64_t ttsp = runtime_ttsp_last_ns(&stops_after);
      if (stops_after == stops_before + 1) ttsps.push_back(ttsp);
    }
    // The same churn collected by minor (generational) collections: the live forest is old.
    std::vector<uint64_t> minor_pauses;
    for (int i = 0; i < job->collections[k]; ++i) {
      churn(1u << 20, USGC_GOROUTINE_SHARED);
      check(usgc_gc_collect(USGC_GC_SHARED_MINOR), name.c_str(), "usgc_gc_collect(minor)");
      StatsSnapshot stats;
      minor_pauses.push_back(stats.gc.last_pause_ns);
    }
    StatsSnapshot after;
    check_forest(name, roots[0], trees);
    pause_results(name, "", pauses);
    pause_results(name, "minor_", minor_pauses);
    pause_results(name, "collect_call_", calls);
    if (!ttsps.empty()) pause_results(name, "ttsp_", ttsps, "us");
    result(name, "seed", "claim_low", 10, "ms");
    result(name, "seed", "claim_high", 50, "ms");
    if (k + 1 == job->live_mib.size()) result(name, "target", "p99_target", 10, "ms");
    std::printf("NOTE suite=gc_costs case=%s live_trees=%" PRIu64
                " live_mib=%.1f (slot bytes)"
                " shared_bytes_in_use_mib=%.1f collections=%d build_s=%.2f"
                " shared_collections_in_all=%" PRIu64 " shared_pause_max_ms_since_start=%.2f\n",
                name.c_str(), trees, static_cast<double>(trees * kTreeBytes) / (1 << 20),
                static_cast<double>(after.gc.bytes_in_use[USGC_GOROUTINE_SHARED]) / (1 << 20),
                job->collections[k], static_cast<double>(build_ns) / 1e9,
                after.gc.shared_collections,
                static_cast<double>(after.gc.shared_pause_max_ns) / 1e6);
    std::fflush(stdout);
  }
}

// ---- scaling ---------------------------------------------------------------------------------

constexpr int kScalingWorkers = 8;
constexpr int kListNodes = 16;
constexpr int kKeepEvery = 8;
constexpr size_t kLiveLists = 256;

struct ScalingJob {
  uint64_t lists_per_worker = 0;
  usgc_waitgroup done = USGC_WAITGROUP_INIT;
  std::atomic<uint64_t> wrong{0};
};

void scaling_worker(void* argument) {
  auto* job = static_cast<ScalingJob*>(argument);
  {
    USGC_ROOTS(roots, 2);  // the ring of kept lists, the list being built
    roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kLiveLists, USGC_GOROUTINE_PRIVATE);
    if (roots[0] == nullptr) fail_alloc("usgc_alloc_array");
    for (uint64_t i = 0; i < job->lists_per_worker; ++i) {
      roots[1] = nullptr;
      for (int n = 0; n < kListNodes; ++n) {
        auto* node = static_cast<Node*>(new_node(USGC_GOROUTINE_PRIVATE));
        usgc_write(node, &node->left, roots[1]);
        roots[1] = node;
      }
      if (i % kKeepEvery == 0) usgc_array_write(roots[0], (i / kKeepEvery) % kLiveLists, roots[1]);
      usgc_safepoint_poll();
    }
    for (size_t k = 0; k < kLiveLists; ++k) {  // every kept list is whole
      const void* list = usgc_array_read(roots[0], k);
      if (list == nullptr) continue;
      int length = 0;
      for (const Node* n = static_cast<const Node*>(list); n != nullptr;
           n = static_cast<const Node*>(usgc_read(n, &n->left)))
        ++length;
      if (length != kListNodes) job->wrong.fetch_add(1, std::memory_order_relaxed);
    }
  }
  check(usgc_waitgroup_done(&job->done), "scaling", "usgc_waitgroup_done");
}

struct ScalingRun {
  uint64_t lists_per_worker = 0;
  uint64_t elapsed_ns = 0;
  uint64_t wrong = 0;
};

void scaling_main(void* argument) {
  auto* run = static_cast<ScalingRun*>(argument);
  ScalingJob job;
  job.lists_per_worker = run->lists_per_worker;
  uint64_t start = now_ns();
  check(usgc_waitgroup_add(&job.done, kScalingWorkers), "scaling", "usgc_waitgroup_add");
  for (int w = 0; w < kScalingWorkers; ++w)
    check(usgc_go(scaling_worker, &job, nullptr), "scaling", "usgc_go");
  check(usgc_waitgroup_wait(&job.done), "scaling", "usgc_waitgroup_wait");
  run->elapsed_ns = now_ns() - start;
  run->wrong = job.wrong.load();
}

void wait_for_goroutines() {
  for (int i = 0; i < 100000 && usgc_goroutine_count() != 0; ++i) {
    timespec pause{0, 100000};
    nanosleep(&pause, nullptr);
  }
}

void scaling(uint32_t procs, uint64_t lists_per_worker, int reps) {
  std::string name = "scaling-procs" + std::to_string(procs);
  g_case = name;
  ScalingRun warm{std::max<uint64_t>(lists_per_worker / 10, 1), 0, 0};
  check(usgc_run_main(scaling_main, &warm), name.c_str(), "usgc_run_main");
  wait_for_goroutines();
  std::vector<double> rates;
  const double objects = static_cast<double>(lists_per_worker) * kScalingWorkers * kListNodes;
  for (int rep = 0; rep < reps; ++rep) {
    ScalingRun run{lists_per_worker, 0, 0};
    check(usgc_run_main(scaling_main, &run), name.c_str(), "usgc_run_main");
    wait_for_goroutines();
    if (run.wrong != 0 || warm.wrong != 0) fail(name, "a kept list lost nodes");
    double rate = objects / (static_cast<double>(run.elapsed_ns) / 1e9) / 1e6;
    rates.push_back(rate);
    std::printf(
        "SAMPLE suite=gc_costs case=%s impl=usgc metric=mobjects_per_s value=%.3f unit=Mobj/s\n",
        name.c_str(), rate);
  }
  result(name, "usgc", "mobjects_per_s", median(rates), "Mobj/s");
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  usgc_gc_get_stats(&stats);
  std::printf(
      "NOTE suite=gc_costs case=%s goroutines=%d objects_per_rep=%.0f reps=%d "
      "private_collections=%" PRIu64 " private_pause_max_ms=%.3f\n",
      name.c_str(), kScalingWorkers, objects, reps, stats.private_collections,
      static_cast<double>(stats.private_pause_max_ns) / 1e6);
  std::fflush(stdout);
}

// The malloc floor: the same lists with malloc/free, the 8 workers' work split among `threads`.
uint64_t malloc_churn(uint64_t lists) {
  std::vector<Node*> ring(kLiveLists, nullptr);
  auto release = [](Node* list) {
    while (list != nullptr) {
      Node* next = static_cast<Node*>(list->left);
      std::free(list);
      list = next;
    }
  };
  for (uint64_t i = 0; i < lists; ++i) {
    Node* list = nullptr;
    for (int n = 0; n < kListNodes; ++n) {
      auto* node = static_cast<Node*>(std::malloc(sizeof(Node)));
      if (node == nullptr) fail("scaling-floor", "malloc failed");
      node->left = list;
      node->right = nullptr;
      list = node;
    }
    if (i % kKeepEvery == 0) {
      Node*& slot = ring[(i / kKeepEvery) % kLiveLists];
      release(slot);
      slot = list;
    } else {
      release(list);
    }
  }
  uint64_t wrong = 0;
  for (Node* list : ring) {
    int length = 0;
    for (Node* n = list; n != nullptr; n = static_cast<Node*>(n->left)) ++length;
    if (list != nullptr && length != kListNodes) ++wrong;
    release(list);
  }
  return wrong;
}

void scaling_floor(uint64_t lists_per_worker, int reps) {
  std::map<int, std::vector<double>> rates;
  const uint64_t total_lists = lists_per_worker * kScalingWorkers;
  const double objects = static_cast<double>(total_lists) * kListNodes;
  for (int rep = 0; rep < reps; ++rep) {
    for (int threads : {1, 2}) {
      int t = rep % 2 ? 3 - threads : threads;  // alternate which goes first
      std::vector<std::thread> pool;
      std::atomic<uint64_t> wrong{0};
      uint64_t start = now_ns();
      for (int i = 0; i < t; ++i)
        pool.emplace_back([&] { wrong += malloc_churn(total_lists / static_cast<uint64_t>(t)); });
      for (auto& thread : pool) thread.join();
      uint64_t elapsed = now_ns() - start;
      if (wrong != 0) fail("scaling-floor", "a kept malloc list lost nodes");
      double rate = objects / (static_cast<double>(elapsed) / 1e9) / 1e6;
      rates[t].push_back(rate);
      std::printf(
          "SAMPLE suite=gc_costs case=scaling-floor-threads%d impl=glibc metric=mobjects_per_s "
          "value=%.3f unit=Mobj/s\n",
          t, rate);
    }
  }
  double one = median(rates[1]), two = median(rates[2]);
  result("scaling-floor-threads1", "glibc", "mobjects_per_s", one, "Mobj/s");
  result("scaling-floor-threads2", "glibc", "mobjects_per_s", two, "Mobj/s");
  result("scaling-floor", "glibc", "ratio_2_threads_vs_1", two / one, "ratio");
}

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
  return g_errors == 0 ? 0 : 1;
}
