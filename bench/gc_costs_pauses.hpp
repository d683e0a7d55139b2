// bench/gc_costs_pauses.hpp — the pause-private and pause-shared cases of bench/gc_costs.cpp:
// explicit collections timed over a live forest of 1-64 MiB (private) or 16-256 MiB (shared),
// with churned garbage between them; p50/p99/max beside the seed's claims.
// Invariants: the live forest is rooted in one ref array for the whole case and counted node by
// node after the timed collections (a lost or changed node is an ERROR line: a collection may
// never lose live data); a shared stop's time to safepoint is kept only when exactly one stop
// ran during the call.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/gc_costs_support.hpp"
#include "usgc/safepoint.h"

namespace usgc::bench::gc_costs {

inline constexpr int kTreeDepth = 10;  // 2047 nodes
inline constexpr uint64_t kTreeNodes = (uint64_t{2} << kTreeDepth) - 1;
inline constexpr uint64_t kSlotBytes = 24;                       // header + 16-byte payload
inline constexpr uint64_t kTreeBytes = kTreeNodes * kSlotBytes;  // about 48 KiB

inline void* build_tree(int depth, usgc_ownership ownership) {
  return bench::build_tree(depth, ownership, new_node);
}

// Allocates `bytes` of garbage: trees of depth 6 of `ownership`, dropped at once.
inline void churn(uint64_t bytes, usgc_ownership ownership) {
  const uint64_t per_tree = ((uint64_t{2} << 6) - 1) * kSlotBytes;
  for (uint64_t done = 0; done < bytes; done += per_tree) escape(build_tree(6, ownership));
}

// Grows the forest in root slot `forest` (a ref array of `capacity`) to `trees` trees.
inline void grow_forest(void** forest, uint64_t* have, uint64_t trees, usgc_ownership ownership) {
  USGC_ROOTS(tree, 1);
  for (; *have < trees; ++*have) {
    tree[0] = build_tree(kTreeDepth, ownership);
    usgc_array_write(*forest, *have, tree[0]);
    usgc_safepoint_poll();
  }
}

inline void check_forest(const std::string& name, void* forest, uint64_t trees) {
  uint64_t nodes = 0;
  for (uint64_t i = 0; i < trees; ++i) nodes += count_tree(usgc_array_read(forest, i));
  if (nodes != trees * kTreeNodes) {
    fail(name, "live trees lost or changed by collections: counted " + std::to_string(nodes) +
                   " nodes, expected " + std::to_string(trees * kTreeNodes));
  }
}

inline void pause_results(const std::string& name, const char* metric_prefix,
                          std::vector<uint64_t> ns, const char* unit = "ms") {
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
inline double histogram_quantile_us(const uint64_t* after, const uint64_t* before, double q,
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

inline void private_pause_main(void* argument) {
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

inline uint64_t runtime_ttsp_last_ns(uint64_t* stops) {
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  check(usgc_runtime_get_stats(&stats), g_case.c_str(), "usgc_runtime_get_stats");
  *stops = stats.stops;
  return stats.time_to_safepoint_last_ns;
}

inline void shared_pause_main(void* argument) {
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

}  // namespace usgc::bench::gc_costs
