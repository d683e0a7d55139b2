// tests/gc/private_idle_steps_test.cpp — old-generation work in a goroutine's idle time
// (gc/private_old_cycle.hpp, old_cycle_step_before_parking), proven with counts, never with
// durations:
//   - a goroutine that parks on channels (send and receive) with a cycle due advances the cycle
//     to its end without allocating a byte: every operation that would park does at most one
//     step first, each step within the allocation path's bounds (a mark slice of at most
//     kMaxSliceObjects, a sweep step of at most kMaxSweepBlocksPerStep blocks), and the cycle's
//     garbage is freed while the survivors stay intact;
//   - the same for a goroutine that parks in a select, and for one that sleeps;
//   - with no cycle due, or with collection off (USGC_GC_PERCENT=off), parking does no step.
// The mutators use the public API (channels, select, sleep, goroutines); the test reaches gc/
// for the counters and the pacer's state (to make a cycle due).
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>

#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/private_old_cycle.hpp"
#include "gc/private_pacer.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/private_heap_fixture.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

namespace gc = usgc::gc;
using usgc::testing::build_old_list;
using usgc::testing::build_old_list_half_garbage;
using usgc::testing::counter;
using usgc::testing::go;
using usgc::testing::list_length_checking_even_values;
using usgc::testing::make_old_cycle_due;
using usgc::testing::Node;
using usgc::testing::run_main;

using PrivateIdleStepsTest = usgc::testing::PrivateHeapTest;

// The same runtime with collection off.
class PrivateIdleStepsCollectionOffTest : public usgc::testing::PrivateHeapTest {
 protected:
  const char* gc_percent() const override { return "off"; }
};

constexpr int kNodes = 200000;  // 32-byte slots: about 100 blocks, half of the nodes garbage
constexpr int kMaxRounds = 20000;

gc::Mutator& self() {
  return usgc::testing::current_private_heap();
}

// An old list of kNodes with every odd node unlinked (garbage), and a cycle due now (trigger 0).
void build_garbage_and_make_a_cycle_due(void** root) {
  ASSERT_NO_FATAL_FAILURE(build_old_list_half_garbage(root, kNodes));
  gc::Mutator& m = self();
  if (gc::old_cycle_active(m)) gc::old_cycle_finish_before_waiting();
  make_old_cycle_due();
  ASSERT_TRUE(gc::old_cycle_idle_work_pending());
}

// What the idle steps did, against the state before: the cycle ran to its end, every step within
// its bounds, nothing allocated, at most one step per parking operation, the garbage freed.
struct Before {
  uint64_t idle_steps;
  uint64_t old_marked;
  uint64_t run_bytes_taken;
  uint64_t bytes_freed;
};

Before take_before() {
  return {counter(gc::g_counters.private_idle_steps),
          counter(gc::g_counters.private_old_objects_marked), self().run_bytes_taken,
          counter(gc::g_counters.bytes_freed_private)};
}

void expect_cycle_done_by_idle_steps(const Before& before, uint64_t parking_operations,
                                     void* root) {
  gc::Mutator& m = self();
  EXPECT_FALSE(gc::old_cycle_active(m)) << "the cycle did not end in the idle steps";
  EXPECT_FALSE(gc::old_cycle_idle_work_pending());
  const uint64_t steps = counter(gc::g_counters.private_idle_steps) - before.idle_steps;
  EXPECT_GE(steps, 3u) << "a start, a mark and a sweep at least";
  if (parking_operations != 0) {
    EXPECT_LE(steps, parking_operations) << "an operation did more than one step before parking";
  }
  EXPECT_EQ(m.run_bytes_taken, before.run_bytes_taken)
      << "the goroutine allocated: the cycle was advanced by allocation, not by parking";
  EXPECT_GE(counter(gc::g_counters.private_old_objects_marked) - before.old_marked,
            uint64_t{kNodes / 2})
      << "the cycle did not trace the surviving half of the list";
  EXPECT_GE(counter(gc::g_counters.bytes_freed_private) - before.bytes_freed,
            uint64_t{kNodes / 2} * 32)
      << "the cycle's sweep did not free the dropped half of the list";
  EXPECT_LE(m.old_cycle_longest_slice_objects, gc::kMaxSliceObjects);
  EXPECT_LE(m.old_cycle_longest_sweep_blocks, gc::kMaxSweepBlocksPerStep);
  EXPECT_EQ(list_length_checking_even_values(static_cast<Node*>(root)), kNodes / 2);
}

// A goroutine that answers every value on `ping` with the same on `pong`, until a negative one.
void start_echo(usgc_chan* ping, usgc_chan* pong) {
  go([ping, pong] {
    for (;;) {
      int64_t value = 0;
      bool ok = false;
      ASSERT_EQ(usgc_chan_recv(ping, &value, &ok), 0);
      if (!ok || value < 0) return;
      ASSERT_EQ(usgc_chan_send(pong, &value), 0);
    }
  });
}

void stop_echo(usgc_chan* ping) {
  int64_t stop = -1;
  ASSERT_EQ(usgc_chan_send(ping, &stop), 0);
}

// One exchange with the echo goroutine: sends i on ping, receives the answer on pong (two
// operations that may park), and checks it.
using RoundTrip = std::function<void(usgc_chan* ping, usgc_chan* pong, int64_t i)>;

// Builds the garbage and makes a cycle due, then exchanges values with an echo goroutine through
// round_trip until the cycle's work is done, and checks that the steps before parking did it.
void echo_until_the_cycle_is_done(const RoundTrip& round_trip) {
  USGC_ROOTS(roots, 1);
  ASSERT_NO_FATAL_FAILURE(build_garbage_and_make_a_cycle_due(&roots[0]));
  usgc_chan* ping = usgc_chan_make(sizeof(int64_t), 0);
  usgc_chan* pong = usgc_chan_make(sizeof(int64_t), 0);
  ASSERT_NE(ping, nullptr);
  ASSERT_NE(pong, nullptr);
  start_echo(ping, pong);
  const Before before = take_before();
  uint64_t operations = 0;
  for (int64_t i = 0; i < kMaxRounds && gc::old_cycle_idle_work_pending(); ++i) {
    ASSERT_NO_FATAL_FAILURE(round_trip(ping, pong, i));
    operations += 2;
  }
  expect_cycle_done_by_idle_steps(before, operations, roots[0]);
  stop_echo(ping);
  while (usgc_goroutine_count() > 1) usgc_yield();
  EXPECT_EQ(usgc_chan_destroy(ping), 0);
  EXPECT_EQ(usgc_chan_destroy(pong), 0);
}

TEST_F(PrivateIdleStepsTest, ParkingOnChannelsAdvancesADueCycleWithoutAllocating) {
  run_main([&] {
    echo_until_the_cycle_is_done([](usgc_chan* ping, usgc_chan* pong, int64_t i) {
      ASSERT_EQ(usgc_chan_send(ping, &i), 0);
      int64_t answer = -1;
      bool ok = false;
      ASSERT_EQ(usgc_chan_recv(pong, &answer, &ok), 0);
      ASSERT_TRUE(ok);
      ASSERT_EQ(answer, i);
    });
  });
}

TEST_F(PrivateIdleStepsTest, ParkingInASelectAdvancesADueCycleWithoutAllocating) {
  run_main([&] {
    usgc_chan* never = usgc_chan_make(sizeof(int64_t), 0);  // nobody sends on it
    ASSERT_NE(never, nullptr);
    echo_until_the_cycle_is_done([never](usgc_chan* ping, usgc_chan* pong, int64_t i) {
      int64_t sent = i;
      int64_t answer = -1;
      int64_t unused = 0;
      usgc_select_case send_case[2] = {{ping, USGC_SELECT_SEND, &sent, false},
                                       {never, USGC_SELECT_RECV, &unused, false}};
      size_t chosen = 99;
      ASSERT_EQ(usgc_select(send_case, 2, true, &chosen), 0);
      ASSERT_EQ(chosen, 0u);
      usgc_select_case receive_case[2] = {{pong, USGC_SELECT_RECV, &answer, false},
                                          {never, USGC_SELECT_RECV, &unused, false}};
      ASSERT_EQ(usgc_select(receive_case, 2, true, &chosen), 0);
      ASSERT_EQ(chosen, 0u);
      ASSERT_EQ(answer, i);
    });
    EXPECT_EQ(usgc_chan_destroy(never), 0);
  });
}

TEST_F(PrivateIdleStepsTest, SleepingAdvancesADueCycleWithoutAllocating) {
  run_main([&] {
    USGC_ROOTS(roots, 1);
    ASSERT_NO_FATAL_FAILURE(build_garbage_and_make_a_cycle_due(&roots[0]));
    const Before before = take_before();
    // A sleep steps while its deadline is ahead (one that lost its CPU past the deadline before
    // its first step does none): the cycle ends within these sleeps.
    for (int i = 0; i < kMaxRounds && gc::old_cycle_idle_work_pending(); ++i)
      ASSERT_EQ(usgc_sleep_ns(100000), 0);
    expect_cycle_done_by_idle_steps(before, /*parking_operations=*/0, roots[0]);
  });
}

TEST_F(PrivateIdleStepsTest, ParkingWithNoCycleDueDoesNoStep) {
  run_main([&] {
    USGC_ROOTS(roots, 1);
    ASSERT_NO_FATAL_FAILURE(build_old_list_half_garbage(&roots[0], 1000));
    gc::Mutator& m = self();
    if (gc::old_cycle_active(m)) gc::old_cycle_finish_before_waiting();
    ASSERT_FALSE(gc::old_cycle_idle_work_pending());
    usgc_chan* ping = usgc_chan_make(sizeof(int64_t), 0);
    usgc_chan* pong = usgc_chan_make(sizeof(int64_t), 0);
    ASSERT_NE(ping, nullptr);
    ASSERT_NE(pong, nullptr);
    start_echo(ping, pong);
    const uint64_t steps = counter(gc::g_counters.private_idle_steps);
    for (int64_t i = 0; i < 100; ++i) {
      ASSERT_EQ(usgc_chan_send(ping, &i), 0);
      int64_t answer = -1;
      bool ok = false;
      ASSERT_EQ(usgc_chan_recv(pong, &answer, &ok), 0);
      ASSERT_EQ(answer, i);
    }
    ASSERT_EQ(usgc_sleep_ns(1000), 0);
    EXPECT_EQ(counter(gc::g_counters.private_idle_steps), steps)
        << "a goroutine with no old-generation work pending stepped before parking";
    stop_echo(ping);
    while (usgc_goroutine_count() > 1) usgc_yield();
    EXPECT_EQ(usgc_chan_destroy(ping), 0);
    EXPECT_EQ(usgc_chan_destroy(pong), 0);
    EXPECT_EQ(list_length_checking_even_values(static_cast<Node*>(roots[0])), 500);
  });
}

TEST_F(PrivateIdleStepsCollectionOffTest, ParkingWithCollectionOffDoesNoStep) {
  run_main([&] {
    USGC_ROOTS(roots, 1);
    ASSERT_EQ(build_old_list(&roots[0], 1000), 0);
    make_old_cycle_due();  // past the trigger: a cycle would be due with collection on
    EXPECT_FALSE(gc::old_cycle_idle_work_pending());
    const uint64_t steps = counter(gc::g_counters.private_idle_steps);
    const uint64_t collections = counter(gc::g_counters.private_collections);
    ASSERT_EQ(usgc_sleep_ns(1000000), 0);
    usgc_chan* pong = usgc_chan_make(sizeof(int64_t), 0);
    ASSERT_NE(pong, nullptr);
    go([pong] {
      int64_t value = 7;
      ASSERT_EQ(usgc_chan_send(pong, &value), 0);
    });
    int64_t answer = 0;
    bool ok = false;
    ASSERT_EQ(usgc_chan_recv(pong, &answer, &ok), 0);
    EXPECT_EQ(answer, 7);
    EXPECT_EQ(counter(gc::g_counters.private_idle_steps), steps);
    EXPECT_EQ(counter(gc::g_counters.private_collections), collections)
        << "a goroutine collected before parking with collection off";
    while (usgc_goroutine_count() > 1) usgc_yield();
    EXPECT_EQ(usgc_chan_destroy(pong), 0);
  });
}

}  // namespace
