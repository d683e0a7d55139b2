// bench/gc_costs_scaling.hpp — the scaling cases of bench/gc_costs.cpp: 8 goroutines churning
// private lists in one runtime of --procs N (Mobjects/s), and the machine's floor, the same
// churn with malloc/free in 1 and 2 threads.
// Invariants: one runtime per process (run_gc_costs.sh divides the figures of two processes);
// every kept list is walked and must have all its nodes (otherwise an ERROR line); the floor
// splits the same total work among its threads and alternates which thread count runs first.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/gc_costs_support.hpp"
#include "usgc/safepoint.h"

namespace usgc::bench::gc_costs {

inline constexpr int kScalingWorkers = 8;
inline constexpr int kListNodes = 16;
inline constexpr int kKeepEvery = 8;
inline constexpr size_t kLiveLists = 256;

struct ScalingJob {
  uint64_t lists_per_worker = 0;
  usgc_waitgroup done = USGC_WAITGROUP_INIT;
  std::atomic<uint64_t> wrong{0};
  std::atomic<int> finished{0};
  uint64_t finish_ns[kScalingWorkers] = {};  // slot k: the k-th worker to finish (its own slot)
};

inline void scaling_worker(void* argument) {
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
  job->finish_ns[job->finished.fetch_add(1, std::memory_order_relaxed)] = now_ns();
  check(usgc_waitgroup_done(&job->done), "scaling", "usgc_waitgroup_done");
}

struct ScalingRun {
  uint64_t lists_per_worker = 0;
  uint64_t elapsed_ns = 0;
  uint64_t wrong = 0;
  // P-time left without a worker at the end: for each P beyond the last worker's, the time from
  // the finish of the worker that left it without one to the end (the last procs - 1 finishers).
  uint64_t idle_tail_ns = 0;
  uint32_t procs = 1;
};

inline void scaling_main(void* argument) {
  auto* run = static_cast<ScalingRun*>(argument);
  ScalingJob job;
  job.lists_per_worker = run->lists_per_worker;
  uint64_t start = now_ns();
  check(usgc_waitgroup_add(&job.done, kScalingWorkers), "scaling", "usgc_waitgroup_add");
  for (int w = 0; w < kScalingWorkers; ++w)
    check(usgc_go(scaling_worker, &job, nullptr), "scaling", "usgc_go");
  check(usgc_waitgroup_wait(&job.done), "scaling", "usgc_waitgroup_wait");
  uint64_t end = now_ns();
  run->elapsed_ns = end - start;
  run->wrong = job.wrong.load();
  run->idle_tail_ns = 0;
  for (uint32_t k = 1; k < run->procs && k < kScalingWorkers; ++k)
    run->idle_tail_ns += end - job.finish_ns[kScalingWorkers - 1 - k];
}

inline void scaling(uint32_t procs, uint64_t lists_per_worker, int reps) {
  std::string name = "scaling-procs" + std::to_string(procs);
  g_case = name;
  ScalingRun warm{std::max<uint64_t>(lists_per_worker / 10, 1), 0, 0, 0, procs};
  check(usgc_run_main(scaling_main, &warm), name.c_str(), "usgc_run_main");
  wait_for_goroutines();
  std::vector<double> rates, idle_tails;
  const double objects = static_cast<double>(lists_per_worker) * kScalingWorkers * kListNodes;
  for (int rep = 0; rep < reps; ++rep) {
    ScalingRun run{lists_per_worker, 0, 0, 0, procs};
    check(usgc_run_main(scaling_main, &run), name.c_str(), "usgc_run_main");
    wait_for_goroutines();
    if (run.wrong != 0 || warm.wrong != 0) fail(name, "a kept list lost nodes");
    double rate = objects / (static_cast<double>(run.elapsed_ns) / 1e9) / 1e6;
    rates.push_back(rate);
    idle_tails.push_back(static_cast<double>(run.idle_tail_ns) /
                         (static_cast<double>(run.elapsed_ns) * procs) * 100);
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
      "private_collections=%" PRIu64 " private_pause_max_ms=%.3f idle_tail_percent=%.2f\n",
      name.c_str(), kScalingWorkers, objects, reps, stats.private_collections,
      static_cast<double>(stats.private_pause_max_ns) / 1e6, median(idle_tails));
  std::fflush(stdout);
}

// The malloc floor: the same lists with malloc/free, the 8 workers' work split among `threads`.
inline uint64_t malloc_churn(uint64_t lists) {
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

inline void scaling_floor(uint64_t lists_per_worker, int reps) {
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

}  // namespace usgc::bench::gc_costs
