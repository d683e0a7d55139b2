// tests/runtime/cancelled_call_test.cpp — threads cancelled (pthread_cancel) while usgc works on
// their behalf. An attached thread cancelled while the runtime works inside its blocked library
// call (safepoint/async_safepoint.cpp, "Cancellation"): glibc runs the call with asynchronous
// cancellation enabled, and a stop's signal brings the thread into usgc's slow path inside that
// window; the cancel must wait until the runtime's state is whole, then end the thread as in the
// call, its exit detaching it. And a deferred cancel pending on a thread never acts inside a usgc
// call (kernel_iface/uncancellable_io.hpp).
#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>

#include "runtime/scheduler.hpp"
#include "safepoint/async_safepoint.hpp"
#include "safepoint/stop_state.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace usgc::testing {
namespace {

class CancelledCall : public RuntimeTest {};

struct Reader {
  int fds[2] = {-1, -1};
  std::atomic<bool> reading{false};
  std::atomic<int> attach_error{0};
};

// An embedder's thread: attaches, then reads a pipe in a loop, unbracketed (read is a
// cancellation point), until it is cancelled.
void* read_until_cancelled(void* argument) {
  auto* reader = static_cast<Reader*>(argument);
  if (int error = usgc_attach_thread(); error != 0) {
    reader->attach_error.store(error);
    return nullptr;
  }
  reader->reading.store(true);
  for (;;) {
    char byte;
    (void)!read(reader->fds[0], &byte, 1);
  }
}

bool joined_within_seconds(pthread_t thread, int seconds) {
  timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += seconds * kTimeLimitScale;
  return pthread_timedjoin_np(thread, nullptr, &deadline) == 0;
}

// The stop's signal makes the blocked reader give its P up and re-issue its read; the read
// returns while the world is still stopped, so the reader takes a P off the idle list and waits
// for the resume inside the slow path. Cancelled there, it used to unwind at once: the P it had
// taken was on no list and held by nobody, for good (one P fewer for the rest of the process).
// Now the cancel acts once the P is held, and the thread's exit detaches it.
TEST_F(CancelledCall, AThreadCancelledWhileTakingItsPBackAfterAStopLosesNoP) {
  if (!safepoint::async_safepoints_enabled()) GTEST_SKIP() << "no asynchronous safepoints here";
  Reader reader;
  ASSERT_EQ(pipe(reader.fds), 0);
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, nullptr, read_until_cancelled, &reader), 0);
  ASSERT_TRUE(eventually([&] { return reader.reading.load() || reader.attach_error.load(); }));
  ASSERT_EQ(reader.attach_error.load(), 0);
  usleep(20 * 1000);  // inside read(2)

  usgc_stop_info info;
  ASSERT_EQ(usgc_stop_the_world(&info), 0);
  const auto waiting_for_resume = [] {
    return safepoint::g_state.resume_sleepers.load() + safepoint::g_state.resume_spinners.load() >
           0;
  };
  const char byte = 'x';
  ASSERT_EQ(write(reader.fds[1], &byte, 1), 1);  // the re-issued read returns
  const bool reader_waits = eventually(waiting_for_resume);
  ASSERT_EQ(pthread_cancel(thread), 0);
  usleep(20 * 1000);  // the cancellation signal is delivered meanwhile
  ASSERT_EQ(usgc_start_the_world(), 0);
  ASSERT_TRUE(reader_waits) << "the reader never waited for the resume";
  ASSERT_TRUE(joined_within_seconds(thread, 10)) << "the cancelled thread did not end";

  EXPECT_TRUE(eventually([] {
    return runtime::g_scheduler.idle_processor_count.load() == runtime::g_scheduler.processor_count;
  })) << runtime::g_scheduler.idle_processor_count.load()
      << " of " << runtime::g_scheduler.processor_count << " Ps idle after the thread ended";
  // And the world still stops: every slot is acknowledged.
  ASSERT_EQ(usgc_stop_the_world(&info), 0);
  ASSERT_EQ(usgc_start_the_world(), 0);
  close(reader.fds[0]);
  close(reader.fds[1]);
}

struct Stopper {
  std::atomic<bool> go{false};
  std::atomic<int> error{0};
  std::atomic<bool> stopped_to_the_end{false};
};

// A thread that is not a goroutine stops and starts the world for a quarter of a second with a
// cancel pending, then reaches a cancellation point of its own.
void* stop_with_a_cancel_pending(void* argument) {
  auto* stopper = static_cast<Stopper*>(argument);
  while (!stopper->go.load()) {
  }
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    usgc_stop_info info;
    if (int error = usgc_stop_the_world(&info); error != 0) {
      stopper->error.store(error);
      break;
    }
    if (int error = usgc_start_the_world(); error != 0) {
      stopper->error.store(error);
      break;
    }
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > 250) break;
  }
  stopper->stopped_to_the_end.store(true);
  pthread_testcancel();
  return nullptr;
}

// A stop reads /proc/loadavg (the machine's load decides how the requester waits); through libc's
// pread that was a cancellation point, and a thread cancelled while it stopped the world ended
// there holding the stop's operation lock: every later stop waited forever.
TEST_F(CancelledCall, APendingCancelNeverActsInsideAStopOfTheWorld) {
  Stopper stopper;
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, nullptr, stop_with_a_cancel_pending, &stopper), 0);
  ASSERT_EQ(pthread_cancel(thread), 0);
  stopper.go.store(true);
  ASSERT_TRUE(joined_within_seconds(thread, 10)) << "the cancelled stopper did not end";
  EXPECT_EQ(stopper.error.load(), 0);
  EXPECT_TRUE(stopper.stopped_to_the_end.load()) << "cancelled inside a stop of the world";
  usgc_stop_info info;
  ASSERT_EQ(usgc_stop_the_world(&info), 0);
  ASSERT_EQ(usgc_start_the_world(), 0);
}

}  // namespace
}  // namespace usgc::testing
