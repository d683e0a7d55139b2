// bench/gc_costs_barrier.hpp — the barrier-* cases of bench/gc_costs.cpp: ns per reference
// store through usgc_write (private target, shared target, a store that publishes) against a
// plain store over the same rings.
// Invariants: the rings stay rooted for the whole case, so their raw pointers stay valid (the
// collector never moves objects); a shared target only ever refers to shared objects afterwards
// (checked: anything else is an ERROR line); publishing stores are measured as (allocate +
// store) minus (allocate alone) over the same count.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bench/gc_costs_support.hpp"

namespace usgc::bench::gc_costs {

inline constexpr size_t kRing = 1024;

enum class Store { kPlain, kUsgc };

template <Store kStore>
inline __attribute__((noinline)) void loop_store(Node* const* targets, void* const* values,
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
inline __attribute__((noinline)) void loop_publish(Node* const* targets, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    void* value = new_node_inline();
    Node* target = targets[i & (kRing - 1)];
    usgc_write(target, &target->left, value);
    asm volatile("" : : : "memory");
  }
}

// The same allocations without the store: what loop_publish costs besides publishing.
inline __attribute__((noinline)) void loop_alloc_for_publish(uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    escape(new_node_inline());
    asm volatile("" : : : "memory");
  }
}

// Fills slot `slot` of the frame with a ref array of kRing nodes of `ownership`, and `out` with
// the raw pointers (valid while the array is rooted: the collector never moves objects).
inline void make_ring(void** slot, usgc_ownership ownership, std::vector<Node*>* out) {
  *slot = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kRing, ownership);
  if (*slot == nullptr) fail_alloc("usgc_alloc_array");
  for (size_t i = 0; i < kRing; ++i) usgc_array_write(*slot, i, new_node(ownership));
  out->clear();
  for (size_t i = 0; i < kRing; ++i) out->push_back(static_cast<Node*>(usgc_array_read(*slot, i)));
}

inline void barrier_main(void* argument) {
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

}  // namespace usgc::bench::gc_costs
