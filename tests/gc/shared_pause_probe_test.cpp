// tests/gc/shared_pause_probe_test.cpp — the shared pause's probe (gc/shared_pause_probe.hpp),
// proven with given times and with what a collection prints (never with durations):
//   - a stop's stretches run from the last acknowledgement through each checkpoint to the resume,
//     their sum is the pause, the longest is named; the verdict sorts it by the thread's account
//     (run-queue wait or an involuntary switch: run-queue; time off the CPU under half the
//     stretch: on-cpu; off the CPU with a voluntary switch: slept); without the account, none;
//   - with USGC_TRACE_PAUSE_US=1 every shared collection prints both of its stops, each with its
//     stretches (the collector's steps in the stop, "wake" first, "resume" last) and the thread's
//     account; without it (and without USGC_TRACE=gc) a collection prints nothing;
//   - USGC_TRACE=gc alone sets the threshold to 1 ms, USGC_TRACE_PAUSE_US overrides it.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "gc/gc_state.hpp"
#include "gc/shared_pause_probe.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/saved_environment.hpp"
#include "usgc/usgc.h"

namespace {

namespace gc = usgc::gc;

gc::StopProbe probe_with(uint64_t stopped, std::initializer_list<uint64_t> stamps,
                         uint64_t resumed) {
  static const char* const kNames[] = {"wake", "registry", "drain", "prepare"};
  gc::StopProbe probe;
  probe.stopped_ns = stopped;
  for (uint64_t at : stamps) {
    probe.at_ns[probe.count] = at;
    probe.names[probe.count] = kNames[probe.count];
    ++probe.count;
  }
  probe.resumed_ns = resumed;
  return probe;
}

TEST(SharedPauseProbeTest, StretchesRunFromTheLastAcknowledgementToTheResume) {
  gc::StopProbe probe = probe_with(1000, {1010, 1020, 3020, 3025}, 3030);
  EXPECT_EQ(gc::stop_probe_pause_ns(probe), 2030u);
  uint64_t sum = 0;
  for (uint32_t i = 0; i <= probe.count; ++i) sum += gc::stop_probe_stretch_ns(probe, i);
  EXPECT_EQ(sum, gc::stop_probe_pause_ns(probe));
  EXPECT_EQ(gc::stop_probe_stretch_ns(probe, 0), 10u);    // wake
  EXPECT_EQ(gc::stop_probe_stretch_ns(probe, 2), 2000u);  // drain
  EXPECT_EQ(gc::stop_probe_stretch_ns(probe, 4), 5u);     // resume
  EXPECT_EQ(gc::stop_probe_longest(probe), 2u);
  EXPECT_STREQ(gc::stop_probe_verdict(probe), "") << "a verdict without the thread's account";
  // The resume can be the longest.
  gc::StopProbe late = probe_with(0, {1, 2}, 500);
  EXPECT_EQ(gc::stop_probe_longest(late), late.count);
}

TEST(SharedPauseProbeTest, TheVerdictSortsTheLongestStretchByTheThreadsAccount) {
  // The wake stretch (2000 ns) is the longest; the window is 2200 ns.
  struct Account {
    uint64_t cpu_ns, run_queue_wait_ns, voluntary, involuntary;
    const char* verdict;
  };
  const Account accounts[] = {
      {2100, 0, 0, 0, "on-cpu"},       // charged with CPU time for all but 100 ns
      {200, 1000, 0, 0, "run-queue"},  // waited for a CPU for half the stretch
      {200, 0, 0, 1, "run-queue"},     // preempted
      {200, 0, 1, 0, "slept"},         // off the CPU, blocked in the kernel
      {200, 0, 0, 0, "off-cpu"},       // off the CPU, no switch counted
  };
  for (const Account& account : accounts) {
    gc::StopProbe probe = probe_with(1000, {3000, 3010}, 3020);
    probe.usage_read = true;
    probe.window_begin_ns = 900;
    probe.window_end_ns = 3100;
    probe.usage.cpu_ns = account.cpu_ns;
    probe.usage.run_queue_wait_ns = account.run_queue_wait_ns;
    probe.usage.voluntary_switches = account.voluntary;
    probe.usage.involuntary_switches = account.involuntary;
    EXPECT_STREQ(gc::stop_probe_verdict(probe), account.verdict) << "cpu " << account.cpu_ns;
  }
}

// The runtime with two Ps and USGC_TRACE / USGC_TRACE_PAUSE_US as the test says.
class TracedStops : public usgc::testing::RuntimeTest {
 protected:
  uint32_t procs() const override { return 2; }

  // One explicit full shared collection; what it printed on stderr.
  std::string collect_and_capture() {
    std::string printed;
    usgc::testing::run_main([&] {
      ASSERT_NE(usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 64, USGC_GOROUTINE_SHARED), nullptr);
      ::testing::internal::CaptureStderr();
      int error = usgc_gc_collect(USGC_GC_SHARED);
      printed = ::testing::internal::GetCapturedStderr();
      ASSERT_EQ(error, 0);
    });
    return printed;
  }
};

class EveryStopTraced : public TracedStops {
  usgc::testing::SavedEnvironmentVariable trace_{"USGC_TRACE", nullptr};
  usgc::testing::SavedEnvironmentVariable threshold_{"USGC_TRACE_PAUSE_US", "1"};
};

TEST_F(EveryStopTraced, BothStopsArePrintedStretchByStretch) {
  EXPECT_EQ(gc::g_config.pause_trace_ns, 1000u);
  // A stop shorter than the threshold is not printed, and 1 us is the smallest threshold: on an
  // idle machine with a near-empty heap the end stop can finish inside it. Up to five collections,
  // until one printed both stops (a collection that never prints one of them fails all five).
  std::string printed;
  for (int attempt = 0; attempt < 5; ++attempt) {
    printed = collect_and_capture();
    if (printed.find(" start stop (P ") != std::string::npos &&
        printed.find(" end stop (P ") != std::string::npos)
      break;
  }
  for (const char* which : {" start stop (P ", " end stop (P "}) {
    size_t at = printed.find(which);
    ASSERT_NE(at, std::string::npos) << "no" << which << "line in:\n" << printed;
    std::string line = printed.substr(at, printed.find('\n', at) - at);
    for (const char* part :
         {"ms: wake ", " registry ", " resume ", "; longest ", "; thread over ", " cpu ",
          " run-queue wait ", " switches ", "; requester ", " signal rounds"})
      EXPECT_NE(line.find(part), std::string::npos) << "'" << part << "' missing in: " << line;
  }
  EXPECT_NE(printed.find(" drain "), std::string::npos) << printed;
  EXPECT_NE(printed.find("drained "), std::string::npos) << printed;
}

class NoStopTraced : public TracedStops {
  usgc::testing::SavedEnvironmentVariable trace_{"USGC_TRACE", nullptr};
  usgc::testing::SavedEnvironmentVariable threshold_{"USGC_TRACE_PAUSE_US", nullptr};
};

TEST_F(NoStopTraced, NothingIsPrintedWithoutTheThreshold) {
  EXPECT_EQ(gc::g_config.pause_trace_ns, 0u);
  EXPECT_EQ(collect_and_capture().find(" stop (P "), std::string::npos);
}

class GcTraceAlone : public TracedStops {
  usgc::testing::SavedEnvironmentVariable trace_{"USGC_TRACE", "gc"};
  usgc::testing::SavedEnvironmentVariable threshold_{"USGC_TRACE_PAUSE_US", nullptr};
};

TEST_F(GcTraceAlone, TheThresholdIsOneMillisecond) {
  EXPECT_EQ(gc::g_config.pause_trace_ns, 1000000u);
}

class GcTraceWithThreshold : public TracedStops {
  usgc::testing::SavedEnvironmentVariable trace_{"USGC_TRACE", "gc"};
  usgc::testing::SavedEnvironmentVariable threshold_{"USGC_TRACE_PAUSE_US", "250"};
};

TEST_F(GcTraceWithThreshold, TheVariableSetsTheThreshold) {
  EXPECT_EQ(gc::g_config.pause_trace_ns, 250000u);
}

}  // namespace
