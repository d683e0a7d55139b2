// tests/gc/parallel_mark_join_test.cpp — a shared mark never waits for a helper marker that has
// not joined its job (gc/mark_job.hpp, gc/parallel_mark.hpp):
//   - the job word's transitions: a helper joins only the job it was woken for, while it is not
//     over and has room; the marker that makes every joined marker idle ends the job; an idle
//     marker cannot leave idle once the job is over;
//   - a helper parked before it joins (a test hook, as a thread the kernel does not run) does not
//     hold up shared collections, full or minor, concurrent or inside one stop: they complete with
//     every reachable object kept (the verifier checks the heap after each), marked by marker 0
//     alone; released, the helper finds its job over and marks in later collections.
// The parked-helper tests hang (the watchdog aborts the binary) when the collector waits for
// every helper.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <thread>

#include "gc/gc_state.hpp"
#include "gc/mark_job.hpp"
#include "gc/object_header.hpp"
#include "gc/parallel_mark.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/saved_environment.hpp"
#include "usgc/usgc.h"

namespace {

namespace gc = usgc::gc;
using usgc::testing::eventually;
using usgc::testing::run_main;

TEST(MarkJobTest, HelpersJoinOnlyTheOpenJobTheyWereWokenForWhileItHasRoom) {
  gc::MarkJob job;
  const uint32_t first = job.open(2);
  EXPECT_FALSE(job.try_join(first + 1)) << "joined a job that is not open";
  EXPECT_TRUE(job.try_join(first));
  EXPECT_FALSE(job.try_join(first)) << "joined over the limit";
  EXPECT_FALSE(job.go_idle(first));
  EXPECT_TRUE(job.go_idle(first)) << "the last marker to go idle did not end the job";
  EXPECT_TRUE(job.over(first));
  EXPECT_FALSE(job.try_join(first)) << "a late helper joined a job that was over";
  EXPECT_FALSE(job.try_leave_idle(first)) << "left idle in a job that was over";
  const uint32_t solo = job.open(1);
  EXPECT_NE(solo, first);
  EXPECT_TRUE(job.over(first)) << "a stale marker of the last job sees it running";
  EXPECT_FALSE(job.try_join(solo)) << "a helper joined a solo job";
  EXPECT_TRUE(job.go_idle(solo));
}

TEST(MarkJobTest, AnIdleMarkerLeavesIdleWhileTheJobRunsAndTheEndCountsIt) {
  gc::MarkJob job;
  const uint32_t number = job.open(3);
  ASSERT_TRUE(job.try_join(number));
  EXPECT_FALSE(job.go_idle(number));
  EXPECT_TRUE(job.try_leave_idle(number));
  EXPECT_FALSE(job.go_idle(number));
  EXPECT_FALSE(job.over(number)) << "over with one joined marker still working";
  EXPECT_TRUE(job.go_idle(number));
  const gc::MarkJobState state = job.state();
  EXPECT_EQ(state.joined, 2u);
  EXPECT_EQ(state.idle, 2u);
  EXPECT_EQ(state.limit, 3u);
  EXPECT_TRUE(state.over);
}

struct Box {
  Box* next;
  int64_t magic;
};

usgc_type_id box_type() {
  static usgc_type_id type = [] {
    size_t offsets[] = {offsetof(Box, next)};
    usgc_type_info info = {"JoinBox", USGC_KIND_OBJECT, sizeof(Box), offsets, 1};
    return usgc_register_type(&info);
  }();
  return type;
}

// A shared list of `count` boxes whose magic is its index from the head.
Box* build_shared_list(int64_t count) {
  Box* head = nullptr;
  for (int64_t i = count - 1; i >= 0; --i) {
    auto* box = static_cast<Box*>(usgc_alloc(box_type(), USGC_GOROUTINE_SHARED));
    if (box == nullptr) std::abort();
    box->magic = i;
    usgc_write(box, reinterpret_cast<void**>(&box->next), head);
    head = box;
  }
  return head;
}

// Every box still there, shared, with its magic (a freed box's slot is reused or cleared).
int64_t count_intact(const Box* head) {
  int64_t count = 0;
  for (const Box* box = head; box != nullptr; box = box->next, ++count) {
    if (!gc::is_shared_class(gc::header_of(const_cast<Box*>(box))) || box->magic != count)
      return -1;
  }
  return count;
}

// The hook: helper 1 parks before it joins while `armed`, until `release`.
struct Park {
  std::atomic<bool> armed{false};
  std::atomic<bool> parked{false};
  std::atomic<bool> release{false};
  std::atomic<bool> left{false};
};
Park g_park;

void park_helper_one(uint32_t marker_index, uint32_t) {
  if (marker_index != 1 || !g_park.armed.load()) return;
  g_park.parked.store(true);
  while (!g_park.release.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  g_park.armed.store(false);
  g_park.left.store(true);
}

constexpr int64_t kBoxes = 60000;

// Collections with helper 1 parked before it joins: they complete, nothing reachable is lost,
// marker 0 marks alone; then the helper is released and takes part again.
void collect_with_helper_one_parked() {
  USGC_ROOTS(roots, 1);
  roots[0] = build_shared_list(kBoxes);
  ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);  // every box old
  g_park.parked.store(false);
  g_park.release.store(false);
  g_park.left.store(false);
  g_park.armed.store(true);
  // Release: the hook's state above is seen by the helper that loads the hook.
  gc::g_marker_test_hook.store(park_helper_one, std::memory_order_release);
  ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
  ASSERT_TRUE(eventually([] { return g_park.parked.load(); }))
      << "helper 1 was never woken for a job";
  const uint64_t joins = gc::helper_joins();
  for (int round = 0; round < 6; ++round) {
    // Young boxes at the head, then a full or a minor collection: helper 1 is parked for all.
    USGC_ROOTS(young, 1);
    young[0] = build_shared_list(1000);
    ASSERT_EQ(usgc_gc_collect(round % 2 == 0 ? USGC_GC_SHARED : USGC_GC_SHARED_MINOR), 0);
    EXPECT_EQ(gc::helper_joins(), joins) << "round " << round << ": a parked helper joined";
    ASSERT_EQ(count_intact(static_cast<Box*>(roots[0])), kBoxes) << "round " << round;
    ASSERT_EQ(count_intact(static_cast<Box*>(young[0])), 1000) << "round " << round;
  }
  g_park.release.store(true);
  ASSERT_TRUE(eventually([] { return g_park.left.load(); }));
  gc::g_marker_test_hook.store(nullptr, std::memory_order_release);
  // The released helper found its job over and did nothing; later jobs run as before.
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    ASSERT_EQ(count_intact(static_cast<Box*>(roots[0])), kBoxes) << "after the release";
  }
}

// Two Ps (two markers where the machine has two CPUs), verifier on.
class ParallelMarkJoinTest : public usgc::testing::VerifiedRuntimeTest {};

TEST_F(ParallelMarkJoinTest, AHelperParkedBeforeItJoinsDoesNotHoldUpAConcurrentMark) {
  if (gc::g_config.marker_count < 2) GTEST_SKIP() << "one marker: no helper to park";
  run_main([] { collect_with_helper_one_parked(); });
}

// The whole mark inside one stop (USGC_GC_CONCURRENT=0): every marker is woken into it.
class ParallelMarkJoinInAStopTest : public usgc::testing::VerifiedRuntimeTest {
 protected:
  usgc::testing::SavedEnvironmentVariable concurrent_{"USGC_GC_CONCURRENT", "0"};
};

TEST_F(ParallelMarkJoinInAStopTest, AHelperParkedBeforeItJoinsDoesNotHoldUpAStop) {
  if (gc::g_config.marker_count < 2) GTEST_SKIP() << "one marker: no helper to park";
  ASSERT_FALSE(gc::g_config.concurrent_mark);
  run_main([] { collect_with_helper_one_parked(); });
}

}  // namespace
