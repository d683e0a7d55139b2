// bench/blocked_handoff.cpp — how long runnable goroutines wait for a P while goroutines of
// usgc_go hold every P blocked in read(2) on a pipe (the retake of runtime/blocked_call.cpp),
// against the same blocking call bracketed by usgc_enter_native/usgc_leave_native (the P is
// given up at once: the peer, and the floor) in the same run.
//
// One trial (2 Ps by default): two goroutines block in read on a pipe (plain or bracketed); once
// both are in the call, the main thread (not attached) starts one probe goroutine and measures
// from its usgc_go to the probe's first instruction (time to get a P). Then it starts B goroutines
// that each only count themselves, and measures until all B ran (a burst behind blocked Ps). The
// pipe is then written, the blockers return (taking a P back) and end.
//
// Output:
//   RESULT suite=blocked_handoff case=first_runnable impl=plain|bracketed metric=median_us|p99_us
//   RESULT suite=blocked_handoff case=burst impl=plain|bracketed metric=median_us
//   RESULT suite=blocked_handoff case=first_runnable|burst impl=plain metric=ratio_to_bracketed
// Usage: blocked_handoff [trials] [burst]
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/bench_support.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::bench::now_ns;

constexpr int kBlockers = 2;
int g_pipe[2];
std::atomic<int> g_in_call{0}, g_blockers_done{0}, g_burst_ran{0};
std::atomic<uint64_t> g_probe_ran_ns{0};
bool g_bracketed = false;

void blocker(void*) {
  char byte = 0;
  if (g_bracketed) usgc_enter_native();
  g_in_call.fetch_add(1);
  ssize_t got = read(g_pipe[0], &byte, 1);
  if (g_bracketed) usgc_leave_native();
  if (got != 1) std::fprintf(stderr, "blocked_handoff: read returned %zd\n", got);
  g_blockers_done.fetch_add(1);
}

void probe(void*) {
  g_probe_ran_ns.store(now_ns());
}

void burst_member(void*) {
  g_burst_ran.fetch_add(1);
}

void wait_until(const std::atomic<int>& counter, int value) {
  while (counter.load() < value) usleep(50);
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1));
  return values[index];
}

struct Figures {
  double first_median_us, first_p99_us, burst_median_us;
};

Figures run(bool bracketed, int trials, int burst) {
  g_bracketed = bracketed;
  std::vector<double> first_us, burst_us;
  for (int trial = 0; trial < trials; ++trial) {
    g_in_call.store(0);
    g_blockers_done.store(0);
    g_burst_ran.store(0);
    g_probe_ran_ns.store(0);
    for (int i = 0; i < kBlockers; ++i) usgc_go(blocker, nullptr, nullptr);
    wait_until(g_in_call, kBlockers);
    usleep(100);  // both are inside read (the flag is set just before the call)
    uint64_t start = now_ns();
    usgc_go(probe, nullptr, nullptr);
    while (g_probe_ran_ns.load() == 0) usleep(20);
    first_us.push_back(static_cast<double>(g_probe_ran_ns.load() - start) / 1000.0);
    start = now_ns();
    for (int i = 0; i < burst; ++i) usgc_go(burst_member, nullptr, nullptr);
    while (g_burst_ran.load() < burst) usleep(20);
    burst_us.push_back(static_cast<double>(now_ns() - start) / 1000.0);
    char bytes[kBlockers] = {};
    if (write(g_pipe[1], bytes, kBlockers) != kBlockers) std::abort();
    wait_until(g_blockers_done, kBlockers);
    while (usgc_goroutine_count() != 0) usleep(50);
  }
  return {percentile(first_us, 0.5), percentile(first_us, 0.99), percentile(burst_us, 0.5)};
}

void result(const char* case_name, const char* impl, const char* metric, double value,
            const char* unit) {
  std::printf("RESULT suite=blocked_handoff case=%s impl=%s metric=%s value=%.3f unit=%s\n",
              case_name, impl, metric, value, unit);
}

}  // namespace

int main(int argc, char** argv) {
  int trials = argc > 1 ? std::atoi(argv[1]) : 200;
  int burst = argc > 2 ? std::atoi(argv[2]) : 1000;
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = 2;
  if (usgc_init(&config) != 0 || pipe(g_pipe) != 0) return 2;
  // Interleaved halves, so a load change on the machine hits both alike.
  Figures plain_a = run(false, trials / 2, burst);
  Figures bracketed_a = run(true, trials / 2, burst);
  Figures plain_b = run(false, trials - trials / 2, burst);
  Figures bracketed_b = run(true, trials - trials / 2, burst);
  Figures plain{(plain_a.first_median_us + plain_b.first_median_us) / 2,
                std::max(plain_a.first_p99_us, plain_b.first_p99_us),
                (plain_a.burst_median_us + plain_b.burst_median_us) / 2};
  Figures bracketed{(bracketed_a.first_median_us + bracketed_b.first_median_us) / 2,
                    std::max(bracketed_a.first_p99_us, bracketed_b.first_p99_us),
                    (bracketed_a.burst_median_us + bracketed_b.burst_median_us) / 2};
  result("first_runnable", "plain", "median_us", plain.first_median_us, "us");
  result("first_runnable", "plain", "p99_us", plain.first_p99_us, "us");
  result("first_runnable", "bracketed", "median_us", bracketed.first_median_us, "us");
  result("first_runnable", "bracketed", "p99_us", bracketed.first_p99_us, "us");
  result("burst", "plain", "median_us", plain.burst_median_us, "us");
  result("burst", "bracketed", "median_us", bracketed.burst_median_us, "us");
  result("first_runnable", "plain", "ratio_to_bracketed",
         plain.first_median_us / bracketed.first_median_us, "ratio");
  result("burst", "plain", "ratio_to_bracketed", plain.burst_median_us / bracketed.burst_median_us,
         "ratio");
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  usgc_runtime_get_stats(&stats);
  std::printf("NOTE suite=blocked_handoff worker_threads=%lu\n",
              static_cast<unsigned long>(stats.worker_threads));
  return usgc_shutdown() == 0 ? 0 : 1;
}
