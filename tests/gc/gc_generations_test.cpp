// tests/gc/gc_generations_test.cpp — generational private heaps and the remembered sets that let
// shared collections skip private heaps (gc/private_generations.hpp), with the heap verifier on:
//   - a shared collection marks no private object, young or old (the marked count stays the
//     shared objects', whatever the private heap holds);
//   - a minor private collection marks only the nursery's survivors; a full one marks everything;
//   - an old object given a young reference is remembered, keeps the young object alive through a
//     minor collection, and is forgotten after it;
//   - an old object given null or another old object of its goroutine takes the barrier's inline
//     second path (no slow path, nothing remembered);
//   - an old object given a shared reference keeps that shared object alive through shared
//     collections after every other reference is gone; the entry clears when the reference does;
//   - an object published while old stays alive through its old private referrers;
//   - publishing an object without references dirties no card; one that refers to a young shared
//     object does;
//   - a stop-the-world lands inside a long private marking (the marking polls);
//   - randomized embedder-style mixes (public API only), alone and three at once under back-to-back
//     shared collections, keep every object they can reach.
// The counters and flags checked come from the collector's internals (gc/*.hpp); every operation
// goes through the public API.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>

#include "gc/allocation.hpp"
#include "gc/block.hpp"
#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/object_header.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/seeded_random.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::testing::run_main;
namespace gc = usgc::gc;

using usgc::testing::list_sum;
using usgc::testing::new_node;
using usgc::testing::Node;
using usgc::testing::write;

// A list of n nodes (values 0..n-1) in *root.
void build_list(void** root, int n, usgc_ownership ownership) {
  *root = nullptr;
  for (int i = n - 1; i >= 0; --i) {
    Node* node = new_node(ownership, i);
    write(node, &node->right, static_cast<Node*>(*root));
    *root = node;
  }
}

void expect_list(const void* head, int n) {
  int length = 0;
  int64_t sum = list_sum(head, &length);
  EXPECT_EQ(length, n);
  EXPECT_EQ(sum, int64_t{n} * (n - 1) / 2);
}

uint64_t header(const void* object) {
  return gc::header_of(object);
}
bool is_old(const void* object) {
  return gc::owner_of(header(object)) == gc::old_id_of(usgc_current_mutator->heap_id);
}
gc::Mutator& self() {
  return *gc::mutator_of(usgc_current_mutator);
}
uint64_t shared_marked() {
  return gc::g_counters.last_shared_objects_marked.load();
}
uint64_t private_marked() {
  return gc::g_counters.last_private_objects_marked.load();
}
uint64_t minor_private_collections() {
  return gc::g_counters.private_minor_collections.load();
}

// Garbage of `n` nodes of `ownership`: freed slots get reused, so a wrongly freed object shows.
void churn(int n, usgc_ownership ownership) {
  USGC_ROOTS(scratch, 1);
  for (int i = 0; i < n; ++i) scratch[0] = new_node(ownership, -1);
}

// USGC_VERIFY=1 (read at usgc_init): the verifier checks the remembered-set invariant and every
// reachable object after each collection.
class GcGenerationsTest : public usgc::testing::VerifiedRuntimeTest {};

TEST_F(GcGenerationsTest, SharedCollectionsMarkNoPrivateObject) {
  run_main([] {
    USGC_ROOTS(roots, 3);
    build_list(&roots[0], 100, USGC_GOROUTINE_SHARED);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    uint64_t without_private = shared_marked();
    EXPECT_GE(without_private, 100u);

    build_list(&roots[1], 20000, USGC_GOROUTINE_PRIVATE);  // old after the next collection
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    EXPECT_TRUE(is_old(roots[1]));
    build_list(&roots[2], 20000, USGC_GOROUTINE_PRIVATE);  // young
    EXPECT_FALSE(is_old(roots[2]));
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    EXPECT_EQ(shared_marked(), without_private) << "a shared collection marked private objects";
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED_MINOR), 0);
    EXPECT_LE(shared_marked(), without_private);
    expect_list(roots[0], 100);
    expect_list(roots[1], 20000);
    expect_list(roots[2], 20000);
  });
}

TEST_F(GcGenerationsTest, MinorPrivateCollectionMarksOnlyTheNurserysSurvivors) {
  run_main([] {
    USGC_ROOTS(roots, 2);
    build_list(&roots[0], 30000, USGC_GOROUTINE_PRIVATE);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);  // explicit: full, everything becomes old
    EXPECT_EQ(private_marked(), 30000u);
    EXPECT_TRUE(is_old(roots[0]));
    build_list(&roots[1], 500, USGC_GOROUTINE_PRIVATE);
    churn(3000, USGC_GOROUTINE_PRIVATE);
    uint64_t minors = minor_private_collections();
    gc::collect_private(self(), "test");  // the pacer's kind: minor (the old heap did not grow)
    EXPECT_EQ(minor_private_collections(), minors + 1);
    EXPECT_EQ(private_marked(), 500u) << "a minor collection marked beyond the nursery";
    EXPECT_TRUE(is_old(roots[1]));
    churn(3000, USGC_GOROUTINE_PRIVATE);
    expect_list(roots[0], 30000);
    expect_list(roots[1], 500);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    EXPECT_EQ(private_marked(), 30500u);
  });
}

TEST_F(GcGenerationsTest, OldToYoungStoreIsRememberedUntilTheNextCollection) {
  run_main([] {
    USGC_ROOTS(roots, 2);
    roots[0] = new_node(USGC_GOROUTINE_PRIVATE, 1);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    auto* old_node = static_cast<Node*>(roots[0]);
    ASSERT_TRUE(is_old(old_node));
    Node* young = new_node(USGC_GOROUTINE_PRIVATE, 42);
    write(old_node, &old_node->left, young);  // the slow path: the target is old
    EXPECT_NE(header(old_node) & gc::kRememberedYoung, 0u);
    EXPECT_EQ(self().remembered_young.size(), 1u);
    write(old_node, &old_node->left, young);  // deduplicated by the flag
    EXPECT_EQ(self().remembered_young.size(), 1u);
    young = nullptr;  // reachable only through the old object now

    gc::collect_private(self(), "test");
    EXPECT_EQ(private_marked(), 1u);
    EXPECT_EQ(header(old_node) & gc::kRememberedYoung, 0u);
    EXPECT_EQ(self().remembered_young.size(), 0u);
    churn(5000, USGC_GOROUTINE_PRIVATE);
    ASSERT_NE(old_node->left, nullptr);
    EXPECT_EQ(old_node->left->value, 42);
    EXPECT_TRUE(is_old(old_node->left));
  });
}

TEST_F(GcGenerationsTest, OldOrNullStoredIntoAnOldObjectTakesNoSlowPath) {
  run_main([] {
    USGC_ROOTS(roots, 2);
    roots[0] = new_node(USGC_GOROUTINE_PRIVATE, 1);
    roots[1] = new_node(USGC_GOROUTINE_PRIVATE, 2);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);  // full and one pause: no cycle marks after
    auto* target = static_cast<Node*>(roots[0]);
    auto* old_value = static_cast<Node*>(roots[1]);
    ASSERT_TRUE(is_old(target));
    ASSERT_TRUE(is_old(old_value));
    const uint64_t slow_before = gc::g_counters.barrier_slow_paths.load();
    for (int i = 0; i < 100; ++i) {
      write(target, &target->left, old_value);
      write(target, &target->right, nullptr);
    }
    EXPECT_EQ(gc::g_counters.barrier_slow_paths.load(), slow_before);
    EXPECT_EQ(target->left, old_value);
    EXPECT_EQ(header(target) & gc::kRememberedFlags, 0u);
    EXPECT_EQ(self().remembered_young.size(), 0u);

    Node* young = new_node(USGC_GOROUTINE_PRIVATE, 3);  // still needs the slow path: remembered
    write(target, &target->right, young);
    EXPECT_EQ(gc::g_counters.barrier_slow_paths.load(), slow_before + 1);
    EXPECT_NE(header(target) & gc::kRememberedYoung, 0u);
    Node* shared = new_node(USGC_GOROUTINE_SHARED, 4);
    write(target, &target->left, shared);
    EXPECT_EQ(gc::g_counters.barrier_slow_paths.load(), slow_before + 2);
    EXPECT_NE(header(target) & gc::kRememberedShared, 0u);
    write(shared, &shared->left, old_value);  // a shared target: published, never inline
    EXPECT_EQ(gc::g_counters.barrier_slow_paths.load(), slow_before + 3);
    EXPECT_EQ(usgc_ownership_of(old_value), USGC_GOROUTINE_SHARED);
  });
}

TEST_F(GcGenerationsTest, OldPrivateReferenceKeepsASharedObjectAlive) {
  run_main([] {
    USGC_ROOTS(roots, 2);
    roots[0] = new_node(USGC_GOROUTINE_PRIVATE, 1);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    auto* old_node = static_cast<Node*>(roots[0]);
    write(old_node, &old_node->right, new_node(USGC_GOROUTINE_SHARED, 7));
    EXPECT_NE(header(old_node) & gc::kRememberedShared, 0u);
    // A young private object holding a shared one (the fast path recorded nothing).
    auto* young = new_node(USGC_GOROUTINE_PRIVATE, 2);
    roots[1] = young;
    write(young, &young->right, new_node(USGC_GOROUTINE_SHARED, 8));
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(usgc_gc_collect(i == 1 ? USGC_GC_SHARED_MINOR : USGC_GC_SHARED), 0);
      churn(5000, USGC_GOROUTINE_SHARED);
    }
    EXPECT_EQ(old_node->right->value, 7);
    EXPECT_EQ(usgc_ownership_of(old_node->right), USGC_GOROUTINE_SHARED);
    EXPECT_EQ(young->right->value, 8);
    // Minor private collection: the young holder is promoted and remembered.
    gc::collect_private(self(), "test");
    EXPECT_NE(header(young) & gc::kRememberedShared, 0u);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    churn(5000, USGC_GOROUTINE_SHARED);
    EXPECT_EQ(young->right->value, 8);
    // The reference goes: a full private collection forgets the entry.
    write(old_node, &old_node->right, nullptr);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    EXPECT_EQ(header(old_node) & gc::kRememberedShared, 0u);
    EXPECT_EQ(self().remembered_shared.size(), 1u);  // `young` still holds one
  });
}

TEST_F(GcGenerationsTest, ObjectPublishedWhileOldStaysAliveThroughItsOldReferrers) {
  run_main([] {
    USGC_ROOTS(roots, 2);
    auto* holder = new_node(USGC_GOROUTINE_PRIVATE, 1);
    roots[0] = holder;
    write(holder, &holder->left, new_node(USGC_GOROUTINE_PRIVATE, 99));
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    Node* published = holder->left;
    ASSERT_TRUE(is_old(published));
    usgc_publish(published);  // holder -> published is now private -> shared, and no store saw it
    EXPECT_EQ(usgc_ownership_of(published), USGC_GOROUTINE_SHARED);
    EXPECT_EQ(header(holder) & gc::kRememberedShared, 0u);
    EXPECT_EQ(self().published_old.size(), 1u);
    published = nullptr;
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
      gc::collect_private(self(), "test");  // minor: frees dead shared objects of its runs
      churn(5000, USGC_GOROUTINE_PRIVATE);
    }
    EXPECT_EQ(holder->left->value, 99);
    // The full private collection records the referrer itself and lets the log go.
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    EXPECT_EQ(self().published_old.size(), 0u);
    EXPECT_NE(header(holder) & gc::kRememberedShared, 0u);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    churn(5000, USGC_GOROUTINE_PRIVATE);
    EXPECT_EQ(holder->left->value, 99);
  });
}

TEST_F(GcGenerationsTest, PublishingDirtiesACardOnlyForAReferenceToAYoungSharedObject) {
  run_main([] {
    USGC_ROOTS(roots, 3);
    roots[0] = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 200, USGC_GOROUTINE_PRIVATE);
    auto* holder = new_node(USGC_GOROUTINE_PRIVATE, 1);
    roots[1] = holder;
    auto* old_shared = new_node(USGC_GOROUTINE_SHARED, 2);
    write(holder, &holder->left, old_shared);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);  // full: clears every card, old_shared is old
    auto card_of = [](void* object) {
      gc::Block* block = gc::block_of(object);
      size_t card =
          static_cast<size_t>(static_cast<char*>(object) - 8 - reinterpret_cast<char*>(block)) /
          gc::kCardBytes;
      return block->cards[card].load();
    };
    usgc_publish(roots[0]);
    EXPECT_EQ(card_of(roots[0]), 0u) << "publishing bytes dirtied a card";
    usgc_publish(holder);  // refers to an old shared object only
    EXPECT_EQ(card_of(holder), 0u);
    auto* other = new_node(USGC_GOROUTINE_PRIVATE, 3);
    roots[2] = other;
    write(other, &other->left, new_node(USGC_GOROUTINE_SHARED, 4));  // young shared
    usgc_publish(other);
    EXPECT_NE(card_of(other), 0u) << "an old object refers to a young one: its card is needed";
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED_MINOR), 0);
    churn(5000, USGC_GOROUTINE_SHARED);
    EXPECT_EQ(static_cast<Node*>(roots[2])->left->value, 4);
  });
}

struct LongMarkJob {
  std::atomic<gc::Mutator*> collector{nullptr};
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
};

TEST_F(GcGenerationsTest, StopTheWorldLandsInsideALongPrivateMarking) {
  LongMarkJob job;
  run_main([&job] {
    usgc::testing::go([&job] {
      {
        USGC_ROOTS(roots, 1);
        build_list(&roots[0], 400000, USGC_GOROUTINE_PRIVATE);
        job.collector.store(&self());
        while (!job.stop.load()) {
          ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
          usgc_safepoint_poll();
        }
        expect_list(roots[0], 400000);
      }
      job.done.store(true);
    });
    ASSERT_TRUE(usgc::testing::eventually([&] { return job.collector.load() != nullptr; },
                                          std::chrono::seconds(60)));
    int inside = 0;
    for (int i = 0; i < 60 && inside < 3; ++i) {
      usgc_stop_info info{};
      ASSERT_EQ(usgc_stop_the_world(&info), 0);
      if (job.collector.load()->collecting) ++inside;  // stopped at a poll of its marking
      ASSERT_EQ(usgc_start_the_world(), 0);
      timespec pause{0, 1000000};
      nanosleep(&pause, nullptr);
    }
    job.stop.store(true);
    EXPECT_GE(inside, 1) << "no stop was acknowledged inside a private collection";
    ASSERT_TRUE(
        usgc::testing::eventually([&] { return job.done.load(); }, std::chrono::seconds(60)));
  });
}

// Public API only: old and young private structures, shared objects stored into them, parts
// published, collections of every kind; every value checked against a model.
void random_mix(uint64_t seed, int steps) {
  usgc::testing::Random random(seed);
  constexpr int kSlots = 128;
  USGC_ROOTS(roots, 2);
  roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kSlots, USGC_GOROUTINE_PRIVATE);
  int64_t model[kSlots] = {};
  int64_t next_value = 1;
  for (int step = 0; step < steps; ++step) {
    int slot = static_cast<int>(random.next() % kSlots);
    void* array = roots[0];
    switch (random.next() % 10) {
      case 0:
      case 1:
      case 2: {  // a private node, maybe holding a shared one
        auto* node = new_node(USGC_GOROUTINE_PRIVATE, next_value);
        roots[1] = node;
        if (random.next() % 2) write(node, &node->left, new_node(USGC_GOROUTINE_SHARED, -5));
        usgc_array_write(roots[0], slot, roots[1]);
        model[slot] = next_value++;
        break;
      }
      case 3: {  // a shared node
        usgc_array_write(array, slot, new_node(USGC_GOROUTINE_SHARED, next_value));
        model[slot] = next_value++;
        break;
      }
      case 4: {  // a shared node into an existing (maybe old) private node's field
        auto* holder = static_cast<Node*>(usgc_array_read(array, slot));
        if (holder != nullptr && usgc_ownership_of(holder) == USGC_GOROUTINE_PRIVATE)
          write(holder, &holder->left, new_node(USGC_GOROUTINE_SHARED, -5));
        break;
      }
      case 5: {  // publish what a slot holds
        if (void* value = usgc_array_read(array, slot)) usgc_publish(value);
        break;
      }
      case 6:
        churn(200, random.next() % 2 ? USGC_GOROUTINE_PRIVATE : USGC_GOROUTINE_SHARED);
        break;
      case 7:
        if (random.next() % 8 == 0) usgc_gc_collect(USGC_GC_PRIVATE);
        break;
      case 8:
        if (random.next() % 8 == 0)
          usgc_gc_collect(random.next() % 2 ? USGC_GC_SHARED : USGC_GC_SHARED_MINOR);
        break;
      default:
        usgc_array_write(array, slot, nullptr);
        model[slot] = 0;
        break;
    }
    usgc_safepoint_poll();
    if (step % 1000 == 999) {
      for (int i = 0; i < kSlots; ++i) {
        auto* node = static_cast<Node*>(usgc_array_read(roots[0], i));
        ASSERT_EQ(node == nullptr ? 0 : node->value, model[i])
            << "slot " << i << " step " << step << " " << usgc::testing::seed_note(seed);
        if (node != nullptr && node->left != nullptr) {
          ASSERT_EQ(node->left->value, -5) << usgc::testing::seed_note(seed);
        }
      }
    }
  }
}

TEST_F(GcGenerationsTest, RandomMixKeepsEveryReachableObject) {
  run_main([] { random_mix(usgc::testing::test_seed(), 20000); });
}

// Three goroutines mix as above while a fourth runs shared collections back to back: stops land
// inside their private markings and sweeps, and the remembered sets are read meanwhile.
TEST_F(GcGenerationsTest, ConcurrentRandomMixesUnderSharedCollections) {
  const uint64_t seed = usgc::testing::test_seed();
  std::atomic<int> running{3};
  run_main([&] {
    for (uint64_t g = 0; g < 3; ++g) {
      usgc::testing::go([&, g] {
        random_mix(seed + g, 30000);
        running.fetch_sub(1);
      });
    }
    usgc::testing::go([&] {
      for (int i = 0; running.load() > 0; ++i) {
        usgc_gc_collect(i % 3 == 0 ? USGC_GC_SHARED : USGC_GC_SHARED_MINOR);
        usgc_yield();
      }
    });
  });
  EXPECT_TRUE(usgc::testing::all_goroutines_finished());
}

}  // namespace
