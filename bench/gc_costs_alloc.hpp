// bench/gc_costs_alloc.hpp — the alloc-* cases of bench/gc_costs.cpp: ns per object for each
// ownership class against glibc's malloc/free pair in the same run, with the seed's claims.
// Invariants: each timed loop is its own noinline function (the callgrind mode counts the same
// loops); every object is dropped at once, so the figure includes the collections its garbage
// causes (counted on the NOTE line); the cases rotate their order from one repetition to the
// next, so no case always runs on a just-collected heap.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bench/gc_costs_support.hpp"

namespace usgc::bench::gc_costs {

inline constexpr uint64_t kStackFrameObjects = 64;

inline __attribute__((noinline)) void loop_stack(uint64_t count) {
  for (uint64_t done = 0; done < count; done += kStackFrameObjects) {
    USGC_ROOTS(frame, 1);
    for (uint64_t i = 0; i < kStackFrameObjects; ++i) escape(new_node(USGC_STACK_LOCAL));
  }
}

inline __attribute__((noinline)) void loop_usgc_alloc(uint64_t count, usgc_ownership ownership) {
  for (uint64_t i = 0; i < count; ++i) escape(new_node(ownership));
}

inline __attribute__((noinline)) void loop_private_inline(uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) escape(new_node_inline());
}

inline __attribute__((noinline)) void loop_malloc(uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    auto* node = static_cast<Node*>(std::malloc(sizeof(Node)));
    if (node == nullptr) fail("alloc-malloc", "malloc failed");
    node->left = node->right = nullptr;
    escape(node);
    std::free(node);
  }
}

inline __attribute__((noinline)) void loop_malloc_batch(uint64_t count) {
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

inline std::vector<AllocCase> alloc_cases() {
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

inline void alloc_main(void* argument) {
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

}  // namespace usgc::bench::gc_costs
