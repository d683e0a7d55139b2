// tests/runtime/select_test.cpp — usgc_select (runtime/select.cpp): Go's select with send and
// receive cases, NULL (nil) channels, closed channels, the same channel in several cases,
// non-blocking select (default), uniform choice among ready cases, and wake-ups of a blocked
// select by a later send, receive or close. The stress tests are in select_stress_test.cpp.
//
// Harness as in channel_test.cpp: goroutine tests run as the main goroutine of a fresh runtime
// under a watchdog; stress tests are time-bounded, seeded (USGC_TEST_SEED) and print the seed on
// failure.
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/channel.hpp"
#include "tests/runtime/channel_test_support.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/runtime.h"

namespace {

using usgc::testing::queued;
using usgc::testing::Random;
using usgc::testing::recv_case;
using usgc::testing::seed_note;
using usgc::testing::send_case;
using usgc::testing::test_seed;
using usgc::testing::wait_until_queued;

// ---- harness (tests/support/runtime_fixture.hpp: runtime per test, watchdog, seeds) ----

using usgc::testing::go;
using usgc::testing::run_main;

// Goroutine tests: a fresh runtime (2 Ps) per test, under a watchdog.
class SelectGoroutineTest : public usgc::testing::RuntimeTest {};

// ---- no runtime needed: selects that never wait ----

TEST(SelectTest, ChoosesTheOnlyReadyCase) {
  usgc_chan* chans[3];
  for (auto& chan : chans) chan = usgc_chan_make(sizeof(int), 1);
  int value = 33;
  ASSERT_EQ(usgc_chan_try_send(chans[1], &value), 0);
  int received[3] = {-1, -1, -1};
  usgc_select_case cases[3] = {recv_case(chans[0], &received[0]), recv_case(chans[1], &received[1]),
                               recv_case(chans[2], &received[2])};
  size_t chosen = 99;
  ASSERT_EQ(usgc_select(cases, 3, /*block=*/true, &chosen), 0);  // ready: no waiting, so any thread
  EXPECT_EQ(chosen, 1u);
  EXPECT_EQ(received[1], 33);
  EXPECT_TRUE(cases[1].received_ok);
  EXPECT_EQ(received[0], -1);
  EXPECT_EQ(received[2], -1);
  for (auto& chan : chans) EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

TEST(SelectTest, NonBlockingSelectWithNothingReadyIsEagain) {
  usgc_chan* empty = usgc_chan_make(sizeof(int), 1);
  usgc_chan* full = usgc_chan_make(sizeof(int), 1);
  int value = 1;
  ASSERT_EQ(usgc_chan_try_send(full, &value), 0);
  usgc_select_case cases[3] = {recv_case(empty, &value), send_case(full, &value),
                               recv_case(nullptr, &value)};
  size_t chosen = 99;
  EXPECT_EQ(usgc_select(cases, 3, /*block=*/false, &chosen), EAGAIN);
  EXPECT_EQ(chosen, 99u);
  EXPECT_EQ(usgc_select(nullptr, 0, /*block=*/false, &chosen), EAGAIN);  // no cases at all
  usgc_select_case null_cases[2] = {recv_case(nullptr, &value), send_case(nullptr, &value)};
  EXPECT_EQ(usgc_select(null_cases, 2, /*block=*/false, &chosen), EAGAIN);
  EXPECT_EQ(usgc_chan_len(full), 1u);
  EXPECT_EQ(usgc_chan_destroy(empty), 0);
  EXPECT_EQ(usgc_chan_destroy(full), 0);
}

TEST(SelectTest, BlockingSelectOutsideGoroutinesIsEpermWhenItWouldWait) {
  usgc_chan* empty = usgc_chan_make(sizeof(int), 0);
  int value = 0;
  usgc_select_case cases[1] = {recv_case(empty, &value)};
  size_t chosen = 99;
  EXPECT_EQ(usgc_select(cases, 1, /*block=*/true, &chosen), EPERM);
  EXPECT_EQ(usgc_select(nullptr, 0, /*block=*/true, &chosen), EPERM);  // would park for ever
  EXPECT_EQ(usgc_chan_destroy(empty), 0) << "no waiter left behind";
}

TEST(SelectTest, InvalidCasesAreEinval) {
  usgc_chan* chan = usgc_chan_make(sizeof(int), 1);
  int value = 0;
  size_t chosen = 0;
  usgc_select_case bad_direction[1] = {{chan, 0, &value, false}};
  EXPECT_EQ(usgc_select(bad_direction, 1, false, &chosen), EINVAL);
  usgc_select_case missing_value[1] = {send_case(chan, nullptr)};
  EXPECT_EQ(usgc_select(missing_value, 1, false, &chosen), EINVAL);
  EXPECT_EQ(usgc_select(nullptr, 2, false, &chosen), EINVAL);
  EXPECT_EQ(usgc_chan_len(chan), 0u);
  EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

TEST(SelectTest, SendCaseFillsABufferWithRoom) {
  usgc_chan* full = usgc_chan_make(sizeof(int), 1);
  usgc_chan* room = usgc_chan_make(sizeof(int), 1);
  int value = 5;
  ASSERT_EQ(usgc_chan_try_send(full, &value), 0);
  int to_send = 6;
  usgc_select_case cases[2] = {send_case(full, &to_send), send_case(room, &to_send)};
  size_t chosen = 99;
  ASSERT_EQ(usgc_select(cases, 2, false, &chosen), 0);
  EXPECT_EQ(chosen, 1u);
  ASSERT_EQ(usgc_chan_try_recv(room, &value, nullptr), 0);
  EXPECT_EQ(value, 6);
  EXPECT_EQ(usgc_chan_destroy(full), 0);
  EXPECT_EQ(usgc_chan_destroy(room), 0);
}

TEST(SelectTest, ClosedChannelCases) {
  usgc_chan* closed = usgc_chan_make(sizeof(uint64_t), 0);
  ASSERT_EQ(usgc_chan_close(closed), 0);
  uint64_t value = 0xabcdef;
  usgc_select_case receive[2] = {recv_case(nullptr, nullptr), recv_case(closed, &value)};
  receive[1].received_ok = true;
  size_t chosen = 99;
  ASSERT_EQ(usgc_select(receive, 2, true, &chosen), 0);  // a closed channel is always ready
  EXPECT_EQ(chosen, 1u);
  EXPECT_FALSE(receive[1].received_ok);
  EXPECT_EQ(value, 0u) << "receive from a closed channel yields the zero value";

  usgc_select_case send[2] = {send_case(nullptr, &value), send_case(closed, &value)};
  chosen = 99;
  EXPECT_EQ(usgc_select(send, 2, true, &chosen), EPIPE);
  EXPECT_EQ(chosen, 1u) << "*chosen names the send on the closed channel";
  EXPECT_EQ(usgc_chan_destroy(closed), 0);
}

TEST(SelectTest, NullChannelCasesAreNeverChosen) {
  usgc_chan* ready = usgc_chan_make(0, 0);
  ASSERT_EQ(usgc_chan_close(ready), 0);
  usgc_select_case cases[5] = {recv_case(nullptr, nullptr), send_case(nullptr, nullptr),
                               recv_case(ready, nullptr), recv_case(nullptr, nullptr),
                               send_case(nullptr, nullptr)};
  for (int i = 0; i < 1000; ++i) {
    size_t chosen = 99;
    ASSERT_EQ(usgc_select(cases, 5, false, &chosen), 0);
    ASSERT_EQ(chosen, 2u);
  }
  EXPECT_EQ(usgc_chan_destroy(ready), 0);
}

TEST(SelectTest, SameChannelInTwoReadyCases) {
  usgc_chan* chan = usgc_chan_make(sizeof(int), 4);
  for (int v = 1; v <= 4; ++v) ASSERT_EQ(usgc_chan_try_send(chan, &v), 0);
  int values[2] = {0, 0};
  usgc_select_case cases[2] = {recv_case(chan, &values[0]), recv_case(chan, &values[1])};
  for (int expected = 1; expected <= 4; ++expected) {
    size_t chosen = 99;
    ASSERT_EQ(usgc_select(cases, 2, true, &chosen), 0);
    ASSERT_LT(chosen, 2u);
    EXPECT_EQ(values[chosen], expected);
  }
  EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

TEST(SelectTest, ManyCasesUseTheSameRules) {  // more cases than fit select's on-stack storage
  constexpr size_t kCases = 40;
  usgc_chan* chans[kCases];
  uint64_t values[kCases] = {};
  usgc_select_case cases[kCases];
  for (size_t i = 0; i < kCases; ++i) {
    chans[i] = usgc_chan_make(sizeof(uint64_t), 1);
    cases[i] = recv_case(chans[i], &values[i]);
  }
  size_t chosen = 99;
  EXPECT_EQ(usgc_select(cases, kCases, false, &chosen), EAGAIN);
  uint64_t value = 1234;
  ASSERT_EQ(usgc_chan_try_send(chans[29], &value), 0);
  ASSERT_EQ(usgc_select(cases, kCases, false, &chosen), 0);
  EXPECT_EQ(chosen, 29u);
  EXPECT_EQ(values[29], 1234u);
  for (auto* chan : chans) EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

// ---- fairness ----

// Hoeffding: P(|hits - n p| >= t n) <= 2 exp(-2 n t^2) for each of k cases; with a union bound,
// the half-width t n below makes a false failure less likely than 1e-9.
uint64_t fairness_bound(uint64_t n, uint64_t k) {
  const double t = sqrt(log(2.0 * static_cast<double>(k) / 1e-9) / (2.0 * static_cast<double>(n)));
  return static_cast<uint64_t>(ceil(t * static_cast<double>(n)));
}

TEST_F(SelectGoroutineTest, ChoosesUniformlyAmongReadyCases) {
  run_main([] {
    constexpr uint64_t kSelects = 10000;
    for (uint64_t ready_cases : {2, 4}) {
      // The ready cases (buffered channels refilled after each select) sit between never-ready
      // ones (NULL, empty, and a send on a full channel), so position cannot favour any.
      std::vector<usgc_chan*> ready(ready_cases);
      usgc_chan* empty = usgc_chan_make(sizeof(uint64_t), 0);
      usgc_chan* full = usgc_chan_make(sizeof(uint64_t), 1);
      uint64_t value = 0;
      ASSERT_EQ(usgc_chan_try_send(full, &value), 0);
      std::vector<usgc_select_case> cases;
      std::vector<size_t> case_of_ready;
      for (uint64_t r = 0; r < ready_cases; ++r) {
        ready[r] = usgc_chan_make(sizeof(uint64_t), 1);
        ASSERT_EQ(usgc_chan_try_send(ready[r], &r), 0);
        cases.push_back(recv_case(nullptr, &value));
        cases.push_back(recv_case(empty, &value));
        case_of_ready.push_back(cases.size());
        cases.push_back(recv_case(ready[r], &value));
        cases.push_back(send_case(full, &value));
      }
      std::vector<uint64_t> hits(ready_cases, 0);
      for (uint64_t i = 0; i < kSelects; ++i) {
        size_t chosen = 0;
        ASSERT_EQ(usgc_select(cases.data(), cases.size(), true, &chosen), 0);
        ASSERT_EQ(chosen % 4, 2u) << "only the ready cases can be chosen";
        const uint64_t r = chosen / 4;
        ASSERT_EQ(value, r);
        ++hits[r];
        ASSERT_EQ(usgc_chan_try_send(ready[r], &r), 0);
      }
      const uint64_t expected = kSelects / ready_cases;
      const uint64_t bound = fairness_bound(kSelects, ready_cases);
      for (uint64_t r = 0; r < ready_cases; ++r) {
        EXPECT_LE(hits[r] > expected ? hits[r] - expected : expected - hits[r], bound)
            << "case " << r << " of " << ready_cases << " chosen " << hits[r] << " times in "
            << kSelects;
        if (ready_cases == 2) {
          EXPECT_GE(hits[r], kSelects * 40 / 100);
          EXPECT_LE(hits[r], kSelects * 60 / 100);
        }
      }
      for (auto* chan : ready) EXPECT_EQ(usgc_chan_destroy(chan), 0);
      EXPECT_EQ(usgc_chan_destroy(empty), 0);
      EXPECT_EQ(usgc_chan_destroy(full), 0);
    }
  });
}

// ---- blocking selects ----

TEST_F(SelectGoroutineTest, BlockedSelectIsWokenByALaterSend) {
  run_main([] {
    constexpr int kChans = 3;
    usgc_chan* chans[kChans];
    for (auto& chan : chans) chan = usgc_chan_make(sizeof(uint64_t), 0);
    for (int target = 0; target < kChans; ++target) {
      usgc_waitgroup done = USGC_WAITGROUP_INIT;
      usgc_waitgroup_add(&done, 1);
      go([&, target] {
        uint64_t values[kChans] = {};
        usgc_select_case cases[kChans + 1];
        for (int i = 0; i < kChans; ++i) cases[i] = recv_case(chans[i], &values[i]);
        cases[kChans] = recv_case(nullptr, nullptr);
        size_t chosen = 99;
        EXPECT_EQ(usgc_select(cases, kChans + 1, true, &chosen), 0);
        EXPECT_EQ(chosen, static_cast<size_t>(target));
        EXPECT_TRUE(cases[target].received_ok);
        EXPECT_EQ(values[target], 500u + static_cast<uint64_t>(target));
        usgc_waitgroup_done(&done);
      });
      for (auto* chan : chans)
        wait_until_queued(chan, /*senders=*/false, 1);  // waiting on all three
      uint64_t value = 500 + static_cast<uint64_t>(target);
      ASSERT_EQ(usgc_chan_send(chans[target], &value), 0);
      usgc_waitgroup_wait(&done);
      for (auto* chan : chans)
        EXPECT_EQ(queued(chan, false), 0u) << "the losing cases' waiters were removed";
    }
    for (auto* chan : chans) EXPECT_EQ(usgc_chan_destroy(chan), 0);
  });
}

TEST_F(SelectGoroutineTest, BlockedSendCaseIsTakenByALaterReceive) {
  run_main([] {
    usgc_chan* a = usgc_chan_make(sizeof(int), 0);
    usgc_chan* b = usgc_chan_make(sizeof(int), 0);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 1);
    go([&] {
      int to_a = 1, to_b = 2;
      usgc_select_case cases[2] = {send_case(a, &to_a), send_case(b, &to_b)};
      size_t chosen = 99;
      EXPECT_EQ(usgc_select(cases, 2, true, &chosen), 0);
      EXPECT_EQ(chosen, 1u);
      usgc_waitgroup_done(&done);
    });
    wait_until_queued(a, /*senders=*/true, 1);
    wait_until_queued(b, /*senders=*/true, 1);
    int value = 0;
    bool ok = false;
    ASSERT_EQ(usgc_chan_recv(b, &value, &ok), 0);
    EXPECT_TRUE(ok);
    EXPECT_EQ(value, 2);
    usgc_waitgroup_wait(&done);
    EXPECT_EQ(usgc_chan_destroy(a), 0);
    EXPECT_EQ(usgc_chan_destroy(b), 0);
  });
}

TEST_F(SelectGoroutineTest, SendCaseHandsItsValueToAWaitingReceiver) {
  run_main([] {
    usgc_chan* chan = usgc_chan_make(sizeof(int), 0);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 1);
    go([&] {
      int value = 0;
      EXPECT_EQ(usgc_chan_recv(chan, &value, nullptr), 0);
      EXPECT_EQ(value, 77);
      usgc_waitgroup_done(&done);
    });
    wait_until_queued(chan, /*senders=*/false, 1);
    int value = 77;
    usgc_select_case cases[2] = {send_case(chan, &value), recv_case(nullptr, nullptr)};
    size_t chosen = 99;
    ASSERT_EQ(usgc_select(cases, 2, false, &chosen), 0);  // the receiver makes it ready at once
    EXPECT_EQ(chosen, 0u);
    usgc_waitgroup_wait(&done);
    EXPECT_EQ(usgc_chan_destroy(chan), 0);
  });
}

TEST_F(SelectGoroutineTest, BlockedSelectIsWokenByClose) {
  run_main([] {
    usgc_chan* chans[4];
    for (auto& chan : chans) chan = usgc_chan_make(sizeof(uint64_t), 0);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 2);
    go([&] {  // receive cases: the closed one wins with the zero value and false
      uint64_t values[2] = {7, 7};
      usgc_select_case cases[2] = {recv_case(chans[0], &values[0]),
                                   recv_case(chans[1], &values[1])};
      cases[1].received_ok = true;
      size_t chosen = 99;
      EXPECT_EQ(usgc_select(cases, 2, true, &chosen), 0);
      EXPECT_EQ(chosen, 1u);
      EXPECT_FALSE(cases[1].received_ok);
      EXPECT_EQ(values[1], 0u);
      EXPECT_EQ(values[0], 7u);
      usgc_waitgroup_done(&done);
    });
    go([&] {  // send cases: the closed one wins with EPIPE
      uint64_t value = 1;
      usgc_select_case cases[2] = {send_case(chans[2], &value), send_case(chans[3], &value)};
      size_t chosen = 99;
      EXPECT_EQ(usgc_select(cases, 2, true, &chosen), EPIPE);
      EXPECT_EQ(chosen, 1u);
      usgc_waitgroup_done(&done);
    });
    wait_until_queued(chans[1], /*senders=*/false, 1);
    wait_until_queued(chans[3], /*senders=*/true, 1);
    ASSERT_EQ(usgc_chan_close(chans[1]), 0);
    ASSERT_EQ(usgc_chan_close(chans[3]), 0);
    usgc_waitgroup_wait(&done);
    for (auto* chan : chans) {
      EXPECT_EQ(queued(chan, false) + queued(chan, true), 0u);
      EXPECT_EQ(usgc_chan_destroy(chan), 0);
    }
  });
}

TEST_F(SelectGoroutineTest, SameChannelInTwoCasesOfABlockedSelect) {
  run_main([] {
    usgc_chan* chan = usgc_chan_make(sizeof(int), 0);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    // Two receive cases on one channel: either may win; the other's waiter is removed.
    usgc_waitgroup_add(&done, 1);
    go([&] {
      int values[2] = {0, 0};
      usgc_select_case cases[2] = {recv_case(chan, &values[0]), recv_case(chan, &values[1])};
      size_t chosen = 99;
      EXPECT_EQ(usgc_select(cases, 2, true, &chosen), 0);
      EXPECT_LT(chosen, 2u);
      if (chosen < 2) {
        EXPECT_EQ(values[chosen], 8);
        EXPECT_TRUE(cases[chosen].received_ok);
      }
      usgc_waitgroup_done(&done);
    });
    wait_until_queued(chan, /*senders=*/false, 2);
    int value = 8;
    ASSERT_EQ(usgc_chan_send(chan, &value), 0);
    usgc_waitgroup_wait(&done);
    EXPECT_EQ(queued(chan, false), 0u);

    // A send and a receive case on one unbuffered channel: a select never meets itself; a
    // later receiver takes the send case.
    usgc_waitgroup_add(&done, 1);
    go([&] {
      int out = 9, in = 0;
      usgc_select_case cases[2] = {recv_case(chan, &in), send_case(chan, &out)};
      size_t chosen = 99;
      EXPECT_EQ(usgc_select(cases, 2, true, &chosen), 0);
      EXPECT_EQ(chosen, 1u);
      usgc_waitgroup_done(&done);
    });
    wait_until_queued(chan, /*senders=*/true, 1);
    wait_until_queued(chan, /*senders=*/false, 1);
    value = 0;
    ASSERT_EQ(usgc_chan_recv(chan, &value, nullptr), 0);
    EXPECT_EQ(value, 9);
    usgc_waitgroup_wait(&done);
    EXPECT_EQ(queued(chan, false) + queued(chan, true), 0u);
    EXPECT_EQ(usgc_chan_destroy(chan), 0);
  });
}

TEST_F(SelectGoroutineTest, BlockedSelectWithManyCasesIsWokenByALaterSend) {
  run_main([] {
    constexpr size_t kCases = 40;
    usgc_chan* chans[kCases];
    for (auto& chan : chans) chan = usgc_chan_make(sizeof(uint64_t), 0);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 1);
    go([&] {
      uint64_t values[kCases] = {};
      usgc_select_case cases[kCases];
      for (size_t i = 0; i < kCases; ++i) cases[i] = recv_case(chans[i], &values[i]);
      cases[5].chan = nullptr;
      cases[6].chan = chans[7];  // a duplicate as well
      size_t chosen = 99;
      EXPECT_EQ(usgc_select(cases, kCases, true, &chosen), 0);
      EXPECT_EQ(chosen, 33u);
      EXPECT_EQ(values[33], 3333u);
      usgc_waitgroup_done(&done);
    });
    wait_until_queued(chans[33], /*senders=*/false, 1);
    uint64_t value = 3333;
    ASSERT_EQ(usgc_chan_send(chans[33], &value), 0);
    usgc_waitgroup_wait(&done);
    for (auto* chan : chans) EXPECT_EQ(usgc_chan_destroy(chan), 0);
  });
}

TEST_F(SelectGoroutineTest, BlockedSelectsMeetEachOther) {
  run_main([] {
    constexpr int kRounds = 2000;
    usgc_chan* chan = usgc_chan_make(sizeof(int), 0);
    usgc_chan* never = usgc_chan_make(sizeof(int), 0);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 1);
    go([&] {
      for (int i = 0; i < kRounds; ++i) {
        int value = i, unused = 0;
        usgc_select_case cases[2] = {send_case(chan, &value), recv_case(never, &unused)};
        size_t chosen = 99;
        EXPECT_EQ(usgc_select(cases, 2, true, &chosen), 0);
        EXPECT_EQ(chosen, 0u);
      }
      usgc_waitgroup_done(&done);
    });
    for (int i = 0; i < kRounds; ++i) {
      int value = -1, unused = 0;
      usgc_select_case cases[2] = {recv_case(never, &unused), recv_case(chan, &value)};
      size_t chosen = 99;
      ASSERT_EQ(usgc_select(cases, 2, true, &chosen), 0);
      ASSERT_EQ(chosen, 1u);
      ASSERT_EQ(value, i);
    }
    usgc_waitgroup_wait(&done);
    EXPECT_EQ(usgc_chan_destroy(chan), 0);
    EXPECT_EQ(usgc_chan_destroy(never), 0);
  });
}

// A blocking select with no case that can ever proceed parks for ever (Go's "select {}"). Run in
// a child process: the parked goroutines keep that runtime from shutting down.
TEST(SelectTest, SelectWithNoCasesParksForever) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (usgc_init(nullptr) != 0) _exit(10);
    static std::atomic<int> started{0};
    static std::atomic<int> returned{0};
    auto no_cases = [](void*) {
      started.fetch_add(1);
      usgc_select(nullptr, 0, true, nullptr);
      returned.fetch_add(1);
    };
    auto null_cases = [](void*) {
      usgc_select_case cases[2] = {recv_case(nullptr, nullptr), send_case(nullptr, nullptr)};
      started.fetch_add(1);
      usgc_select(cases, 2, true, nullptr);
      returned.fetch_add(1);
    };
    if (usgc_go(no_cases, nullptr, nullptr) != 0 || usgc_go(null_cases, nullptr, nullptr) != 0)
      _exit(11);
    while (started.load() < 2) usleep(1000);
    usleep(100000);
    if (returned.load() != 0) _exit(12);
    if (usgc_goroutine_count() != 2) _exit(13);
    if (usgc_shutdown() != EBUSY) _exit(14);
    _exit(0);
  }
  const int status = usgc_test::wait_for_child(child);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 init, 11 go, 12 returned, 13 count, 14 shutdown";
}

}  // namespace
