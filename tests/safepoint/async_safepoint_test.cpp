// tests/safepoint/async_safepoint_test.cpp — the pieces of asynchronous safepoints that can be
// checked without the runtime (the end-to-end behaviour is proven from the public headers by the
// programs of tests/runtime/c_api.test.sh: join_collect, binary_trees_join, blocked_stops,
// stop_warning).
//
// Proves:
//   - code ranges: usgc's own functions (moved into the usgc_text section by the build) are
//     kUsgc, libc's read is kSystemLibrary, the test's own code is kOther;
//   - polling code registered through the public API (what the JIT registers for its modules) is
//     kPollingCode while registered and kOther after; bad ranges are EINVAL; the table is bounded
//     (ENOSPC past USGC_MAX_POLLING_CODE_RANGES);
//   - probe_thread tells a thread blocked in read(2) (system call 0, sleeping, its name; without
//     the name in the signallers' kBlockedCall detail, which reads one file for a running thread)
//     and reports ESRCH-like failure for a thread that does not exist;
//   - raw_system_call returns the kernel's raw result (-errno, no errno change);
//   - only calls the kernel restarts under SA_RESTART count as transparently restartable, and
//     calls that return EINTR are re-issued only where their meaning can be kept.
#include "safepoint/async_safepoint.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "kernel_iface/thread_control.hpp"
#include "safepoint/code_ranges.hpp"
#include "safepoint/poll_instruction.hpp"
#include "usgc/safepoint.h"

namespace usgc::safepoint {
namespace {

const uint64_t no_arguments_for_tests[6] = {};

[[gnu::noinline]] int a_function_of_the_test(int x) {
  return x * 3 + 1;
}

TEST(CodeRanges, UsgcLibcAndProgramCodeAreToldApart) {
  code_ranges_initialize();
  ASSERT_NE(usgc_code_begin(), 0u) << "the build did not move usgc's code into usgc_text";
  ASSERT_LT(usgc_code_begin(), usgc_code_end());
  EXPECT_EQ(classify_code_address(reinterpret_cast<uintptr_t>(&poll_instruction_length)),
            CodeOwner::kUsgc);
  EXPECT_EQ(classify_code_address(reinterpret_cast<uintptr_t>(&code_ranges_initialize)),
            CodeOwner::kUsgc);
  EXPECT_EQ(classify_code_address(reinterpret_cast<uintptr_t>(&::read)), CodeOwner::kSystemLibrary);
  EXPECT_EQ(classify_code_address(reinterpret_cast<uintptr_t>(&a_function_of_the_test)),
            CodeOwner::kOther);
  EXPECT_EQ(a_function_of_the_test(2), 7);
}

TEST(CodeRanges, RegisteredPollingCodeIsNeverStoppedBetweenPolls) {
  code_ranges_initialize();
  alignas(64) static unsigned char generated_code[256];
  const uintptr_t first = reinterpret_cast<uintptr_t>(generated_code);
  ASSERT_EQ(usgc_safepoint_register_polling_code(generated_code, 128), 0);
  EXPECT_EQ(classify_code_address(first), CodeOwner::kPollingCode);
  EXPECT_EQ(classify_code_address(first + 127), CodeOwner::kPollingCode);
  EXPECT_NE(classify_code_address(first + 128), CodeOwner::kPollingCode);
  EXPECT_EQ(usgc_safepoint_unregister_polling_code(generated_code), 0);
  EXPECT_EQ(classify_code_address(first), CodeOwner::kOther);
  EXPECT_EQ(usgc_safepoint_unregister_polling_code(generated_code), EINVAL);  // not registered
  EXPECT_EQ(usgc_safepoint_register_polling_code(generated_code, 0), EINVAL);
  EXPECT_EQ(usgc_safepoint_register_polling_code(nullptr, 16), EINVAL);
  EXPECT_EQ(usgc_safepoint_register_polling_code(reinterpret_cast<void*>(UINTPTR_MAX - 8), 64),
            EINVAL);  // wraps
  // Bounded: every slot taken, the next registration is refused, and a freed slot is reused.
  int taken = 0;
  while (usgc_safepoint_register_polling_code(generated_code + taken % 200, 1) == 0) ++taken;
  EXPECT_EQ(usgc_safepoint_register_polling_code(generated_code, 1), ENOSPC);
  EXPECT_LE(taken, USGC_MAX_POLLING_CODE_RANGES);
  EXPECT_GE(taken, USGC_MAX_POLLING_CODE_RANGES - 8);  // other tests may hold a few
  for (int i = 0; i < taken; ++i)
    ASSERT_EQ(usgc_safepoint_unregister_polling_code(generated_code + i % 200), 0) << i;
  ASSERT_EQ(usgc_safepoint_register_polling_code(generated_code, 128), 0);
  EXPECT_EQ(usgc_safepoint_unregister_polling_code(generated_code), 0);
}

TEST(ThreadControl, ProbeSeesAThreadBlockedInRead) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::atomic<int> tid{0};
  std::thread reader([&] {
    pthread_setname_np(pthread_self(), "probe-reader");
    tid = kernel::thread_id();
    char byte;
    EXPECT_EQ(read(fds[0], &byte, 1), 1);
  });
  while (tid.load() == 0) std::this_thread::yield();
  bool seen = false;
  for (int attempt = 0; attempt < 2000 && !seen; ++attempt) {
    kernel::Result<kernel::ThreadProbe> probe = kernel::probe_thread(tid.load());
    ASSERT_TRUE(probe.ok()) << probe.error();
    seen = probe.value().in_system_call && probe.value().system_call == SYS_read &&
           probe.value().state == 'S' && probe.value().system_call_arguments[0] == uint64_t(fds[0]);
    if (seen) {
      EXPECT_STREQ(probe.value().name, "probe-reader");
      EXPECT_EQ(classify_code_address(probe.value().instruction_pointer),
                CodeOwner::kSystemLibrary);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  EXPECT_TRUE(seen) << "never saw the reader blocked in read(2)";
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  reader.join();
  close(fds[0]);
  close(fds[1]);
  EXPECT_FALSE(kernel::probe_thread(0x7ffffff0).ok());
}

// The signallers' probe (kBlockedCall) gives the same answer about a blocked call, without the
// name, and for a running thread reads one file: state R, not in a system call.
TEST(ThreadControl, BlockedCallProbeSeesTheBlockedCallAndARunningThread) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::atomic<int> tid{0};
  std::atomic<bool> spin{true};
  std::thread reader([&] {
    tid = kernel::thread_id();
    char byte;
    EXPECT_EQ(read(fds[0], &byte, 1), 1);
    while (spin.load(std::memory_order_relaxed)) {
    }
  });
  while (tid.load() == 0) std::this_thread::yield();
  bool blocked_seen = false;
  for (int attempt = 0; attempt < 2000 && !blocked_seen; ++attempt) {
    kernel::Result<kernel::ThreadProbe> probe =
        kernel::probe_thread(tid.load(), kernel::ProbeDetail::kBlockedCall);
    ASSERT_TRUE(probe.ok()) << probe.error();
    blocked_seen = probe.value().in_system_call && probe.value().system_call == SYS_read &&
                   probe.value().state == 'S' &&
                   probe.value().system_call_arguments[0] == uint64_t(fds[0]);
    if (blocked_seen) {
      EXPECT_STREQ(probe.value().name, "");
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  EXPECT_TRUE(blocked_seen) << "never saw the reader blocked in read(2)";
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  bool running_seen = false;
  for (int attempt = 0; attempt < 2000 && !running_seen; ++attempt) {
    kernel::Result<kernel::ThreadProbe> probe =
        kernel::probe_thread(tid.load(), kernel::ProbeDetail::kBlockedCall);
    ASSERT_TRUE(probe.ok()) << probe.error();
    running_seen = probe.value().state == 'R';
    if (running_seen) {
      EXPECT_FALSE(probe.value().in_system_call);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  EXPECT_TRUE(running_seen) << "never saw the spinning thread running";
  spin = false;
  reader.join();
  close(fds[0]);
  close(fds[1]);
}

TEST(ThreadControl, RawSystemCallReturnsTheKernelsResult) {
  EXPECT_EQ(kernel::raw_system_call(SYS_getpid, 0, 0, 0, 0, 0, 0), getpid());
  errno = 1234;
  EXPECT_EQ(kernel::raw_system_call(SYS_close, uint64_t(-1), 0, 0, 0, 0, 0), -EBADF);
  EXPECT_EQ(errno, 1234);
}

TEST(AsyncSafepoint, OnlyCallsTheKernelRestartsAreTransparent) {
  const uint64_t no_arguments[6] = {};
  const uint64_t futex_with_timeout[6] = {0x1000, 0, 0, 0x2000, 0, 0};
  EXPECT_TRUE(system_call_restarts_transparently(SYS_read, no_arguments));
  EXPECT_TRUE(system_call_restarts_transparently(SYS_write, no_arguments));
  EXPECT_TRUE(system_call_restarts_transparently(SYS_futex, no_arguments));
  EXPECT_TRUE(system_call_restarts_transparently(SYS_wait4, no_arguments));
  EXPECT_FALSE(system_call_restarts_transparently(SYS_futex, futex_with_timeout));
  EXPECT_FALSE(system_call_restarts_transparently(SYS_nanosleep, no_arguments));
  EXPECT_FALSE(system_call_restarts_transparently(SYS_clock_nanosleep, no_arguments));
  EXPECT_FALSE(system_call_restarts_transparently(SYS_poll, no_arguments));
  EXPECT_FALSE(system_call_restarts_transparently(SYS_epoll_wait, no_arguments));
  EXPECT_FALSE(system_call_restarts_transparently(SYS_select, no_arguments));
  EXPECT_FALSE(system_call_restarts_transparently(-1, no_arguments));
}

TEST(AsyncSafepoint, OnlyBlockingCallsAreEverReissued) {
  EXPECT_TRUE(system_call_may_block(SYS_read));
  EXPECT_TRUE(system_call_may_block(SYS_futex));
  EXPECT_TRUE(system_call_may_block(SYS_nanosleep));
  EXPECT_TRUE(system_call_may_block(SYS_epoll_wait));
  EXPECT_FALSE(system_call_may_block(SYS_clone));
  EXPECT_FALSE(system_call_may_block(SYS_fork));
  EXPECT_FALSE(system_call_may_block(SYS_vfork));
  EXPECT_FALSE(system_call_may_block(SYS_rt_sigreturn));
  EXPECT_FALSE(system_call_may_block(SYS_exit));
  EXPECT_FALSE(system_call_may_block(SYS_execve));
  EXPECT_FALSE(system_call_may_block(SYS_mmap));
}

TEST(AsyncSafepoint, CallsReturningEintrAreReissuedOnlyWithTheirMeaning) {
  uint64_t out[6];
  const uint64_t nanosleep_with_rem[6] = {0x1000, 0x2000, 0, 0, 0, 0};
  ASSERT_TRUE(reissue_arguments_after_eintr(SYS_nanosleep, nanosleep_with_rem, out));
  EXPECT_EQ(out[0], 0x2000u);  // the remaining time the kernel stored
  EXPECT_EQ(out[1], 0x2000u);
  const uint64_t nanosleep_without_rem[6] = {0x1000, 0, 0, 0, 0, 0};
  EXPECT_FALSE(reissue_arguments_after_eintr(SYS_nanosleep, nanosleep_without_rem, out));
  const uint64_t clock_relative[6] = {1, 0, 0x1000, 0x2000, 0, 0};
  ASSERT_TRUE(reissue_arguments_after_eintr(SYS_clock_nanosleep, clock_relative, out));
  EXPECT_EQ(out[2], 0x2000u);
  const uint64_t clock_absolute[6] = {1, 1, 0x1000, 0, 0, 0};
  ASSERT_TRUE(reissue_arguments_after_eintr(SYS_clock_nanosleep, clock_absolute, out));
  EXPECT_EQ(out[2], 0x1000u);
  const uint64_t clock_relative_no_rem[6] = {1, 0, 0x1000, 0, 0, 0};
  EXPECT_FALSE(reissue_arguments_after_eintr(SYS_clock_nanosleep, clock_relative_no_rem, out));
  const uint64_t poll_forever[6] = {0x1000, 1, uint64_t(-1), 0, 0, 0};
  const uint64_t poll_timeout[6] = {0x1000, 1, 5, 0, 0, 0};
  EXPECT_TRUE(reissue_arguments_after_eintr(SYS_poll, poll_forever, out));
  EXPECT_FALSE(reissue_arguments_after_eintr(SYS_poll, poll_timeout, out));
  const uint64_t futex_bitset[6] = {0x1000, 9 | 128, 0, 0x2000, 0, 0xffffffff};
  const uint64_t futex_wait_timeout[6] = {0x1000, 0 | 128, 0, 0x2000, 0, 0};
  EXPECT_TRUE(reissue_arguments_after_eintr(SYS_futex, futex_bitset, out));
  EXPECT_FALSE(reissue_arguments_after_eintr(SYS_futex, futex_wait_timeout, out));
  EXPECT_FALSE(reissue_arguments_after_eintr(SYS_pause, no_arguments_for_tests, out));
}

}  // namespace
}  // namespace usgc::safepoint
