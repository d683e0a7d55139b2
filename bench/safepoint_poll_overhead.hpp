// bench/safepoint_poll_overhead.hpp — the poll-overhead cases of bench/safepoint.cpp (--cases
// poll): what a poll costs a loop-heavy kernel when no stop is requested.
//
// poll-overhead-array, poll-overhead-dependent (run inside a goroutine, preemption off): the same
// kernel with impl=none (no poll), barrier (the poll's compiler barrier alone), poll, barrier64 and
// poll64 (every 64 iterations), flag (usgc_safepoint_poll_flag). Invariants the figures rest on:
// every variant computes the same checksum (else ERROR, and no figure for it); variants run in
// rotating order and medians are compared; times are the goroutine's thread CPU time, valid only
// because the goroutine never leaves its worker thread (checked: ERROR and exit otherwise).
#pragma once

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <vector>

#include "bench/bench_support.hpp"
#include "bench/safepoint_report.hpp"
#include "usgc/safepoint.h"

namespace usgc::bench::safepoint_poll_overhead {

using usgc::bench::median;
using namespace usgc::bench::safepoint_report;

inline uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

enum class PollKind { kNone, kBarrier, kPoll, kBarrier64, kPoll64, kFlag };
inline constexpr PollKind kPollKinds[] = {PollKind::kNone,   PollKind::kBarrier,
                                          PollKind::kPoll,   PollKind::kBarrier64,
                                          PollKind::kPoll64, PollKind::kFlag};
inline const char* poll_kind_name(PollKind kind) {
  switch (kind) {
    case PollKind::kNone:
      return "none";
    case PollKind::kBarrier:
      return "barrier";
    case PollKind::kPoll:
      return "poll";
    case PollKind::kBarrier64:
      return "barrier64";
    case PollKind::kPoll64:
      return "poll64";
    case PollKind::kFlag:
      return "flag";
  }
  return "?";
}
constexpr bool every_64(PollKind kind) {
  return kind == PollKind::kBarrier64 || kind == PollKind::kPoll64;
}

template <PollKind kKind>
inline __attribute__((always_inline)) void poll_point() {
  if constexpr (kKind == PollKind::kBarrier || kKind == PollKind::kBarrier64) {
    asm volatile("" ::: "memory");
  } else if constexpr (kKind == PollKind::kPoll || kKind == PollKind::kPoll64) {
    usgc_safepoint_poll();
  } else if constexpr (kKind == PollKind::kFlag) {
    usgc_safepoint_poll_flag();
  }
}

template <PollKind kKind>
__attribute__((noinline)) uint64_t array_kernel(uint32_t* a, size_t n, uint32_t passes) {
  uint64_t sum = 0;
  for (uint32_t pass = 0; pass < passes; ++pass) {
    if constexpr (every_64(kKind)) {
      for (size_t base = 0; base < n; base += 64) {
        size_t end = std::min(base + 64, n);
        for (size_t i = base; i < end; ++i) {
          uint32_t v = a[i] * 2654435761u + pass;
          a[i] = v;
          sum += v >> 3;
        }
        poll_point<kKind>();
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        uint32_t v = a[i] * 2654435761u + pass;
        a[i] = v;
        sum += v >> 3;
        poll_point<kKind>();
      }
    }
  }
  return sum;
}

template <PollKind kKind>
__attribute__((noinline)) uint64_t dependent_kernel(uint64_t steps) {
  uint64_t x = 88172645463325252ull;
  if constexpr (every_64(kKind)) {
    for (uint64_t base = 0; base < steps; base += 64) {
      uint64_t end = std::min(base + 64, steps);
      for (uint64_t i = base; i < end; ++i) x = (x * 6364136223846793005ull + i) ^ (x >> 29);
      poll_point<kKind>();
    }
  } else {
    for (uint64_t i = 0; i < steps; ++i) {
      x = (x * 6364136223846793005ull + i) ^ (x >> 29);
      poll_point<kKind>();
    }
  }
  return x;
}

template <PollKind kKind>
inline uint64_t run_kernel(bool array, std::vector<uint32_t>& data, uint32_t passes,
                           uint64_t steps) {
  if (array) {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint32_t>(i);
    return array_kernel<kKind>(data.data(), data.size(), passes);
  }
  return dependent_kernel<kKind>(steps);
}

inline uint64_t run_kernel(PollKind kind, bool array, std::vector<uint32_t>& data, uint32_t passes,
                           uint64_t steps) {
  switch (kind) {
    case PollKind::kNone:
      return run_kernel<PollKind::kNone>(array, data, passes, steps);
    case PollKind::kBarrier:
      return run_kernel<PollKind::kBarrier>(array, data, passes, steps);
    case PollKind::kPoll:
      return run_kernel<PollKind::kPoll>(array, data, passes, steps);
    case PollKind::kBarrier64:
      return run_kernel<PollKind::kBarrier64>(array, data, passes, steps);
    case PollKind::kPoll64:
      return run_kernel<PollKind::kPoll64>(array, data, passes, steps);
    case PollKind::kFlag:
      return run_kernel<PollKind::kFlag>(array, data, passes, steps);
  }
  return 0;
}

struct PollJob {
  double scale = 1.0;
  int rounds = 7;
};

inline void poll_overhead_main(void* argument) {
  const auto* job = static_cast<const PollJob*>(argument);
  const size_t elements = 1u << 20;
  const uint32_t passes = std::max<uint32_t>(1, static_cast<uint32_t>(200 * job->scale));
  const uint64_t steps = std::max<uint64_t>(1000, static_cast<uint64_t>(100e6 * job->scale));
  std::vector<uint32_t> data(elements);
  for (bool array : {true, false}) {
    const char* name = array ? "poll-overhead-array" : "poll-overhead-dependent";
    const double iterations =
        array ? static_cast<double>(elements) * passes : static_cast<double>(steps);
    constexpr size_t kKinds = std::size(kPollKinds);
    std::vector<double> seconds[kKinds];
    uint64_t checksum[kKinds] = {};
    run_kernel(PollKind::kNone, array, data, std::max<uint32_t>(1, passes / 10),
               steps / 10);  // warm-up
    for (int round = 0; round < job->rounds; ++round) {
      for (size_t k = 0; k < kKinds; ++k) {
        size_t which = (k + static_cast<size_t>(round)) % kKinds;  // rotating order
        // The goroutine's thread CPU time: other processes on the machine disturb it less than
        // wall time. Valid because the goroutine stays on its worker thread (preemption is off
        // and nothing parks it), which is checked.
        pthread_t thread = pthread_self();
        uint64_t start = thread_cpu_ns();
        checksum[which] = run_kernel(kPollKinds[which], array, data, passes, steps);
        seconds[which].push_back(static_cast<double>(thread_cpu_ns() - start) * 1e-9);
        if (!pthread_equal(thread, pthread_self())) {
          std::printf(
              "ERROR suite=safepoint case=%s reason=\"the goroutine moved to another thread during "
              "a measurement\"\n",
              name);
          std::fflush(stdout);
          std::exit(1);
        }
      }
    }
    double median_s[kKinds];
    for (size_t k = 0; k < kKinds; ++k) median_s[k] = median(seconds[k]);
    for (size_t k = 0; k < kKinds; ++k) {
      const char* impl = poll_kind_name(kPollKinds[k]);
      if (checksum[k] != checksum[0]) {
        std::printf("ERROR suite=safepoint case=%s impl=%s reason=\"checksum %" PRIx64
                    " differs from no-poll's %" PRIx64 "\"\n",
                    name, impl, checksum[k], checksum[0]);
        ++g_errors;
        continue;
      }
      result(name, impl, "ns_per_iteration", median_s[k] * 1e9 / iterations, "ns");
      if (kPollKinds[k] == PollKind::kNone) continue;
      result(name, impl, "overhead_percent", 100.0 * (median_s[k] / median_s[0] - 1.0), "percent");
      bool is_poll = kPollKinds[k] == PollKind::kPoll || kPollKinds[k] == PollKind::kPoll64 ||
                     kPollKinds[k] == PollKind::kFlag;
      if (is_poll) {
        double barrier = median_s[kPollKinds[k] == PollKind::kPoll64 ? 3 : 1];
        result(name, impl, "overhead_vs_barrier_percent", 100.0 * (median_s[k] / barrier - 1.0),
               "percent");
      }
    }
    // The spread, so that a reader can tell a 1 % difference from noise.
    double worst = 0;
    for (size_t k = 0; k < kKinds; ++k) {
      auto [lo, hi] = std::minmax_element(seconds[k].begin(), seconds[k].end());
      worst = std::max(worst, (*hi - *lo) / median_s[k]);
    }
    std::printf(
        "NOTE suite=safepoint case=%s rounds=%d largest_spread=\"%.1f%% ((max - min) / median over "
        "the rounds, worst variant)\"\n",
        name, job->rounds, 100.0 * worst);
  }
}

}  // namespace usgc::bench::safepoint_poll_overhead
