// tests/gc/gc_heap_test_support.hpp — what the GC heap tests (tests/gc/gc_heap_test.cpp,
// gc_heap_publication_test.cpp, gc_heap_collection_test.cpp) share: their fixture, GcHeapTest (the
// runtime started around each test), lists of tests/support/gc_node.hpp's Node built and summed
// through the C API (the barrier for every store and every load), and a snapshot of the GC's
// statistics.
// Invariant: GcHeapTest is one class for all three files (GoogleTest refuses one suite name with
// two fixture classes), so it lives here with external linkage, never in an anonymous namespace.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "tests/support/gc_node.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace usgc::testing::gc_heap {

// What the three files use from tests/support (they say `using namespace usgc::testing::gc_heap`).
using usgc::testing::Node;
using usgc::testing::node_type;
using usgc::testing::run_main;
using usgc::testing::try_new_node;

class GcHeapTest : public RuntimeTest {};

// A list of n private nodes with values 0..n-1, built with the barrier; its head is rooted.
inline Node* build_list(void** root, int n, usgc_ownership ownership) {
  *root = nullptr;
  for (int i = n - 1; i >= 0; --i) {
    Node* node = try_new_node(ownership, i);
    if (node == nullptr) return nullptr;
    usgc_write(node, reinterpret_cast<void**>(&node->right), *root);
    *root = node;
  }
  return static_cast<Node*>(*root);
}

// The sum of the values of such a list (read through usgc_read) and its length in *length.
inline int64_t list_sum(const Node* node, int* length) {
  int64_t sum = 0;
  *length = 0;
  for (; node != nullptr;
       node = static_cast<Node*>(usgc_read(node, reinterpret_cast<void* const*>(&node->right)))) {
    sum += node->value;
    ++*length;
  }
  return sum;
}

inline usgc_gc_stats stats_now() {
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  EXPECT_EQ(usgc_gc_get_stats(&stats), 0);
  return stats;
}

}  // namespace usgc::testing::gc_heap
