// tests/gc/gc_heap_test.cpp — the GC heap through its C API: allocation in each ownership
// class, every publication point, private and shared collections keeping what is reachable
// and freeing what is not, the barrier's fatal cases, the heap limit.
#include <gtest/gtest.h>
#include <atomic>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tests/support/gc_node.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::testing::run_main;

using usgc::testing::Node;
using usgc::testing::node_type;
using usgc::testing::try_new_node;

// A list of n private nodes with values 0..n-1, built with the barrier; its head is rooted.
Node* build_list(void** root, int n, usgc_ownership ownership) {
  *root = nullptr;
  for (int i = n - 1; i >= 0; --i) {
    Node* node = try_new_node(ownership, i);
    if (node == nullptr) return nullptr;
    usgc_write(node, reinterpret_cast<void**>(&node->right), *root);
    *root = node;
  }
  return static_cast<Node*>(*root);
}

int64_t list_sum(const Node* node, int* length) {
  int64_t sum = 0;
  *length = 0;
  for (; node != nullptr;
       node = static_cast<Node*>(usgc_read(node, reinterpret_cast<void* const*>(&node->right)))) {
    sum += node->value;
    ++*length;
  }
  return sum;
}

usgc_gc_stats stats_now() {
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  EXPECT_EQ(usgc_gc_get_stats(&stats), 0);
  return stats;
}

class GcHeapTest : public usgc::testing::RuntimeTest {};

TEST_F(GcHeapTest, TypeRegistrationRejectsBadLayouts) {
  size_t misaligned[] = {4};
  usgc_type_info bad = {"Bad", USGC_KIND_OBJECT, 16, misaligned, 1};
  EXPECT_EQ(usgc_register_type(&bad), 0u);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(std::strlen(usgc_last_error()), 0u);
  size_t outside[] = {16};
  usgc_type_info bad2 = {"Bad2", USGC_KIND_OBJECT, 16, outside, 1};
  EXPECT_EQ(usgc_register_type(&bad2), 0u);
  EXPECT_EQ(usgc_register_type(nullptr), 0u);
  EXPECT_GT(node_type(), USGC_TYPE_BYTE_ARRAY);
}

// Every size check of registration is overflow-free: an offset of (size_t)-8 would pass
// "offset + 8 <= size" by wrapping to 0, and the collector would trace memory far past the object.
TEST_F(GcHeapTest, TypeRegistrationRefusesWrappingOffsetsAndCounts) {
  struct Case {
    const char* what;
    usgc_type_info info;
    const char* message;  // a piece of usgc_last_error()
  };
  static size_t wrapping[] = {SIZE_MAX - 7};
  static size_t last_word[] = {SIZE_MAX - 15};
  static size_t inside[] = {0, 8};
  static size_t twice[] = {8, 8};
  static size_t big_object[] = {(size_t{1} << 30) - 8};
  const Case cases[] = {
      {"offset (size_t)-8", {"W", USGC_KIND_OBJECT, 16, wrapping, 1}, "does not leave 8 bytes"},
      {"offset (size_t)-16", {"W", USGC_KIND_OBJECT, 16, last_word, 1}, "does not leave 8 bytes"},
      {"count above size / 8", {"C", USGC_KIND_OBJECT, 16, inside, SIZE_MAX}, "do not fit"},
      {"count 3 in 16 bytes", {"C", USGC_KIND_OBJECT, 16, inside, 3}, "do not fit"},
      {"offset named twice", {"T", USGC_KIND_OBJECT, 16, twice, 2}, "named twice"},
      {"size above 1 GiB", {"S", USGC_KIND_OBJECT, SIZE_MAX, nullptr, 0}, "above"},
      {"NULL offsets", {"N", USGC_KIND_OBJECT, 16, nullptr, 1}, "NULL"},
      {"scalar element 0", {"A", USGC_KIND_SCALAR_ARRAY, 0, nullptr, 0}, "element size"},
      {"scalar element huge", {"A", USGC_KIND_SCALAR_ARRAY, SIZE_MAX, nullptr, 0}, "element size"},
      {"pointer array of 16", {"P", USGC_KIND_POINTER_ARRAY, 16, nullptr, 0}, "pointer array"},
      {"unknown kind", {"K", static_cast<usgc_type_kind>(77), 8, nullptr, 0}, "kind 77"},
  };
  for (const Case& c : cases) {
    errno = 0;
    EXPECT_EQ(usgc_register_type(&c.info), 0u) << c.what;
    EXPECT_EQ(errno, EINVAL) << c.what;
    EXPECT_NE(std::strstr(usgc_last_error(), "usgc_register_type"), nullptr) << c.what;
    EXPECT_NE(std::strstr(usgc_last_error(), c.message), nullptr)
        << c.what << ": " << usgc_last_error();
  }
  // The boundaries themselves are accepted: the last word of a 1 GiB object, two distinct words.
  usgc_type_info last = {"Last", USGC_KIND_OBJECT, size_t{1} << 30, big_object, 1};
  EXPECT_NE(usgc_register_type(&last), 0u) << usgc_last_error();
  usgc_type_info pair = {"Pair", USGC_KIND_OBJECT, 16, inside, 2};
  EXPECT_NE(usgc_register_type(&pair), 0u) << usgc_last_error();
}

TEST_F(GcHeapTest, AllocationOutsideAGoroutineFailsWithEperm) {
  errno = 0;
  EXPECT_EQ(usgc_alloc(node_type(), USGC_GOROUTINE_PRIVATE), nullptr);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(std::strstr(usgc_last_error(), "not a goroutine"), nullptr);
}

TEST_F(GcHeapTest, EachClassAllocatesZeroedObjectsWithTheirHeader) {
  run_main([] {
    USGC_ROOTS(roots, 4);
    const usgc_ownership classes[] = {USGC_STACK_LOCAL, USGC_GOROUTINE_PRIVATE,
                                      USGC_GOROUTINE_SHARED, USGC_GLOBAL_SHARED};
    for (int i = 0; i < 4; ++i) {
      auto* node = static_cast<Node*>(usgc_alloc(node_type(), classes[i]));
      ASSERT_NE(node, nullptr) << usgc_last_error();
      roots[i] = node;
      EXPECT_EQ(node->left, nullptr);
      EXPECT_EQ(node->right, nullptr);
      EXPECT_EQ(node->value, 0);
      EXPECT_EQ(usgc_ownership_of(node), classes[i]);
      EXPECT_EQ(usgc_type_of(node), node_type());
      EXPECT_EQ(reinterpret_cast<uintptr_t>(node) % 8, 0u);
    }
    auto* array =
        usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 100000, USGC_GOROUTINE_PRIVATE);  // a large object
    ASSERT_NE(array, nullptr);
    EXPECT_EQ(usgc_array_length(array), 100000u);
    auto* bytes = static_cast<unsigned char*>(usgc_array_data(array));
    EXPECT_EQ(bytes[0] | bytes[99999], 0);
    errno = 0;
    EXPECT_EQ(usgc_alloc(USGC_TYPE_REF_ARRAY, USGC_GOROUTINE_PRIVATE), nullptr);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(usgc_alloc(node_type(), static_cast<usgc_ownership>(7)), nullptr);
    EXPECT_EQ(usgc_alloc(9999, USGC_GOROUTINE_PRIVATE), nullptr);
  });
}

TEST_F(GcHeapTest, InlineFastPathAllocatesLikeTheApi) {
  run_main([] {
    usgc_type_layout layout;
    ASSERT_EQ(usgc_type_layout_of(node_type(), &layout), 0);
    EXPECT_EQ(layout.slot_bytes, 32u);
    USGC_ROOTS(roots, 1);
    for (int i = 0; i < 100000; ++i) {  // several runs and blocks, and collections
      auto* node = static_cast<Node*>(usgc_alloc_private_fast(&layout));
      ASSERT_NE(node, nullptr);
      ASSERT_EQ(node->value, 0);
      node->value = i;
      usgc_write(node, reinterpret_cast<void**>(&node->right), i % 100 == 0 ? nullptr : roots[0]);
      roots[0] = node;
      ASSERT_EQ(usgc_ownership_of(node), USGC_GOROUTINE_PRIVATE);
    }
  });
}

TEST_F(GcHeapTest, InlineStackAllocationIsLifoAndFallsBackToPrivateWhenTheArenaIsFull) {
  run_main([] {
    usgc_type_layout layout;
    ASSERT_EQ(usgc_type_layout_of(node_type(), &layout), 0);
    USGC_ROOTS(frame, 1);
    auto* first = static_cast<Node*>(usgc_alloc_stack_fast(&layout));
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(usgc_ownership_of(first), USGC_STACK_LOCAL);
    first->value = 9;
    {
      USGC_ROOTS(inner, 1);
      auto* second = static_cast<Node*>(usgc_alloc_stack_fast(&layout));
      EXPECT_EQ(reinterpret_cast<char*>(second),
                reinterpret_cast<char*>(first) + layout.slot_bytes);
      second->value = 1;
    }
    auto* again = static_cast<Node*>(usgc_alloc_stack_fast(&layout));
    EXPECT_EQ(reinterpret_cast<char*>(again), reinterpret_cast<char*>(first) + layout.slot_bytes)
        << "popped space reused";
    EXPECT_EQ(again->value, 0) << "reused stack space is zeroed";
    int private_fallbacks = 0;
    for (int i = 0; i < 5000; ++i) {  // 160 KB: more than the 63 KiB arena
      auto* node = static_cast<Node*>(usgc_alloc_stack_fast(&layout));
      ASSERT_NE(node, nullptr);
      if (usgc_ownership_of(node) == USGC_GOROUTINE_PRIVATE) ++private_fallbacks;
    }
    EXPECT_GT(private_fallbacks, 0);
    EXPECT_EQ(first->value, 9);
  });
}

// USGC_VERIFY is read at usgc_init: this fixture turns the heap verifier on around the runtime.
class GcVerifiedHeapTest : public GcHeapTest {
 protected:
  void SetUp() override {
    setenv("USGC_VERIFY", "1", 1);
    GcHeapTest::SetUp();
  }
  void TearDown() override {
    GcHeapTest::TearDown();
    unsetenv("USGC_VERIFY");
  }
};

// Code compiled for STACK_LOCAL objects links them to each other; when the arena is full some of
// them are private stack substitutes, and the barrier must let those links through (they were
// fatal before: "STACK_LOCAL object stored into heap object").
TEST_F(GcVerifiedHeapTest, StackSubstitutesMadeWhenTheArenaIsFullHoldStackObjects) {
  run_main([] {
    usgc_type_layout layout;
    ASSERT_EQ(usgc_type_layout_of(node_type(), &layout), 0);
    int substitutes = 0;
    {
      USGC_ROOTS(frame, 1);
      Node* previous = nullptr;
      for (int i = 0; i < 5000; ++i) {  // 160 KB of nodes: more than the arena holds
        auto* node = static_cast<Node*>(usgc_alloc_stack_fast(&layout));
        ASSERT_NE(node, nullptr);
        node->value = i;
        usgc_write(node, reinterpret_cast<void**>(&node->left),
                   previous);  // stack -> substitute and back
        if (usgc_ownership_of(node) == USGC_GOROUTINE_PRIVATE) {
          EXPECT_NE(USGC_HEADER_OF(node) & USGC_HEADER_STACK_SUBSTITUTE, 0u);
          ++substitutes;
        } else {
          EXPECT_EQ(USGC_HEADER_OF(node) & USGC_HEADER_STACK_SUBSTITUTE, 0u);
        }
        previous = node;
      }
      frame[0] = previous;
      ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);  // verifier: substitute -> stack is allowed
      int64_t sum = 0;
      int length = 0;
      for (Node* node = previous; node != nullptr; node = node->left, ++length) sum += node->value;
      EXPECT_EQ(length, 5000);
      EXPECT_EQ(sum, int64_t{4999} * 5000 / 2);
    }
    EXPECT_GT(substitutes, 0);
    // The frame is popped: the substitutes are garbage holding stale arena references; nothing
    // follows them, and the next collections free them.
    for (int i = 0; i < 100; ++i) try_new_node(USGC_STACK_LOCAL, i);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
  });
}

TEST_F(GcHeapTest, StackLocalObjectsAreReleasedWhenTheirFrameIsPopped) {
  run_main([] {
    USGC_ROOTS(outer, 1);
    outer[0] = try_new_node(USGC_STACK_LOCAL, 1);
    Node* first_inner = nullptr;
    for (int i = 0; i < 3; ++i) {
      USGC_ROOTS(inner, 1);
      inner[0] = try_new_node(USGC_STACK_LOCAL, 2);
      if (first_inner == nullptr) first_inner = static_cast<Node*>(inner[0]);
      EXPECT_EQ(inner[0], first_inner)
          << "the arena is LIFO: each frame reuses the popped one's space";
      EXPECT_EQ(static_cast<Node*>(inner[0])->value, 2);
    }
    EXPECT_EQ(static_cast<Node*>(outer[0])->value, 1);
    // A stack object may point to a private one and to another stack object; it is a root.
    Node* local = static_cast<Node*>(outer[0]);
    Node* held = try_new_node(USGC_GOROUTINE_PRIVATE, 77);
    usgc_write(local, reinterpret_cast<void**>(&local->left), held);
    usgc_write(local, reinterpret_cast<void**>(&local->right), try_new_node(USGC_STACK_LOCAL, 3));
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    EXPECT_EQ(local->left->value, 77);
    EXPECT_EQ(usgc_ownership_of(local->left), USGC_GOROUTINE_PRIVATE);
  });
}

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

using GcHeapDeathTest = GcHeapTest;

TEST_F(GcHeapDeathTest, StackLocalStoredIntoHeapObjectStopsTheProcessNamingTheStore) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(run_main([] {
                 USGC_ROOTS(roots, 2);
                 roots[0] = try_new_node(USGC_GOROUTINE_PRIVATE, 1);
                 roots[1] = try_new_node(USGC_STACK_LOCAL, 2);
                 usgc_write(roots[0], reinterpret_cast<void**>(&static_cast<Node*>(roots[0])->left),
                            roots[1]);
               }),
               "usgc_write: STACK_LOCAL object 0x[0-9a-f]+ \\(type Node\\) stored into heap object "
               "0x[0-9a-f]+ \\(type Node, field \\+0\\)");
}

// A stack substitute is a private object, but publishing one that holds a STACK_LOCAL object
// would let the stack object escape its frame: fatal, as for the stack object itself.
TEST_F(GcHeapDeathTest, PublishingAStackSubstituteThatHoldsAStackObjectStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(run_main([] {
                 usgc_type_layout layout;
                 if (usgc_type_layout_of(node_type(), &layout) != 0) return;
                 USGC_ROOTS(roots, 2);
                 Node* substitute = nullptr;
                 Node* stack_object = nullptr;
                 for (int i = 0; i < 5000 && substitute == nullptr; ++i) {
                   auto* node = static_cast<Node*>(usgc_alloc_stack_fast(&layout));
                   if (usgc_ownership_of(node) == USGC_STACK_LOCAL)
                     stack_object = node;
                   else
                     substitute = node;
                 }
                 if (substitute == nullptr || stack_object == nullptr) return;
                 roots[0] = substitute;
                 usgc_write(substitute, reinterpret_cast<void**>(&substitute->left), stack_object);
                 usgc_publish(substitute);
               }),
               "STACK_LOCAL object 0x[0-9a-f]+ \\(type Node\\) published");
}

}  // namespace
