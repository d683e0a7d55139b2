// tests/gc/gc_heap_test.cpp — the GC heap through its C API: type registration, allocation in
// each ownership class (the API and the inline fast paths), STACK_LOCAL objects and their frames,
// and the barrier's fatal cases. Publication: gc_heap_publication_test.cpp; collections and the
// heap limit: gc_heap_collection_test.cpp.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tests/gc/gc_heap_test_support.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

using namespace usgc::testing::gc_heap;

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

// A handle is checked before its slot is used: a stale or forged one stops the process naming
// the call and the handle, never reads or frees another slot.
TEST_F(GcHeapDeathTest, DeletingALocalHandleTwiceStopsTheProcessNamingTheHandle) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(run_main([] {
                 usgc_handle handle = usgc_handle_new(try_new_node(USGC_GOROUTINE_PRIVATE, 1));
                 usgc_handle_delete(handle);
                 usgc_handle_delete(handle);
               }),
               "usgc_handle_delete: [0-9]+ is not a live local handle of the calling goroutine "
               "\\(deleted twice\\?\\)");
}

TEST_F(GcHeapDeathTest, AGlobalHandleThatWasNeverMadeStopsTheProcessNamingIt) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(run_main([] {
                 usgc_handle handle = usgc_global_handle_new(nullptr);
                 usgc_global_handle_get(handle + 2000);
               }),
               "usgc_global_handle_get: [0-9]+ is not a live global handle");
}

}  // namespace
