// tests/runtime/channel_test.cpp — channels (runtime/channel.cpp): Go's semantics for buffered and
// unbuffered send/receive, close, the non-blocking forms, zero-sized elements, and wake-ups
// between many goroutines.
//
// Tests that need goroutines use the runtime fixture (tests/support/runtime_fixture.hpp: a fresh
// runtime per test) and run their body as the main goroutine; goroutines are joined with wait
// groups or channels. Tests that only use operations which never block run on the test thread
// with no runtime at all (they must work from any thread).
//
// Every test that could hang on a lost wake-up runs under a watchdog: a hang aborts the binary
// with the test's name (and seed) instead of stalling the suite. Stress tests are bounded in
// wall time, seeded (USGC_TEST_SEED=<n> repeats a run's choices), and print the seed on failure;
// they are in channel_stress_test.cpp.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#include "tests/support/runtime_fixture.hpp"
#include "usgc/runtime.h"

namespace {

using usgc::testing::queued;
using usgc::testing::Random;
using usgc::testing::seed_note;
using usgc::testing::test_seed;
using usgc::testing::wait_until_queued;

// ---- harness (tests/support/runtime_fixture.hpp: runtime per test, watchdog, seeds) ----

using usgc::testing::go;
using usgc::testing::run_main;

// Goroutine tests: a fresh runtime (2 Ps) per test, under a watchdog.
class ChannelGoroutineTest : public usgc::testing::RuntimeTest {};

// ---- no runtime needed: operations that never block ----

TEST(ChannelTest, MakeReportsCapacityAndLength) {
  usgc_chan* buffered = usgc_chan_make(sizeof(int), 3);
  ASSERT_NE(buffered, nullptr);
  EXPECT_EQ(usgc_chan_cap(buffered), 3u);
  EXPECT_EQ(usgc_chan_len(buffered), 0u);
  int value = 7;
  ASSERT_EQ(usgc_chan_try_send(buffered, &value), 0);
  ASSERT_EQ(usgc_chan_try_send(buffered, &value), 0);
  EXPECT_EQ(usgc_chan_len(buffered), 2u);
  EXPECT_EQ(usgc_chan_destroy(buffered), 0);

  usgc_chan* unbuffered = usgc_chan_make(sizeof(int), 0);
  ASSERT_NE(unbuffered, nullptr);
  EXPECT_EQ(usgc_chan_cap(unbuffered), 0u);
  EXPECT_EQ(usgc_chan_len(unbuffered), 0u);
  EXPECT_EQ(usgc_chan_destroy(unbuffered), 0);

  EXPECT_EQ(usgc_chan_len(nullptr), 0u);  // Go: len and cap of a nil channel are 0
  EXPECT_EQ(usgc_chan_cap(nullptr), 0u);
}

TEST(ChannelTest, MakeOfAnImpossibleSizeFailsWithEnomem) {
  errno = 0;
  EXPECT_EQ(usgc_chan_make(SIZE_MAX / 2, 4), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(ChannelTest, NullArgumentsAreEinval) {
  int value = 0;
  bool ok = false;
  EXPECT_EQ(usgc_chan_send(nullptr, &value), EINVAL);
  EXPECT_EQ(usgc_chan_recv(nullptr, &value, &ok), EINVAL);
  EXPECT_EQ(usgc_chan_try_send(nullptr, &value), EINVAL);
  EXPECT_EQ(usgc_chan_try_recv(nullptr, &value, &ok), EINVAL);
  EXPECT_EQ(usgc_chan_close(nullptr), EINVAL);
  EXPECT_EQ(usgc_chan_destroy(nullptr), EINVAL);
  usgc_chan* chan = usgc_chan_make(sizeof(int), 1);
  EXPECT_EQ(usgc_chan_try_send(chan, nullptr),
            EINVAL);  // a value is required when elements have bytes
  EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

TEST(ChannelTest, TrySendAndTryReceiveReportEagainWhenTheyWouldBlock) {
  usgc_chan* unbuffered = usgc_chan_make(sizeof(int), 0);
  int value = 1;
  bool ok = true;
  EXPECT_EQ(usgc_chan_try_send(unbuffered, &value), EAGAIN);  // no receiver waiting
  EXPECT_EQ(usgc_chan_try_recv(unbuffered, &value, &ok), EAGAIN);
  EXPECT_TRUE(ok) << "EAGAIN leaves *ok alone";
  EXPECT_EQ(usgc_chan_destroy(unbuffered), 0);

  usgc_chan* buffered = usgc_chan_make(sizeof(int), 2);
  EXPECT_EQ(usgc_chan_try_recv(buffered, &value, &ok), EAGAIN);
  EXPECT_EQ(usgc_chan_try_send(buffered, &value), 0);
  EXPECT_EQ(usgc_chan_try_send(buffered, &value), 0);
  EXPECT_EQ(usgc_chan_try_send(buffered, &value), EAGAIN);  // full
  EXPECT_EQ(usgc_chan_len(buffered), 2u);
  EXPECT_EQ(usgc_chan_destroy(buffered), 0);
}

TEST(ChannelTest, BlockingOperationsOutsideGoroutinesAreEpermOnlyWhenTheyWouldWait) {
  usgc_chan* chan = usgc_chan_make(sizeof(int), 1);
  int value = 5;
  bool ok = false;
  EXPECT_EQ(usgc_chan_recv(chan, &value, &ok), EPERM);  // empty: would wait
  EXPECT_EQ(usgc_chan_send(chan, &value), 0);           // room: completes from any thread
  EXPECT_EQ(usgc_chan_send(chan, &value), EPERM);       // full: would wait
  value = 0;
  EXPECT_EQ(usgc_chan_recv(chan, &value, &ok), 0);
  EXPECT_EQ(value, 5);
  EXPECT_TRUE(ok);
  EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

TEST(ChannelTest, BufferedChannelIsFifoAndWrapsAround) {
  usgc_chan* chan = usgc_chan_make(sizeof(uint64_t), 5);
  uint64_t next_in = 0;
  uint64_t next_out = 0;
  for (int round = 0; round < 100; ++round) {  // fill levels 1..5, many times around the ring
    const int fill = 1 + round % 5;
    for (int i = 0; i < fill; ++i, ++next_in) ASSERT_EQ(usgc_chan_try_send(chan, &next_in), 0);
    for (int i = 0; i < fill; ++i, ++next_out) {
      uint64_t value = ~0ull;
      bool ok = false;
      ASSERT_EQ(usgc_chan_try_recv(chan, &value, &ok), 0);
      ASSERT_TRUE(ok);
      ASSERT_EQ(value, next_out);
    }
  }
  EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

TEST(ChannelTest, ReceiversDrainTheBufferThenGetTheZeroValueAndFalse) {
  usgc_chan* chan = usgc_chan_make(sizeof(uint32_t), 4);
  for (uint32_t v = 1; v <= 3; ++v) ASSERT_EQ(usgc_chan_try_send(chan, &v), 0);
  ASSERT_EQ(usgc_chan_close(chan), 0);
  EXPECT_EQ(usgc_chan_len(chan), 3u);
  for (uint32_t v = 1; v <= 3; ++v) {
    uint32_t value = 0;
    bool ok = false;
    ASSERT_EQ(usgc_chan_recv(chan, &value, &ok), 0);
    EXPECT_TRUE(ok);
    EXPECT_EQ(value, v);
  }
  for (int i = 0; i < 2; ++i) {  // drained: at once, from any thread, blocking or not
    uint32_t value = 0xdeadbeef;
    bool ok = true;
    ASSERT_EQ(usgc_chan_recv(chan, &value, &ok), 0);
    EXPECT_FALSE(ok);
    EXPECT_EQ(value, 0u);
    value = 0xdeadbeef;
    ok = true;
    ASSERT_EQ(usgc_chan_try_recv(chan, &value, &ok), 0);
    EXPECT_FALSE(ok);
    EXPECT_EQ(value, 0u);
  }
  EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

TEST(ChannelTest, CloseTwiceAndSendAfterCloseAreEpipe) {
  usgc_chan* chan = usgc_chan_make(sizeof(int), 2);
  int value = 1;
  ASSERT_EQ(usgc_chan_close(chan), 0);
  EXPECT_EQ(usgc_chan_close(chan), EPIPE);
  EXPECT_EQ(usgc_chan_send(chan, &value), EPIPE);
  EXPECT_EQ(usgc_chan_try_send(chan, &value), EPIPE);  // closed wins over "would block"
  EXPECT_EQ(usgc_chan_len(chan), 0u);
  EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

TEST(ChannelTest, ZeroSizedElementsCountSignals) {
  usgc_chan* chan = usgc_chan_make(0, 3);
  EXPECT_EQ(usgc_chan_try_send(chan, nullptr), 0);
  EXPECT_EQ(usgc_chan_try_send(chan, nullptr), 0);
  EXPECT_EQ(usgc_chan_len(chan), 2u);
  bool ok = false;
  EXPECT_EQ(usgc_chan_try_recv(chan, nullptr, &ok), 0);
  EXPECT_TRUE(ok);
  EXPECT_EQ(usgc_chan_len(chan), 1u);
  ASSERT_EQ(usgc_chan_close(chan), 0);
  EXPECT_EQ(usgc_chan_recv(chan, nullptr, &ok), 0);
  EXPECT_TRUE(ok);
  EXPECT_EQ(usgc_chan_recv(chan, nullptr, &ok), 0);
  EXPECT_FALSE(ok);
  EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

TEST(ChannelTest, NullReceiveDestinationDiscardsTheValue) {
  usgc_chan* chan = usgc_chan_make(sizeof(uint64_t), 2);
  uint64_t value = 11;
  ASSERT_EQ(usgc_chan_try_send(chan, &value), 0);
  value = 12;
  ASSERT_EQ(usgc_chan_try_send(chan, &value), 0);
  bool ok = false;
  EXPECT_EQ(usgc_chan_try_recv(chan, nullptr, &ok), 0);
  EXPECT_TRUE(ok);
  value = 0;
  EXPECT_EQ(usgc_chan_try_recv(chan, &value, nullptr), 0);  // ok may be NULL too
  EXPECT_EQ(value, 12u);
  EXPECT_EQ(usgc_chan_destroy(chan), 0);
}

// ---- with goroutines ----

TEST_F(ChannelGoroutineTest, UnbufferedSendMeetsItsReceiverInOrder) {
  run_main([] {
    constexpr uint64_t kValues = 20000;
    usgc_chan* chan = usgc_chan_make(sizeof(uint64_t), 0);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 1);
    go([&] {
      for (uint64_t v = 0; v < kValues; ++v) EXPECT_EQ(usgc_chan_send(chan, &v), 0);
      usgc_waitgroup_done(&done);
    });
    for (uint64_t expected = 0; expected < kValues; ++expected) {
      uint64_t value = ~0ull;
      bool ok = false;
      ASSERT_EQ(usgc_chan_recv(chan, &value, &ok), 0);
      ASSERT_TRUE(ok);
      ASSERT_EQ(value, expected);
      ASSERT_EQ(usgc_chan_len(chan), 0u);
    }
    usgc_waitgroup_wait(&done);
    EXPECT_EQ(usgc_chan_destroy(chan), 0);
  });
}

TEST_F(ChannelGoroutineTest, UnbufferedSendWaitsUntilItsValueIsTaken) {
  run_main([] {
    usgc_chan* chan = usgc_chan_make(sizeof(int), 0);
    std::atomic<bool> sent{false};
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 1);
    go([&] {
      int value = 42;
      EXPECT_EQ(usgc_chan_send(chan, &value), 0);
      sent.store(true);
      usgc_waitgroup_done(&done);
    });
    wait_until_queued(chan, /*senders=*/true, 1);
    EXPECT_FALSE(sent.load()) << "an unbuffered send returned before any receiver came";
    int value = 0;
    EXPECT_EQ(usgc_chan_recv(chan, &value, nullptr), 0);
    EXPECT_EQ(value, 42);
    usgc_waitgroup_wait(&done);
    EXPECT_TRUE(sent.load());
    EXPECT_EQ(usgc_chan_destroy(chan), 0);
  });
}

TEST_F(ChannelGoroutineTest, BufferedSendsAreFifoAcrossGoroutines) {
  run_main([] {
    constexpr uint64_t kValues = 50000;
    usgc_chan* chan = usgc_chan_make(sizeof(uint64_t), 16);
    go([&] {
      for (uint64_t v = 0; v < kValues; ++v) EXPECT_EQ(usgc_chan_send(chan, &v), 0);
      EXPECT_EQ(usgc_chan_close(chan), 0);
    });
    uint64_t expected = 0;
    for (;;) {
      uint64_t value = 0;
      bool ok = false;
      ASSERT_EQ(usgc_chan_recv(chan, &value, &ok), 0);
      if (!ok) break;
      ASSERT_EQ(value, expected);
      ++expected;
    }
    EXPECT_EQ(expected, kValues);
    EXPECT_EQ(usgc_chan_destroy(chan), 0);
  });
}

// A receiver that empties a slot of a full buffer moves the oldest waiting sender's value into
// it (Go's recv with a full buffer): order is preserved and the sender is released.
TEST_F(ChannelGoroutineTest, ReceiveFromAFullBufferTakesTheWaitingSendersValueIntoTheBuffer) {
  run_main([] {
    usgc_chan* chan = usgc_chan_make(sizeof(int), 2);
    for (int v = 1; v <= 2; ++v) ASSERT_EQ(usgc_chan_send(chan, &v), 0);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 2);
    for (int v = 3; v <= 4; ++v) {
      go([&, v] {
        EXPECT_EQ(usgc_chan_send(chan, &v), 0);
        usgc_waitgroup_done(&done);
      });
      wait_until_queued(chan, /*senders=*/true, static_cast<size_t>(v - 2));  // 3 queues before 4
    }
    for (int expected = 1; expected <= 4; ++expected) {
      int value = 0;
      ASSERT_EQ(usgc_chan_recv(chan, &value, nullptr), 0);
      EXPECT_EQ(value, expected);
      if (expected <= 2) {
        EXPECT_EQ(usgc_chan_len(chan), 2u) << "the sender's value took the freed slot";
      }
    }
    usgc_waitgroup_wait(&done);
    EXPECT_EQ(usgc_chan_len(chan), 0u);
    EXPECT_EQ(usgc_chan_destroy(chan), 0);
  });
}

TEST_F(ChannelGoroutineTest, CloseWakesBlockedReceiversWithTheZeroValueAndFalse) {
  run_main([] {
    constexpr int kReceivers = 8;
    for (size_t capacity : {0, 4}) {
      usgc_chan* chan = usgc_chan_make(sizeof(uint64_t), capacity);
      usgc_waitgroup done = USGC_WAITGROUP_INIT;
      usgc_waitgroup_add(&done, kReceivers);
      std::atomic<int> woken_by_close{0};
      for (int i = 0; i < kReceivers; ++i) {
        go([&] {
          uint64_t value = 0xabababababababab;
          bool ok = true;
          EXPECT_EQ(usgc_chan_recv(chan, &value, &ok), 0);
          EXPECT_FALSE(ok);
          EXPECT_EQ(value, 0u);
          woken_by_close.fetch_add(1);
          usgc_waitgroup_done(&done);
        });
      }
      wait_until_queued(chan, /*senders=*/false, kReceivers);
      EXPECT_EQ(usgc_chan_destroy(chan), EBUSY);  // goroutines wait on it
      ASSERT_EQ(usgc_chan_close(chan), 0);
      usgc_waitgroup_wait(&done);
      EXPECT_EQ(woken_by_close.load(), kReceivers);
      EXPECT_EQ(usgc_chan_destroy(chan), 0);
    }
  });
}

TEST_F(ChannelGoroutineTest, CloseWakesBlockedSendersWithEpipe) {
  run_main([] {
    constexpr int kSenders = 8;
    for (size_t capacity : {0, 2}) {
      usgc_chan* chan = usgc_chan_make(sizeof(int), capacity);
      for (size_t i = 0; i < capacity; ++i) {
        int v = 100 + static_cast<int>(i);
        ASSERT_EQ(usgc_chan_send(chan, &v), 0);
      }
      usgc_waitgroup done = USGC_WAITGROUP_INIT;
      usgc_waitgroup_add(&done, kSenders);
      for (int i = 0; i < kSenders; ++i) {
        go([&, i] {
          EXPECT_EQ(usgc_chan_send(chan, &i), EPIPE);
          usgc_waitgroup_done(&done);
        });
      }
      wait_until_queued(chan, /*senders=*/true, kSenders);
      ASSERT_EQ(usgc_chan_close(chan), 0);
      usgc_waitgroup_wait(&done);
      for (size_t i = 0; i < capacity; ++i) {  // the buffered values survive the close
        int value = 0;
        bool ok = false;
        ASSERT_EQ(usgc_chan_recv(chan, &value, &ok), 0);
        EXPECT_TRUE(ok);
        EXPECT_EQ(value, 100 + static_cast<int>(i));
      }
      EXPECT_EQ(usgc_chan_destroy(chan), 0);
    }
  });
}

TEST_F(ChannelGoroutineTest, DestroyIsEbusyWhileAGoroutineWaits) {
  run_main([] {
    usgc_chan* chan = usgc_chan_make(sizeof(int), 0);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 1);
    go([&] {
      int value = 0;
      EXPECT_EQ(usgc_chan_recv(chan, &value, nullptr), 0);
      EXPECT_EQ(value, 9);
      usgc_waitgroup_done(&done);
    });
    wait_until_queued(chan, /*senders=*/false, 1);
    EXPECT_EQ(usgc_chan_destroy(chan), EBUSY);
    int value = 9;
    ASSERT_EQ(usgc_chan_send(chan, &value), 0);
    usgc_waitgroup_wait(&done);
    EXPECT_EQ(usgc_chan_destroy(chan), 0);
  });
}

TEST_F(ChannelGoroutineTest, ZeroSizedElementsSignalBetweenGoroutines) {
  run_main([] {
    constexpr int kSignals = 10000;
    for (size_t capacity : {0, 3}) {
      usgc_chan* ping = usgc_chan_make(0, capacity);
      usgc_chan* pong = usgc_chan_make(0, 0);
      go([&] {
        for (int i = 0; i < kSignals; ++i) EXPECT_EQ(usgc_chan_recv(ping, nullptr, nullptr), 0);
        EXPECT_EQ(usgc_chan_send(pong, nullptr), 0);
      });
      for (int i = 0; i < kSignals; ++i) ASSERT_EQ(usgc_chan_send(ping, nullptr), 0);
      ASSERT_EQ(usgc_chan_recv(pong, nullptr, nullptr), 0);
      EXPECT_EQ(usgc_chan_destroy(ping), 0);
      EXPECT_EQ(usgc_chan_destroy(pong), 0);
    }
  });
}

// ThreadSanitizer keeps megabytes of state per fiber (goroutine): 10 000 of them exhaust its
// memory, so its builds run the two 10 000-goroutine tests with 1 000.
#if defined(__SANITIZE_THREAD__)
constexpr uint64_t kManyGoroutines = 1000;
#else
constexpr uint64_t kManyGoroutines = 10000;
#endif

// A token passes through a chain of 10 000 goroutines, each adding one; then closing the head
// closes the chain link by link.
TEST_F(ChannelGoroutineTest, TokensPassThroughAChainOfTenThousandGoroutines) {
  run_main([] {
    constexpr size_t kLinks = kManyGoroutines;
    constexpr uint64_t kTokens = 5;
    usgc_chan** chans = new usgc_chan*[kLinks + 1];
    for (size_t i = 0; i <= kLinks; ++i)
      ASSERT_NE(chans[i] = usgc_chan_make(sizeof(uint64_t), 0), nullptr);
    for (size_t i = 0; i < kLinks; ++i) {
      go([in = chans[i], out = chans[i + 1]] {
        for (;;) {
          uint64_t token = 0;
          bool ok = false;
          EXPECT_EQ(usgc_chan_recv(in, &token, &ok), 0);
          if (!ok) break;
          ++token;
          EXPECT_EQ(usgc_chan_send(out, &token), 0);
        }
        EXPECT_EQ(usgc_chan_close(out), 0);
      });
    }
    go([&] {  // tokens in flight together: the chain is a pipeline
      for (uint64_t t = 0; t < kTokens; ++t) {
        const uint64_t token = t * 1000000;
        EXPECT_EQ(usgc_chan_send(chans[0], &token), 0);
      }
      EXPECT_EQ(usgc_chan_close(chans[0]), 0);
    });
    for (uint64_t t = 0; t < kTokens; ++t) {
      uint64_t token = 0;
      bool ok = false;
      ASSERT_EQ(usgc_chan_recv(chans[kLinks], &token, &ok), 0);
      ASSERT_TRUE(ok);
      EXPECT_EQ(token, t * 1000000 + kLinks);
    }
    bool ok = true;
    ASSERT_EQ(usgc_chan_recv(chans[kLinks], nullptr, &ok), 0);
    EXPECT_FALSE(ok) << "the close propagated down the chain";
    // Every link has closed its output, but may still be returning: wait for them.
    while (usgc_goroutine_count() > 1) usgc_sleep_ns(1000000);
    for (size_t i = 0; i <= kLinks; ++i) EXPECT_EQ(usgc_chan_destroy(chans[i]), 0);
    delete[] chans;
  });
}

TEST_F(ChannelGoroutineTest, TenThousandSendersIntoOneChannel) {
  run_main([] {
    constexpr uint64_t kSenders = kManyGoroutines;
    usgc_chan* chan = usgc_chan_make(sizeof(uint64_t), 0);
    for (uint64_t i = 0; i < kSenders; ++i) {
      go([chan, i] { EXPECT_EQ(usgc_chan_send(chan, &i), 0); });
    }
    std::vector<bool> seen(kSenders, false);
    uint64_t duplicates = 0;
    for (uint64_t n = 0; n < kSenders; ++n) {
      uint64_t value = 0;
      ASSERT_EQ(usgc_chan_recv(chan, &value, nullptr), 0);
      ASSERT_LT(value, kSenders);
      if (seen[value]) ++duplicates;
      seen[value] = true;
    }
    EXPECT_EQ(duplicates, 0u);
    EXPECT_EQ(usgc_chan_try_recv(chan, nullptr, nullptr), EAGAIN)
        << "no value beyond the " << kSenders << " sent";
    while (usgc_goroutine_count() > 1) usgc_sleep_ns(1000000);
    EXPECT_EQ(usgc_chan_destroy(chan), 0);
  });
}

}  // namespace
