// tests/runtime/blocked_call_test.cpp — goroutines of usgc_go blocked in a library call give their
// P up (runtime/blocked_call.cpp): the worker-thread bound holds, a goroutine returning with no P
// free queues itself and continues on its own thread, the P is never shared, and a stop that
// interrupts a call it cannot re-issue takes the P from the sleeper too.
#include <gtest/gtest.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "kernel_iface/library_call_scope.hpp"
#include "runtime/scheduler.hpp"
#include "safepoint/async_safepoint.hpp"
#include "safepoint/stop_the_world.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace usgc::testing {
namespace {

// One P, no time-slice preemption: a goroutine leaves the P only at its own scheduling points
// (or by giving it up in a blocked call), so "two goroutines inside at once" means two threads
// ran on the P.
class BlockedCall : public ::testing::Test {
 protected:
  Watchdog watchdog_{current_test_name()};
  void SetUp() override {
    usgc_config config = runtime_config(1);
    config.preempt_after_us = 0;
    ASSERT_EQ(usgc_init(&config), 0);
  }
  void TearDown() override {
    EXPECT_TRUE(all_goroutines_finished()) << usgc_goroutine_count() << " goroutines still alive";
    EXPECT_EQ(usgc_shutdown(), 0);
  }
};

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { EXPECT_EQ(pipe(fds), 0); }
  ~Pipe() {
    close(fds[0]);
    close(fds[1]);
  }
};

// One P and a bound of two worker threads: the first two goroutines block in read and the P
// moves on each time, but a third blocked thread would exceed the bound, so the third goroutine
// waits in the queue until a read returns. Every goroutine then finishes, each read ending on the
// thread that began it, and no more than two worker threads ever existed.
TEST_F(BlockedCall, WorkerThreadsStayWithinTheirBound) {
  if (!safepoint::async_safepoints_enabled()) GTEST_SKIP() << "no asynchronous safepoints here";
  constexpr int kReaders = 4;
  Pipe pipes[kReaders];
  // On any exit: release every reader (a failed assertion must not leave goroutines blocked for
  // the next test) and restore the bound.
  struct Release {
    Pipe* pipes;
    ~Release() {
      for (int i = 0; i < kReaders; ++i) {
        char byte = static_cast<char>('a' + i);
        (void)!write(pipes[i].fds[1], &byte, 1);
      }
      all_goroutines_finished();
      runtime::g_scheduler.max_worker_threads = runtime::kDefaultMaxWorkerThreads;
    }
  } release{pipes};
  runtime::g_scheduler.max_worker_threads = 2;
  std::atomic<int> started{0}, finished{0}, failures{0};
  for (int i = 0; i < kReaders; ++i) {
    go([&, i] {
      started.fetch_add(1);
      pthread_t self = pthread_self();
      char byte = 0;
      errno = 0;
      ssize_t got = read(pipes[i].fds[0], &byte, 1);
      if (got != 1 || byte != 'a' + i || errno != 0 || !pthread_equal(self, pthread_self()))
        failures.fetch_add(1);
      finished.fetch_add(1);
    });
  }
  ASSERT_TRUE(eventually([&] { return started.load() == 2; }, std::chrono::seconds(30)));
  // Give the monitor time to retake the second reader's P: it must not start a third thread.
  usleep(50000);
  EXPECT_EQ(started.load(), 2) << "a third goroutine ran: a third worker thread was started";
  EXPECT_LE(runtime::g_scheduler.live_worker_threads.load(), 2u);
  for (int i = 0; i < kReaders; ++i) {
    char byte = static_cast<char>('a' + i);
    ASSERT_EQ(write(pipes[i].fds[1], &byte, 1), 1);
    ASSERT_TRUE(eventually([&] { return finished.load() == i + 1; }, std::chrono::seconds(30)))
        << "reader " << i << " did not finish";
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(runtime::g_scheduler.live_worker_threads.load(), 2u);
  EXPECT_GE(runtime::g_scheduler.blocked_call_handoffs.load(), 2u);
}

// A blocked goroutine whose call returns while another goroutine holds the only P queues itself
// (pinned to its thread) and runs on when the P comes to it; the P is held by one thread at a time
// throughout (a goroutine sees its own processor count unchanged across a poll-free section).
TEST_F(BlockedCall, ReturningGoroutineWaitsForThePAndContinues) {
  if (!safepoint::async_safepoints_enabled()) GTEST_SKIP() << "no asynchronous safepoints here";
  Pipe pipe_;
  std::atomic<int> reader_blocked{0}, reader_done{0}, spinner_running{0}, stop_spinning{0};
  std::atomic<int> inside{0}, overlaps{0};
  struct Release {  // on any exit: nothing stays blocked for the next test
    Pipe* pipe_;
    std::atomic<int>* stop;
    ~Release() {
      (void)!write(pipe_->fds[1], "x", 1);
      stop->store(1);
      all_goroutines_finished();
    }
  } release{&pipe_, &stop_spinning};
  go([&] {
    reader_blocked.store(1);
    char byte = 0;
    pthread_t self = pthread_self();
    ssize_t got = read(pipe_.fds[0], &byte, 1);
    EXPECT_EQ(got, 1);
    EXPECT_TRUE(pthread_equal(self, pthread_self()));
    // Now it holds the only P: nobody else may be inside.
    if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
    for (int i = 0; i < 1000; ++i) usgc_safepoint_poll();
    inside.fetch_sub(1);
    reader_done.store(1);
  });
  go([&] {
    spinner_running.store(1);
    while (stop_spinning.load() == 0) {
      if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
      for (int i = 0; i < 100; ++i) usgc_safepoint_poll();
      inside.fetch_sub(1);
      usgc_yield();
    }
  });
  // The spinner runs only once the reader's P was retaken.
  ASSERT_TRUE(eventually([&] { return spinner_running.load() == 1; }, std::chrono::seconds(30)));
  ASSERT_EQ(write(pipe_.fds[1], "x", 1), 1);
  // The reader's call returned while the spinner held the P: it queued and gets a turn.
  ASSERT_TRUE(eventually([&] { return reader_done.load() == 1; }, std::chrono::seconds(30)));
  stop_spinning.store(1);
  ASSERT_TRUE(all_goroutines_finished());
  EXPECT_EQ(overlaps.load(), 0) << "two threads ran goroutines on the only P at once";
}

// usgc's own code blocked inside a system library (liburing's io_uring_enter, libc's write) may
// hold one of usgc's locks: inside a LibraryCallScope the asynchronous safepoint leaves the
// thread alone, so its P is not retaken and no stop parks it there (a stop that did deadlocked
// the next allocation, spinning on the decommit queue's lock without a poll). Here the scope is
// around a blocking read: the other goroutine must not run until the read returns.
TEST_F(BlockedCall, ALibraryCallMadeForUsgcKeepsItsPUntilItReturns) {
  if (!safepoint::async_safepoints_enabled()) GTEST_SKIP() << "no asynchronous safepoints here";
  Pipe pipe_;
  std::atomic<int> reader_blocked{0}, other_ran{0};
  struct Release {  // on any exit: nothing stays blocked for the next test
    Pipe* pipe_;
    ~Release() {
      (void)!write(pipe_->fds[1], "x", 1);
      all_goroutines_finished();
    }
  } release{&pipe_};
  go([&] {
    kernel::LibraryCallScope for_usgc;
    reader_blocked.store(1);
    char byte = 0;
    EXPECT_EQ(read(pipe_.fds[0], &byte, 1), 1);
  });
  ASSERT_TRUE(eventually([&] { return reader_blocked.load() == 1; }, std::chrono::seconds(30)));
  go([&] { other_ran.store(1); });
  // The monitor retakes a P blocked outside usgc after 250 us: give it 200 times that.
  usleep(50000);
  EXPECT_EQ(other_ran.load(), 0) << "the P of a call made inside a LibraryCallScope was retaken";
  ASSERT_EQ(write(pipe_.fds[1], "x", 1), 1);
  ASSERT_TRUE(eventually([&] { return other_ran.load() == 1; }, std::chrono::seconds(30)));
}

// A goroutine sleeping in a loop of plain nanosleep calls without a remainder pointer holds the
// only P: the monitor never retakes it (the call cannot be re-issued after the signal's EINTR:
// the kernel reports no remaining time), and no time slice ends it (preemption off). While a
// thread stops the world back to back, each stop's signal catches the sleep and gets EINTR; the
// sleeper must then hand its P off rather than keep it through the stop, so a collector goroutine
// queued behind it completes shared collections within a bounded number of stops. Before, the
// sleeper kept the P at every stop and the collector never ran. The sleeper's calls return 0 or
// EINTR on the thread that made them.
TEST_F(BlockedCall, AStopHandsOffThePOfASleepItCannotReissue) {
  if (!safepoint::async_safepoints_enabled()) GTEST_SKIP() << "no asynchronous safepoints here";
  constexpr int kStops = 4000;
  constexpr uint64_t kCollections = 3;
  std::atomic<int> done{0}, sleeping{0}, failures{0};
  std::atomic<uint64_t> collections{0}, sleeps{0}, interrupted{0};
  struct Release {  // on any exit: the goroutines end (a stopped world resumes first)
    std::atomic<int>* done;
    ~Release() {
      done->store(1);
      all_goroutines_finished();
    }
  } release{&done};
  go([&] {
    pthread_t self = pthread_self();
    sleeping.store(1);
    while (done.load() == 0) {
      timespec request{0, 500000};
      errno = 0;
      int result = nanosleep(&request, nullptr);
      if (!pthread_equal(self, pthread_self())) failures.fetch_add(1);
      if (result == -1 && errno == EINTR) {
        interrupted.fetch_add(1);
      } else if (result != 0 || errno != 0) {
        failures.fetch_add(1);
      }
      sleeps.fetch_add(1);
    }
  });
  ASSERT_TRUE(eventually([&] { return sleeping.load() == 1; }, std::chrono::seconds(30)));
  go([&] {
    while (done.load() == 0) {
      if (usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 96, USGC_GOROUTINE_SHARED) == nullptr ||
          usgc_gc_collect(USGC_GC_SHARED) != 0) {
        failures.fetch_add(1);
        return;
      }
      collections.fetch_add(1);
    }
  });
  const uint64_t handed_off_before = safepoint::async_safepoint_statistics().handed_off_after_eintr;
  int stops = 0;
  for (; stops < kStops && collections.load() < kCollections; ++stops) {
    ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
    ASSERT_EQ(usgc_start_the_world(), 0);
    // An embedder's loop does some work between its stops. With none at all, a P handed to a
    // machine during a stop is claimed again by the next stop before that machine's thread can
    // take it after the resume (a machine acquires a P only by its own CAS once resumed), so
    // nothing would run whoever held the P; 100 us is a fifth of one sleep of the sleeper.
    usleep(100);
  }
  const uint64_t handed_off =
      safepoint::async_safepoint_statistics().handed_off_after_eintr - handed_off_before;
  EXPECT_GE(collections.load(), kCollections)
      << "the collector did not get the P of a goroutine sleeping in plain nanosleep calls in "
      << stops << " stops (" << handed_off << " hand-offs, " << interrupted.load()
      << " sleeps interrupted of " << sleeps.load() << ")";
  EXPECT_GT(handed_off, 0u);
  done.store(1);
  ASSERT_TRUE(all_goroutines_finished());
  EXPECT_EQ(failures.load(), 0);
}

// On a loaded machine a stop's first signal round waits 1 ms (a P still missing after 50 us is
// mostly a thread the kernel preempted), but a holder back from a blocking call the signal
// interrupted will most likely block again: the next stops signal it after 50 us
// (SafepointSlot::blocking_holder_tid). Here the machine is made to look loaded, and a
// goroutine sleeps in plain 2 ms nanosleep calls: after the first stop, which signals it after
// 1 ms, the later stops that find it asleep on its P again come early.
TEST_F(BlockedCall, ASleeperCaughtByAStopIsSignalledEarlyByTheNextStops) {
  if (!safepoint::async_safepoints_enabled()) GTEST_SKIP() << "no asynchronous safepoints here";
  constexpr int kStops = 20;
  std::atomic<int> done{0}, sleeping{0};
  struct Release {  // on any exit: the policy back, the goroutine ends
    std::atomic<int>* done;
    ~Release() {
      safepoint::set_machine_loaded_for_test(false);
      done->store(1);
      all_goroutines_finished();
    }
  } release{&done};
  safepoint::set_machine_loaded_for_test(true);
  go([&] {
    sleeping.store(1);
    while (done.load() == 0) {
      timespec request{0, 2000000};
      (void)nanosleep(&request, nullptr);
    }
  });
  ASSERT_TRUE(eventually([&] { return sleeping.load() == 1; }, std::chrono::seconds(30)));
  usleep(1000);  // asleep on its P
  const uint64_t early_before = safepoint::safepoint_statistics().early_signal_rounds;
  for (int i = 0; i < kStops; ++i) {
    ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
    ASSERT_EQ(usgc_start_the_world(), 0);
    usleep(3000);  // it takes its P back and sleeps on it again
  }
  const uint64_t early = safepoint::safepoint_statistics().early_signal_rounds - early_before;
  EXPECT_GE(early, static_cast<uint64_t>(kStops / 4))
      << "stops waited out the load before signalling a holder the last stop found asleep";
  EXPECT_LT(early, static_cast<uint64_t>(kStops)) << "the first stop had no reason to come early";
}

}  // namespace
}  // namespace usgc::testing
