// tests/gc/gc_heap_collection_test.cpp — the GC heap's collections through its C API: private,
// shared and minor collections keep what is reachable (from roots, handles, old objects, private
// objects) and free what is not; explicit requests are not starved; many goroutines collect at
// once; the allocation budget triggers collections; the heap limit (USGC_HEAP_MAX) collects
// sooner and then fails cleanly, losing nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tests/gc/gc_heap_test_support.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

using namespace usgc::testing::gc_heap;

TEST_F(GcHeapTest, PrivateCollectionKeepsRootedListsAndFreesGarbage) {
  run_main([] {
    USGC_ROOTS(roots, 2);
    build_list(&roots[0], 10000, USGC_GOROUTINE_PRIVATE);
    usgc_handle handle = usgc_handle_new(nullptr);
    for (int round = 0; round < 5; ++round) {
      void* garbage[1];
      build_list(&garbage[0], 20000, USGC_GOROUTINE_PRIVATE);  // unrooted after this
      usgc_gc_stats before = stats_now();
      ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
      usgc_gc_stats after = stats_now();
      EXPECT_GT(after.private_collections, before.private_collections);
      EXPECT_GE(after.bytes_freed_private - before.bytes_freed_private, 20000u * 32u);
      int length = 0;
      EXPECT_EQ(list_sum(static_cast<Node*>(roots[0]), &length), int64_t{10000} * 9999 / 2);
      EXPECT_EQ(length, 10000);
    }
    usgc_handle_delete(handle);
  });
}

TEST_F(GcHeapTest, HandlesKeepObjectsAliveAcrossCollections) {
  run_main([] {
    USGC_ROOTS(roots, 1);
    build_list(&roots[0], 1000, USGC_GOROUTINE_PRIVATE);
    usgc_handle handle = usgc_handle_new(roots[0]);
    ASSERT_NE(handle, 0u);
    roots[0] = nullptr;
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    int length = 0;
    EXPECT_EQ(list_sum(static_cast<Node*>(usgc_handle_get(handle)), &length), 1000 * 999 / 2);
    usgc_handle_delete(handle);
  });
}

TEST_F(GcHeapTest, SharedCollectionFreesUnreachableSharedObjects) {
  run_main([] {
    USGC_ROOTS(roots, 1);
    build_list(&roots[0], 5000, USGC_GOROUTINE_SHARED);
    for (int round = 0; round < 3; ++round) {
      void* garbage[1];
      build_list(&garbage[0], 30000, USGC_GOROUTINE_SHARED);
      usgc_gc_stats before = stats_now();
      ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
      usgc_gc_stats after = stats_now();
      EXPECT_EQ(after.shared_collections - before.shared_collections, 1u);
      EXPECT_GE(after.bytes_freed_shared - before.bytes_freed_shared, 30000u * 32u);
      int length = 0;
      EXPECT_EQ(list_sum(static_cast<Node*>(roots[0]), &length), int64_t{5000} * 4999 / 2);
    }
  });
}

// A goroutine that collects in a loop must not starve another goroutine's explicit request
// (requests wait for a collection, not for the lock: gc/shared_collector.cpp), and a request that
// is met by someone else's collection still frees what was unreachable when it was made.
TEST_F(GcHeapTest, ExplicitCollectionsAreNotStarvedByAGoroutineThatCollectsInALoop) {
  std::atomic<bool> done{false};
  std::atomic<bool> loop_ended{false};
  std::atomic<uint64_t> loop_collections{0};
  run_main([&] {
    usgc::testing::go([&] {
      while (!done.load()) {
        EXPECT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
        loop_collections.fetch_add(1);
        usgc_yield();
      }
      loop_ended.store(true);
    });
    // The loop uses this test's locals: it must have ended before the main goroutine returns
    // (also after a failed ASSERT), or it writes into a frame that is gone (ASan found it).
    struct StopLoop {
      std::atomic<bool>& done;
      std::atomic<bool>& loop_ended;
      ~StopLoop() {
        done.store(true);
        while (!loop_ended.load()) usgc_yield();
      }
    } stop_loop{done, loop_ended};
    USGC_ROOTS(roots, 1);
    build_list(&roots[0], 5000, USGC_GOROUTINE_SHARED);
    constexpr int kRequests = 40;
    uint64_t before = loop_collections.load();
    for (int round = 0; round < kRequests; ++round) {
      void* garbage[1];
      ASSERT_NE(build_list(&garbage[0], 30000, USGC_GOROUTINE_SHARED), nullptr);
      garbage[0] = nullptr;
      ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
      // Only the rooted list (5000 nodes) is live: the garbage died before the request, so a
      // collection that began after it freed all of it.
      EXPECT_LT(stats_now().bytes_in_use[USGC_GOROUTINE_SHARED], 30000u * sizeof(Node))
          << "round " << round;
    }
    uint64_t during = loop_collections.load() - before;
    int length = 0;
    EXPECT_EQ(list_sum(static_cast<Node*>(roots[0]), &length), int64_t{5000} * 4999 / 2);
    // Each request needs at most a few of the loop's collections (one running when it came, one
    // that began after it). Waiting for the lock instead, a request lost the race to the loop
    // for thousands of collections at a time.
    EXPECT_LT(during, uint64_t{kRequests} * 50) << "explicit requests starved by the loop";
  });
}

TEST_F(GcHeapTest, MinorCollectionsFreeYoungGarbageAndKeepWhatOldObjectsAndPrivateOnesReach) {
  run_main([] {
    USGC_ROOTS(roots, 4);
    build_list(&roots[0], 1000, USGC_GOROUTINE_SHARED);  // becomes old at the next full collection
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    // Young objects reachable only through an old object (the card), a private one (no card), a
    // root.
    Node* old_node = static_cast<Node*>(roots[0]);
    for (int i = 0; i < 10; ++i) old_node = old_node->right;
    Node* young_from_old = try_new_node(USGC_GOROUTINE_SHARED, 111);
    usgc_write(old_node, reinterpret_cast<void**>(&old_node->left), young_from_old);
    Node* holder = try_new_node(USGC_GOROUTINE_PRIVATE, 0);
    roots[1] = holder;
    usgc_write(holder, reinterpret_cast<void**>(&holder->left),
               try_new_node(USGC_GOROUTINE_SHARED, 222));
    roots[2] = try_new_node(USGC_GOROUTINE_SHARED, 333);
    build_list(&roots[3], 500, USGC_GOROUTINE_SHARED);  // young list, rooted
    void* garbage[1];
    build_list(&garbage[0], 30000, USGC_GOROUTINE_SHARED);
    usgc_gc_stats before = stats_now();
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED_MINOR), 0);
    usgc_gc_stats after = stats_now();
    EXPECT_EQ(after.shared_minor_collections - before.shared_minor_collections, 1u);
    EXPECT_GE(after.bytes_freed_shared - before.bytes_freed_shared, 30000u * 32u);
    EXPECT_EQ(old_node->left->value, 111);
    EXPECT_EQ(static_cast<Node*>(roots[1])->left->value, 222);
    EXPECT_EQ(static_cast<Node*>(roots[2])->value, 333);
    int length = 0;
    EXPECT_EQ(list_sum(static_cast<Node*>(roots[3]), &length), 500 * 499 / 2);
    EXPECT_EQ(list_sum(static_cast<Node*>(roots[0]), &length), 1000 * 999 / 2);
    // A second minor: the survivors are old now, new young garbage goes, the cards were cleared.
    build_list(&garbage[0], 10000, USGC_GOROUTINE_SHARED);
    Node* young_again = try_new_node(USGC_GOROUTINE_SHARED, 444);
    usgc_write(old_node, reinterpret_cast<void**>(&old_node->left), young_again);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED_MINOR), 0);
    EXPECT_EQ(old_node->left->value, 444);
    // Dropped old objects stay until a full collection.
    roots[0] = nullptr;
    before = stats_now();
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED_MINOR), 0);
    after = stats_now();
    EXPECT_LT(after.bytes_freed_shared - before.bytes_freed_shared, 1000u * 32u);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    EXPECT_GE(stats_now().bytes_freed_shared - after.bytes_freed_shared, 1000u * 32u);
    EXPECT_EQ(usgc_gc_collect(static_cast<usgc_gc_kind>(9)), EINVAL);
  });
}

TEST_F(GcHeapTest, SharedObjectsReachableOnlyThroughPrivateOnesSurviveSharedCollections) {
  run_main([] {
    USGC_ROOTS(roots, 1);
    Node* holder = try_new_node(USGC_GOROUTINE_PRIVATE, 0);
    roots[0] = holder;
    Node* shared = try_new_node(USGC_GOROUTINE_SHARED, 42);
    usgc_write(holder, reinterpret_cast<void**>(&holder->left), shared);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    EXPECT_EQ(static_cast<Node*>(roots[0])->left->value, 42);
    EXPECT_EQ(usgc_ownership_of(static_cast<Node*>(roots[0])->left), USGC_GOROUTINE_SHARED);
  });
}

TEST_F(GcHeapTest, ManyGoroutinesCollectTheirPrivateHeapsAtOnce) {
  run_main([] {
    constexpr int kGoroutines = 16;
    static std::atomic<int> failures{0};
    failures = 0;
    usgc_waitgroup group = USGC_WAITGROUP_INIT;
    static usgc_waitgroup* group_pointer;
    group_pointer = &group;
    usgc_waitgroup_add(&group, kGoroutines);
    for (int g = 0; g < kGoroutines; ++g) {
      ASSERT_EQ(usgc_go(
                    [](void*) {
                      USGC_ROOTS(r, 1);
                      build_list(&r[0], 2000, USGC_GOROUTINE_PRIVATE);
                      for (int round = 0; round < 20; ++round) {
                        void* garbage[1];
                        build_list(&garbage[0], 3000, USGC_GOROUTINE_PRIVATE);
                        usgc_gc_collect(USGC_GC_PRIVATE);
                        int length = 0;
                        if (list_sum(static_cast<Node*>(r[0]), &length) != 2000 * 1999 / 2)
                          failures++;
                        usgc_yield();
                      }
                      usgc_waitgroup_done(group_pointer);
                    },
                    nullptr, nullptr),
                0);
    }
    usgc_waitgroup_wait(&group);
    EXPECT_EQ(failures.load(), 0);
  });
}

TEST_F(GcHeapTest, AllocationBudgetTriggersCollections) {
  run_main([] {
    usgc_gc_stats before = stats_now();
    USGC_ROOTS(roots, 1);
    build_list(&roots[0], 1000, USGC_GOROUTINE_PRIVATE);
    for (int i = 0; i < 400000; ++i) ASSERT_NE(try_new_node(USGC_GOROUTINE_PRIVATE, i), nullptr);
    for (int i = 0; i < 400000; ++i) ASSERT_NE(try_new_node(USGC_GOROUTINE_SHARED, i), nullptr);
    usgc_gc_stats after = stats_now();
    EXPECT_GT(after.private_collections, before.private_collections);
    EXPECT_GT(after.shared_collections, before.shared_collections);
    int length = 0;
    EXPECT_EQ(list_sum(static_cast<Node*>(roots[0]), &length), 1000 * 999 / 2);
  });
}

// USGC_HEAP_MAX is read at usgc_init: this fixture sets it around the runtime's life.
class GcHeapLimitTest : public GcHeapTest {
 protected:
  void SetUp() override {
    setenv("USGC_HEAP_MAX", "12m", 1);
    GcHeapTest::SetUp();
  }
  void TearDown() override {
    GcHeapTest::TearDown();
    unsetenv("USGC_HEAP_MAX");
  }
};

TEST_F(GcHeapLimitTest, GarbageBeyondTheLimitIsCollectedSooner) {
  run_main([] {
    USGC_ROOTS(roots, 1);
    build_list(&roots[0], 1000, USGC_GOROUTINE_PRIVATE);
    for (int i = 0; i < 2000000; ++i) {  // 64 MB of garbage through a 12 MiB heap
      ASSERT_NE(try_new_node(i % 2 ? USGC_GOROUTINE_PRIVATE : USGC_GOROUTINE_SHARED, i), nullptr)
          << usgc_last_error();
    }
    EXPECT_LE(stats_now().bytes_committed, 12u << 20);
    int length = 0;
    EXPECT_EQ(list_sum(static_cast<Node*>(roots[0]), &length), 1000 * 999 / 2);
  });
}

TEST_F(GcHeapLimitTest, LiveDataPastTheLimitFailsCleanlyAndLosesNothing) {
  run_main([] {
    USGC_ROOTS(roots, 1);
    int64_t count = 0;
    for (;;) {
      Node* node = try_new_node(USGC_GOROUTINE_PRIVATE, count);
      if (node == nullptr) break;
      usgc_write(node, reinterpret_cast<void**>(&node->right), roots[0]);
      roots[0] = node;
      ++count;
      ASSERT_LT(count, 10000000) << "the limit never hit";
    }
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_NE(std::strstr(usgc_last_error(), "USGC_HEAP_MAX"), nullptr) << usgc_last_error();
    EXPECT_GE(stats_now().heap_limit_failures, 1u);
    EXPECT_GT(count, 200000);  // 12 MiB of 32-byte slots, less what the collector keeps
    int length = 0;
    EXPECT_EQ(list_sum(static_cast<Node*>(roots[0]), &length), count * (count - 1) / 2);
    EXPECT_EQ(length, count);
    roots[0] = nullptr;  // drop it all: allocation works again
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    EXPECT_NE(try_new_node(USGC_GOROUTINE_PRIVATE, 1), nullptr) << usgc_last_error();
  });
}

}  // namespace
