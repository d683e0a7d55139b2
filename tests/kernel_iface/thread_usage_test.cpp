// tests/kernel_iface/thread_usage_test.cpp — the kernel's account of the calling thread
// (kernel_iface/thread_usage.hpp), which USGC_TRACE=gc prints for every private pause: each
// figure moves when the thread does what it counts (CPU time when it computes, a minor fault per
// first touch of fresh pages, a voluntary switch when it sleeps), and the delta of two readings
// is never negative. Counts, never durations.
#include "kernel_iface/thread_usage.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "kernel_iface/clock.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

ThreadUsage read_or_fail() {
  Result<ThreadUsage> usage = read_thread_usage();
  EXPECT_TRUE(usage.ok()) << "read_thread_usage: errno " << usage.error();
  return usage.value();
}

TEST(ThreadUsage, CpuTimeGrowsWhileTheThreadComputes) {
  const ThreadUsage before = read_or_fail();
  volatile uint64_t sum = 0;
  ThreadUsage after = before;
  // Until the CPU clock moves (it must: the loop does nothing but compute); bounded.
  for (int round = 0; round < 1000 && after.cpu_ns == before.cpu_ns; ++round) {
    for (int i = 0; i < 1000000; ++i) sum = sum + static_cast<uint64_t>(i);
    after = read_or_fail();
  }
  EXPECT_GT(after.cpu_ns, before.cpu_ns);
  const ThreadUsage delta = thread_usage_delta(before, after);
  EXPECT_EQ(delta.cpu_ns, after.cpu_ns - before.cpu_ns);
}

TEST(ThreadUsage, FirstTouchesOfFreshPagesAreMinorFaults) {
  constexpr size_t kBytes = size_t{4} << 20;
  Result<void*> mapping = map_aligned(kBytes, size_t{4} << 20);
  ASSERT_TRUE(mapping.ok());
  const ThreadUsage before = read_or_fail();
  auto* bytes = static_cast<volatile uint8_t*>(mapping.value());
  for (size_t offset = 0; offset < kBytes; offset += 4096) bytes[offset] = 1;
  const ThreadUsage delta = thread_usage_delta(before, read_or_fail());
  EXPECT_GE(delta.minor_faults, 1u) << "4 MiB of fresh pages touched without a fault";
  EXPECT_EQ(delta.major_faults, 0u);
  ASSERT_TRUE(unmap(mapping.value(), kBytes).ok());
}

TEST(ThreadUsage, SleepingIsAVoluntarySwitch) {
  const ThreadUsage before = read_or_fail();
  sleep_for_ns(1000000);
  const ThreadUsage delta = thread_usage_delta(before, read_or_fail());
  EXPECT_GE(delta.voluntary_switches, 1u);
}

TEST(ThreadUsage, TheDeltaOfCountersThatWentBackwardsIsZero) {
  ThreadUsage later = read_or_fail();
  ThreadUsage earlier = later;
  later.minor_faults = 0;
  later.cpu_ns = 0;
  const ThreadUsage delta = thread_usage_delta(earlier, later);
  EXPECT_EQ(delta.minor_faults, 0u);
  EXPECT_EQ(delta.cpu_ns, 0u);
}

}  // namespace
}  // namespace usgc::kernel
