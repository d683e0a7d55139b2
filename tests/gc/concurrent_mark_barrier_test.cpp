// tests/gc/concurrent_mark_barrier_test.cpp — the deletion barrier keeps the reference a store
// overwrites even when a shared mark starts while the storing goroutine is inside the barrier's
// slow path (publishing the value it stores).
//
//   GcConcurrentMarkBarrierTest.AMarkStartedDuringPublicationStillShadesTheOverwrittenReference
//     A hub (a shared array in a global root) holds box O, published and marked by an earlier full
//     collection. Goroutine D stores a new private box N into the hub's slot: the barrier's slow
//     path publishes N, and a test hook (gc/publication.hpp) holds D inside that publication at
//     safepoints, as an asynchronous safepoint taken at a PLT stub there did. A full shared
//     collection starts meanwhile (D acknowledges its start stop from the hook) and a test gate
//     (gc/concurrent_mark.hpp) holds its markers before their first round, so nothing has traced
//     the hub yet. Goroutine H, scanned when it is switched in during the mark, reads O from the
//     hub into a root; then D leaves the hook and stores N over O. O is reachable (H's root) but
//     only the deletion barrier can tell the mark: the hub no longer holds it and H was scanned
//     before it took it. The barrier used to shade the old value before publishing, when no mark
//     ran yet: O stayed unmarked and the verifier (USGC_VERIFY, on in this fixture) stopped the
//     process with "reachable object left unmarked by the shared mark". It now shades right
//     before its store: O survives this collection and the next, checked by H.
// Deterministic: every step waits for the previous one through flags; no timing is assumed.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "gc/concurrent_mark.hpp"
#include "gc/publication.hpp"
#include "tests/gc/gc_test_support.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace {

using usgc::testing::go;
using usgc::testing::run_main;
using namespace usgc::testing::gc_stress;

constexpr uint64_t kOldStructure = 7001;
constexpr uint64_t kNewStructure = 7002;

// The steps, in order. Written by the goroutine that completes a step (release), read by the
// others (acquire) while they poll or yield.
struct Steps {
  std::atomic<bool> driver_in_publication{false};  // D is held inside the barrier's publication
  std::atomic<bool> holder_took_old{false};        // H holds O in a root (read during the mark)
  std::atomic<bool> driver_stored{false};          // D stored N over O
  std::atomic<bool> collection_done{false};        // C's collection returned
  std::atomic<bool> hook_armed{false};             // the next publication is D's
};
Steps g_steps;

// Runs inside D's publication of N: holds D there, acknowledging stops, until H took O.
void hold_driver_inside_publication() {
  if (!g_steps.hook_armed.exchange(false, std::memory_order_acq_rel)) return;
  g_steps.driver_in_publication.store(true, std::memory_order_release);
  while (!g_steps.holder_took_old.load(std::memory_order_acquire)) {
    usgc_safepoint_poll();
    std::this_thread::yield();
  }
}

// Holds the markers before each concurrent round until D's store is done.
bool hold_markers_until_driver_stored() {
  if (g_steps.driver_stored.load(std::memory_order_acquire)) return false;
  std::this_thread::yield();
  return true;
}

Box* new_box(const GcTypes& types, uint64_t structure) {
  auto* box = static_cast<Box*>(usgc_alloc(types.box, USGC_GOROUTINE_PRIVATE));
  if (box != nullptr) box->structure_id = structure;
  return box;
}

class GcConcurrentMarkBarrierTest : public GcStressFixture {};

TEST_F(GcConcurrentMarkBarrierTest,
       AMarkStartedDuringPublicationStillShadesTheOverwrittenReference) {
  static void* hub_root = nullptr;
  g_steps.~Steps();
  new (&g_steps) Steps();
  std::atomic<int> holder_failures{0};
  run_main([&] {
    const GcTypes types = register_gc_types();
    ASSERT_NE(types.box, 0u);
    hub_root = usgc_alloc_array(USGC_TYPE_REF_ARRAY, 1, USGC_GOROUTINE_SHARED);
    ASSERT_NE(hub_root, nullptr) << usgc_last_error();
    ASSERT_EQ(usgc_global_root_add(&hub_root), 0);
    {
      USGC_ROOTS(roots, 1);
      roots[0] = new_box(types, kOldStructure);
      ASSERT_NE(roots[0], nullptr) << usgc_last_error();
      usgc_array_write(hub_root, 0, roots[0]);  // O is published into the hub
    }
    // O is marked in this collection's epoch; the next full one starts with it unmarked.
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0) << usgc_last_error();

    usgc::gc::g_publication_test_hook = hold_driver_inside_publication;
    usgc::gc::g_concurrent_mark_test_gate = hold_markers_until_driver_stored;
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    ASSERT_EQ(usgc_waitgroup_add(&done, 3), 0);
    go([&] {  // D
      USGC_ROOTS(roots, 1);
      roots[0] = new_box(types, kNewStructure);
      if (roots[0] != nullptr) {
        g_steps.hook_armed.store(true, std::memory_order_release);
        usgc_array_write(hub_root, 0, roots[0]);  // publishes N: held in the hook
        g_steps.driver_stored.store(true, std::memory_order_release);
      } else {
        ADD_FAILURE() << "usgc_alloc: " << usgc_last_error();
        g_steps.driver_stored.store(true, std::memory_order_release);
      }
      usgc_waitgroup_done(&done);
    });
    go([&] {  // C: a full collection while D is inside the barrier
      while (!g_steps.driver_in_publication.load(std::memory_order_acquire)) usgc_yield();
      EXPECT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0) << usgc_last_error();
      g_steps.collection_done.store(true, std::memory_order_release);
      usgc_waitgroup_done(&done);
    });
    go([&] {  // H: takes O from the hub during the mark, after its own scan
      USGC_ROOTS(roots, 1);
      while (!usgc::gc::shared_mark_in_progress()) usgc_yield();
      usgc_yield();  // switched in again during the mark: scanned before it runs on
      roots[0] = usgc_array_read(hub_root, 0);
      g_steps.holder_took_old.store(true, std::memory_order_release);
      while (!g_steps.collection_done.load(std::memory_order_acquire)) usgc_yield();
      EXPECT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0) << usgc_last_error();
      const auto* box = static_cast<const Box*>(roots[0]);
      if (box == nullptr || usgc_type_of(box) != types.box || box->structure_id != kOldStructure) {
        ADD_FAILURE() << "the box taken from the hub was lost: " << describe_object(box);
        holder_failures.fetch_add(1);
      }
      usgc_waitgroup_done(&done);
    });
    usgc_waitgroup_wait(&done);
    usgc::gc::g_publication_test_hook = nullptr;
    usgc::gc::g_concurrent_mark_test_gate = nullptr;
    const auto* now = static_cast<const Box*>(usgc_array_read(hub_root, 0));
    EXPECT_TRUE(now != nullptr && now->structure_id == kNewStructure) << describe_object(now);
    EXPECT_EQ(usgc_global_root_remove(&hub_root), 0);
    hub_root = nullptr;
  });
  EXPECT_EQ(holder_failures.load(), 0);
  EXPECT_FALSE(g_steps.hook_armed.load()) << "the store did not publish through the hook";
}

}  // namespace
