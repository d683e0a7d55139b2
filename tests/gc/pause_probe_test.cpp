// tests/gc/pause_probe_test.cpp — the pause probe (gc/pause_probe.hpp) that says where a slow
// private pause lost its time, proven with counts and with given times (never with durations):
//   - the longest stretch is the longest interval between two consecutive checkpoints of one
//     pause, its start and end included; a probe already measuring is not restarted by a nested
//     begin; an inactive probe reads no clock and counts nothing;
//   - with USGC_TRACE=gc a private collection passes a checkpoint at least every 1024 objects it
//     marks (a stretch spans a bounded unit of work), the longest stretch is within the pause,
//     and the probe is stopped when the pause ends;
//   - without tracing the probe is never started: no collection reads the clock for it.
#include <gtest/gtest.h>

#include <cstdint>

#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/pause_probe.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/private_heap_fixture.hpp"
#include "tests/support/saved_environment.hpp"
#include "usgc/usgc.h"

namespace {

namespace gc = usgc::gc;
using usgc::testing::build_old_list;
using usgc::testing::counter;
using usgc::testing::run_main;

TEST(PauseProbeTest, TheLongestStretchIsBetweenConsecutiveCheckpoints) {
  gc::PauseProbe probe;
  ASSERT_TRUE(gc::pause_probe_begin(probe, 1000));
  gc::pause_probe_stretch(probe, 1100);  // 100
  gc::pause_probe_stretch(probe, 1350);  // 250
  gc::pause_probe_stretch(probe, 1400);  // 50
  EXPECT_FALSE(gc::pause_probe_begin(probe, 5000)) << "a nested pause restarted the probe";
  gc::pause_probe_end(probe, 1420);  // 20
  EXPECT_FALSE(probe.active);
  EXPECT_EQ(probe.longest_ns, 250u);
  EXPECT_EQ(probe.checkpoints, 4u);
  // Stopped: a checkpoint changes nothing (and reads no clock), the figures stay readable.
  gc::pause_probe_checkpoint(probe);
  gc::pause_probe_skip(probe);
  gc::pause_probe_end(probe, 999999);
  EXPECT_EQ(probe.longest_ns, 250u);
  EXPECT_EQ(probe.checkpoints, 4u);
  // The end's stretch counts too, and a new pause starts from zero.
  ASSERT_TRUE(gc::pause_probe_begin(probe, 2000));
  gc::pause_probe_end(probe, 2700);
  EXPECT_EQ(probe.longest_ns, 700u);
  EXPECT_EQ(probe.checkpoints, 1u);
}

TEST(PauseProbeTest, ASkippedIntervalIsInNoStretch) {
  gc::PauseProbe probe;
  ASSERT_TRUE(gc::pause_probe_begin(probe, 0));  // long ago: the skip moves the last checkpoint
  gc::pause_probe_skip(probe);
  EXPECT_GT(probe.last_ns, 0u);
  EXPECT_EQ(probe.checkpoints, 0u);
  gc::pause_probe_end(probe, probe.last_ns + 5);
  EXPECT_EQ(probe.longest_ns, 5u);
}

constexpr int kListNodes = 100000;  // a full collection marks them all: 97 polls at least

// USGC_TRACE=gc for the test's runtime (the member is built before SetUp starts it).
class TracedPauseProbeTest : public usgc::testing::PrivateHeapTest {
  usgc::testing::SavedEnvironmentVariable trace_{"USGC_TRACE", "gc"};
};

TEST_F(TracedPauseProbeTest, ATracedCollectionHasACheckpointEveryThousandObjects) {
  run_main([&] {
    ASSERT_TRUE(gc::g_config.trace);
    USGC_ROOTS(roots, 1);
    ASSERT_EQ(build_old_list(&roots[0], kListNodes), 0);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);  // one pause: marks the whole list
    const gc::Mutator& m = usgc::testing::current_private_heap();
    const uint64_t marked = counter(gc::g_counters.last_private_objects_marked);
    EXPECT_GE(marked, static_cast<uint64_t>(kListNodes));
    EXPECT_FALSE(m.pause_probe.active) << "the probe still runs after the pause";
    EXPECT_GE(m.pause_probe.checkpoints, marked / 1024)
        << "a stretch of the pause spans more than 1024 objects of marking";
    EXPECT_GT(m.pause_probe.longest_ns, 0u);
    EXPECT_LE(m.pause_probe.longest_ns, counter(gc::g_counters.last_pause_ns))
        << "a stretch longer than its pause";
  });
}

// USGC_TRACE unset for the test's runtime.
class UntracedPauseProbeTest : public usgc::testing::PrivateHeapTest {
  usgc::testing::SavedEnvironmentVariable trace_{"USGC_TRACE", nullptr};
};

TEST_F(UntracedPauseProbeTest, WithoutTracingTheProbeNeverStarts) {
  run_main([&] {
    ASSERT_FALSE(gc::g_config.trace);
    USGC_ROOTS(roots, 1);
    ASSERT_EQ(build_old_list(&roots[0], kListNodes), 0);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    const gc::Mutator& m = usgc::testing::current_private_heap();
    EXPECT_GT(counter(gc::g_counters.private_collections), 0u);
    EXPECT_FALSE(m.pause_probe.active);
    EXPECT_EQ(m.pause_probe.checkpoints, 0u) << "the probe read the clock without USGC_TRACE=gc";
  });
}

}  // namespace
