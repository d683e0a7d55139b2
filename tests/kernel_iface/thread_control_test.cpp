// tests/kernel_iface/thread_control_test.cpp — naming a thread (kernel::name_current_thread): the
// kernel shows the name in /proc (what ps, top and perf read), cut to 15 bytes; another thread's
// CPU clock (kernel::thread_cpu_time_ns): it grows while the thread computes, not while it is
// blocked, and a thread id of no thread of this process is an error.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "kernel_iface/thread_control.hpp"
#include "tests/support/thread_names.hpp"

namespace usgc::testing {
namespace {

TEST(ThreadName, TheKernelShowsTheNameCutToFifteenBytes) {
  std::string shown, cut;
  std::thread([&] {
    ASSERT_TRUE(kernel::name_current_thread("usgc-test").ok());
    shown = thread_name(kernel::thread_id());
    ASSERT_TRUE(kernel::name_current_thread("usgc-a-name-longer-than-fifteen").ok());
    cut = thread_name(kernel::thread_id());
  }).join();
  EXPECT_EQ(shown, "usgc-test");
  EXPECT_EQ(cut, "usgc-a-name-lon");
}

TEST(ThreadCpuTime, GrowsWhileTheThreadComputesNotWhileItIsBlocked) {
  std::mutex mutex;
  std::condition_variable changed;
  int tid = 0;
  int phase = 0;  // 0: starting, 1: computing, 2: told to block, 3: blocked, 4: told to end
  std::thread thread([&] {
    std::unique_lock<std::mutex> lock(mutex);
    tid = kernel::thread_id();
    phase = 1;
    changed.notify_all();
    lock.unlock();
    volatile uint64_t sink = 0;
    for (;;) {  // computes until told to block
      for (int i = 0; i < 100000; ++i) sink = sink + i;
      std::lock_guard<std::mutex> guard(mutex);
      if (phase == 2) break;
    }
    lock.lock();
    phase = 3;
    changed.notify_all();
    changed.wait(lock, [&] { return phase == 4; });
  });
  std::unique_lock<std::mutex> lock(mutex);
  changed.wait(lock, [&] { return phase == 1; });
  lock.unlock();
  kernel::Result<uint64_t> first = kernel::thread_cpu_time_ns(tid);
  ASSERT_TRUE(first.ok()) << "errno " << first.error();
  kernel::Result<uint64_t> computed = first;
  // Until the clock moved (the thread computes; on a loaded machine it may wait for a CPU).
  while (computed.ok() && computed.value() == first.value()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    computed = kernel::thread_cpu_time_ns(tid);
  }
  ASSERT_TRUE(computed.ok());
  EXPECT_GT(computed.value(), first.value());
  lock.lock();
  phase = 2;
  changed.wait(lock, [&] { return phase == 3; });  // it waits on the condition now
  lock.unlock();
  kernel::Result<uint64_t> blocked = kernel::thread_cpu_time_ns(tid);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kernel::Result<uint64_t> still = kernel::thread_cpu_time_ns(tid);
  ASSERT_TRUE(blocked.ok() && still.ok());
  // (It may still have been entering its futex wait at the first reading: microseconds.)
  EXPECT_LT(still.value() - blocked.value(), 1'000'000u) << "a blocked thread's CPU clock ran";
  lock.lock();
  phase = 4;
  changed.notify_all();
  lock.unlock();
  thread.join();
  EXPECT_FALSE(kernel::thread_cpu_time_ns(tid).ok()) << "a thread that ended, yet a clock";
  EXPECT_FALSE(kernel::thread_cpu_time_ns(0).ok());
  EXPECT_FALSE(kernel::thread_cpu_time_ns(-1).ok());
}

}  // namespace
}  // namespace usgc::testing
