// bench/safepoint_report.hpp — what the time-to-safepoint cases of bench/safepoint.cpp share:
// RESULT/ERROR printing, the per-case wall-time budget, the pacing sleeps, and the attribution of
// the last P (safepoint/stop_trace.hpp) summed over a case's stops. Included by bench/safepoint.cpp
// and bench/safepoint_churn.hpp only (one program: the inline variables are that program's).
#pragma once

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "safepoint/stop_the_world.hpp"

namespace usgc::bench::safepoint_report {

using usgc::bench::percentile;

inline void sleep_ns(uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1000000000u), static_cast<long>(ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
  }
}

inline int g_errors = 0;

// Wall-time budget of one ttsp or handshake case (--case-seconds). The stops are paced by sleeps
// of 100-200 us, and on a loaded machine each sleep can last milliseconds (the OS wakes the
// requester late): 2000 stops per mode can then take minutes per case, and the last case of the run
// (ttsp-10000) could run past run_runtime.sh's timeout before it printed anything. A case that
// runs out of budget stops early and says so (NOTE ... budget_exhausted=1, stops per mode).
inline uint64_t g_case_budget_ns = 45ull * 1000000000ull;

[[noreturn]] inline void fail(const char* case_name, const char* what, int error) {
  std::printf("ERROR suite=safepoint case=%s reason=\"%s failed: %s\"\n", case_name, what,
              std::strerror(error));
  std::fflush(stdout);
  std::exit(1);
}

inline void check(int error, const char* case_name, const char* what) {
  if (error != 0) fail(case_name, what, error);
}

inline uint32_t g_random = 0x9e3779b9u;
inline uint32_t next_random() {
  return usgc::bench::xorshift32(&g_random);
}

inline void result(const char* case_name, const char* impl, const char* metric, double value,
                   const char* unit) {
  std::printf("RESULT suite=safepoint case=%s impl=%s metric=%s value=%.3f unit=%s\n", case_name,
              impl, metric, value, unit);
  std::fflush(stdout);
}

// p50, p99 and max of durations in ns, printed in us.
inline void latency_results(const char* case_name, const char* impl, std::vector<uint64_t> ns,
                            const char* prefix = "") {
  std::sort(ns.begin(), ns.end());
  std::string p50 = std::string(prefix) + "p50", p99 = std::string(prefix) + "p99",
              max = std::string(prefix) + "max";
  result(case_name, impl, p50.c_str(), static_cast<double>(percentile(ns, 0.50)) / 1000.0, "us");
  result(case_name, impl, p99.c_str(), static_cast<double>(percentile(ns, 0.99)) / 1000.0, "us");
  result(case_name, impl, max.c_str(), static_cast<double>(ns.empty() ? 0 : ns.back()) / 1000.0,
         "us");
}

// Who was last to stop, per mode (safepoint/stop_trace.hpp, on for the ttsp cases): the last P's
// activity when armed x how it acknowledged, over all stops and over the stops slower than the
// target; and the components of the last P's time.
struct Attribution {
  static constexpr int kActivities = static_cast<int>(usgc::safepoint::ProcessorActivity::kCount);
  static constexpr int kKinds = static_cast<int>(usgc::safepoint::AckKind::kCount);
  uint64_t cells[kActivities][kKinds] = {};
  uint64_t slow_cells[kActivities][kKinds] = {};
  uint64_t stops = 0, slow_stops = 0;
  uint64_t on_requester_cpu = 0, slow_on_requester_cpu = 0;
  uint64_t monitor = 0, slow_monitor = 0;
  uint64_t faults = 0;  // slots acknowledged through a poll fault, all stops
  std::vector<uint64_t> armed_to_fault_ns, fault_to_ack_ns, ack_to_observed_ns;
  std::vector<usgc::safepoint::StopAttribution> each;  // every traced stop (print_tail)
  // Per entry of `each`: the last P's thread's run-queue wait across the stop (RunQueueWait::after;
  // kUnknownWait where not read: fast stops, a thread gone).
  static constexpr uint64_t kUnknownWait = ~uint64_t{0};
  std::vector<uint64_t> run_queue_waited_ns;

  void add(const usgc::safepoint::StopAttribution& a) {
    if (!a.valid) return;
    each.push_back(a);
    run_queue_waited_ns.push_back(kUnknownWait);
    const bool slow = a.time_to_safepoint_ns > usgc::safepoint::kSlowStopNs;
    const int activity = static_cast<int>(a.last_activity), kind = static_cast<int>(a.last_kind);
    ++stops;
    ++cells[activity][kind];
    faults += a.slots_faulted;
    on_requester_cpu += a.last_on_requester_cpu;
    monitor += a.monitor_worked;
    if (slow) {
      ++slow_stops;
      ++slow_cells[activity][kind];
      slow_on_requester_cpu += a.last_on_requester_cpu;
      slow_monitor += a.monitor_worked;
    }
    if (a.last_fault_ns != 0) {
      armed_to_fault_ns.push_back(
          a.last_fault_ns > a.last_armed_ns ? a.last_fault_ns - a.last_armed_ns : 0);
      fault_to_ack_ns.push_back(a.last_ack_ns > a.last_fault_ns ? a.last_ack_ns - a.last_fault_ns
                                                                : 0);
    }
    ack_to_observed_ns.push_back(a.observed_ns > a.last_ack_ns ? a.observed_ns - a.last_ack_ns : 0);
  }

  void print(const char* name, const char* impl) const {
    for (int activity = 0; activity < kActivities; ++activity) {
      for (int kind = 0; kind < kKinds; ++kind) {
        if (cells[activity][kind] == 0) continue;
        std::printf(
            "NOTE suite=safepoint case=%s impl=%s last_p=%s acknowledged_by=%s stops=%" PRIu64
            " slow_stops=%" PRIu64 "\n",
            name, impl,
            usgc::safepoint::processor_activity_name(
                static_cast<usgc::safepoint::ProcessorActivity>(activity)),
            usgc::safepoint::ack_kind_name(static_cast<usgc::safepoint::AckKind>(kind)),
            cells[activity][kind], slow_cells[activity][kind]);
      }
    }
    std::printf("NOTE suite=safepoint case=%s impl=%s traced_stops=%" PRIu64 " slow_stops=%" PRIu64
                " (over %" PRIu64 " us) last_p_on_requester_cpu=%" PRIu64 " (slow: %" PRIu64
                ") monitor_worked=%" PRIu64 " (slow: %" PRIu64 ") poll_faults=%" PRIu64 "\n",
                name, impl, stops, slow_stops, usgc::safepoint::kSlowStopNs / 1000,
                on_requester_cpu, slow_on_requester_cpu, monitor, slow_monitor, faults);
    latency_results(name, impl, armed_to_fault_ns, "last_armed_to_fault_");
    latency_results(name, impl, fault_to_ack_ns, "last_fault_to_ack_");
    latency_results(name, impl, ack_to_observed_ns, "ack_to_observed_");
    print_tail(name, impl);
    print_spawn_steps(name, impl);
  }

  // The last added stop's run-queue wait (RunQueueWait::after's result).
  void set_last_run_queue_wait(uint64_t waited_ns) {
    if (!run_queue_waited_ns.empty() && waited_ns != kUnknownWait)
      run_queue_waited_ns.back() = waited_ns;
  }

  // The slow stops whose last P was in a spawn between its arming and its fault (or
  // acknowledgement), that time split by spawn step (StopAttribution::spawn_step_ns): one NOTE with
  // the counts (in_a_spawn: some time in a step other than outside; at_arm: spawning when armed;
  // ring_short: the slot's ring did not reach back to the arming; rq_over_half: the last thread
  // waited on a run queue for over half the stop), then one NOTE per step with time in it: in how
  // many of those stops (n), in how many it was the largest stretch (largest; not_rq: of the stops
  // the run queue does not explain), p50, p90 and max of its time, and its total.
  void print_spawn_steps(const char* name, const char* impl) const {
    using usgc::safepoint::SpawnStep;
    constexpr int kSteps = static_cast<int>(SpawnStep::kCount);
    uint64_t in_a_spawn = 0, at_arm = 0, ring_short = 0, rq_over_half = 0;
    uint64_t largest[kSteps] = {}, largest_not_rq[kSteps] = {};
    std::vector<uint64_t> step_ns[kSteps];
    for (size_t i = 0; i < each.size(); ++i) {
      const auto& a = each[i];
      if (a.time_to_safepoint_ns <= usgc::safepoint::kSlowStopNs) continue;
      uint64_t spawning_ns = 0;
      int biggest = 0;
      for (int step = 0; step < kSteps; ++step) {
        if (step != static_cast<int>(SpawnStep::kOutside)) spawning_ns += a.spawn_step_ns[step];
        if (a.spawn_step_ns[step] > a.spawn_step_ns[biggest]) biggest = step;
      }
      if (spawning_ns == 0 && a.spawn_step_at_arm == SpawnStep::kOutside) continue;
      ++in_a_spawn;
      at_arm += a.spawn_step_at_arm != SpawnStep::kOutside;
      ring_short += !a.spawn_steps_known;
      const uint64_t waited = run_queue_waited_ns[i];
      const bool rq = waited != kUnknownWait && 2 * waited > a.time_to_safepoint_ns;
      rq_over_half += rq;
      ++largest[biggest];
      largest_not_rq[biggest] += !rq;
      for (int step = 0; step < kSteps; ++step)
        if (a.spawn_step_ns[step] != 0) step_ns[step].push_back(a.spawn_step_ns[step]);
    }
    std::printf("NOTE suite=safepoint case=%s impl=%s spawn_slow_stops in_a_spawn=%" PRIu64
                " at_arm=%" PRIu64 " ring_short=%" PRIu64 " rq_over_half=%" PRIu64 "\n",
                name, impl, in_a_spawn, at_arm, ring_short, rq_over_half);
    for (int step = 0; step < kSteps; ++step) {
      std::vector<uint64_t>& ns = step_ns[step];
      if (ns.empty()) continue;
      std::sort(ns.begin(), ns.end());
      uint64_t total_ns = 0;
      for (uint64_t v : ns) total_ns += v;
      std::printf("NOTE suite=safepoint case=%s impl=%s spawn_step=%s n=%zu largest=%" PRIu64
                  " largest_not_rq=%" PRIu64 " p50_us=%.1f p90_us=%.1f max_us=%.1f total_us=%.1f\n",
                  name, impl, usgc::safepoint::spawn_step_name(static_cast<SpawnStep>(step)),
                  ns.size(), largest[step], largest_not_rq[step],
                  static_cast<double>(percentile(ns, 0.50)) / 1000.0,
                  static_cast<double>(percentile(ns, 0.90)) / 1000.0,
                  static_cast<double>(ns.back()) / 1000.0, static_cast<double>(total_ns) / 1000.0);
    }
  }

  // The stops at or over the p95 of the time to safepoint, stretch by stretch from the request to
  // the requester seeing the last acknowledgement, against the same stretch over all stops: one
  // NOTE line per stretch (p50 and p90 of the tail, p50 of all; n = stops where it applies).
  //   arming            request -> the last P armed
  //   to_sleep          the last P armed -> the requester's first sleep (it slept before the ack)
  //   sleep_to_fault    that sleep -> the last P's fault handler (the CPU given to the last P)
  //   armed_to_fault    the last P armed -> its fault handler (the distance to its poll + fault)
  //   other_fault       request -> the first fault of any P (a P that was not displaced)
  //   fault_to_ack      the last P's handler -> its acknowledgement
  //   ack_to_wake_call  -> the acknowledger's wake call (the requester slept)
  //   wake_to_woke      the wake call -> the requester's return from its sleep
  //   woke_to_observed  -> the requester seeing the count at zero
  //   ack_to_observed   the last acknowledgement -> the requester seeing it
  void print_tail(const char* name, const char* impl) const {
    if (each.empty()) return;
    std::vector<uint64_t> ttsp;
    for (const auto& a : each) ttsp.push_back(a.time_to_safepoint_ns);
    std::sort(ttsp.begin(), ttsp.end());
    const uint64_t threshold = percentile(ttsp, 0.95);
    using A = usgc::safepoint::StopAttribution;
    // From `from` to `to` (ns since the request; from == nullptr: the request itself), where both
    // happened (non-zero) in that order; other_fault only where another P faulted first.
    struct Stretch {
      const char* name;
      uint64_t A::*from;
      uint64_t A::*to;
    };
    static constexpr Stretch kStretches[] = {
        {"arming", nullptr, &A::last_armed_ns},
        {"to_sleep", &A::last_armed_ns, &A::requester_slept_ns},
        {"sleep_to_fault", &A::requester_slept_ns, &A::last_fault_ns},
        {"armed_to_fault", &A::last_armed_ns, &A::last_fault_ns},
        {"other_fault", nullptr, &A::first_fault_ns},
        {"fault_to_ack", &A::last_fault_ns, &A::last_ack_ns},
        {"ack_to_wake_call", &A::last_ack_ns, &A::wake_call_ns},
        {"wake_to_woke", &A::wake_call_ns, &A::requester_woke_ns},
        {"woke_to_observed", &A::requester_woke_ns, &A::observed_ns},
        {"ack_to_observed", &A::last_ack_ns, &A::observed_ns},
    };
    auto stretch_of = [](const Stretch& stretch, const A& a, uint64_t* ns) {
      const uint64_t from = stretch.from == nullptr ? 0 : a.*stretch.from, to = a.*stretch.to;
      if ((stretch.from != nullptr && from == 0) || to == 0 || to < from) return false;
      if (stretch.to == &A::first_fault_ns && a.first_fault_ns == a.last_fault_ns) return false;
      *ns = to - from;
      return true;
    };
    // The last P still stopped by the previous request when armed (its thread not back from
    // that resume yet): status AtSafepoint at the arming.
    constexpr uint8_t kAtSafepoint =
        static_cast<uint8_t>(usgc::safepoint::SlotStatus::kAtSafepoint);
    uint64_t tail = 0, tail_slept = 0, tail_on_requester_cpu = 0, tail_still_stopped = 0,
             still_stopped = 0;
    for (const auto& a : each) {
      still_stopped += a.last_status_at_arm == kAtSafepoint;
      if (a.time_to_safepoint_ns < threshold) continue;
      ++tail;
      tail_slept += a.requester_sleeps != 0;
      tail_on_requester_cpu += a.last_on_requester_cpu;
      tail_still_stopped += a.last_status_at_arm == kAtSafepoint;
    }
    std::printf("NOTE suite=safepoint case=%s impl=%s tail_from_us=%.1f tail_stops=%" PRIu64
                " tail_requester_slept=%" PRIu64 " tail_last_p_on_requester_cpu=%" PRIu64
                " tail_last_p_still_stopped_when_armed=%" PRIu64 " (all stops: %" PRIu64 ")\n",
                name, impl, static_cast<double>(threshold) / 1000.0, tail, tail_slept,
                tail_on_requester_cpu, tail_still_stopped, still_stopped);
    for (const Stretch& stretch : kStretches) {
      std::vector<uint64_t> all_ns, tail_ns;
      for (const auto& a : each) {
        uint64_t ns = 0;
        if (!stretch_of(stretch, a, &ns)) continue;
        all_ns.push_back(ns);
        if (a.time_to_safepoint_ns >= threshold) tail_ns.push_back(ns);
      }
      std::sort(all_ns.begin(), all_ns.end());
      std::sort(tail_ns.begin(), tail_ns.end());
      std::printf(
          "NOTE suite=safepoint case=%s impl=%s stretch=%s all_n=%zu all_p50_us=%.1f "
          "tail_n=%zu tail_p50_us=%.1f tail_p90_us=%.1f tail_max_us=%.1f\n",
          name, impl, stretch.name, all_ns.size(),
          static_cast<double>(percentile(all_ns, 0.50)) / 1000.0, tail_ns.size(),
          static_cast<double>(percentile(tail_ns, 0.50)) / 1000.0,
          static_cast<double>(percentile(tail_ns, 0.90)) / 1000.0,
          static_cast<double>(tail_ns.empty() ? 0 : tail_ns.back()) / 1000.0);
    }
  }
};

// Whether the VM's scheduler explains a slow stop: the run-queue wait (/proc/<tid>/schedstat's
// second field: ns runnable but not running, in this guest) of the last P's thread across the
// stop. before() reads every slot holder's before the request, after() the last P's after the
// resume; a slow stop whose last thread waited on a run queue for more than half its time to
// safepoint was mostly the machine's (another thread had its CPU), not the runtime's.
class RunQueueWait {
 public:
  void before() {
    const uint32_t slots = usgc::safepoint::slot_count();
    tid_.assign(slots, 0);
    delay_ns_.assign(slots, 0);
    for (uint32_t i = 0; i < slots; ++i) {
      tid_[i] = usgc::safepoint::slot_at(i)->owner_tid.load(std::memory_order_relaxed);
      if (tid_[i] != 0 && !read(tid_[i], &delay_ns_[i])) tid_[i] = 0;
    }
  }
  // Returns the last thread's wait in ns (Attribution::kUnknownWait: a fast stop, not read).
  uint64_t after(const usgc::safepoint::StopAttribution& a) {
    if (!a.valid || a.time_to_safepoint_ns <= usgc::safepoint::kSlowStopNs ||
        a.last_slot >= tid_.size() || tid_[a.last_slot] == 0)
      return Attribution::kUnknownWait;
    uint64_t delay_ns = 0;
    if (!read(tid_[a.last_slot], &delay_ns)) return Attribution::kUnknownWait;
    ++slow_known_;
    const uint64_t waited_ns = delay_ns - delay_ns_[a.last_slot];
    slow_waited_ns_.push_back(waited_ns);
    const int activity = static_cast<int>(a.last_activity);
    ++by_activity_[activity][0];
    if (2 * waited_ns > a.time_to_safepoint_ns) {
      ++slow_mostly_waiting_;
      ++by_activity_[activity][1];
    }
    return waited_ns;
  }
  void print(const char* name, const char* impl) const {
    std::printf("NOTE suite=safepoint case=%s impl=%s slow_stops_with_last_thread_known=%" PRIu64
                " of_which_it_waited_on_a_run_queue_over_half_the_time=%" PRIu64 "\n",
                name, impl, slow_known_, slow_mostly_waiting_);
    for (int activity = 0; activity < kActivities; ++activity) {
      if (by_activity_[activity][0] == 0) continue;
      std::printf("NOTE suite=safepoint case=%s impl=%s slow_last_p=%s stops=%" PRIu64
                  " its_thread_waited_on_a_run_queue_over_half_the_time=%" PRIu64 "\n",
                  name, impl,
                  usgc::safepoint::processor_activity_name(
                      static_cast<usgc::safepoint::ProcessorActivity>(activity)),
                  by_activity_[activity][0], by_activity_[activity][1]);
    }
    latency_results(name, impl, slow_waited_ns_, "slow_last_thread_run_queue_wait_");
  }

 private:
  static bool read(int32_t tid, uint64_t* delay_ns) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
    FILE* file = std::fopen(path, "r");
    if (file == nullptr) return false;
    unsigned long long running = 0, waiting = 0;
    const bool ok = std::fscanf(file, "%llu %llu", &running, &waiting) == 2;
    std::fclose(file);
    *delay_ns = waiting;
    return ok;
  }
  std::vector<int32_t> tid_;
  std::vector<uint64_t> delay_ns_;
  std::vector<uint64_t> slow_waited_ns_;
  uint64_t slow_known_ = 0, slow_mostly_waiting_ = 0;
  static constexpr int kActivities = static_cast<int>(usgc::safepoint::ProcessorActivity::kCount);
  uint64_t by_activity_[kActivities][2] = {};  // slow stops by the last P's activity: all, waited
};

}  // namespace usgc::bench::safepoint_report
