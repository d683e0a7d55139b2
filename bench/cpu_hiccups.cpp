// cpu_hiccups: the floor under every pause measured on this machine — how often a thread that
// does nothing but read the clock loses the CPU for more than a threshold, and whether the kernel
// knows why (jHiccup's idea, with the kernel's account of the thread).
//
// One thread spins for --seconds reading CLOCK_MONOTONIC. Each time two consecutive readings are
// more than --threshold-ms apart it reads the thread's kernel account
// (kernel_iface/thread_usage.hpp) and sorts the gap:
//   waited   the thread was switched out or waited on the run queue (run-queue wait of at least
//            half the gap, or an involuntary switch): other threads had the CPU, or, at
//            SCHED_FIFO, the kernel's share for fair tasks (the real-time throttle or the fair
//            server: up to 50 ms per second by default) preempted it;
//   unseen   neither: the time was charged to the thread as CPU time, yet the thread made no
//            progress — the virtual CPU did not run (a hypervisor that reports no steal time)
//            or interrupts ran on it.
// A collector's pause measured in the same conditions includes such gaps whenever one falls
// inside it, whatever the collector does; USGC_TRACE=gc prints the same account for every
// private pause.
//
// Output:
//   RESULT suite=cpu_hiccups case=<policy>-<seconds>s impl=spin metric=gaps_over_threshold ...
//   RESULT ... metric=gaps_waited / gaps_unseen (count), worst_waited_ms / worst_unseen_ms (ms)
//   RESULT ... metric=unseen_over_1ms / unseen_over_2ms (count), unseen_total_ms (ms: the unseen
//              gaps summed), unseen_per_s (unseen gaps per second of the run)
// The unseen gaps are what a pause of the same thread absorbs: a pause that takes a fraction f of
// a run meets about f * unseen_per_s * seconds of them (gc/pause_probe.hpp finds them in pauses).
// where <policy> is fifo when the process runs at SCHED_FIFO (chrt -f), else other.
// There is no peer: the program is the machine's own baseline, run beside the benchmarks.
//
// Usage: cpu_hiccups [--seconds S] [--threshold-ms T]
#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/bench_support.hpp"
#include "kernel_iface/thread_usage.hpp"

namespace {

using usgc::bench::now_ns;
using usgc::kernel::read_thread_usage;
using usgc::kernel::ThreadUsage;

ThreadUsage usage_now() {
  usgc::kernel::Result<ThreadUsage> usage = read_thread_usage();
  if (!usage.ok()) {
    std::fprintf(stderr, "cpu_hiccups: read_thread_usage failed: %s\n",
                 std::strerror(usage.error()));
    std::exit(1);
  }
  return usage.value();
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 4;
  double threshold_ms = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--threshold-ms") == 0 && i + 1 < argc) {
      threshold_ms = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: cpu_hiccups [--seconds S] [--threshold-ms T]\n");
      return 2;
    }
  }
  if (!(seconds > 0) || !(threshold_ms > 0)) {
    std::fprintf(stderr, "cpu_hiccups: --seconds and --threshold-ms must be positive\n");
    return 2;
  }
  const char* policy = sched_getscheduler(0) == SCHED_FIFO ? "fifo" : "other";
  const uint64_t threshold_ns = static_cast<uint64_t>(threshold_ms * 1e6);
  const uint64_t start_ns = now_ns();
  const uint64_t end_ns = start_ns + static_cast<uint64_t>(seconds * 1e9);
  ThreadUsage last_usage = usage_now();
  uint64_t gaps = 0, waited = 0, unseen = 0, unseen_over_1ms = 0, unseen_over_2ms = 0;
  double worst_waited_ms = 0, worst_unseen_ms = 0, unseen_total_ms = 0;
  uint64_t last_ns = now_ns();
  for (;;) {
    const uint64_t t = now_ns();
    if (t - last_ns > threshold_ns) {
      const ThreadUsage usage = usage_now();
      const ThreadUsage delta = usgc::kernel::thread_usage_delta(last_usage, usage);
      const uint64_t gap_ns = t - last_ns;
      const double gap_ms = static_cast<double>(gap_ns) / 1e6;
      ++gaps;
      if (delta.involuntary_switches != 0 || delta.run_queue_wait_ns >= gap_ns / 2) {
        ++waited;
        if (gap_ms > worst_waited_ms) worst_waited_ms = gap_ms;
      } else {
        ++unseen;
        unseen_total_ms += gap_ms;
        if (gap_ms > 1) ++unseen_over_1ms;
        if (gap_ms > 2) ++unseen_over_2ms;
        if (gap_ms > worst_unseen_ms) worst_unseen_ms = gap_ms;
      }
      last_usage = usage;
    } else if (t - last_ns > threshold_ns / 4) {
      last_usage = usage_now();  // a shorter gap: its switches must not be read as the next one's
    }
    last_ns = now_ns();
    if (last_ns >= end_ns) break;
  }
  char case_name[64];
  std::snprintf(case_name, sizeof case_name, "%s-%gs", policy, seconds);
  auto result = [&](const char* metric, double value, const char* unit) {
    std::printf("RESULT suite=cpu_hiccups case=%s impl=spin metric=%s value=%.3f unit=%s\n",
                case_name, metric, value, unit);
  };
  result("gaps_over_threshold", static_cast<double>(gaps), "count");
  result("gaps_waited", static_cast<double>(waited), "count");
  result("gaps_unseen", static_cast<double>(unseen), "count");
  result("worst_waited_ms", worst_waited_ms, "ms");
  result("worst_unseen_ms", worst_unseen_ms, "ms");
  result("unseen_over_1ms", static_cast<double>(unseen_over_1ms), "count");
  result("unseen_over_2ms", static_cast<double>(unseen_over_2ms), "count");
  result("unseen_total_ms", unseen_total_ms, "ms");
  result("unseen_per_s", static_cast<double>(unseen) / seconds, "count/s");
  std::printf(
      "NOTE suite=cpu_hiccups case=%s threshold_ms=%g: a thread reading the clock lost the "
      "CPU %lu times for more than the threshold (%lu with a switch or run-queue wait, %lu "
      "with neither)\n",
      case_name, threshold_ms, static_cast<unsigned long>(gaps), static_cast<unsigned long>(waited),
      static_cast<unsigned long>(unseen));
  return 0;
}
