// tests/gc/concurrent_mark_stress_test.cpp — shared marking that runs while goroutines run.
//
//   GcConcurrentMarkStressTest.ParkedAndRunningGoroutinesLoseNothingThroughConcurrentMarks
//     256 holder goroutines spend most of their time parked on a channel receive, each holding a
//     private list whose nodes refer to shared lists, the last list it received and one it took
//     from a shared hub, all in its roots and private heap only: while they are parked the
//     concurrent mark must find their roots (scanned by the markers, or by the switch that
//     resumes them first). Two drivers build lists and publish them by sending them to holders
//     and by storing them into the hub (a shared array in a global root); holders move lists
//     between their roots and a shared drop slot of their own, both ways (after the store the
//     list is only in a shared object the mark may have traced already); drivers rewire the hub by
//     swapping slots with a poll between the two stores (the deletion barrier must shade the
//     list only the driver's root holds then). A collector goroutine runs shared full, shared
//     minor and private collections back to back; the holders and drivers also collect their
//     private heaps. A long shared list in the hub makes each full mark take a while.
//     Every list describes itself (node ids and payloads and blob bytes are functions of the
//     list's structure id), and every holder and driver keeps a model of which structure each
//     of its references must be: each wake-up checks everything the holder holds against it.
//
// Runs with USGC_VERIFY=1 (the heap verifier and the check that every goroutine's roots were
// scanned, after every shared collection), seeded (the seed is in every failure message), and
// bounded in time (USGC_GC_STRESS_MS).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/gc/gc_test_support.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/seeded_random.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace {

using Clock = std::chrono::steady_clock;
using usgc::testing::go;
using usgc::testing::Random;
using usgc::testing::run_main;
using usgc::testing::seed_note;
using usgc::testing::test_seed;
using namespace usgc::testing::gc_stress;

constexpr unsigned kHolders = 256;
constexpr unsigned kDrivers = 2;
constexpr unsigned kSlotsPerDriver = 32;
constexpr unsigned kHubSlots = kDrivers * kSlotsPerDriver;
constexpr unsigned kPrivateListLength = 5;
constexpr uint64_t kLongListLength = 20000;
constexpr uint64_t kIdsPerStructure = 1'000'000;

uint64_t node_id(uint64_t structure_id, uint64_t index) {
  return structure_id * kIdsPerStructure + index + 1;
}
uint64_t node_payload(uint64_t id) {
  return mix(id, 0xC0C0);
}
int64_t node_blob_length(uint64_t id) {
  return id % 5 == 0 ? -1 : static_cast<int64_t>(id % 24);
}

struct World {
  World(FailureSink& sink_, GcTypes types_, Clock::time_point deadline_)
      : sink(sink_), types(types_), deadline(deadline_) {}
  FailureSink& sink;
  const GcTypes types;
  const Clock::time_point deadline;
  void* hub = nullptr;    // a shared reference array in a global root
  void* drops = nullptr;  // another, one slot per holder: written by that holder only
  std::vector<usgc_chan*> inboxes;
  std::atomic<uint64_t> next_structure{1};
  std::atomic<uint64_t> hub_model[kHubSlots] = {};  // structure id per slot; written by its driver
  uint64_t long_structure = 0;
  std::atomic<bool> drivers_stopped{false};
  std::atomic<uint64_t> wakeups{0}, lists_checked{0}, sends{0}, hub_stores{0}, swaps{0};
  std::atomic<uint64_t> full_collections{0}, minor_collections{0}, private_collections{0};
  usgc_waitgroup holders_done = USGC_WAITGROUP_INIT;
  usgc_waitgroup drivers_done = USGC_WAITGROUP_INIT;
  usgc_waitgroup collector_done = USGC_WAITGROUP_INIT;

  bool expired() const { return Clock::now() >= deadline || sink.failed(); }
};

// Builds a list of `length` nodes for `structure_id` into *slot (a root), in `ownership`.
bool build_list(World& world, void** slot, uint64_t structure_id, uint64_t length,
                usgc_ownership ownership, const char* who) {
  USGC_ROOTS(roots, 2);
  roots[0] = usgc_alloc(world.types.box, ownership);
  if (roots[0] == nullptr) {
    world.sink.fail(std::string(who) + ": usgc_alloc(box) failed: " + usgc_last_error());
    return false;
  }
  auto* box = static_cast<Box*>(roots[0]);
  box->structure_id = structure_id;
  box->unused = length;
  for (uint64_t i = length; i-- > 0;) {
    const uint64_t id = node_id(structure_id, i);
    if (!make_node(world.sink, world.types, &roots[1], id, node_payload(id), node_blob_length(id),
                   ownership, who))
      return false;
    auto* node = static_cast<Node*>(roots[1]);
    box = static_cast<Box*>(roots[0]);
    usgc_write(node, &node->next, box->first);
    usgc_write(box, &box->first, node);
  }
  *slot = roots[0];
  return true;
}

// "" when `object` is the list of `structure_id` (0: any structure, read from the box).
std::string check_list(World& world, const void* object, uint64_t structure_id, Expected expected) {
  world.lists_checked.fetch_add(1, std::memory_order_relaxed);
  if (object == nullptr) return "list " + std::to_string(structure_id) + " is null";
  if (usgc_type_of(object) != world.types.box || !ownership_matches(object, expected))
    return std::string("not a ") + expected_name(expected) + " box: " + describe_object(object);
  const auto* box = static_cast<const Box*>(object);
  const uint64_t structure = box->structure_id;
  if (structure_id != 0 && structure != structure_id)
    return "box of structure " + std::to_string(structure) + " where " +
           std::to_string(structure_id) + " was held: " + describe_object(object);
  const uint64_t length = box->unused;
  const void* node = usgc_read(box, &box->first);
  for (uint64_t i = 0; i < length; ++i) {
    if (node == nullptr || usgc_type_of(node) != world.types.node ||
        !ownership_matches(node, expected))
      return "list " + std::to_string(structure) + " node " + std::to_string(i) +
             " lost: " + describe_object(node);
    const auto* n = static_cast<const Node*>(node);
    const uint64_t id = node_id(structure, i);
    if (n->id != id || n->payload != node_payload(id))
      return "list " + std::to_string(structure) + " node " + std::to_string(i) + " changed: id " +
             std::to_string(n->id) + ", " + describe_object(node);
    std::string blob = check_blob(usgc_read(n, &n->blob), id, node_blob_length(id), expected);
    if (!blob.empty()) return "list " + std::to_string(structure) + ": " + blob;
    node = usgc_read(n, &n->next);
  }
  if (node != nullptr) return "list " + std::to_string(structure) + " is longer than its length";
  return "";
}

// ---- holders: parked most of the time, everything they hold only in their roots and heap ------

void run_holder(World& world, unsigned index, uint64_t seed) {
  Random random(seed);
  const std::string who = "holder " + std::to_string(index);
  USGC_ROOTS(roots, 4);  // 0 private list, 1 last received, 2 taken from the hub, 3 receive slot
  uint64_t private_structure = world.next_structure.fetch_add(1);
  uint64_t cross[kPrivateListLength] = {};  // structure id each private node's cross refers to
  uint64_t received = 0, taken = 0, dropped = 0;
  if (!build_list(world, &roots[0], private_structure, kPrivateListLength, USGC_GOROUTINE_PRIVATE,
                  who.c_str())) {
    usgc_waitgroup_done(&world.holders_done);
    return;
  }
  auto check_all = [&]() -> bool {
    std::string what = check_list(world, roots[0], private_structure, Expected::kPrivate);
    const void* node = static_cast<Box*>(roots[0])->first;
    for (unsigned i = 0; what.empty() && i < kPrivateListLength; ++i) {
      const auto* n = static_cast<const Node*>(node);
      if (cross[i] != 0)
        what = check_list(world, n->cross, cross[i], Expected::kSharedOrGlobal);
      else if (n->cross != nullptr)
        what = "a cross reference appeared: " + describe_object(n->cross);
      node = n->next;
    }
    if (what.empty() && received != 0)
      what = check_list(world, roots[1], received, Expected::kSharedOrGlobal);
    if (what.empty() && taken != 0)
      what = check_list(world, roots[2], taken, Expected::kSharedOrGlobal);
    if (what.empty() && dropped != 0)
      what = check_list(world, usgc_array_read(world.drops, index), dropped,
                        Expected::kSharedOrGlobal);
    if (!what.empty()) world.sink.fail(who + ": " + what);
    return what.empty();
  };
  for (;;) {
    bool ok = false;
    roots[3] = nullptr;
    if (usgc_chan_recv(world.inboxes[index], &roots[3], &ok) != 0 || !ok) break;  // parked here
    world.wakeups.fetch_add(1, std::memory_order_relaxed);
    if (!check_all()) break;
    std::string what = check_list(world, roots[3], 0, Expected::kSharedOrGlobal);
    if (!what.empty()) {
      world.sink.fail(who + ": received " + what);
      break;
    }
    // The new list goes either into a private node's cross field or into a root (the old one
    // there becomes garbage).
    const uint64_t structure = static_cast<Box*>(roots[3])->structure_id;
    if (random.below(2) == 0) {
      const unsigned at = static_cast<unsigned>(random.below(kPrivateListLength));
      void* node = static_cast<Box*>(roots[0])->first;
      for (unsigned i = 0; i < at; ++i) node = static_cast<Node*>(node)->next;
      usgc_write(node, &static_cast<Node*>(node)->cross, roots[3]);
      cross[at] = structure;
    } else {
      roots[1] = roots[3];
      received = structure;
    }
    roots[3] = nullptr;
    // Move a list between the roots and the shared heap, both ways: after the store the list is
    // only in the drop slot (a shared object the mark may have traced already).
    if (random.below(2) == 0 && received != 0) {
      usgc_array_write(world.drops, index, roots[1]);
      dropped = received;
      roots[1] = nullptr;
      received = 0;
    } else if (dropped != 0) {
      roots[1] = usgc_array_read(world.drops, index);
      received = dropped;
      usgc_array_write(world.drops, index, nullptr);
      dropped = 0;
    }
    // Take a list from the hub (its owner may overwrite the slot at any time).
    void* from_hub = usgc_array_read(world.hub, random.below(kHubSlots));
    if (from_hub != nullptr) {
      roots[2] = from_hub;
      taken = static_cast<Box*>(from_hub)->structure_id;
      what = check_list(world, roots[2], taken, Expected::kSharedOrGlobal);
      if (!what.empty()) {
        world.sink.fail(who + ": taken from the hub: " + what);
        break;
      }
    }
    if (random.below(16) == 0) {  // a new private list: the old one and its crosses are garbage
      private_structure = world.next_structure.fetch_add(1);
      for (uint64_t& c : cross) c = 0;
      if (!build_list(world, &roots[0], private_structure, kPrivateListLength,
                      USGC_GOROUTINE_PRIVATE, who.c_str()))
        break;
    }
    if (random.below(32) == 0) {
      EXPECT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0) << usgc_last_error();
      world.private_collections.fetch_add(1, std::memory_order_relaxed);
    }
  }
  check_all();  // closed: one last look
  usgc_waitgroup_done(&world.holders_done);
}

// ---- drivers: publish by send and by hub stores, rewire the hub ---------------------------------

void run_driver(World& world, unsigned index, uint64_t seed) {
  Random random(seed);
  const std::string who = "driver " + std::to_string(index);
  USGC_ROOTS(roots, 3);
  const unsigned first_slot = index * kSlotsPerDriver;
  while (!world.expired()) {
    // Check one of our hub slots against the model.
    const unsigned check = first_slot + static_cast<unsigned>(random.below(kSlotsPerDriver));
    const uint64_t expected = world.hub_model[check].load(std::memory_order_relaxed);
    if (expected != 0) {
      std::string what =
          check_list(world, usgc_array_read(world.hub, check), expected, Expected::kSharedOrGlobal);
      if (!what.empty()) {
        world.sink.fail(who + ": hub slot " + std::to_string(check) + ": " + what);
        break;
      }
    }
    const unsigned choice = static_cast<unsigned>(random.below(8));
    if (choice < 4) {  // a new list sent to a holder (published by the send)
      if (!build_list(world, &roots[0], world.next_structure.fetch_add(1), 1 + random.below(6),
                      USGC_GOROUTINE_PRIVATE, who.c_str()))
        break;
      const unsigned holder = static_cast<unsigned>(random.below(kHolders));
      if (usgc_chan_try_send(world.inboxes[holder], &roots[0]) == 0)
        world.sends.fetch_add(1, std::memory_order_relaxed);
      roots[0] = nullptr;
    } else if (choice < 6) {  // a new list into one of our hub slots (published by the store)
      const unsigned slot = first_slot + static_cast<unsigned>(random.below(kSlotsPerDriver));
      if (slot == 0) continue;  // the long list stays
      const uint64_t structure = world.next_structure.fetch_add(1);
      if (!build_list(world, &roots[0], structure, 1 + random.below(6), USGC_GOROUTINE_PRIVATE,
                      who.c_str()))
        break;
      usgc_array_write(world.hub, slot, roots[0]);
      world.hub_model[slot].store(structure, std::memory_order_relaxed);
      world.hub_stores.fetch_add(1, std::memory_order_relaxed);
      roots[0] = nullptr;
    } else if (choice < 7) {  // swap two of our slots: between the stores, a root holds one only
      const unsigned a = first_slot + static_cast<unsigned>(random.below(kSlotsPerDriver));
      const unsigned b = first_slot + static_cast<unsigned>(random.below(kSlotsPerDriver));
      if (a == 0 || b == 0 || a == b) continue;
      roots[1] = usgc_array_read(world.hub, a);
      roots[2] = usgc_array_read(world.hub, b);
      const uint64_t model_a = world.hub_model[a].load(std::memory_order_relaxed);
      const uint64_t model_b = world.hub_model[b].load(std::memory_order_relaxed);
      usgc_array_write(world.hub, a, roots[2]);
      roots[2] = nullptr;  // the list that was in b is now only in slot a
      usgc_safepoint_poll();
      usgc_yield();
      usgc_array_write(world.hub, b, roots[1]);
      roots[1] = nullptr;
      world.hub_model[a].store(model_b, std::memory_order_relaxed);
      world.hub_model[b].store(model_a, std::memory_order_relaxed);
      world.swaps.fetch_add(1, std::memory_order_relaxed);
    } else if (random.below(8) == 0) {
      EXPECT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0) << usgc_last_error();
      world.private_collections.fetch_add(1, std::memory_order_relaxed);
    } else {
      usgc_yield();
    }
  }
  usgc_waitgroup_done(&world.drivers_done);
}

void run_collector(World& world, uint64_t seed) {
  Random random(seed);
  while (!world.expired()) {
    const unsigned kind = static_cast<unsigned>(random.below(3));
    if (kind == 0) {
      EXPECT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0) << usgc_last_error();
      world.full_collections.fetch_add(1, std::memory_order_relaxed);
    } else if (kind == 1) {
      EXPECT_EQ(usgc_gc_collect(USGC_GC_SHARED_MINOR), 0) << usgc_last_error();
      world.minor_collections.fetch_add(1, std::memory_order_relaxed);
    } else {
      EXPECT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0) << usgc_last_error();
      world.private_collections.fetch_add(1, std::memory_order_relaxed);
    }
    usgc_sleep_ns(random.below(300'000));
  }
  usgc_waitgroup_done(&world.collector_done);
}

uint64_t seed_for(uint64_t seed, uint64_t salt, unsigned index) {
  return mix(mix(seed, salt), index + 1);
}

class GcConcurrentMarkStressTest : public GcStressFixture {};

TEST_F(GcConcurrentMarkStressTest, ParkedAndRunningGoroutinesLoseNothingThroughConcurrentMarks) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "needs asynchronous preemption, which ThreadSanitizer's late signals do not "
                  "give: goroutines that do not yield hold both Ps past the test's window and the "
                  "collector goroutine never runs (0 collections, 0 wake-ups under TSan)";
#endif
  const uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  FailureSink sink(seed);
  usgc_gc_stats before{};
  before.version = USGC_GC_STATS_VERSION;
  ASSERT_EQ(usgc_gc_get_stats(&before), 0);
  std::unique_ptr<World> world;
  static void* hub_root = nullptr;
  static void* drops_root = nullptr;
  run_main([&] {
    const GcTypes types = register_gc_types();
    ASSERT_NE(types.node, 0u);
    ASSERT_NE(types.box, 0u);
    world = std::make_unique<World>(sink, types, Clock::now() + stress_duration(2000));
    World& w = *world;
    USGC_ROOTS(roots, 1);
    roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kHubSlots, USGC_GOROUTINE_SHARED);
    ASSERT_NE(roots[0], nullptr) << usgc_last_error();
    hub_root = roots[0];
    ASSERT_EQ(usgc_global_root_add(&hub_root), 0);
    w.hub = hub_root;
    drops_root = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kHolders, USGC_GOROUTINE_SHARED);
    ASSERT_NE(drops_root, nullptr) << usgc_last_error();
    ASSERT_EQ(usgc_global_root_add(&drops_root), 0);
    w.drops = drops_root;
    // The long list: every full mark traces it while the goroutines run.
    w.long_structure = w.next_structure.fetch_add(1);
    ASSERT_TRUE(build_list(w, &roots[0], w.long_structure, kLongListLength, USGC_GOROUTINE_PRIVATE,
                           "main"));
    usgc_array_write(w.hub, 0, roots[0]);
    w.hub_model[0].store(w.long_structure);
    roots[0] = nullptr;
    for (unsigned h = 0; h < kHolders; ++h) {
      usgc_chan* inbox = usgc_chan_make_refs(1);
      ASSERT_NE(inbox, nullptr);
      w.inboxes.push_back(inbox);
    }
    ASSERT_EQ(usgc_waitgroup_add(&w.holders_done, kHolders), 0);
    for (unsigned h = 0; h < kHolders; ++h)
      go([&w, h, seed] { run_holder(w, h, seed_for(seed, 1, h)); });
    ASSERT_EQ(usgc_waitgroup_add(&w.drivers_done, kDrivers), 0);
    for (unsigned d = 0; d < kDrivers; ++d)
      go([&w, d, seed] { run_driver(w, d, seed_for(seed, 2, d)); });
    ASSERT_EQ(usgc_waitgroup_add(&w.collector_done, 1), 0);
    go([&w, seed] { run_collector(w, seed_for(seed, 3, 0)); });
    usgc_waitgroup_wait(&w.drivers_done);
    usgc_waitgroup_wait(&w.collector_done);
    // Every holder parked with what it holds: two more full collections, then wake them all.
    EXPECT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0) << usgc_last_error();
    EXPECT_EQ(usgc_gc_collect(USGC_GC_SHARED_MINOR), 0) << usgc_last_error();
    for (usgc_chan* inbox : w.inboxes) EXPECT_EQ(usgc_chan_close(inbox), 0);
    usgc_waitgroup_wait(&w.holders_done);
    EXPECT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0) << usgc_last_error();
    for (unsigned slot = 0; slot < kHubSlots; ++slot) {
      const uint64_t expected = w.hub_model[slot].load();
      if (expected == 0) continue;
      std::string what =
          check_list(w, usgc_array_read(w.hub, slot), expected, Expected::kSharedOrGlobal);
      EXPECT_TRUE(what.empty()) << "hub slot " << slot << ": " << what << "\n" << seed_note(seed);
    }
    EXPECT_EQ(usgc_global_root_remove(&hub_root), 0);
    EXPECT_EQ(usgc_global_root_remove(&drops_root), 0);
    hub_root = drops_root = nullptr;
  });
  ASSERT_NE(world, nullptr);
  ASSERT_TRUE(usgc::testing::all_goroutines_finished());
  for (usgc_chan* inbox : world->inboxes) EXPECT_EQ(usgc_chan_destroy(inbox), 0);
  usgc_gc_stats after{};
  after.version = USGC_GC_STATS_VERSION;
  ASSERT_EQ(usgc_gc_get_stats(&after), 0);
  std::printf(
      "[ info     ] %llu wake-ups, %llu lists checked, %llu sends, %llu hub stores, %llu swaps, "
      "%llu full + %llu minor shared and %llu private collections asked for\n",
      (unsigned long long)world->wakeups.load(), (unsigned long long)world->lists_checked.load(),
      (unsigned long long)world->sends.load(), (unsigned long long)world->hub_stores.load(),
      (unsigned long long)world->swaps.load(), (unsigned long long)world->full_collections.load(),
      (unsigned long long)world->minor_collections.load(),
      (unsigned long long)world->private_collections.load());
  EXPECT_FALSE(sink.failed());
  EXPECT_GT(world->wakeups.load(), 0u);
  EXPECT_GT(world->full_collections.load() + world->minor_collections.load(), 0u);
  // Concurrent requests may be met by one collection (as Go's runtime.GC); the main
  // goroutine's three at the end come one after another and each need their own.
  EXPECT_GE(after.shared_collections - before.shared_collections, 3u);
  EXPECT_GT(after.bytes_freed_shared, before.bytes_freed_shared) << "no shared garbage was freed";
}

}  // namespace
