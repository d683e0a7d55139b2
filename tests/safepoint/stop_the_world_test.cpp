// tests/safepoint/stop_the_world_test.cpp — the safepoint protocol end to end, on the real
// scheduler: stop-the-world with goroutines spinning (page polls and flag polls), sleeping and
// blocked in native calls; handshakes; concurrent requesters; requests from a goroutine;
// leaving native while the world is stopped; both arming modes; a stop's work with 10 000
// parked goroutines.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "kernel_iface/clock.hpp"
#include "safepoint/stop_the_world.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::testing {
namespace {

using StopTheWorld = RuntimeTest;

struct Workload {
  static constexpr int kSpinners = 4;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> spins[kSpinners] = {};
  std::atomic<uint64_t> sleeps{0};
  std::atomic<uint64_t> natives{0};
  std::atomic<int> started{0};

  // The goroutines reference this object: it outlives them.
  ~Workload() {
    stop = true;
    EXPECT_TRUE(all_goroutines_finished());
  }

  uint64_t mutator_sum() const {
    uint64_t sum = sleeps.load();
    for (const auto& s : spins) sum += s.load();
    return sum;
  }

  // Spinners poll (half page polls, half flag polls), sleepers sleep, natives block in native.
  void start(bool with_natives = true) {
    for (int i = 0; i < kSpinners; ++i) {
      go([this, i] {
        started.fetch_add(1);
        while (!stop.load(std::memory_order_relaxed)) {
          spins[i].fetch_add(1, std::memory_order_relaxed);
          if (i % 2 == 0) {
            usgc_safepoint_poll();
          } else {
            usgc_safepoint_poll_flag();
          }
        }
      });
    }
    for (int i = 0; i < 8; ++i) {
      go([this] {
        started.fetch_add(1);
        while (!stop.load()) {
          usgc_sleep_ns(200'000);
          sleeps.fetch_add(1);
        }
      });
    }
    if (with_natives) {
      for (int i = 0; i < 2; ++i) {
        go([this] {
          started.fetch_add(1);
          while (!stop.load()) {
            usgc_enter_native();
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            natives.fetch_add(1);
            usgc_leave_native();
          }
        });
      }
    }
  }
};

TEST_F(StopTheWorld, StoppedWorldRunsNoMutator) {
  Workload work;
  work.start();
  ASSERT_TRUE(eventually([&] { return work.started.load() == Workload::kSpinners + 10; }));
  constexpr int kStops = 300;
  int moved_while_stopped = 0;
  for (int i = 0; i < kStops; ++i) {
    usgc_stop_info info{};
    ASSERT_EQ(usgc_stop_the_world(&info), 0);
    EXPECT_EQ(info.procs, 2u);
    uint64_t before = work.mutator_sum();
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    if (work.mutator_sum() != before) ++moved_while_stopped;
    ASSERT_EQ(usgc_start_the_world(), 0);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  EXPECT_EQ(moved_while_stopped, 0);
  EXPECT_GT(work.natives.load(), 0u);
  work.stop = true;
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  ASSERT_EQ(usgc_runtime_get_stats(&stats), 0);
  EXPECT_GE(stats.stops, static_cast<uint64_t>(kStops));
  uint64_t histogram_total = 0;
  for (uint64_t count : stats.time_to_safepoint_histogram) histogram_total += count;
  EXPECT_EQ(histogram_total, stats.stops);
  EXPECT_GT(stats.time_to_safepoint_max_ns, 0u);
}

TEST_F(StopTheWorld, WorldResumesAndMutatorsProgressAfterEachStop) {
  Workload work;
  work.start(false);
  ASSERT_TRUE(eventually([&] { return work.started.load() == Workload::kSpinners + 8; }));
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
    uint64_t at_stop = work.mutator_sum();
    ASSERT_EQ(usgc_start_the_world(), 0);
    ASSERT_TRUE(eventually([&] { return work.mutator_sum() > at_stop; }))
        << "no progress after stop " << i;
  }
  work.stop = true;
}

TEST_F(StopTheWorld, StartWithoutStopIsEpermAndNestedStopIsEdeadlk) {
  EXPECT_EQ(usgc_start_the_world(), EPERM);
  ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
  EXPECT_EQ(usgc_stop_the_world(nullptr), EDEADLK);
  EXPECT_EQ(usgc_handshake(0, nullptr, nullptr, nullptr), EDEADLK);
  EXPECT_EQ(usgc_start_the_world(), 0);
  EXPECT_EQ(usgc_handshake(7, nullptr, nullptr, nullptr), EINVAL);
}

TEST_F(StopTheWorld, ConcurrentRequestersAreServedOneAtATime) {
  Workload work;
  work.start();
  std::atomic<int> holders{0};
  std::atomic<int> overlaps{0};
  auto requester = [&] {
    for (int i = 0; i < 200; ++i) {
      ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
      if (holders.fetch_add(1) != 0) overlaps.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      holders.fetch_sub(1);
      ASSERT_EQ(usgc_start_the_world(), 0);
    }
  };
  std::thread a(requester);
  std::thread b(requester);
  a.join();
  b.join();
  EXPECT_EQ(overlaps.load(), 0);
  work.stop = true;
}

TEST_F(StopTheWorld, GoroutineCanStopTheWorld) {
  Workload work;
  work.start(false);
  std::atomic<int> clean_stops{0};
  run_main([&] {
    for (int i = 0; i < 100; ++i) {
      ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
      uint64_t before = work.mutator_sum();
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      if (work.mutator_sum() == before) clean_stops.fetch_add(1);
      ASSERT_EQ(usgc_start_the_world(), 0);
      usgc_safepoint_poll();
    }
  });
  EXPECT_EQ(clean_stops.load(), 100);
  work.stop = true;
}

TEST_F(StopTheWorld, LeavingNativeWaitsWhileTheWorldIsStopped) {
  std::atomic<bool> in_native{false};
  std::atomic<bool> left_native{false};
  std::atomic<bool> may_leave{false};
  go([&] {
    usgc_enter_native();
    in_native = true;
    while (!may_leave.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    usgc_leave_native();
    left_native = true;
  });
  ASSERT_TRUE(eventually([&] { return in_native.load(); }));
  ASSERT_EQ(usgc_stop_the_world(nullptr), 0);  // does not wait for the goroutine in native
  may_leave = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(left_native.load()) << "a goroutine left native while the world was stopped";
  ASSERT_EQ(usgc_start_the_world(), 0);
  EXPECT_TRUE(eventually([&] { return left_native.load(); }));
  ASSERT_TRUE(all_goroutines_finished());
}

TEST_F(StopTheWorld, HandshakeStopsOnlyItsProcessor) {
  usgc_shutdown();
  usgc_config config = runtime_config(2);
  config.preempt_after_us = 0;  // keep each spinner on its P
  ASSERT_EQ(usgc_init(&config), 0);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> spins[2] = {};
  std::atomic<int> started{0};
  for (int i = 0; i < 2; ++i) {
    go([&, i] {
      started.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed)) {
        spins[i].fetch_add(1, std::memory_order_relaxed);
        usgc_safepoint_poll();
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return started.load() == 2; }));
  int one_stopped_one_running = 0;
  constexpr int kHandshakes = 100;
  for (int i = 0; i < kHandshakes; ++i) {
    struct Probe {
      std::atomic<uint64_t>* spins;
      bool exactly_one_moved;
      bool both_moved;
    } probe{spins, false, false};
    usgc_stop_info info{};
    ASSERT_EQ(usgc_handshake(
                  static_cast<uint32_t>(i % 2),
                  [](uint32_t, void* argument) {
                    auto* p = static_cast<Probe*>(argument);
                    uint64_t a = p->spins[0].load(), b = p->spins[1].load();
                    // Until the running spinner moves (the OS may deschedule it for a while on
                    // a loaded machine), then a little longer for the stopped one to show
                    // itself if it were running.
                    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
                    while (p->spins[0].load() == a && p->spins[1].load() == b &&
                           std::chrono::steady_clock::now() < give_up)
                      std::this_thread::sleep_for(std::chrono::microseconds(100));
                    std::this_thread::sleep_for(std::chrono::microseconds(500));
                    bool a_moved = p->spins[0].load() != a, b_moved = p->spins[1].load() != b;
                    p->exactly_one_moved = a_moved != b_moved;
                    p->both_moved = a_moved && b_moved;
                  },
                  &probe, &info),
              0);
    EXPECT_EQ(info.procs, 1u);
    one_stopped_one_running += probe.exactly_one_moved;
    EXPECT_FALSE(probe.both_moved) << "handshake " << i << ": the stopped P's goroutine ran";
  }
  stop = true;
  ASSERT_TRUE(all_goroutines_finished());
  // Each probe waits (up to 2 s) for the running spinner to move; the stopped one never moves.
  EXPECT_GE(one_stopped_one_running, kHandshakes * 9 / 10);
}

// Both arming modes stop every running P (swap, the default, points each holder's poll at its
// P's bad page; mprotect protects the one global page), and the world moves again after each.
TEST_F(StopTheWorld, BothArmingModesStopEveryRunningMutator) {
  const char* chosen = std::getenv("USGC_SAFEPOINT_ARMING");
  if (chosen == nullptr || chosen[0] == '\0') {
    EXPECT_EQ(safepoint::safepoint_arming(), safepoint::SafepointArming::kSwapPollPointers)
        << "swap is the default arming (USGC_SAFEPOINT_ARMING unset)";
  }
  const safepoint::SafepointArming configured = safepoint::safepoint_arming();
  Workload work;
  work.start(false);
  ASSERT_TRUE(eventually([&] { return work.started.load() == Workload::kSpinners + 8; }));
  for (safepoint::SafepointArming arming : {safepoint::SafepointArming::kProtectGlobalPage,
                                            safepoint::SafepointArming::kSwapPollPointers}) {
    safepoint::set_safepoint_arming(arming);
    int moved_while_stopped = 0;
    for (int i = 0; i < 40; ++i) {
      usgc_stop_info info{};
      ASSERT_EQ(usgc_stop_the_world(&info), 0);
      uint64_t before = work.mutator_sum();
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      if (work.mutator_sum() != before) ++moved_while_stopped;
      ASSERT_EQ(usgc_start_the_world(), 0);
      ASSERT_TRUE(eventually([&] { return work.mutator_sum() > before; }))
          << "no progress after stop " << i;
    }
    EXPECT_EQ(moved_while_stopped, 0)
        << (arming == safepoint::SafepointArming::kSwapPollPointers ? "swap" : "mprotect");
  }
  safepoint::set_safepoint_arming(configured);
  work.stop = true;
}

struct ParkedCrowd {
  usgc_chan* gate = nullptr;
  std::atomic<uint64_t> parked{0};
};

void park_on_gate(void* argument) {
  auto* crowd = static_cast<ParkedCrowd*>(argument);
  crowd->parked.fetch_add(1, std::memory_order_relaxed);
  int value = 0;
  bool ok = true;
  usgc_chan_recv(crowd->gate, &value, &ok);  // parks until the gate closes
}

// One stop and start; the slot records the two went through, and what the stop reported.
uint64_t slot_visits_of_one_stop(usgc_stop_info* info, uint64_t* switches_while_stopped) {
  usgc_runtime_stats before{}, after{};
  before.version = after.version = USGC_RUNTIME_STATS_VERSION;
  uint64_t visits = safepoint::safepoint_statistics().slot_visits;
  EXPECT_EQ(usgc_stop_the_world(info), 0);
  EXPECT_EQ(usgc_runtime_get_stats(&before), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(usgc_runtime_get_stats(&after), 0);
  EXPECT_EQ(usgc_start_the_world(), 0);
  *switches_while_stopped = after.context_switches - before.context_switches;
  return safepoint::safepoint_statistics().slot_visits - visits;
}

// Only Ps take part in a stop: with 10 000 goroutines parked, a stop completes, visits exactly
// the slot records it visits with none (a fixed multiple of the Ps: nothing iterates goroutines),
// finds no P running (idle Ps are claimed by a compare-and-swap, with no round trip to a thread)
// and switches no goroutine. Counts, not times.
TEST_F(StopTheWorld, StopWithTenThousandParkedGoroutinesVisitsOnlyTheProcessors) {
  usgc_stop_info info{};
  uint64_t switches = 0;
  uint64_t visits_with_none = 0;
  ASSERT_TRUE(eventually([&] {
    visits_with_none = slot_visits_of_one_stop(&info, &switches);
    return info.procs_running == 0;
  })) << "the Ps never went idle";
  EXPECT_EQ(info.procs, 2u);
  EXPECT_GT(visits_with_none, 0u);
  EXPECT_LE(visits_with_none, 8u * info.procs);

  // ThreadSanitizer makes each goroutine a fiber and allows 8128 threads and fibers in all: its
  // builds park 1 000 (the visits must still not grow with them).
#if defined(__SANITIZE_THREAD__)
  constexpr uint64_t kParked = 1000;
#else
  constexpr uint64_t kParked = 10000;
#endif
  ParkedCrowd crowd;
  crowd.gate = usgc_chan_make(sizeof(int), 0);
  ASSERT_NE(crowd.gate, nullptr);
  for (uint64_t i = 0; i < kParked; ++i) ASSERT_EQ(usgc_go(park_on_gate, &crowd, nullptr), 0);
  ASSERT_TRUE(eventually([&] { return crowd.parked.load() == kParked; }, std::chrono::seconds(60)))
      << crowd.parked.load() << " of " << kParked << " goroutines ran";
  uint64_t visits_with_parked = 0;
  ASSERT_TRUE(eventually([&] {
    visits_with_parked = slot_visits_of_one_stop(&info, &switches);
    return info.procs_running == 0;
  })) << "the Ps never went idle with the goroutines parked";
  EXPECT_EQ(usgc_goroutine_count(), kParked);
  EXPECT_EQ(info.procs, 2u);
  EXPECT_EQ(visits_with_parked, visits_with_none);
  EXPECT_EQ(switches, 0u) << "a goroutine ran while the world was stopped";

  ASSERT_EQ(usgc_chan_close(crowd.gate), 0);
  ASSERT_TRUE(all_goroutines_finished());
  usgc_chan_destroy(crowd.gate);
}

}  // namespace
}  // namespace usgc::testing

namespace usgc::testing {
namespace {

// Sixteen integer and eight floating-point values live across every poll: the compiler keeps
// them in registers (the poll's asm clobbers memory and flags only), so a safepoint or a
// migration that lost a register changes the result. The register-by-register proof is
// tests/safepoint/trampoline_register_test.cpp; this is the same property end to end, through
// the real scheduler, real stops, preemption and goroutines moving between threads.
struct Mix {
  uint64_t integers;
  double floats;
};

[[gnu::noinline]] Mix mix_with_polls(uint64_t iterations, uint64_t seed) {
  uint64_t a = seed, b = seed * 3 + 1, c = seed ^ 0x55, d = seed + 7, e = 11, f = 13, g = 17,
           h = 19;
  uint64_t i1 = 23, i2 = 29, i3 = 31, i4 = 37, i5 = 41, i6 = 43, i7 = 47, i8 = 53;
  double x = 1.0 + static_cast<double>(seed % 7), y = 0.5, z = 0.25, w = 2.0, u = 1.5, v = 0.75,
         s = 3.0, t = 0.125;
  for (uint64_t n = 0; n < iterations; ++n) {
    a = a * 6364136223846793005ull + b;
    b ^= a >> 13;
    c += b * 3;
    d ^= c << 7;
    e += d >> 3;
    f ^= e * 5;
    g += f >> 11;
    h ^= g * 9;
    i1 += h >> 5;
    i2 ^= i1 * 7;
    i3 += i2 >> 9;
    i4 ^= i3 * 3;
    i5 += i4 >> 1;
    i6 ^= i5 * 11;
    i7 += i6 >> 2;
    i8 ^= i7 * 13;
    x = x * 0.999 + y;
    y = y * 0.998 + z;
    z = z * 0.997 + w * 0.001;
    w = w * 0.996 + u * 0.002;
    u = u * 0.995 + v * 0.003;
    v = v * 0.994 + s * 0.004;
    s = s * 0.993 + t * 0.005;
    t = t * 0.992 + x * 0.006;
    usgc_safepoint_poll();
  }
  return {a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ i1 ^ i2 ^ i3 ^ i4 ^ i5 ^ i6 ^ i7 ^ i8,
          x + y + z + w + u + v + s + t};
}

TEST(StopTheWorldRegisters, LiveRegistersSurviveStopsPreemptionAndMigration) {
  usgc_config config = runtime_config(2);
  config.preempt_after_us = 300;  // four goroutines on two Ps: they move between threads
  ASSERT_EQ(usgc_init(&config), 0);
  constexpr int kGoroutines = 4;
  constexpr int kStops = 300;
  constexpr uint64_t kIterations = 200'000;  // per round; each goroutine runs rounds until told
  Mix reference[kGoroutines];
  for (int i = 0; i < kGoroutines; ++i)
    reference[i] = mix_with_polls(kIterations, i + 1);  // no goroutine: polls are no-ops
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> rounds{0};
  std::atomic<uint64_t> wrong_rounds{0};
  for (int i = 0; i < kGoroutines; ++i) {
    go([&, i] {
      while (!stop.load()) {
        Mix mix = mix_with_polls(kIterations, i + 1);
        // Same operations in the same order: bit-equal, floats included.
        if (mix.integers != reference[i].integers || mix.floats != reference[i].floats)
          wrong_rounds.fetch_add(1);
        rounds.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < kStops; ++i) {
    ASSERT_EQ(usgc_stop_the_world(nullptr), 0);
    ASSERT_EQ(usgc_start_the_world(), 0);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  stop = true;
  EXPECT_TRUE(all_goroutines_finished());
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  ASSERT_EQ(usgc_runtime_get_stats(&stats), 0);
  EXPECT_EQ(usgc_shutdown(), 0);
  EXPECT_EQ(wrong_rounds.load(), 0u) << "of " << rounds.load() << " rounds";
  EXPECT_GT(rounds.load(), static_cast<uint64_t>(kGoroutines));
  std::printf("%d stops, %lu preemptions, %lu rounds of %lu polls\n", kStops,
              static_cast<unsigned long>(stats.preemptions),
              static_cast<unsigned long>(rounds.load()), static_cast<unsigned long>(kIterations));
}

}  // namespace
}  // namespace usgc::testing
