// tests/gc/gc_stress_test.cpp — the collectors under load: nothing live is ever lost or changed.
//
//   GcStressTest.PrivateCollectionsWhileOtherGoroutinesMutateTheirOwnGraphs
//     8 goroutines each build a private graph (nodes with two references and a blob) rooted in a
//     private table, local handles and the stack arena, rewire it at random with usgc_write, churn
//     garbage and collect their private heap at random points. Every collection is bracketed by a
//     walk of the whole live graph compared with a model in plain C++ memory.
//   GcStressTest.SharedCollectionsWhileGoroutinesPublishSendAndRewire
//     8 goroutines build lists in private roots, publish them (into a shared hub array, a global
//     root, usgc_publish, reference channels to each other with try_send and blocking selects),
//     receive each other's lists, rewire shared and private lists at random (a private node stored
//     into a shared one is published by the barrier), while the main goroutine forces shared
//     collections back to back and workers force some too. Ownership is checked everywhere: what
//     was sent or stored into a shared object is GOROUTINE_SHARED with its whole private closure,
//     what was never published is GOROUTINE_PRIVATE. Lists wait in channel buffers with no other
//     reference; a courier pair sends lists with a plain blocking send whose value only the
//     channel's waiting-sender record holds.
//   FakeNodes/GcStressFakeNumaTest.SharedCollectionsAcrossNodesKeepEveryLiveStructure/{0,1}
//     the shared workload under a fake topology of 2 and 4 nodes (per-node block pools, partial
//     lists and steal order in use); the per-node figures add up to the heap's afterwards.
//   GcStressAutoTest.CollectionsTriggeredByAllocationVolumeKeepEveryLiveStructure
//     both workloads at once with USGC_GC_PERCENT=25 and no explicit collection: the collections
//     the allocation volume triggers (private and shared) must keep every live structure.
//
// All run with USGC_VERIFY=1 (the heap verifier after every collection), are seeded (the seed is
// in every failure message; USGC_TEST_SEED=<n> repeats a run's choices, though goroutine
// interleavings differ) and bounded in wall time (USGC_GC_STRESS_MS overrides the length).
// The workloads: tests/gc/gc_stress_workloads.hpp; helpers and the rules the mutators keep:
// tests/gc/gc_test_support.hpp.
#include <stdint.h>
#include <stdio.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "numa/numa.hpp"
#include "tests/gc/gc_stress_workloads.hpp"
#include "tests/gc/gc_test_support.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/seeded_random.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace {

using usgc::testing::go;
using usgc::testing::Random;
using usgc::testing::run_main;
using usgc::testing::seed_note;
using usgc::testing::test_seed;
using namespace usgc::testing::gc_stress;

usgc_gc_stats gc_stats() {
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  EXPECT_EQ(usgc_gc_get_stats(&stats), 0);
  return stats;
}

// Runs the shared workload from the main goroutine: makes the hub, global roots and channels,
// starts the workers, forces shared collections until they have drained their inboxes (when
// main_collects), collects twice more while they wait, lets them run their last check, cleans up.
void run_shared_workload(SharedWorkload& workload, uint64_t seed, bool main_collects) {
  USGC_ROOTS(roots, 1);
  roots[0] =
      usgc_alloc_array(USGC_TYPE_REF_ARRAY, workload.workers * SharedWorkload::kHubSlotsPerWorker,
                       USGC_GOROUTINE_SHARED);
  ASSERT_NE(roots[0], nullptr) << usgc_last_error();
  ASSERT_EQ(usgc_ownership_of(roots[0]), USGC_GOROUTINE_SHARED) << describe_object(roots[0]);
  workload.hub = roots[0];
  for (unsigned w = 0; w < workload.workers; ++w) {
    ASSERT_EQ(usgc_global_root_add(&workload.global_slots[w]), 0);
    usgc_chan* inbox = usgc_chan_make_refs(SharedWorkload::kInboxCapacity);
    ASSERT_NE(inbox, nullptr);
    workload.inboxes.push_back(inbox);
  }
  workload.release = usgc_chan_make(0, 0);
  ASSERT_NE(workload.release, nullptr);
  workload.stop_blocking = usgc_chan_make(0, 0);
  ASSERT_NE(workload.stop_blocking, nullptr);
  workload.courier = usgc_chan_make_refs(0);
  ASSERT_NE(workload.courier, nullptr);
  ASSERT_EQ(usgc_waitgroup_add(&workload.couriers_done, 2), 0);
  go([&workload, seed] { courier_producer(workload, worker_seed(seed, 4, 0)); });
  go([&workload, seed] { courier_consumer(workload, worker_seed(seed, 4, 1)); });
  const unsigned workers = workload.workers;
  ASSERT_EQ(usgc_waitgroup_add(&workload.stopped_sending, workers), 0);
  ASSERT_EQ(usgc_waitgroup_add(&workload.all_drained, workers), 0);
  ASSERT_EQ(usgc_waitgroup_add(&workload.finished, workers), 0);
  for (unsigned index = 0; index < workers; ++index) {
    go([&workload, index, seed] {
      run_shared_graph_worker(workload, index, worker_seed(seed, 2, index));
    });
  }
  Random random(worker_seed(seed, 3, 0));
  while (workload.drained.load(std::memory_order_acquire) < workers) {
    if (main_collects) {
      // Minor and full collections alternate at random (minor: young objects only, the old ones
      // found through dirty cards; full: everything).
      EXPECT_EQ(usgc_gc_collect(random.below(2) == 0 ? USGC_GC_SHARED_MINOR : USGC_GC_SHARED), 0)
          << usgc_last_error();
      workload.shared_collections_by_main.fetch_add(1, std::memory_order_relaxed);
      workload.shared_epoch.fetch_add(1, std::memory_order_relaxed);
    }
    usgc_sleep_ns(random.below(main_collects ? 400'000 : 2'000'000));
  }
  usgc_waitgroup_wait(&workload.all_drained);
  for (int round = 0; round < 2; ++round) {  // every worker is parked, its lists in its roots
    EXPECT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0) << usgc_last_error();
    workload.shared_collections_by_main.fetch_add(1, std::memory_order_relaxed);
  }
  EXPECT_EQ(usgc_chan_close(workload.release), 0);
  usgc_waitgroup_wait(&workload.finished);
  usgc_waitgroup_wait(&workload.couriers_done);
  for (unsigned w = 0; w < workers; ++w)
    EXPECT_EQ(usgc_global_root_remove(&workload.global_slots[w]), 0);
  EXPECT_EQ(workload.mailbox.size(), 0u) << "lists sent but never received";
}

void destroy_channels(SharedWorkload& workload) {
  for (usgc_chan* inbox : workload.inboxes) EXPECT_EQ(usgc_chan_destroy(inbox), 0);
  if (workload.release != nullptr) {
    EXPECT_EQ(usgc_chan_destroy(workload.release), 0);
  }
  if (workload.stop_blocking != nullptr) {
    EXPECT_EQ(usgc_chan_destroy(workload.stop_blocking), 0);
  }
  if (workload.courier != nullptr) {
    EXPECT_EQ(usgc_chan_destroy(workload.courier), 0);
  }
  workload.courier = nullptr;
  workload.stop_blocking = nullptr;
  workload.inboxes.clear();
  workload.release = nullptr;
}

std::string shared_summary(const SharedWorkload& workload) {
  char text[768];
  std::snprintf(
      text, sizeof text,
      "shared workload: %llu operations, %llu sends (%llu by a blocking select; %llu offers not "
      "taken: %llu to a full "
      "inbox, %llu selects that did something else; %llu of them published anyway), "
      "%llu receives, %llu hub stores, %llu global stores, %llu barrier publications, "
      "%llu private + %llu shared collections by workers, %llu shared by main; courier: %llu lists "
      "sent, %llu received",
      (unsigned long long)workload.operations.load(), (unsigned long long)workload.sends.load(),
      (unsigned long long)workload.blocking_sends.load(),
      (unsigned long long)(workload.full_inboxes.load() + workload.select_not_sent.load()),
      (unsigned long long)workload.full_inboxes.load(),
      (unsigned long long)workload.select_not_sent.load(),
      (unsigned long long)workload.published_on_failed_send.load(),
      (unsigned long long)workload.receives.load(), (unsigned long long)workload.hub_stores.load(),
      (unsigned long long)workload.global_stores.load(),
      (unsigned long long)workload.barrier_publications.load(),
      (unsigned long long)workload.private_collections.load(),
      (unsigned long long)workload.shared_collections_by_workers.load(),
      (unsigned long long)workload.shared_collections_by_main.load(),
      (unsigned long long)workload.courier_sends.load(),
      (unsigned long long)workload.courier_receives.load());
  return text;
}

std::string private_summary(const PrivateWorkload& workload) {
  char text[256];
  std::snprintf(text, sizeof text,
                "private workload: %llu operations, %llu explicit collections, %llu verifications, "
                "%llu stack-local rounds",
                (unsigned long long)workload.operations.load(),
                (unsigned long long)workload.collections.load(),
                (unsigned long long)workload.verifications.load(),
                (unsigned long long)workload.stack_local_rounds.load());
  return text;
}

// =====================================================================================================
// The tests
// =====================================================================================================

class GcStressTest : public GcStressFixture {};

class GcStressAutoTest : public GcStressFixture {
 protected:
  const char* gc_percent() const override { return "25"; }
};

TEST_F(GcStressTest, PrivateCollectionsWhileOtherGoroutinesMutateTheirOwnGraphs) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  FailureSink sink(seed);
  const usgc_gc_stats before = gc_stats();
  std::unique_ptr<PrivateWorkload> workload;
  run_main([&] {
    const GcTypes types = register_gc_types();
    ASSERT_NE(types.node, 0u);
    ASSERT_NE(types.box, 0u);
    workload =
        std::make_unique<PrivateWorkload>(sink, types, Clock::now() + stress_duration(2000), true);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    start_private_workers(*workload, 8, seed, &done);
    usgc_waitgroup_wait(&done);
  });
  ASSERT_NE(workload, nullptr);
  ASSERT_TRUE(usgc::testing::all_goroutines_finished());
  const usgc_gc_stats after = gc_stats();
  std::printf("[ info     ] %s\n", private_summary(*workload).c_str());
  EXPECT_FALSE(sink.failed());
  EXPECT_GT(workload->collections.load(), 0u);
  EXPECT_GE(after.private_collections - before.private_collections, workload->collections.load())
      << "every usgc_gc_collect(PRIVATE) counts as a private collection";
  EXPECT_GT(after.bytes_freed_private, before.bytes_freed_private) << "the garbage was never freed";
}

TEST_F(GcStressTest, SharedCollectionsWhileGoroutinesPublishSendAndRewire) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  FailureSink sink(seed);
  const usgc_gc_stats before = gc_stats();
  std::unique_ptr<SharedWorkload> workload;
  run_main([&] {
    const GcTypes types = register_gc_types();
    ASSERT_NE(types.node, 0u);
    ASSERT_NE(types.box, 0u);
    workload = std::make_unique<SharedWorkload>(sink, types, Clock::now() + stress_duration(2000),
                                                8, true);
    run_shared_workload(*workload, seed, true);
  });
  ASSERT_NE(workload, nullptr);
  ASSERT_TRUE(usgc::testing::all_goroutines_finished());
  destroy_channels(*workload);
  const usgc_gc_stats after = gc_stats();
  std::printf("[ info     ] %s\n", shared_summary(*workload).c_str());
  EXPECT_FALSE(sink.failed());
  EXPECT_GT(workload->sends.load(), 0u);
  EXPECT_EQ(workload->sends.load(), workload->receives.load());
  EXPECT_GT(workload->courier_sends.load(), 0u);
  EXPECT_EQ(workload->courier_sends.load(), workload->courier_receives.load());
  EXPECT_GT(workload->shared_collections_by_main.load(), 2u);
  // Requests made while a collection runs may be met by one collection (as Go's runtime.GC):
  // only one goroutine's own requests, made one after another, each need their own.
  EXPECT_GE(after.shared_collections - before.shared_collections,
            workload->shared_collections_by_main.load());
  EXPECT_GT(after.objects_published, before.objects_published);
  EXPECT_GT(after.bytes_freed_shared, before.bytes_freed_shared)
      << "the shared garbage was never freed";
}

TEST_F(GcStressAutoTest, CollectionsTriggeredByAllocationVolumeKeepEveryLiveStructure) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  FailureSink sink(seed);
  const usgc_gc_stats before = gc_stats();
  std::unique_ptr<PrivateWorkload> private_workload;
  std::unique_ptr<SharedWorkload> shared_workload;
  run_main([&] {
    const GcTypes types = register_gc_types();
    ASSERT_NE(types.node, 0u);
    ASSERT_NE(types.box, 0u);
    const Clock::time_point deadline = Clock::now() + stress_duration(2000);
    private_workload = std::make_unique<PrivateWorkload>(sink, types, deadline, false);
    shared_workload = std::make_unique<SharedWorkload>(sink, types, deadline, 4, false);
    usgc_waitgroup private_done = USGC_WAITGROUP_INIT;
    start_private_workers(*private_workload, 4, seed, &private_done);
    run_shared_workload(*shared_workload, seed, false);
    usgc_waitgroup_wait(&private_done);
  });
  ASSERT_NE(private_workload, nullptr);
  ASSERT_NE(shared_workload, nullptr);
  ASSERT_TRUE(usgc::testing::all_goroutines_finished());
  destroy_channels(*shared_workload);
  const usgc_gc_stats after = gc_stats();
  std::printf("[ info     ] %s\n[ info     ] %s\n", private_summary(*private_workload).c_str(),
              shared_summary(*shared_workload).c_str());
  EXPECT_FALSE(sink.failed());
  EXPECT_EQ(private_workload->collections.load(), 0u);
  EXPECT_GT(after.private_collections - before.private_collections, 0u)
      << "USGC_GC_PERCENT=25: private allocation volume never triggered a private collection";
  // The main goroutine forces exactly two shared collections at the end; any more were triggered.
  EXPECT_GT(after.shared_collections - before.shared_collections,
            shared_workload->shared_collections_by_main.load())
      << "USGC_GC_PERCENT=25: shared allocation volume never triggered a shared collection";
}

// The shared workload with a fake topology of N nodes over this machine's CPUs: the Ps' blocks
// come from the pools of the nodes their workers run on, partial shared blocks wait on their
// node's list, markers steal from their own node first, sweepers return blocks to their node's
// pool. Nothing live may be lost; the per-node figures add up to the heap's.
class GcStressFakeNumaTest : public GcStressFixture, public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    usgc::numa::inject_fake_topology(GetParam());
    GcStressFixture::SetUp();
  }
  void TearDown() override {
    GcStressFixture::TearDown();
    usgc::numa::inject_fake_topology(0);
  }
};

TEST_P(GcStressFakeNumaTest, SharedCollectionsAcrossNodesKeepEveryLiveStructure) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  FailureSink sink(seed);
  const usgc_gc_stats before = gc_stats();
  std::unique_ptr<SharedWorkload> workload;
  run_main([&] {
    const GcTypes types = register_gc_types();
    ASSERT_NE(types.node, 0u);
    workload = std::make_unique<SharedWorkload>(sink, types, Clock::now() + stress_duration(1000),
                                                8, true);
    run_shared_workload(*workload, seed, true);
  });
  ASSERT_NE(workload, nullptr);
  ASSERT_TRUE(usgc::testing::all_goroutines_finished());
  destroy_channels(*workload);
  const usgc_gc_stats after = gc_stats();
  std::printf("[ info     ] %d nodes: %s\n", GetParam(), shared_summary(*workload).c_str());
  EXPECT_FALSE(sink.failed());
  EXPECT_EQ(workload->sends.load(), workload->receives.load());
  EXPECT_GT(workload->shared_collections_by_main.load(), 2u);
  EXPECT_GT(after.bytes_freed_shared, before.bytes_freed_shared);
  usgc_gc_node_stats nodes[usgc::numa::kMaxNodes];
  uint32_t node_count = 0;
  ASSERT_EQ(usgc_gc_get_node_stats(nodes, usgc::numa::kMaxNodes, &node_count), 0);
  EXPECT_GE(node_count, static_cast<uint32_t>(GetParam()));
  uint64_t in_use = 0;
  for (uint32_t node = 0; node < node_count; ++node) in_use += nodes[node].bytes_in_use;
  EXPECT_EQ(in_use, after.bytes_committed) << "the nodes' figures add up to the heap's";
}

INSTANTIATE_TEST_SUITE_P(FakeNodes, GcStressFakeNumaTest, ::testing::Values(2, 4));

}  // namespace
