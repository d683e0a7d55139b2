// tests/runtime/select_stress_test.cpp — usgc_select (runtime/select.cpp) under stress: fan-in and
// fan-out through selects over random subsets of channels, and ping-pong through selects, with
// more Ps than cores so goroutines are preempted by the OS inside channel code. Every value must
// arrive exactly once and no wake-up may be lost. Time-bounded, seeded (USGC_TEST_SEED), the seed
// printed on failure; the harness is select_test.cpp's (tests/support/runtime_fixture.hpp).
#include <stdint.h>
#include <stdio.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "tests/runtime/channel_test_support.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/runtime.h"

namespace {

using usgc::testing::go;
using usgc::testing::Random;
using usgc::testing::recv_case;
using usgc::testing::run_main;
using usgc::testing::seed_note;
using usgc::testing::send_case;
using usgc::testing::test_seed;

// More Ps than cores, so goroutines are preempted by the OS inside channel code.
class SelectStressTest : public usgc::testing::RuntimeTest {
 protected:
  uint32_t procs() const override { return 4; }
};

// Fan-in/fan-out: producers send unique values (producer << 32 | sequence) through selects over
// random subsets of four channels (capacities 0, 0, 1, 8) — plus a receive case on a channel
// nobody sends to, so every blocked select leaves waiters to clean up — or through plain sends;
// consumers select over all four channels until all are closed, dropping each closed channel's
// case (it becomes NULL). Bounded in time; every value must arrive exactly once.
TEST_F(SelectStressTest, FanInFanOutLosesNoWakeUpsUnderStress) {
  const uint64_t seed = test_seed();
  run_main([seed] {
    constexpr size_t kChans = 4;
    constexpr uint64_t kProducers = 6;
    constexpr uint64_t kConsumers = 6;
    const size_t capacities[kChans] = {0, 0, 1, 8};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
    usgc_chan* chans[kChans];
    for (size_t i = 0; i < kChans; ++i) chans[i] = usgc_chan_make(sizeof(uint64_t), capacities[i]);
    usgc_chan* never = usgc_chan_make(sizeof(uint64_t), 0);
    std::atomic<uint64_t> sent_count{0}, sent_sum{0}, received_count{0}, received_sum{0}, errors{0};
    std::atomic<uint64_t> sent_by[kProducers] = {}, received_from[kProducers] = {};
    usgc_waitgroup producers = USGC_WAITGROUP_INIT, consumers = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&producers, kProducers);
    usgc_waitgroup_add(&consumers, kConsumers);
    for (uint64_t p = 0; p < kProducers; ++p) {
      go([&, p] {
        Random random(seed ^ (0x1000 + p));
        uint64_t sequence = 0;
        while (std::chrono::steady_clock::now() < deadline) {
          const uint64_t value = p << 32 | sequence;
          const uint64_t mode = random.below(8);
          if (mode == 0) {  // a plain send
            if (usgc_chan_send(chans[random.below(kChans)], &value) != 0) errors.fetch_add(1);
          } else {
            usgc_select_case cases[kChans + 1];
            size_t n = 0;
            const uint64_t subset = 1 + random.below((1u << kChans) - 1);  // non-empty
            for (size_t i = 0; i < kChans; ++i)
              if (subset & (1u << i))
                cases[n++] = send_case(chans[i], const_cast<uint64_t*>(&value));
            uint64_t unused = 0;
            cases[n++] = recv_case(random.below(2) ? never : nullptr, &unused);
            size_t chosen = 99;
            int result =
                mode == 1 ? usgc_select(cases, n, false, &chosen) : EAGAIN;  // default first
            if (result == EAGAIN) result = usgc_select(cases, n, true, &chosen);
            if (result != 0 || chosen >= n - 1) errors.fetch_add(1);
          }
          sent_by[p].fetch_add(1, std::memory_order_relaxed);
          sent_sum.fetch_add(value, std::memory_order_relaxed);
          sent_count.fetch_add(1, std::memory_order_relaxed);
          ++sequence;
        }
        usgc_waitgroup_done(&producers);
      });
    }
    for (uint64_t c = 0; c < kConsumers; ++c) {
      go([&] {
        uint64_t values[kChans] = {};
        usgc_select_case cases[kChans];
        for (size_t i = 0; i < kChans; ++i) cases[i] = recv_case(chans[i], &values[i]);
        size_t open = kChans;
        while (open > 0) {
          size_t chosen = 99;
          if (usgc_select(cases, kChans, true, &chosen) != 0 || chosen >= kChans) {
            errors.fetch_add(1);
            break;
          }
          if (!cases[chosen].received_ok) {  // closed and drained: drop the case
            cases[chosen].chan = nullptr;
            --open;
            continue;
          }
          const uint64_t value = values[chosen];
          if ((value >> 32) >= kProducers) {
            errors.fetch_add(1);
            continue;
          }
          received_from[value >> 32].fetch_add(1, std::memory_order_relaxed);
          received_sum.fetch_add(value, std::memory_order_relaxed);
          received_count.fetch_add(1, std::memory_order_relaxed);
        }
        usgc_waitgroup_done(&consumers);
      });
    }
    usgc_waitgroup_wait(&producers);
    for (auto* chan : chans) EXPECT_EQ(usgc_chan_close(chan), 0);
    usgc_waitgroup_wait(&consumers);
    const std::string note = seed_note(seed);
    EXPECT_EQ(errors.load(), 0u) << note;
    EXPECT_EQ(received_count.load(), sent_count.load()) << note;
    EXPECT_EQ(received_sum.load(), sent_sum.load()) << note;
    for (uint64_t p = 0; p < kProducers; ++p)
      EXPECT_EQ(received_from[p].load(), sent_by[p].load()) << note;
    EXPECT_GT(sent_count.load(), 0u) << note;
    while (usgc_goroutine_count() > 1) usgc_sleep_ns(1000000);
    for (auto* chan : chans) EXPECT_EQ(usgc_chan_destroy(chan), 0) << note;
    EXPECT_EQ(usgc_chan_destroy(never), 0) << note << ": a select left a waiter behind";
    printf("[          ] %llu messages, %s\n", static_cast<unsigned long long>(sent_count.load()),
           note.c_str());
  });
}

// Ping-pong between selects: each side waits on its input and on a quit channel; the side that
// sees the deadline closes quit, which must wake the other wherever it waits.
TEST_F(SelectStressTest, PingPongThroughSelectsLosesNoWakeUpsUnderStress) {
  const uint64_t seed = test_seed();
  run_main([seed] {
    constexpr int kPairs = 8;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
    std::atomic<uint64_t> bounces{0}, errors{0};
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 2 * kPairs);
    struct Pair {
      usgc_chan* to[2];
      usgc_chan* quit;
      std::atomic<bool> quit_closed{false};
    };
    Pair pairs[kPairs];
    for (auto& pair : pairs) {
      pair.to[0] = usgc_chan_make(sizeof(uint64_t), 0);
      pair.to[1] = usgc_chan_make(sizeof(uint64_t), 0);
      pair.quit = usgc_chan_make(0, 0);
    }
    for (int p = 0; p < kPairs; ++p) {
      for (int side = 0; side < 2; ++side) {
        go([&, p, side] {
          Random random(seed ^ (0x2000 + static_cast<uint64_t>(p * 2 + side)));
          Pair& pair = pairs[p];
          uint64_t expected = side == 0 ? 1 : 0;
          uint64_t out_value = 0;
          bool must_send = side == 0;
          for (;;) {
            uint64_t in_value = 0;
            usgc_select_case cases[2];
            cases[0] = must_send ? send_case(pair.to[1 - side], &out_value)
                                 : recv_case(pair.to[side], &in_value);
            cases[1] = recv_case(pair.quit, nullptr);
            if (random.below(2)) std::swap(cases[0], cases[1]);
            size_t chosen = 99;
            if (usgc_select(cases, 2, true, &chosen) != 0) {
              errors.fetch_add(1);
              break;
            }
            if (cases[chosen].chan == pair.quit) break;
            if (must_send) {
              must_send = false;
              continue;
            }
            if (in_value != expected) errors.fetch_add(1);
            bounces.fetch_add(1, std::memory_order_relaxed);
            if (std::chrono::steady_clock::now() > deadline) {
              if (!pair.quit_closed.exchange(true) && usgc_chan_close(pair.quit) != 0)
                errors.fetch_add(1);
              break;
            }
            out_value = in_value + 1;
            expected = in_value + 2;
            must_send = true;
          }
          usgc_waitgroup_done(&done);
        });
      }
    }
    usgc_waitgroup_wait(&done);
    const std::string note = seed_note(seed);
    EXPECT_EQ(errors.load(), 0u) << note;
    EXPECT_GT(bounces.load(), 0u) << note;
    while (usgc_goroutine_count() > 1) usgc_sleep_ns(1000000);
    for (auto& pair : pairs) {
      EXPECT_EQ(usgc_chan_destroy(pair.to[0]), 0) << note;
      EXPECT_EQ(usgc_chan_destroy(pair.to[1]), 0) << note;
      EXPECT_EQ(usgc_chan_destroy(pair.quit), 0) << note;
    }
  });
}

}  // namespace
