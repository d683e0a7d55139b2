// tests/gc/gc_heap_publication_test.cpp — every publication point of the GC heap through its C
// API: a store into a shared object publishes the whole private closure of the stored object, a
// spawn and a channel send publish what they pass, and an exiting goroutine hands its published
// objects to the shared heap. Invariant checked throughout: a shared object never refers to a
// private one.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

#include "tests/gc/gc_heap_test_support.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

using namespace usgc::testing::gc_heap;

TEST_F(GcHeapTest, StoringIntoASharedObjectPublishesTheWholePrivateClosure) {
  run_main([] {
    USGC_ROOTS(roots, 2);
    roots[0] = try_new_node(USGC_GOROUTINE_SHARED, -1);
    Node* list = build_list(&roots[1], 100, USGC_GOROUTINE_PRIVATE);
    usgc_gc_stats before = stats_now();
    usgc_write(roots[0], reinterpret_cast<void**>(&static_cast<Node*>(roots[0])->left), list);
    usgc_gc_stats after = stats_now();
    EXPECT_EQ(after.publications - before.publications, 1u);
    EXPECT_EQ(after.objects_published - before.objects_published, 100u);
    for (Node* n = list; n != nullptr; n = n->right)
      EXPECT_EQ(usgc_ownership_of(n), USGC_GOROUTINE_SHARED);
    // Published objects survive private collections (their owner no longer frees them) ...
    roots[1] = nullptr;
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    int length = 0;
    EXPECT_EQ(list_sum(static_cast<Node*>(roots[0])->left, &length), 100 * 99 / 2);
    // ... and shared collections, while reachable; a store into a global root makes them global.
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    EXPECT_EQ(list_sum(static_cast<Node*>(roots[0])->left, &length), 100 * 99 / 2);
    static void* global_root = nullptr;
    ASSERT_EQ(usgc_global_root_add(&global_root), 0);
    Node* fresh = try_new_node(USGC_GOROUTINE_PRIVATE, 5);
    usgc_global_store(&global_root, fresh);
    EXPECT_EQ(usgc_ownership_of(fresh), USGC_GLOBAL_SHARED);
    roots[0] = nullptr;
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    EXPECT_EQ(static_cast<Node*>(global_root)->value, 5);
    ASSERT_EQ(usgc_global_root_remove(&global_root), 0);
    EXPECT_EQ(usgc_global_root_remove(&global_root), EINVAL);
  });
}

TEST_F(GcHeapTest, SpawnAndChannelSendPublish) {
  run_main([] {
    USGC_ROOTS(roots, 2);
    Node* argument = build_list(&roots[0], 10, USGC_GOROUTINE_PRIVATE);
    static std::atomic<int64_t> seen{0};
    seen = 0;
    usgc_waitgroup group = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&group, 1);
    static usgc_waitgroup* group_pointer;
    group_pointer = &group;
    ASSERT_EQ(usgc_go_object(
                  [](void* object) {
                    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);  // the start object is a root
                    int length = 0;
                    seen = list_sum(static_cast<Node*>(object), &length);
                    usgc_waitgroup_done(group_pointer);
                  },
                  argument),
              0);
    EXPECT_EQ(usgc_ownership_of(argument), USGC_GOROUTINE_SHARED);
    usgc_waitgroup_wait(&group);
    EXPECT_EQ(seen.load(), 45);

    usgc_chan* channel = usgc_chan_make_refs(4);
    ASSERT_NE(channel, nullptr);
    Node* sent = build_list(&roots[1], 10, USGC_GOROUTINE_PRIVATE);
    ASSERT_EQ(usgc_chan_send(channel, &sent), 0);
    EXPECT_EQ(usgc_ownership_of(sent), USGC_GOROUTINE_SHARED);
    EXPECT_EQ(usgc_ownership_of(sent->right->right), USGC_GOROUTINE_SHARED);
    sent = nullptr;
    roots[1] = nullptr;
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);  // the buffered value is a root
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    bool ok = false;
    ASSERT_EQ(usgc_chan_recv(channel, &roots[1], &ok), 0);
    ASSERT_TRUE(ok);
    int length = 0;
    EXPECT_EQ(list_sum(static_cast<Node*>(roots[1]), &length), 45);
    EXPECT_EQ(usgc_chan_destroy(channel), 0);
  });
}

TEST_F(GcHeapTest, ExitedGoroutinesPassPublishedObjectsToTheSharedHeap) {
  run_main([] {
    static void* box_root = nullptr;
    USGC_ROOTS(roots, 1);
    roots[0] = try_new_node(USGC_GOROUTINE_SHARED, 0);  // the box
    box_root = roots[0];
    usgc_waitgroup group = USGC_WAITGROUP_INIT;
    static usgc_waitgroup* group_pointer;
    group_pointer = &group;
    usgc_waitgroup_add(&group, 1);
    ASSERT_EQ(usgc_go_object(
                  [](void* box) {
                    USGC_ROOTS(r, 2);
                    build_list(&r[0], 500, USGC_GOROUTINE_PRIVATE);
                    build_list(&r[1], 500, USGC_GOROUTINE_PRIVATE);  // private garbage at exit
                    usgc_write(box, reinterpret_cast<void**>(&static_cast<Node*>(box)->left), r[0]);
                    usgc_waitgroup_done(group_pointer);
                  },
                  roots[0]),
              0);
    usgc_waitgroup_wait(&group);
    ASSERT_TRUE(usgc::testing::eventually([] { return usgc_goroutine_count() == 1; }));
    for (int i = 0; i < 2; ++i) ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    int length = 0;
    EXPECT_EQ(list_sum(static_cast<Node*>(roots[0])->left, &length), 500 * 499 / 2);
    EXPECT_EQ(length, 500);
    (void)box_root;
  });
}

}  // namespace
