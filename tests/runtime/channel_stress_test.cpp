// tests/runtime/channel_stress_test.cpp — channels (runtime/channel.cpp) under stress: many
// producers and consumers accounting for every value in FIFO order per producer, and pairs of
// goroutines bouncing a counter with blocking and retried non-blocking operations. More Ps than
// cores, so goroutines are preempted by the OS inside channel code. Bounded in wall time, seeded
// (USGC_TEST_SEED), the seed printed on failure; the harness is channel_test.cpp's
// (tests/support/runtime_fixture.hpp: a fresh runtime per test under a watchdog).
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "tests/support/runtime_fixture.hpp"
#include "usgc/runtime.h"

namespace {

using usgc::testing::go;
using usgc::testing::Random;
using usgc::testing::run_main;
using usgc::testing::seed_note;
using usgc::testing::test_seed;

// More Ps than cores, so goroutines are preempted by the OS inside channel code.
class ChannelStressTest : public usgc::testing::RuntimeTest {
 protected:
  uint32_t procs() const override { return 4; }
};

// Producers send (producer << 32 | sequence); every consumer must see each producer's values in
// increasing order (FIFO), and together the consumers must see every value exactly once.
TEST_F(ChannelStressTest, ManyProducersAndConsumersAccountForEveryValue) {
  run_main([] {
    constexpr uint64_t kProducers = 8;
    constexpr uint64_t kConsumers = 8;
    constexpr uint64_t kPerProducer = 5000;
    for (size_t capacity : {0, 1, 64}) {
      usgc_chan* chan = usgc_chan_make(sizeof(uint64_t), capacity);
      usgc_waitgroup producers = USGC_WAITGROUP_INIT;
      usgc_waitgroup consumers = USGC_WAITGROUP_INIT;
      std::atomic<uint64_t> received_sum{0};
      std::atomic<uint64_t> received_count{0};
      std::atomic<uint64_t> order_violations{0};
      std::atomic<uint64_t> per_producer[kProducers] = {};
      usgc_waitgroup_add(&producers, kProducers);
      usgc_waitgroup_add(&consumers, kConsumers);
      for (uint64_t p = 0; p < kProducers; ++p) {
        go([&, p] {
          for (uint64_t s = 0; s < kPerProducer; ++s) {
            const uint64_t value = p << 32 | s;
            EXPECT_EQ(usgc_chan_send(chan, &value), 0);
          }
          usgc_waitgroup_done(&producers);
        });
      }
      for (uint64_t c = 0; c < kConsumers; ++c) {
        go([&] {
          int64_t last_seen[kProducers];
          for (auto& l : last_seen) l = -1;
          uint64_t sum = 0, count = 0;
          for (;;) {
            uint64_t value = 0;
            bool ok = false;
            EXPECT_EQ(usgc_chan_recv(chan, &value, &ok), 0);
            if (!ok) break;
            const uint64_t p = value >> 32;
            const int64_t s = static_cast<int64_t>(value & 0xffffffffu);
            if (p >= kProducers || s <= last_seen[p]) {
              order_violations.fetch_add(1);
            } else {
              last_seen[p] = s;
              per_producer[p].fetch_add(1);
            }
            sum += value;
            ++count;
          }
          received_sum.fetch_add(sum);
          received_count.fetch_add(count);
          usgc_waitgroup_done(&consumers);
        });
      }
      usgc_waitgroup_wait(&producers);
      ASSERT_EQ(usgc_chan_close(chan), 0);
      usgc_waitgroup_wait(&consumers);
      uint64_t expected_sum = 0;
      for (uint64_t p = 0; p < kProducers; ++p)
        expected_sum += kPerProducer * (p << 32) + kPerProducer * (kPerProducer - 1) / 2;
      EXPECT_EQ(order_violations.load(), 0u) << "capacity " << capacity;
      EXPECT_EQ(received_count.load(), kProducers * kPerProducer) << "capacity " << capacity;
      EXPECT_EQ(received_sum.load(), expected_sum) << "capacity " << capacity;
      for (uint64_t p = 0; p < kProducers; ++p) EXPECT_EQ(per_producer[p].load(), kPerProducer);
      EXPECT_EQ(usgc_chan_destroy(chan), 0);
    }
  });
}

// Pairs of goroutines bounce a counter over unbuffered and one-slot channels, mixing blocking and
// non-blocking (retried) operations, for a fixed wall-time budget. A lost wake-up hangs a pair
// (the watchdog reports it); a lost, duplicated or reordered message breaks the counter.
TEST_F(ChannelStressTest, PingPongLosesNoWakeUpsUnderStress) {
  const uint64_t seed = test_seed();
  run_main([seed] {
    constexpr int kPairs = 16;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    std::atomic<uint64_t> bounces{0};
    std::atomic<uint64_t> errors{0};
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 2 * kPairs);
    usgc_chan* chans[kPairs][2];
    for (int p = 0; p < kPairs; ++p) {
      const size_t capacity = p % 3 == 2 ? 1 : 0;
      chans[p][0] = usgc_chan_make(sizeof(uint64_t), capacity);
      chans[p][1] = usgc_chan_make(sizeof(uint64_t), capacity);
    }
    for (int p = 0; p < kPairs; ++p) {
      for (int side = 0; side < 2; ++side) {
        go([&, p, side] {
          Random random(seed * 1000 + static_cast<uint64_t>(p * 2 + side));
          usgc_chan* out = chans[p][side];
          usgc_chan* in = chans[p][1 - side];
          // Side 0 serves 0; each side answers v with v + 1, so it next expects v + 2.
          uint64_t expected = side == 0 ? 1 : 0;
          const uint64_t serve = 0;
          if (side == 0 && usgc_chan_send(out, &serve) != 0) errors.fetch_add(1);
          for (;;) {
            uint64_t value = 0;
            bool ok = false;
            int result;
            if (random.below(4) == 0) {
              while ((result = usgc_chan_try_recv(in, &value, &ok)) == EAGAIN) usgc_yield();
            } else {
              result = usgc_chan_recv(in, &value, &ok);
            }
            if (result != 0) errors.fetch_add(1);
            if (!ok) break;  // the partner stopped and closed
            if (value != expected) errors.fetch_add(1);
            bounces.fetch_add(1, std::memory_order_relaxed);
            if (std::chrono::steady_clock::now() > deadline) break;
            const uint64_t reply = value + 1;
            // try_send only where it cannot meet a spinning try_recv: on a one-slot channel,
            // which is empty here (strict alternation). On an unbuffered channel a spinning
            // try_send and a spinning try_recv would never meet.
            if (usgc_chan_cap(out) != 0 && random.below(2) == 0) {
              while ((result = usgc_chan_try_send(out, &reply)) == EAGAIN) usgc_yield();
            } else {
              result = usgc_chan_send(out, &reply);
            }
            if (result != 0) errors.fetch_add(1);
            expected = value + 2;
          }
          // Stop: close my output; the partner, waiting for my answer, sees the close, stops
          // and closes its output, which ends my drain.
          if (usgc_chan_close(out) != 0) errors.fetch_add(1);
          for (;;) {
            bool ok = false;
            if (usgc_chan_recv(in, nullptr, &ok) != 0 || !ok) break;
          }
          usgc_waitgroup_done(&done);
        });
      }
    }
    usgc_waitgroup_wait(&done);
    while (usgc_goroutine_count() > 1) usgc_sleep_ns(1000000);
    for (auto& pair : chans)
      for (usgc_chan* chan : pair) EXPECT_EQ(usgc_chan_destroy(chan), 0) << seed_note(seed);
    EXPECT_EQ(errors.load(), 0u) << seed_note(seed);
    EXPECT_GT(bounces.load(), 0u) << seed_note(seed);
    printf("[          ] %llu bounces, %s\n", static_cast<unsigned long long>(bounces.load()),
           seed_note(seed).c_str());
  });
}

}  // namespace
