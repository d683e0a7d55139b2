// safepoint/stop_waits.cpp — the waits of the safepoint protocol: the requester's for every
// acknowledgement (spin while a CPU is free for it, then sleep on `remaining`; signal rounds to
// the holders still missing; a warning naming them after a second) and the stopped threads' for
// the resume (spin on resumed_epoch within a budget of CPUs — those the requester's work in the
// stop does not need — then sleep: the resume is one store and a wake only when someone sleeps). On
// a loaded machine the first signal round waits 1 ms (first_signal_after_ns). The Dekker pairs are
// named at each side. Not on the poll's fast path.
#include <sched.h>

#include <cerrno>
#include <cstdio>

#include "kernel_iface/clock.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/thread_control.hpp"
#include "safepoint/async_safepoint.hpp"
#include "safepoint/stop_state.hpp"

namespace usgc::safepoint {

namespace {

// A stop that waits this long prints one line per P it still waits for, then keeps waiting.
constexpr uint64_t kWarnAfterNs = 1'000'000'000;

// How long a requester spins for acknowledgements before it sleeps (requester_spin), when a
// CPU may be free for it. Short on purpose: a running P's acknowledgement comes through a poll
// fault (page fault, SIGSEGV delivery, sigreturn, trampoline: 12-15 us on the 2-vCPU VM of
// docs/benchmarks.md, where a bare system call costs 3 us), which no short spin waits out; the
// spin catches the Ps that acknowledge at a scheduler point instead (a machine looking for
// work). A longer spin (25 us) was measured: on a loaded machine the "free" CPU is often not
// free, and the spinning requester delayed the holder it shared a CPU with (p50 47 us against
// 31 us at 1 goroutine). When the Ps that must reach a poll are at least as many as the CPUs,
// the requester does not spin at all: its own wake-up then took a CPU from one of their
// threads, and every microsecond it spins is a microsecond that thread cannot poll.
constexpr uint64_t kRequesterSpinNs = 5'000;

// A requester that kept its slot owns a CPU no P it waits for needs: it spins (pause) for
// kRequesterPureSpinNs, then spins yielding the CPU between looks (it stays runnable: when the
// last P acknowledges, no wake-up stands between that and the stop's work) up to
// kRequesterSpinCapNs, then sleeps (a P that long away is descheduled or blocked: the signal
// rounds and the warning of the sleeping loop take over).
constexpr uint64_t kRequesterPureSpinNs = 50'000;
constexpr uint64_t kRequesterSpinCapNs = 5'000'000;
// Stopped threads spin on resumed_epoch this long before they sleep (pause, then yielding, as
// the requester): the stops of a concurrent collection last tens of microseconds.
constexpr uint64_t kResumePureSpinNs = 20'000;
constexpr uint64_t kResumeSpinNs = 1'000'000;

bool resumed_since(uint32_t epoch) {
  // Acquire: pairs with end_request's store of resumed_epoch (what the requester did in the
  // stopped world is visible once resumed).
  return !epoch_before(g_state.resumed_epoch.load(std::memory_order_acquire), epoch);
}

// How many stopped threads may spin for the resume now: the CPUs the requester's work does not
// need (requester_cpus, stop_work_needs_cpus).
uint32_t resume_spin_budget() {
  const uint32_t needed = g_state.requester_cpus.load(std::memory_order_relaxed);
  return g_state.online_cpus > needed ? g_state.online_cpus - needed : 0;
}

// A spinner's look at the budget: true when the spinners are over it (the requester asked for
// more CPUs) and this one left (its own decrement, a CAS, so that exactly the excess leaves).
bool cede_spin_to_requester() {
  const uint32_t budget = resume_spin_budget();
  uint32_t spinners = g_state.resume_spinners.load(std::memory_order_relaxed);
  while (spinners > budget) {
    if (g_state.resume_spinners.compare_exchange_weak(spinners, spinners - 1,
                                                      std::memory_order_relaxed)) {
      g_state.resume_spins_ceded.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

// kSpin: spins first, if fewer threads already do than the CPUs the requester's work leaves
// (resume_spin_budget: online CPUs - 1 unless it asked for more). Pure pauses, then yields
// between looks, up to the cap; the clock and the budget are read every 64 pauses, and a spinner
// over the budget (the requester asked for its CPU) stops and sleeps. True when resumed meanwhile.
bool spin_until_resumed(uint32_t epoch) {
  if (!g_state.cpus_free.load(std::memory_order_relaxed)) return false;
  if (g_state.resume_spinners.fetch_add(1, std::memory_order_relaxed) >= resume_spin_budget()) {
    g_state.resume_spinners.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  const uint64_t start_ns = kernel::monotonic_ns();
  const uint64_t cap_ns =
      g_state.resume_cap_ns.load(std::memory_order_relaxed) >= 0
          ? static_cast<uint64_t>(g_state.resume_cap_ns.load(std::memory_order_relaxed))
          : kResumeSpinNs;
  bool resumed = false;
  for (;;) {
    for (int spin = 0; spin < 64 && !resumed; ++spin) {
      resumed = resumed_since(epoch);
      __builtin_ia32_pause();
    }
    if (resumed) break;
    if (cede_spin_to_requester()) return false;  // its decrement is done
    const uint64_t spent_ns = kernel::monotonic_ns() - start_ns;
    if (spent_ns >= cap_ns) break;
    if (spent_ns >= kResumePureSpinNs) kernel::yield_cpu();
  }
  g_state.resume_spinners.fetch_sub(1, std::memory_order_relaxed);
  return resumed;
}

}  // namespace

// Waits until the request `epoch` resumed. The sleeping side of the resume's Dekker pair:
// resume_sleepers is incremented (seq_cst) before resumed_epoch is read (seq_cst) and before
// futex_wait; end_request stores resumed_epoch (seq_cst), then reads resume_sleepers (seq_cst).
// In the total order either our read sees the new epoch (we do not sleep), or its read sees us
// (it makes the wake call; futex_wait also returns at once if the word changed since our read).
void wait_until_resumed(uint32_t epoch) {
  if (g_state.wait.load(std::memory_order_relaxed) == SafepointWait::kSpin) {
    if (spin_until_resumed(epoch)) return;
  } else {
    for (int spin = 0; spin < 64; ++spin) {
      if (resumed_since(epoch)) return;
      __builtin_ia32_pause();
    }
  }
  g_state.resume_sleepers.fetch_add(1, std::memory_order_seq_cst);
  for (;;) {
    uint32_t resumed = g_state.resumed_epoch.load(std::memory_order_seq_cst);
    if (!epoch_before(resumed, epoch)) break;
    kernel::futex_wait(&g_state.resumed_epoch, resumed);
  }
  g_state.resume_sleepers.fetch_sub(1, std::memory_order_relaxed);
}

namespace {

// Signals the holders of the slots of [first, first + count) that have not acknowledged `epoch`
// and are running (asynchronous safepoints: a holder that is blocked or does not poll).
// Each holder is probed first (/proc): a call that returns EINTR to the signal is then
// re-issued by the handler instead (async_safepoint.hpp), so the program does not see the EINTR.
void signal_unacknowledged(uint32_t first, uint32_t count, uint32_t epoch) {
  for (uint32_t i = first; i < first + count; ++i) {
    SafepointSlot* slot = &g_state.slots[i];
    // Acquire: pairs with the release stores of acked_epoch (claim_idle_slot, reach_safepoint).
    if (slot->acked_epoch.load(std::memory_order_acquire) == epoch) continue;
    // Acquire: pairs with the seq_cst status stores and CASes (the header's table); a slot that
    // is not Running is not signalled.
    if (slot->status.load(std::memory_order_acquire) != SlotStatus::kRunning) continue;
    if (!async_safepoints_enabled()) continue;
    const int tid = slot->owner_tid.load(std::memory_order_relaxed);
    kernel::ThreadProbe probe;
    if (tid != 0) {
      kernel::Result<kernel::ThreadProbe> probed =
          kernel::probe_thread(tid, kernel::ProbeDetail::kBlockedCall);
      if (probed.ok()) probe = probed.value();
    }
    kernel::FutexMutexGuard guard(slot->arm_lock);
    if (slot->owner_tid.load(std::memory_order_relaxed) != tid) continue;  // released meanwhile
    record_probe_locked(slot, probe);
    (void)signal_slot_holder_locked(slot);
  }
}

// The one-second warning: one line per P still missing, naming its thread and what it does.
void warn_unacknowledged(uint32_t first, uint32_t count, uint32_t epoch, bool handshake) {
  for (uint32_t i = first; i < first + count; ++i) {
    SafepointSlot* slot = &g_state.slots[i];
    // Acquire: pairs with the release stores of acked_epoch (claim_idle_slot, reach_safepoint).
    if (slot->acked_epoch.load(std::memory_order_acquire) == epoch) continue;
    const int tid = slot->owner_tid.load(std::memory_order_relaxed);
    kernel::ThreadProbe probe;
    if (tid != 0) {
      kernel::Result<kernel::ThreadProbe> probed = kernel::probe_thread(tid);
      if (probed.ok()) probe = probed.value();
    }
    char doing[96];
    const char* remedy;
    if (probe.in_system_call) {
      std::snprintf(doing, sizeof doing, "blocked in the kernel (system call %ld)",
                    probe.system_call);
      remedy =
          "bracket the blocking call with usgc_enter_native()/usgc_leave_native() (or detach "
          "the thread while it blocks), and do not block SIGURG in it";
    } else if (probe.state == 'R') {
      std::snprintf(doing, sizeof doing, "running without reaching a safepoint");
      remedy =
          "call usgc_safepoint_poll() in its loops; it was not stopped asynchronously because it "
          "runs inside usgc or a system library, blocks SIGURG, or USGC_ASYNC_PREEMPT=0";
    } else {
      std::snprintf(doing, sizeof doing, "in kernel state '%c'", probe.state);
      remedy =
          "bracket blocking calls with usgc_enter_native()/usgc_leave_native() and poll "
          "(usgc_safepoint_poll) in long loops";
    }
    kernel::print_message(
        "%s has waited 1 s for P %u: thread %d (\"%s\") is %s; remedy: %s; still waiting",
        handshake ? "a handshake" : "a stop-the-world", i, tid, probe.name, doing, remedy);
  }
}

// When the first signal round comes. On a machine with a CPU for every runnable thread
// (cpus_free), a P still missing after kFirstSignalAfterNs is blocked or does not poll: signal it.
// On a loaded one it is most likely waiting for a CPU (preempted by the kernel), which no signal
// gets it sooner, while the round costs the requester a wake-up, a /proc probe and the signal
// (system calls at about 3 us each on the VM of docs/benchmarks.md), mostly on the CPU that P's
// thread waits for (the attribution trace: the last P acknowledged on the requester's CPU in nearly
// every slow stop). There the first round waits kResignalEveryNs (signal_rounds_wait_out_load),
// unless a missing slot's holder is a thread that came back from a blocking call outside usgc the
// signal interrupted and has not acknowledged at a poll since (SafepointSlot::blocking_holder_tid):
// it is most likely blocked again, waiting out the load only delays it, and every stop came 1 ms
// late behind a goroutine sleeping in a loop of plain nanosleep calls (bench/stops_collector.cpp,
// docs/benchmarks.md). Threads caught running code that does not poll are not marked: on a loaded
// machine such a missing P is as likely one the kernel preempted.
uint64_t first_signal_after_ns(uint32_t first, uint32_t count, uint32_t epoch) {
  if (!g_state.signal_rounds_wait_out_load.load(std::memory_order_relaxed) ||
      g_state.cpus_free.load(std::memory_order_relaxed))
    return kFirstSignalAfterNs;
  for (uint32_t i = first; i < first + count; ++i) {
    const SafepointSlot* slot = &g_state.slots[i];
    const int32_t tid = slot->blocking_holder_tid.load(std::memory_order_relaxed);
    // Relaxed: a hint; a stale answer moves the first round by at most kResignalEveryNs.
    if (tid != 0 && slot->acked_epoch.load(std::memory_order_relaxed) != epoch &&
        slot->owner_tid.load(std::memory_order_relaxed) == tid) {
      g_state.early_signal_rounds.fetch_add(1, std::memory_order_relaxed);
      return kFirstSignalAfterNs;
    }
  }
  return kResignalEveryNs;
}

}  // namespace

// The requester's wait for every acknowledgement: a short spin (time-to-safepoint is usually
// microseconds), then sleep; after first_signal_after_ns (and every kResignalEveryNs) the holders
// still missing get the asynchronous safepoint signal; after kWarnAfterNs, one warning.
// Acquire loads of remaining: pair with acknowledge's acq_rel decrement, so every acker's work
// and its last_ack_ns are visible once remaining is 0.
WaitOutcome wait_for_acknowledgements(uint32_t first, uint32_t count, uint32_t epoch,
                                      uint64_t start_ns, RequesterSpin spin, bool handshake) {
  WaitOutcome outcome;
  uint64_t spin_until_ns = start_ns + spin.spin_ns;
  uint64_t next_signal_ns = start_ns + first_signal_after_ns(first, count, epoch);
  while (spin.spin_ns != 0) {
    for (int spin = 0; spin < 64; ++spin) {
      if (g_state.remaining.load(std::memory_order_acquire) == 0) return outcome;
      __builtin_ia32_pause();
    }
    claim_missing_slots(first, count, epoch);
    uint64_t now_ns = kernel::monotonic_ns();
    if (now_ns >= spin_until_ns) break;
    // A long spin (a requester with its own slot) sends the signal rounds as the sleeping loop
    // does, and yields between looks after its pure spin.
    if (now_ns >= next_signal_ns) {
      signal_unacknowledged(first, count, epoch);
      ++outcome.signal_rounds;
      next_signal_ns = now_ns + kResignalEveryNs;
    }
    if (now_ns - start_ns >= spin.pure_spin_ns) kernel::yield_cpu();
  }
  bool warned = false;
  for (;;) {
    claim_missing_slots(first, count, epoch);
    uint32_t remaining = g_state.remaining.load(std::memory_order_acquire);
    if (remaining == 0) return outcome;
    uint64_t now_ns = kernel::monotonic_ns();
    if (now_ns >= next_signal_ns) {
      signal_unacknowledged(first, count, epoch);
      ++outcome.signal_rounds;
      next_signal_ns = now_ns + kResignalEveryNs;
    }
    if (!warned && now_ns - start_ns >= kWarnAfterNs) {
      warned = true;
      warn_unacknowledged(first, count, epoch, handshake);
    }
    uint64_t wake_ns = next_signal_ns;
    if (!warned && start_ns + kWarnAfterNs < wake_ns) wake_ns = start_ns + kWarnAfterNs;
    outcome.slept = true;
    g_state.requester_futex_waits.fetch_add(1, std::memory_order_relaxed);
    // Seq_cst store, then seq_cst load of remaining: this side of the Dekker pair with
    // acknowledge's decrement and load of requester_sleeping (futex_wait also returns at once if
    // remaining changed since the load).
    g_state.requester_sleeping.store(1, std::memory_order_seq_cst);
    remaining = g_state.remaining.load(std::memory_order_seq_cst);
    if (remaining != 0) {
      stop_trace::requester_sleep_begins();
      kernel::futex_wait(&g_state.remaining, remaining, wake_ns > now_ns ? wake_ns - now_ns : 1);
      stop_trace::requester_sleep_ended();
    }
    g_state.requester_sleeping.store(0, std::memory_order_relaxed);
  }
}

// How long the requester spins before it sleeps, given how many slots must reach a poll, whether
// it kept its own slot (its CPU: see kRequesterSpinNs, kRequesterSpinCapNs) and whether a P it
// waits for has its thread on the requester's CPU. That thread cannot poll while the requester
// spins there (the kernel does not preempt a spinning thread for it before a tick: 4 ms on the
// VM of docs/benchmarks.md), so then a requester without a slot sleeps at once and one that kept
// its slot yields between looks from the first (it stays runnable: no wake-up when it is done).
// The requester's own wake-up from a sleep takes a CPU from a running P's thread; the claim of
// still-stopped slots made the Ps left to wait for fewer than the CPUs in most stops under load
// (the 5 us spin then ran on that thread's CPU: the last P's fault 5 us later at the median).
RequesterSpin requester_spin(uint32_t running, bool kept_slot, bool shares_cpu) {
  RequesterSpin spin;
  if (g_state.fixed_spin_ns.load(std::memory_order_relaxed) >= 0) {
    spin.spin_ns = static_cast<uint64_t>(g_state.fixed_spin_ns.load(std::memory_order_relaxed));
    spin.pure_spin_ns = kRequesterPureSpinNs;
    return spin;
  }
  if (running >= g_state.online_cpus) return spin;
  if (!kept_slot || !g_state.cpus_free.load(std::memory_order_relaxed)) {
    if (!shares_cpu) spin.spin_ns = spin.pure_spin_ns = kRequesterSpinNs;
    return spin;
  }
  spin.spin_ns =
      g_state.requester_cap_ns.load(std::memory_order_relaxed) >= 0
          ? static_cast<uint64_t>(g_state.requester_cap_ns.load(std::memory_order_relaxed))
          : kRequesterSpinCapNs;
  spin.pure_spin_ns = shares_cpu ? 0 : kRequesterPureSpinNs;
  return spin;
}

// Operation lock held, before the request's clock starts: may this request's threads spin?
void sample_machine_load() {
  bool free = !g_state.machine_loaded_for_test.load(std::memory_order_relaxed) &&
              (g_state.ignore_machine_load.load(std::memory_order_relaxed) ||
               spinning_leaves_cpus_free(kernel::runnable_thread_count(), g_state.online_cpus));
  g_state.cpus_free.store(free, std::memory_order_relaxed);
}

void wait_for_resume() {
  // Acquire: pairs with begin_request's release store of epoch (see there).
  uint32_t epoch = g_state.epoch.load(std::memory_order_acquire);
  wait_until_resumed(epoch);
}

bool monitor_backs_off_during_stops() {
  return g_state.monitor_backs_off.load(std::memory_order_relaxed);
}
void set_monitor_backs_off_during_stops(bool backs_off) {
  g_state.monitor_backs_off.store(backs_off, std::memory_order_relaxed);
}
bool signal_rounds_wait_out_load() {
  return g_state.signal_rounds_wait_out_load.load(std::memory_order_relaxed);
}
void set_signal_rounds_wait_out_load(bool wait) {
  g_state.signal_rounds_wait_out_load.store(wait, std::memory_order_relaxed);
}

bool requester_may_keep_slot() {
  return g_state.initialized &&
         g_state.wait.load(std::memory_order_relaxed) == SafepointWait::kSpin &&
         (g_state.ignore_machine_load.load(std::memory_order_relaxed) ||
          spinning_leaves_cpus_free(kernel::runnable_thread_count(), g_state.online_cpus));
}

bool spinning_leaves_cpus_free(uint32_t runnable_threads, uint32_t online_cpus) {
  return runnable_threads != 0 && runnable_threads <= online_cpus;
}

}  // namespace usgc::safepoint
