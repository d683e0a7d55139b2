// tests/kernel_iface/perf_counters_test.cpp — counter groups through perf_event_open
// (kernel_iface/perf_counters.hpp).
//
// Hardware counters (instructions, cycles, branch misses, L1D read misses) exist only where the
// CPU's PMU is exposed; virtual machines usually hide it, and then each hardware test skips with
// the reason perf_event_open gave. The software events are counted for real everywhere the kernel
// allows them: page faults when fresh pages are touched, context switches when the thread sleeps,
// task-clock while it runs. The API's errors (closed group, bad lists) are checked too.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "kernel_iface/perf_counters.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

// Opens `events` or sets `reason` to why it cannot (for GTEST_SKIP).
bool open_or_explain(PerfCounterGroup& group, std::span<const PerfEvent> events,
                     std::string& reason, PerfScope scope = PerfScope::kCallingThread) {
  Status opened = group.open(events, scope);
  if (opened.ok()) return true;
  reason = std::string("perf_event_open(") + perf_event_name(group.failed_event()) +
           ") failed, errno " + std::to_string(opened.error()) + ": " +
           describe_open_failure(group.failed_event(), opened.error());
  return false;
}

// 2 instructions per iteration (dec, jnz), nothing else in the loop.
[[gnu::noinline]] void count_down_loop(uint64_t iterations) {
  asm volatile(
      "1:\n\t"
      "dec %0\n\t"
      "jnz 1b"
      : "+r"(iterations)
      :
      : "cc");
}

TEST(PerfCountersTest, HardwareGroupCountsTheInstructionsOfAKnownLoop) {
  const PerfEvent events[] = {PerfEvent::kInstructions, PerfEvent::kCycles,
                              PerfEvent::kBranchMisses, PerfEvent::kL1dReadMisses};
  PerfCounterGroup group;
  std::string reason;
  if (!open_or_explain(group, events, reason)) GTEST_SKIP() << reason;
  ASSERT_EQ(group.size(), 4u);
  constexpr uint64_t kIterations = 1'000'000;
  ASSERT_TRUE(group.enable().ok());
  count_down_loop(kIterations);
  ASSERT_TRUE(group.disable().ok());
  PerfCounterValues values;
  ASSERT_TRUE(group.read(values).ok());
  ASSERT_EQ(values.count, 4u);
  if (values.multiplexed()) GTEST_SKIP() << "the PMU multiplexed the group: counts are partial";
  // User space only: the loop's 2 instructions per iteration plus the ioctl wrappers' few.
  EXPECT_GE(values.values[0], 2 * kIterations);
  EXPECT_LE(values.values[0], 2 * kIterations + 5000);
  EXPECT_GT(values.values[1], 0u) << "cycles";
  EXPECT_LT(values.values[2], kIterations / 10) << "a counted loop's branch is predicted";
}

// Each hardware event alone: which of them this machine has (each skips with its reason).
class HardwareEventTest : public ::testing::TestWithParam<PerfEvent> {};

TEST_P(HardwareEventTest, OpensAloneAndCountsUserSpaceWork) {
  PerfCounterGroup group;
  std::string reason;
  const PerfEvent events[] = {GetParam()};
  if (!open_or_explain(group, events, reason)) GTEST_SKIP() << reason;
  std::vector<uint64_t> memory(1 << 16, 1);
  ASSERT_TRUE(group.enable().ok());
  uint64_t sum = 0;
  for (uint64_t value : memory) sum += value;
  count_down_loop(100'000);
  ASSERT_TRUE(group.disable().ok());
  EXPECT_EQ(sum, memory.size());
  PerfCounterValues values;
  ASSERT_TRUE(group.read(values).ok());
  EXPECT_EQ(values.count, 1u);
  EXPECT_LE(values.time_running_ns, values.time_enabled_ns);
  if (GetParam() == PerfEvent::kInstructions || GetParam() == PerfEvent::kCycles) {
    EXPECT_GT(values.values[0], 100'000u);
  }
}

INSTANTIATE_TEST_SUITE_P(EachHardwareEvent, HardwareEventTest,
                         ::testing::Values(PerfEvent::kInstructions, PerfEvent::kCycles,
                                           PerfEvent::kBranchMisses, PerfEvent::kL1dReadMisses),
                         [](const ::testing::TestParamInfo<PerfEvent>& info) {
                           std::string name = perf_event_name(info.param);
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(PerfCountersTest, PageFaultsAreCountedWhenFreshPagesAreTouched) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer's shadow memory faults in with every fresh page touched (and "
                  "with its thread bookkeeping): the counts include its pages";
#endif
  const PerfEvent events[] = {PerfEvent::kPageFaults, PerfEvent::kTaskClock};
  PerfCounterGroup group;
  std::string reason;
  if (!open_or_explain(group, events, reason)) GTEST_SKIP() << reason;
  constexpr size_t kPages = 256;
  size_t page = os_page_size();
  Result<void*> mapped = map_aligned(kPages * page, page);
  ASSERT_TRUE(mapped.ok());
  // One fault per page: no transparent huge page may serve several at once.
  (void)advise_huge_pages(mapped.value(), kPages * page, false);  // EINVAL without THP: fine
  auto* bytes = static_cast<volatile char*>(mapped.value());

  ASSERT_TRUE(group.enable().ok());
  for (size_t i = 0; i < kPages; ++i) bytes[i * page] = 1;
  ASSERT_TRUE(group.disable().ok());
  PerfCounterValues fresh;
  ASSERT_TRUE(group.read(fresh).ok());
  EXPECT_GE(fresh.values[0], kPages) << "one fault per fresh page";
  EXPECT_LT(fresh.values[0], kPages + 64) << "faults beyond the pages touched";
  EXPECT_GT(fresh.values[1], 0u) << "task-clock ran";

  // The same pages again: resident now, no faults (enable() resets the counts).
  ASSERT_TRUE(group.enable().ok());
  for (size_t i = 0; i < kPages; ++i) bytes[i * page] = 2;
  ASSERT_TRUE(group.disable().ok());
  PerfCounterValues resident;
  ASSERT_TRUE(group.read(resident).ok());
  EXPECT_LT(resident.values[0], 16u);
  ASSERT_TRUE(unmap(mapped.value(), kPages * page).ok());
}

TEST(PerfCountersTest, ContextSwitchesAreCountedWhenTheThreadSleeps) {
  const PerfEvent events[] = {PerfEvent::kContextSwitches, PerfEvent::kTaskClock};
  PerfCounterGroup group;
  std::string reason;
  if (!open_or_explain(group, events, reason)) GTEST_SKIP() << reason;
  constexpr int kSleeps = 20;
  ASSERT_TRUE(group.enable().ok());
  for (int i = 0; i < kSleeps; ++i) std::this_thread::sleep_for(std::chrono::microseconds(200));
  ASSERT_TRUE(group.disable().ok());
  PerfCounterValues values;
  ASSERT_TRUE(group.read(values).ok());
  EXPECT_GE(values.values[0], static_cast<uint64_t>(kSleeps)) << "each sleep switches out";
  EXPECT_LE(values.time_running_ns, values.time_enabled_ns);
}

TEST(PerfCountersTest, ThreadsStartedAfterOpenAreCountedOnlyWithTheirScope) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer's shadow memory faults in with every fresh page touched (and "
                  "with its thread bookkeeping): the counts include its pages";
#endif
  const PerfEvent events[] = {PerfEvent::kPageFaults};
  PerfCounterGroup with_new_threads;
  PerfCounterGroup this_thread_only;
  std::string reason;
  if (!open_or_explain(with_new_threads, events, reason, PerfScope::kThreadAndNewThreads)) {
    GTEST_SKIP() << reason;
  }
  if (!open_or_explain(this_thread_only, events, reason)) GTEST_SKIP() << reason;
  constexpr size_t kPages = 128;
  size_t page = os_page_size();
  Result<void*> mapped = map_aligned(kPages * page, page);
  ASSERT_TRUE(mapped.ok());
  (void)advise_huge_pages(mapped.value(), kPages * page, false);  // EINVAL without THP: fine
  auto* bytes = static_cast<volatile char*>(mapped.value());
  ASSERT_TRUE(with_new_threads.enable().ok());
  ASSERT_TRUE(this_thread_only.enable().ok());
  // The faults happen on a thread started after open(): only the inheriting group sees them.
  std::thread toucher([&] {
    for (size_t i = 0; i < kPages; ++i) bytes[i * page] = 1;
  });
  toucher.join();
  ASSERT_TRUE(with_new_threads.disable().ok());
  ASSERT_TRUE(this_thread_only.disable().ok());
  PerfCounterValues inherited;
  PerfCounterValues own;
  ASSERT_TRUE(with_new_threads.read(inherited).ok());
  ASSERT_TRUE(this_thread_only.read(own).ok());
  EXPECT_GE(inherited.values[0], kPages) << "the new thread's faults are counted";
  EXPECT_LT(own.values[0], kPages / 2) << "a calling-thread group counts no other thread";
  ASSERT_TRUE(unmap(mapped.value(), kPages * page).ok());
}

TEST(PerfCountersTest, CountsStopWhileDisabled) {
  const PerfEvent events[] = {PerfEvent::kPageFaults};
  PerfCounterGroup group;
  std::string reason;
  if (!open_or_explain(group, events, reason)) GTEST_SKIP() << reason;
  size_t bytes = 64 * os_page_size();
  Result<void*> mapped = map_aligned(bytes, os_page_size());
  ASSERT_TRUE(mapped.ok());
  ASSERT_TRUE(group.enable().ok());
  ASSERT_TRUE(group.disable().ok());
  auto* memory = static_cast<volatile char*>(mapped.value());
  for (size_t i = 0; i < bytes; i += os_page_size()) memory[i] = 1;  // not counted
  PerfCounterValues values;
  ASSERT_TRUE(group.read(values).ok());
  EXPECT_LT(values.values[0], 8u);
  ASSERT_TRUE(unmap(mapped.value(), bytes).ok());
}

TEST(PerfCountersTest, MisuseIsAnErrorNotACrash) {
  PerfCounterGroup group;
  PerfCounterValues values;
  EXPECT_EQ(group.enable().error(), EBADF);
  EXPECT_EQ(group.disable().error(), EBADF);
  EXPECT_EQ(group.read(values).error(), EBADF);
  EXPECT_EQ(group.open({}).error(), EINVAL);
  std::vector<PerfEvent> too_many(kMaxPerfGroupEvents + 1, PerfEvent::kTaskClock);
  EXPECT_EQ(group.open(too_many).error(), EINVAL);
  EXPECT_FALSE(group.is_open());
  const PerfEvent events[] = {PerfEvent::kTaskClock};
  std::string reason;
  if (!open_or_explain(group, events, reason)) GTEST_SKIP() << reason;
  EXPECT_EQ(group.open(events).error(), EINVAL) << "a group opens once";
  group.close();
  EXPECT_EQ(group.read(values).error(), EBADF);
}

TEST(PerfCountersTest, FailureReasonsNameTheCause) {
  EXPECT_NE(std::string(describe_open_failure(PerfEvent::kCycles, ENOENT)).find("hardware"),
            std::string::npos);
  EXPECT_NE(std::string(describe_open_failure(PerfEvent::kPageFaults, EACCES))
                .find("perf_event_paranoid"),
            std::string::npos);
  EXPECT_TRUE(perf_event_is_hardware(PerfEvent::kL1dReadMisses));
  EXPECT_FALSE(perf_event_is_hardware(PerfEvent::kContextSwitches));
  EXPECT_STREQ(perf_event_name(PerfEvent::kBranchMisses), "branch-misses");
}

}  // namespace
}  // namespace usgc::kernel
