// bench/safepoint_churn.hpp — the churn case of bench/safepoint.cpp (--cases churn): time to
// safepoint while goroutines are made and end, as in a real program that a collector stops.
//
// churn-<N> (impl=usgc: the default configuration, a plain thread requesting, as ttsp's swap
// mode): N goroutines parked on a wait group for the whole case (the program's population), and
// one spawner per P making waves of kWaveChildren children, each wave waited for before the next.
// A child writes a byte in each page of kChildStackTouchBytes of its stack (the pages a stack's
// decommit gives back), polling after each, sleeps kChildSleepNs and ends. A wave is larger than
// the goroutine caches (64 per P, 1 024 global: runtime/goroutine_cache.cpp), so the exits return
// stacks to the pool (runtime/goroutine_stack.cpp) and the spawns take them back: the pool's
// decommits, the decommit queue's process_madvise batches and the pool's refills all run while the
// stops come. The requester sleeps 100-200 us before each stop (as ttsp).
//
// Output: metric=p50, p99, max (us) of the time to safepoint, wake_ and arming_ of the same;
// stack_decommits_per_s (ranges the stack pool gave to the decommit queue, per second of the
// case), decommit_batches_per_s (the queue's process_madvise calls, the allocator's included) and
// children_per_s; NOTE lines: stops during which a batch was sent (all, and over 50 us), the
// attribution of the last P (who was last and what it was doing), as ttsp's, and the run-queue
// wait of the last P's thread in the slow stops (RunQueueWait, bench/safepoint_report.hpp).
#pragma once

#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "bench/safepoint_report.hpp"
#include "kernel_iface/decommit_queue.hpp"
#include "runtime/goroutine_stack.hpp"
#include "safepoint/stop_the_world.hpp"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::bench::safepoint_churn {

using namespace usgc::bench::safepoint_report;

inline constexpr uint32_t kWaveChildren = 4096;
inline constexpr size_t kChildStackTouchBytes = 24 * 1024;
inline constexpr uint64_t kChildSleepNs = 1000 * 1000;

struct Churn {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> children{0};  // children ended (relaxed: a statistic)
  std::atomic<int> spawn_error{0};
  usgc_waitgroup population_release = USGC_WAITGROUP_INIT;  // the parked N wait on it
  usgc_waitgroup spawners_done = USGC_WAITGROUP_INIT;
};

inline Churn g_churn;  // the goroutines reach it until they all ended

inline void churn_child(void* argument) {
  uint8_t frame[kChildStackTouchBytes];
  for (size_t i = 0; i < kChildStackTouchBytes; i += 4096) {
    frame[i] = static_cast<uint8_t>(i);
    usgc_safepoint_poll();  // a loop's back edge, as compiled code polls there
  }
  asm volatile("" : : "r"(frame) : "memory");  // the stores stay: they are the point
  // Alive at once: the whole wave's stacks come back together (without the sleep, the spawn's
  // back-pressure runs the children as they come and most reuse a cached record).
  usgc_sleep_ns(kChildSleepNs);
  g_churn.children.fetch_add(1, std::memory_order_relaxed);
  usgc_waitgroup_done(static_cast<usgc_waitgroup*>(argument));
}

inline void churn_parked(void* argument) {
  usgc_waitgroup_wait(&static_cast<Churn*>(argument)->population_release);
}

inline void churn_spawner(void* argument) {
  auto* churn = static_cast<Churn*>(argument);
  while (!churn->stop.load(std::memory_order_relaxed)) {
    usgc_waitgroup wave = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&wave, kWaveChildren);
    for (uint32_t i = 0; i < kWaveChildren; ++i) {
      usgc_safepoint_poll();  // the spawn loop's back edge
      const int error = usgc_go(churn_child, &wave, nullptr);
      if (error != 0) {
        churn->spawn_error.store(error, std::memory_order_relaxed);
        usgc_waitgroup_done(&wave);
      }
    }
    usgc_waitgroup_wait(&wave);
  }
  usgc_waitgroup_done(&churn->spawners_done);
}

inline void goroutine_churn(uint32_t population, int stops) {
  const std::string name_text = "churn-" + std::to_string(population);
  const char* name = name_text.c_str();
  const char* impl = "usgc";
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  check(usgc_runtime_get_stats(&stats), name, "usgc_runtime_get_stats");
  Churn& churn = g_churn;
  churn.stop.store(false, std::memory_order_relaxed);
  churn.children.store(0, std::memory_order_relaxed);
  churn.population_release = USGC_WAITGROUP_INIT;
  churn.spawners_done = USGC_WAITGROUP_INIT;
  check(usgc_waitgroup_add(&churn.population_release, 1), name, "usgc_waitgroup_add");
  for (uint32_t i = 0; i < population; ++i)
    check(usgc_go(churn_parked, &churn, nullptr), name, "usgc_go");
  check(usgc_waitgroup_add(&churn.spawners_done, stats.procs), name, "usgc_waitgroup_add");
  for (uint32_t i = 0; i < stats.procs; ++i)
    check(usgc_go(churn_spawner, &churn, nullptr), name, "usgc_go");
  // The first two waves: the caches and the pool reach their steady state.
  const uint64_t warm_until_ns = now_ns() + 30000000000ull;
  while (churn.children.load(std::memory_order_relaxed) < 2 * stats.procs * kWaveChildren &&
         now_ns() < warm_until_ns)
    sleep_ns(1000000);

  usgc::safepoint::set_stop_trace_enabled(true);
  std::vector<uint64_t> ttsp_ns, wake_ns, arming_ns;
  Attribution attribution;
  RunQueueWait run_queue_wait;
  uint64_t with_batch = 0, slow_with_batch = 0;
  kernel::DecommitQueue& queue = kernel::DecommitQueue::process();
  const uint64_t decommits_before = runtime::stack_pool_counters().decommits;
  const uint64_t batches_before = queue.counters().batch_calls;
  const uint64_t children_before = churn.children.load(std::memory_order_relaxed);
  const uint64_t start_ns = now_ns();
  const uint64_t deadline_ns = start_ns + g_case_budget_ns;
  for (int i = 0; i < stops && now_ns() < deadline_ns; ++i) {
    sleep_ns(100000 + next_random() % 100000);
    usgc_stop_info info{};
    run_queue_wait.before();
    const uint64_t batches_at_request = queue.counters().batch_calls;
    check(usgc_stop_the_world(&info), name, "usgc_stop_the_world");
    const bool batch = queue.counters().batch_calls != batches_at_request;
    check(usgc_start_the_world(), name, "usgc_start_the_world");
    with_batch += batch;
    slow_with_batch += batch && info.time_to_safepoint_ns > usgc::safepoint::kSlowStopNs;
    ttsp_ns.push_back(info.time_to_safepoint_ns);
    wake_ns.push_back(info.requester_wake_ns);
    arming_ns.push_back(usgc::safepoint::stop_breakdown_last().arming_ns);
    attribution.add(usgc::safepoint::stop_attribution_last());
    attribution.set_last_run_queue_wait(
        run_queue_wait.after(usgc::safepoint::stop_attribution_last()));
  }
  const double seconds = static_cast<double>(now_ns() - start_ns) * 1e-9;
  const uint64_t decommits = runtime::stack_pool_counters().decommits - decommits_before;
  const uint64_t batches = queue.counters().batch_calls - batches_before;
  const uint64_t children = churn.children.load(std::memory_order_relaxed) - children_before;
  usgc::safepoint::set_stop_trace_enabled(false);

  churn.stop.store(true, std::memory_order_relaxed);
  check(usgc_waitgroup_wait(&churn.spawners_done), name, "usgc_waitgroup_wait");
  check(usgc_waitgroup_done(&churn.population_release), name, "usgc_waitgroup_done");
  const uint64_t until_ns = now_ns() + 60000000000ull;
  while (usgc_goroutine_count() != 0 && now_ns() < until_ns) sleep_ns(1000000);
  if (usgc_goroutine_count() != 0) fail(name, "ending the goroutines within 60 s", ETIMEDOUT);
  if (churn.spawn_error.load(std::memory_order_relaxed) != 0)
    fail(name, "usgc_go in a wave", churn.spawn_error.load(std::memory_order_relaxed));

  latency_results(name, impl, ttsp_ns);
  latency_results(name, impl, wake_ns, "wake_");
  latency_results(name, impl, arming_ns, "arming_");
  result(name, impl, "stack_decommits_per_s", static_cast<double>(decommits) / seconds, "per_s");
  result(name, impl, "decommit_batches_per_s", static_cast<double>(batches) / seconds, "per_s");
  result(name, impl, "children_per_s", static_cast<double>(children) / seconds, "per_s");
  std::printf(
      "NOTE suite=safepoint case=%s impl=%s stops=%zu seconds=%.2f procs=%u wave=%u "
      "stops_during_a_batch=%" PRIu64 " slow_stops_during_a_batch=%" PRIu64 "\n",
      name, impl, ttsp_ns.size(), seconds, stats.procs, kWaveChildren, with_batch, slow_with_batch);
  attribution.print(name, impl);
  run_queue_wait.print(name, impl);
}

}  // namespace usgc::bench::safepoint_churn
