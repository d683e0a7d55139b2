// tests/jitgen/jit_compact_frame_test.cpp — the compact shadow-stack record compiled code pushes
// (usgc/object.h, USGC_FRAME_COMPACT; jitgen/x86_64/register_convention.hpp): two words,
// `previous` and (count << 1) | 1, the root slots right above them. The collector finds the
// slots from the record's own address, and walks compact and C records (USGC_ROOTS) in one chain.
// The record is laid out here by hand, word for word as the JIT's prologue pushes it, so the
// test fails if the collector's frame walk and the compiled layout disagree (an unreadable
// count, slots read from the wrong place: the rooted lists come back freed and overwritten).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

#include "tests/support/gc_node.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::testing::list_sum;
using usgc::testing::Node;
using usgc::testing::run_main;
using usgc::testing::try_new_node;

// A private list of n nodes with values 0..n-1, its head kept in *root all along.
void build_list(void** root, int n) {
  *root = nullptr;
  for (int i = n - 1; i >= 0; --i) {
    Node* node = try_new_node(USGC_GOROUTINE_PRIVATE, i);
    ASSERT_NE(node, nullptr);
    usgc_write(node, reinterpret_cast<void**>(&node->right), *root);
    *root = node;
  }
}

uint64_t private_bytes_freed() {
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  EXPECT_EQ(usgc_gc_get_stats(&stats), 0);
  return stats.bytes_freed_private;
}

class JitCompactFrame : public usgc::testing::RuntimeTest {};

TEST_F(JitCompactFrame, TheCollectorFindsACompactRecordsSlotsRightAboveIt) {
  run_main([] {
    USGC_ROOTS(c_roots, 2);  // a C record below the compact one; [1] for the garbage
    build_list(&c_roots[0], 1000);
    // As a compiled prologue pushes it, RSP-downwards: the slots, the count word, `previous`.
    alignas(16) uintptr_t words[2 + 3] = {};
    words[0] = reinterpret_cast<uintptr_t>(usgc_current_mutator->frames);
    words[1] = (3u << 1) | USGC_FRAME_COMPACT;
    auto** slots = reinterpret_cast<void**>(&words[2]);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the record before it is linked
    usgc_current_mutator->frames = reinterpret_cast<usgc_frame*>(words);
    build_list(&slots[0], 5000);
    slots[1] = nullptr;  // a null slot is skipped
    build_list(&slots[2], 10);
    build_list(&c_roots[1], 20000);
    c_roots[1] = nullptr;

    const uint64_t freed_before = private_bytes_freed();
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    const uint64_t freed = private_bytes_freed() - freed_before;
    const uint64_t slot_bytes = sizeof(Node) + 8;  // with its header word
    EXPECT_GE(freed, 20000u * slot_bytes);         // the unrooted list
    EXPECT_LT(freed, 25000u * slot_bytes) << "the compact record's lists were freed";
    // Allocate over whatever was freed, then read every rooted list back.
    build_list(&c_roots[1], 30000);
    int length = 0;
    EXPECT_EQ(list_sum(slots[0], &length), int64_t{5000} * 4999 / 2);
    EXPECT_EQ(length, 5000);
    EXPECT_EQ(list_sum(slots[2], &length), int64_t{10} * 9 / 2);
    EXPECT_EQ(length, 10);
    EXPECT_EQ(list_sum(c_roots[0], &length), int64_t{1000} * 999 / 2);
    EXPECT_EQ(length, 1000);

    usgc_current_mutator->frames = reinterpret_cast<usgc_frame*>(words[0]);
  });
}

}  // namespace
