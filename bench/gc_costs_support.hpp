// bench/gc_costs_support.hpp — what the cases of bench/gc_costs.cpp share: the one object type
// (Node) and its allocation, the RESULT/NOTE/ERROR lines, the TSC rate that converts ns to
// cycles beside the seed's claims, and a snapshot of the collector's statistics.
// Invariants: g_node_type and g_node_layout are written once by main before any case runs and
// only read after; g_case names the case running (fail() reports it); a failure prints an
// ERROR line and exits 1, never a RESULT. Included only by gc_costs.cpp and its case headers
// (one program: the inline variables are that program's).
#pragma once

#include <x86intrin.h>

#include <time.h>

#include <algorithm>
#include <cerrno>
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

namespace usgc::bench::gc_costs {

using usgc::bench::count_tree;
using usgc::bench::median;
using usgc::bench::now_ns;
using usgc::bench::percentile;

using Node = TreeNode;

inline usgc_type_id g_node_type = 0;      // registered in main, then read-only
inline usgc_type_layout g_node_layout{};  // its layout, for the inline fast path

// ---- output ----------------------------------------------------------------------------------

inline void result(const std::string& case_name, const char* impl, const char* metric, double value,
                   const char* unit) {
  std::printf("RESULT suite=gc_costs case=%s impl=%s metric=%s value=%.3f unit=%s\n",
              case_name.c_str(), impl, metric, value, unit);
  std::fflush(stdout);
}

[[noreturn]] inline void fail(const std::string& case_name, const std::string& reason) {
  std::printf("ERROR suite=gc_costs case=%s impl=usgc reason=\"%s\"\n", case_name.c_str(),
              reason.c_str());
  std::fflush(stdout);
  std::exit(1);
}

inline void check(int error, const char* case_name, const char* what) {
  if (error != 0) fail(case_name, std::string(what) + " failed: " + std::strerror(error));
}

inline std::string g_case = "setup";  // the case running, for fail() from deep inside

[[noreturn]] inline void fail_alloc(const char* what) {
  int error = errno;
  fail(g_case, std::string(what) + " failed: " + std::strerror(error) + ": " + usgc_last_error());
}

inline void escape(void* p) {
  asm volatile("" : : "r"(p) : "memory");
}

// ---- the TSC ---------------------------------------------------------------------------------

inline double g_tsc_ghz = 0;  // 0: not measured (cycles are then not printed)

inline void measure_tsc() {
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

inline void* new_node(usgc_ownership ownership) {
  void* node = usgc_alloc(g_node_type, ownership);
  if (node == nullptr) fail_alloc("usgc_alloc");
  return node;
}

inline void* new_node_inline() {
  void* node = usgc_alloc_private_fast(&g_node_layout);
  if (node == nullptr) fail_alloc("usgc_alloc_private_fast");
  return node;
}

// Prints a cost with its TSC-cycle equivalent and the seed's claim beside it.
inline void cost_results(const std::string& name, const char* impl, const char* metric, double ns,
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

inline void wait_for_goroutines() {
  for (int i = 0; i < 100000 && usgc_goroutine_count() != 0; ++i) {
    timespec pause{0, 100000};
    nanosleep(&pause, nullptr);
  }
}

}  // namespace usgc::bench::gc_costs
