// safepoint: time to safepoint, handshakes, the poll's cost, and the machine's floor under
// them — the benchmark of suite=safepoint (run by bench/run_runtime.sh; read docs/design.md
// "Safepoints" and safepoint/stop_the_world.hpp first).
//
// Cases (--cases picks them: floor, poll, ttsp, churn, handshake):
//   machine-floor (impl=threads), before the runtime starts, plain threads: the wake-up, vCPU
//     availability, mprotect and SIGSEGV-delivery floors the stops below are made of
//     (bench/machine_floor.hpp says what each figure is).
//   poll-overhead-array, poll-overhead-dependent (impl=none, barrier, poll, barrier64, poll64,
//     flag): the poll's cost in a loop-heavy kernel, no stop requested
//     (bench/safepoint_poll_overhead.hpp says how it is measured). JEP 312's bar is 1 %; Go
//     rejected loop polls that cost 7.8 %.
//   ttsp-<N> (impl=mprotect, swap, swap-spin5, swap-sleep, swap-trampoline): N goroutines that
//     only poll in a loop, plus 4 that sleep 1 ms at a time; the main thread (not a goroutine)
//     requests stops, each after a sleep of 100-200 us, and records
//     usgc_stop_info.time_to_safepoint_ns (request to the last P's acknowledgement) and
//     requester_wake_ns (from then until the requester ran again: the OS waking it, not the
//     safepoint). The stop mode alternates every 100 stops, so all see the same machine:
//     mprotect and swap are the two armings (safepoint::set_safepoint_arming) with the
//     requester's adaptive spin; swap-spin5 is swap with the previous fixed 5 us spin
//     (safepoint::set_requester_spin_for_benchmark); swap-sleep is swap with the wait protocol
//     before (USGC_SAFEPOINT_WAIT=sleep: stopped threads sleep at once and every resume wakes
//     them; safepoint::set_safepoint_wait); swap-trampoline is swap with the acknowledgement
//     protocol before (USGC_SAFEPOINT_ACK=trampoline, safepoint::set_safepoint_ack);
//     swap-noclaim is swap without the claim of Ps in the scheduler loop (USGC_SAFEPOINT_CLAIM=0,
//     safepoint::set_scheduler_claim) and swap-before without the monitor's quiet during stops
//     as well (safepoint::set_monitor_quiet_during_stops(false)): the protocol before both.
//     goroutine-swap, goroutine-noclaim, goroutine-before: the same three with the stop requested
//     by a goroutine holding a P, the collector's case: this thread attaches (usgc_attach_thread,
//     a goroutine never preempted; before the N goroutines start, and for the whole case: in the
//     thread modes it polls in a loop while a plain thread requests), waits 100-200 us between
//     stops busy and polling, and stops through the collector's call (safepoint::stop_the_world
//     keeping its P; NOTE stops_keeping_its_p counts them, policy_would_give_up_p the stops where
//     the collector's policy, requester_may_keep_slot(), would have given it up on a loaded
//     machine). swap-load-before, goroutine-load-before: swap and goroutine-swap without the two
//     changes for loaded machines (safepoint::set_signal_rounds_wait_out_load: the requester's
//     first signal round waits 1 ms instead of 50 us when the machine had more runnable threads
//     than CPUs; set_monitor_backs_off_during_stops: the monitor looks again after 100 us, then
//     twice as long each time, up to 2 ms, instead of every 100 us). --modes picks modes by name
//     (default: all). Per mode: metric=p50, p99, max (us) of the time to safepoint;
//     wake_p50/p99/max of the wake-up; arming_p50/p99/max (request to every slot armed and every
//     idle slot claimed) and first_ack_p50/p99/max (request to the first running P's
//     acknowledgement) from safepoint::stop_breakdown_last(); a NOTE counts the stops that found
//     every P running, that sent the asynchronous safepoint signal, and where the requester slept.
//     Beside ttsp-10000: the seed's claim (impl=seed metric=claim_low 100 us, claim_high 500 us)
//     and the target (impl=target metric=p99_target 50 us). With the stop's attribution trace on
//     (safepoint/stop_trace.hpp), per mode: NOTE lines counting who was last (last_p=<activity when
//     armed> acknowledged_by=<kind>, all stops and those over 50 us), how often the last P
//     acknowledged on the requester's CPU and the monitor worked during the stop;
//     last_armed_to_fault_*, last_fault_to_ack_* (the last P's arming to its fault handler, and on
//     to its acknowledgement) and ack_to_observed_* (to the requester seeing it); with a thread
//     requester, how many slow stops' last P thread waited on a run queue (another thread had
//     its CPU) for over half the stop, and slow_last_thread_run_queue_wait_* (RunQueueWait);
//     and the stops at or over the mode's p95, stretch by stretch from the request to the requester
//     seeing the last acknowledgement (arming, the requester's first sleep, the last P's fault,
//     its acknowledgement, the wake call, the requester's return), each against all stops, with
//     how many of them had their last P still stopped by the previous stop when armed
//     (Attribution::print_tail, bench/safepoint_report.hpp).
//   churn-<N> (impl=usgc): time to safepoint while goroutines are spawned and end, with N parked
//     goroutines beside them (bench/safepoint_churn.hpp).
//   handshake (impl=usgc): two polling goroutines keep both Ps running; usgc_handshake of P 0
//     and P 1 alternately, each after 100-200 us; metric=p50, p99, max (us) of the handshake's
//     time to safepoint, wake_p50, wake_p99, wake_max of the requester's wake-up.
//
// One runtime per process (usgc_init once): poll-overhead needs preemption off and the stops need
// it on, so poll runs in a process of its own (bench/run_runtime.sh runs
// `safepoint --cases "floor ttsp handshake"`, then `safepoint --cases poll`).
//
// Output: RESULT lines (bench/run_all.sh's format), NOTE lines that explain (procs, how many
// stops found every P running), ERROR lines for a failure or a wrong result (exit status 1).
//
// Usage: safepoint [--stops N] [--counts "1 100 1000 10000"] [--handshakes N] [--case-seconds S]
//                  [--cases "floor ttsp churn handshake" | --cases poll] [--poll-scale F] [--quick]
//                  [--modes "swap swap-before goroutine-swap ..."]
#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.hpp"
#include "bench/machine_floor.hpp"
#include "bench/safepoint_churn.hpp"
#include "bench/safepoint_poll_overhead.hpp"
#include "bench/safepoint_report.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "safepoint/stop_the_world.hpp"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace {

using usgc::bench::has_word;
using usgc::bench::median;
using usgc::bench::now_ns;
using usgc::bench::percentile;
using usgc::bench::words;
using usgc::safepoint::SafepointArming;
using namespace usgc::bench::safepoint_report;
using usgc::bench::safepoint_poll_overhead::poll_overhead_main;
using usgc::bench::safepoint_poll_overhead::PollJob;

// ---- time to safepoint -------------------------------------------------------------------

std::atomic<bool> g_goroutines_stop{false};

void polling_goroutine(void*) {
  while (!g_goroutines_stop.load(std::memory_order_relaxed)) usgc_safepoint_poll();
}

void sleeping_goroutine(void*) {
  while (!g_goroutines_stop.load(std::memory_order_relaxed)) usgc_sleep_ns(1000000);
}

void start_goroutines(const char* name, uint32_t pollers, uint32_t sleepers) {
  g_goroutines_stop.store(false, std::memory_order_relaxed);
  for (uint32_t i = 0; i < pollers; ++i)
    check(usgc_go(polling_goroutine, nullptr, nullptr), name, "usgc_go");
  for (uint32_t i = 0; i < sleepers; ++i)
    check(usgc_go(sleeping_goroutine, nullptr, nullptr), name, "usgc_go");
  sleep_ns(50000000);  // the Ps pick them up
}

void stop_goroutines(const char* name) {
  g_goroutines_stop.store(true, std::memory_order_relaxed);
  uint64_t deadline = now_ns() + 60000000000ull;
  while (usgc_goroutine_count() != 0) {
    if (now_ns() > deadline) {
      std::printf("ERROR suite=safepoint case=%s reason=\"%" PRIu64
                  " goroutines still alive 60 s after they were told to stop\"\n",
                  name, usgc_goroutine_count());
      std::fflush(stdout);
      std::exit(1);
    }
    sleep_ns(1000000);
  }
}

// The stop modes of the ttsp cases: the arming, the requester's spin policy, the wait and
// acknowledgement protocols, the claim of Ps in the scheduler loop, the monitor's quiet during
// stops, and who requests (a plain thread, or a goroutine holding a P: the collector's case).
struct StopMode {
  const char* impl;
  SafepointArming arming;
  int64_t fixed_spin_ns;  // -1: the runtime's adaptive policy
  usgc::safepoint::SafepointWait wait;
  usgc::safepoint::SafepointAck ack;
  bool claim = true;            // safepoint::set_scheduler_claim (USGC_SAFEPOINT_CLAIM)
  bool monitor_quiet = true;    // safepoint::set_monitor_quiet_during_stops
  bool from_goroutine = false;  // the requester is an attached goroutine holding a P
  // safepoint::set_signal_rounds_wait_out_load and set_monitor_backs_off_during_stops (both on by
  // default; off in the -load-before modes: the policy before under load).
  bool load_policy = true;
};
constexpr auto kSpin = usgc::safepoint::SafepointWait::kSpin;
constexpr auto kHandler = usgc::safepoint::SafepointAck::kHandler;
constexpr auto kSwap = SafepointArming::kSwapPollPointers;
constexpr StopMode kStopModes[] = {
    {"mprotect", SafepointArming::kProtectGlobalPage, -1, kSpin, kHandler},
    {"swap", kSwap, -1, kSpin, kHandler},
    // The default arming with the requester's previous policy (spin 5 us, then sleep): the same
    // run's peer of the adaptive spin.
    {"swap-spin5", kSwap, 5000, kSpin, kHandler},
    // The default arming with the wait protocol before (USGC_SAFEPOINT_WAIT=sleep: stopped
    // threads sleep at once, every resume wakes them): the same run's peer of the resume spin.
    {"swap-sleep", kSwap, -1, usgc::safepoint::SafepointWait::kSleep, kHandler},
    // The default with the acknowledgement protocol before (USGC_SAFEPOINT_ACK=trampoline: a
    // poll fault acknowledges after sigreturn and the trampoline, the last acknowledger always
    // wakes the requester, the monitor probes Ps that just stopped): the peer of the default.
    {"swap-trampoline", kSwap, -1, kSpin, usgc::safepoint::SafepointAck::kTrampoline},
    // The default without the claim of Ps in the scheduler loop (USGC_SAFEPOINT_CLAIM=0), and
    // without the monitor's quiet during stops as well: the protocol before both.
    {"swap-noclaim", kSwap, -1, kSpin, kHandler, false, true},
    {"swap-before", kSwap, -1, kSpin, kHandler, false, false},
    // The collector's case: the stop is requested by a goroutine holding a P, through the stop
    // API the shared collector uses (safepoint::stop_the_world with keep_slot =
    // requester_may_keep_slot()); the same three protocols.
    {"goroutine-swap", kSwap, -1, kSpin, kHandler, true, true, true},
    {"goroutine-noclaim", kSwap, -1, kSpin, kHandler, false, true, true},
    {"goroutine-before", kSwap, -1, kSpin, kHandler, false, false, true},
    // The default without the two changes for loaded machines (the requester's first signal round
    // at 50 us whatever the load; the monitor looking every 100 us during a stop): the peers of
    // swap and goroutine-swap under load.
    {"swap-load-before", kSwap, -1, kSpin, kHandler, true, true, false, false},
    {"goroutine-load-before", kSwap, -1, kSpin, kHandler, true, true, true, false},
};
constexpr int kStopModeCount = static_cast<int>(std::size(kStopModes));
// --modes: the modes to run (all by default).
bool g_mode_selected[kStopModeCount];

void time_to_safepoint(uint32_t goroutines, int stops_per_mode, int first_mode) {
  std::string name_text = "ttsp-" + std::to_string(goroutines);
  const char* name = name_text.c_str();
  const SafepointArming default_arming = usgc::safepoint::safepoint_arming();
  const usgc::safepoint::SafepointWait default_wait = usgc::safepoint::safepoint_wait();
  const usgc::safepoint::SafepointAck default_ack = usgc::safepoint::safepoint_ack();
  // With a goroutine requester among the modes this thread attaches first (usgc_attach_thread: a
  // goroutine locked to it, never preempted), while the Ps are free: attaching later, it would
  // queue behind the N goroutines for a P. It keeps that P for the whole case; in the thread
  // modes it polls in a loop (one more polling goroutine) while a plain thread requests.
  bool attached = false;
  for (int mode = 0; mode < kStopModeCount; ++mode)
    attached = attached || (g_mode_selected[mode] && kStopModes[mode].from_goroutine);
  if (attached) check(usgc_attach_thread(), name, "usgc_attach_thread");
  start_goroutines(name, goroutines, 4);
  std::vector<uint64_t> ttsp_ns[kStopModeCount], wake_ns[kStopModeCount], arming_ns[kStopModeCount],
      first_ack_ns[kStopModeCount];
  std::vector<Attribution> attribution(kStopModeCount);
  std::vector<RunQueueWait> run_queue_wait(kStopModeCount);
  usgc::safepoint::set_stop_trace_enabled(true);
  uint64_t all_running[kStopModeCount] = {}, signalled[kStopModeCount] = {},
           slept[kStopModeCount] = {};
  uint32_t procs = 0;
  const int kBlock = 100;
  const uint64_t deadline_ns = now_ns() + g_case_budget_ns;
  bool budget_exhausted = false;
  int selected = 0;
  for (int mode = 0; mode < kStopModeCount; ++mode) selected += g_mode_selected[mode];
  uint64_t kept_slot[kStopModeCount] = {}, policy_gives_up[kStopModeCount] = {};
  const bool default_claim = usgc::safepoint::scheduler_claim_enabled();
  for (int done = 0, block = 0; done < selected * stops_per_mode && !budget_exhausted; ++block) {
    budget_exhausted = now_ns() > deadline_ns;
    int mode = (block + first_mode) % kStopModeCount;
    while (!g_mode_selected[mode] || static_cast<int>(ttsp_ns[mode].size()) >= stops_per_mode)
      mode = (mode + 1) % kStopModeCount;
    const StopMode& stop_mode = kStopModes[mode];
    usgc::safepoint::set_safepoint_arming(stop_mode.arming);
    usgc::safepoint::set_requester_spin_for_benchmark(stop_mode.fixed_spin_ns);
    usgc::safepoint::set_safepoint_wait(stop_mode.wait);
    usgc::safepoint::set_safepoint_ack(stop_mode.ack);
    usgc::safepoint::set_scheduler_claim(stop_mode.claim);
    usgc::safepoint::set_monitor_quiet_during_stops(stop_mode.monitor_quiet);
    usgc::safepoint::set_signal_rounds_wait_out_load(stop_mode.load_policy);
    usgc::safepoint::set_monitor_backs_off_during_stops(stop_mode.load_policy);
    // A goroutine requester (this thread, attached) holds its P between its stops: it waits for
    // them busy (polling) instead of sleeping, as a goroutine that allocates until it triggers a
    // collection. A thread requester sleeps between its stops.
    auto run_block = [&] {
      for (int i = 0; i < kBlock && static_cast<int>(ttsp_ns[mode].size()) < stops_per_mode &&
                      !(budget_exhausted = now_ns() > deadline_ns);
           ++i, ++done) {
        usgc_stop_info info{};
        if (stop_mode.from_goroutine) {
          const uint64_t until = now_ns() + 100000 + next_random() % 100000;
          while (now_ns() < until) usgc_safepoint_poll();
          // The collector's call (gc/shared_collector.cpp) keeping its P. The collector keeps it
          // only when requester_may_keep_slot() says the machine has a CPU for every runnable
          // thread (counted: policy_would_give_up_p); this requester always does: giving the P up,
          // it would queue behind N goroutines to get it back after each stop (an attached
          // goroutine waits for a worker to dequeue it), seconds per stop at 10 000.
          if (!usgc::safepoint::requester_may_keep_slot()) ++policy_gives_up[mode];
          check(usgc::safepoint::stop_the_world(&info, nullptr, /*keep_slot=*/true), name,
                "stop_the_world");
          check(usgc::safepoint::start_the_world(), name, "start_the_world");
        } else {
          sleep_ns(100000 + next_random() % 100000);
          run_queue_wait[mode].before();
          check(usgc_stop_the_world(&info), name, "usgc_stop_the_world");
          check(usgc_start_the_world(), name, "usgc_start_the_world");
        }
        usgc::safepoint::StopBreakdown breakdown = usgc::safepoint::stop_breakdown_last();
        if (breakdown.requester_kept_slot) ++kept_slot[mode];
        arming_ns[mode].push_back(breakdown.arming_ns);
        if (breakdown.slots_running != 0)
          first_ack_ns[mode].push_back(breakdown.first_running_ack_ns);
        if (breakdown.signal_rounds != 0) ++signalled[mode];
        if (breakdown.requester_slept) ++slept[mode];
        attribution[mode].add(usgc::safepoint::stop_attribution_last());
        if (!stop_mode.from_goroutine)
          attribution[mode].set_last_run_queue_wait(
              run_queue_wait[mode].after(usgc::safepoint::stop_attribution_last()));
        ttsp_ns[mode].push_back(info.time_to_safepoint_ns);
        wake_ns[mode].push_back(info.requester_wake_ns);
        procs = info.procs;
        if (info.procs_running == info.procs) ++all_running[mode];
      }
    };
    if (stop_mode.from_goroutine || !attached) {
      run_block();
    } else {
      std::atomic<bool> finished{false};
      std::thread requester([&] {
        run_block();
        finished.store(true, std::memory_order_release);
      });
      while (!finished.load(std::memory_order_acquire)) usgc_safepoint_poll();
      requester.join();
    }
  }
  if (attached) check(usgc_detach_thread(), name, "usgc_detach_thread");
  usgc::safepoint::set_scheduler_claim(default_claim);
  usgc::safepoint::set_monitor_quiet_during_stops(true);
  usgc::safepoint::set_signal_rounds_wait_out_load(true);
  usgc::safepoint::set_monitor_backs_off_during_stops(true);
  usgc::safepoint::set_safepoint_arming(default_arming);
  usgc::safepoint::set_requester_spin_for_benchmark(-1);
  usgc::safepoint::set_safepoint_wait(default_wait);
  usgc::safepoint::set_safepoint_ack(default_ack);
  usgc::safepoint::set_stop_trace_enabled(false);
  stop_goroutines(name);
  for (int mode = 0; mode < kStopModeCount; ++mode) {
    if (!g_mode_selected[mode]) continue;
    const char* impl = kStopModes[mode].impl;
    latency_results(name, impl, ttsp_ns[mode]);
    latency_results(name, impl, wake_ns[mode], "wake_");
    latency_results(name, impl, arming_ns[mode], "arming_");
    latency_results(name, impl, first_ack_ns[mode], "first_ack_");
    std::printf(
        "NOTE suite=safepoint case=%s impl=%s stops=%zu procs=%u "
        "stops_with_every_p_running=%" PRIu64 " stops_with_signals=%" PRIu64
        " stops_where_the_requester_slept=%" PRIu64 " requester=%s stops_keeping_its_p=%" PRIu64
        " policy_would_give_up_p=%" PRIu64 " budget_exhausted=%d\n",
        name, impl, ttsp_ns[mode].size(), procs, all_running[mode], signalled[mode], slept[mode],
        kStopModes[mode].from_goroutine ? "goroutine" : "thread", kept_slot[mode],
        policy_gives_up[mode], budget_exhausted ? 1 : 0);
    attribution[mode].print(name, impl);
    if (!kStopModes[mode].from_goroutine) run_queue_wait[mode].print(name, impl);
  }
  if (goroutines == 10000) {
    result(name, "seed", "claim_low", 100, "us");
    result(name, "seed", "claim_high", 500, "us");
    result(name, "target", "p99_target", 50, "us");
  }
}

void handshakes(int count) {
  const char* name = "handshake";
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  check(usgc_runtime_get_stats(&stats), name, "usgc_runtime_get_stats");
  start_goroutines(name, stats.procs, 0);
  std::vector<uint64_t> ttsp_ns, wake_ns;
  uint64_t running = 0;
  const uint64_t deadline_ns = now_ns() + g_case_budget_ns;
  for (int i = 0; i < count && now_ns() < deadline_ns; ++i) {
    sleep_ns(100000 + next_random() % 100000);
    usgc_stop_info info{};
    check(usgc_handshake(static_cast<uint32_t>(i) % stats.procs, nullptr, nullptr, &info), name,
          "usgc_handshake");
    ttsp_ns.push_back(info.time_to_safepoint_ns);
    wake_ns.push_back(info.requester_wake_ns);
    running += info.procs_running;
  }
  stop_goroutines(name);
  latency_results(name, "usgc", ttsp_ns);
  latency_results(name, "usgc", wake_ns, "wake_");
  std::printf(
      "NOTE suite=safepoint case=handshake handshakes=%zu procs=%u "
      "handshakes_of_a_running_p=%" PRIu64 "\n",
      ttsp_ns.size(), stats.procs, running);
}

int usage() {
  std::fprintf(stderr,
               "usage: safepoint [--stops N] [--counts \"1 100 1000 10000\"] [--handshakes N]\n"
               "                 [--case-seconds S] [--modes \"swap goroutine-swap ...\"]\n"
               "                 [--cases \"floor ttsp handshake\" | --cases poll] [--poll-scale "
               "F] [--quick]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int stops = 2000;
  int handshake_count = 2000;
  std::string counts = "1 100 1000 10000";
  std::string cases = "floor ttsp handshake";
  std::string modes = "all";
  PollJob poll_job;
  int futex_round_trips = 5000;
  uint64_t heartbeat_ns = 2000000000ull;
  int mprotects = 2000;
  int faults = 2000;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--stops" && has_value)
      stops = std::atoi(argv[++i]);
    else if (arg == "--case-seconds" && has_value)
      g_case_budget_ns = static_cast<uint64_t>(std::atof(argv[++i]) * 1e9);
    else if (arg == "--handshakes" && has_value)
      handshake_count = std::atoi(argv[++i]);
    else if (arg == "--counts" && has_value)
      counts = argv[++i];
    else if (arg == "--cases" && has_value)
      cases = argv[++i];
    else if (arg == "--modes" && has_value)
      modes = argv[++i];
    else if (arg == "--poll-scale" && has_value)
      poll_job.scale = std::atof(argv[++i]);
    else if (arg == "--quick") {
      stops = 200, handshake_count = 200, poll_job.scale = 0.1, poll_job.rounds = 3;
      futex_round_trips = 500, heartbeat_ns = 200000000ull, mprotects = 200, faults = 200;
    } else {
      return usage();
    }
  }
  if (stops < 1 || handshake_count < 1 || poll_job.scale <= 0) return usage();
  int modes_selected = 0;
  for (int mode = 0; mode < kStopModeCount; ++mode) {
    g_mode_selected[mode] = modes == "all" || has_word(modes, kStopModes[mode].impl);
    modes_selected += g_mode_selected[mode];
  }
  if (modes_selected == 0) {
    std::fprintf(stderr, "safepoint: --modes \"%s\" names no ttsp mode\n", modes.c_str());
    return usage();
  }

  bool poll = has_word(cases, "poll"), ttsp = has_word(cases, "ttsp"),
       churn = has_word(cases, "churn"), handshake = has_word(cases, "handshake");
  if (poll && (ttsp || churn || handshake)) {
    // One runtime per process (usgc_init once): poll-overhead needs preemption off, the stops
    // need the default (goroutines take turns on the Ps).
    std::fprintf(
        stderr,
        "safepoint: run poll in a process of its own (--cases poll): it needs preemption off\n");
    return 2;
  }

  if (has_word(cases, "floor")) {
    usgc::bench::MachineFloorOptions floor{futex_round_trips, heartbeat_ns, mprotects, faults};
    usgc::bench::machine_floor(floor, result, fail);
  }
  if (!poll && !ttsp && !churn && !handshake) return g_errors == 0 ? 0 : 1;

  usgc_config config;
  check(usgc_config_from_environment(&config), "runtime", "usgc_config_from_environment");
  if (poll) config.preempt_after_us = 0;  // nothing may arm the poll during the measurement
  check(usgc_init(&config), "runtime", "usgc_init");
  if (poll) {
    check(usgc_run_main(poll_overhead_main, &poll_job), "poll-overhead", "usgc_run_main");
    stop_goroutines("poll-overhead");
  }
  if (ttsp) {
    int first_mode = 0;
    for (const std::string& count : words(counts)) {
      time_to_safepoint(static_cast<uint32_t>(std::strtoul(count.c_str(), nullptr, 10)), stops,
                        first_mode);
      first_mode = (first_mode + 1) % kStopModeCount;
    }
  }
  if (churn) {
    for (const std::string& count : words(counts))
      usgc::bench::safepoint_churn::goroutine_churn(
          static_cast<uint32_t>(std::strtoul(count.c_str(), nullptr, 10)), stops);
  }
  if (handshake) handshakes(handshake_count);
  check(usgc_shutdown(), "runtime", "usgc_shutdown");
  return g_errors == 0 ? 0 : 1;
}
