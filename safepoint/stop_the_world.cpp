// safepoint/stop_the_world.cpp — the safepoint protocol of stop_the_world.hpp (read its table
// first). Who writes what:
//   epoch, remaining, stats                    the requester, under g_state.operation_lock
//   resumed_epoch                              the requester, last thing before it unlocks
//   slot.status / requested / acked            see the table in the header
//   usgc_current_poll (each thread's mirror)   its own thread while it holds no slot; while it
//                                              holds one, whoever holds that slot's arm_lock
#include "safepoint/stop_the_world.hpp"

#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <new>

#include "kernel_iface/clock.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/thread_control.hpp"
#include "safepoint/async_safepoint.hpp"
#include "safepoint/fault_handler.hpp"
#include "safepoint/poll_page.hpp"

// Threads that hold no slot poll this: any readable byte will do, and it is readable before
// anything is initialized (the TLS image is relocated before any thread copies it).
alignas(64) static const uint8_t kAlwaysReadableBytes[64] = {};

__attribute__((visibility("default"),
               tls_model("initial-exec"))) __thread usgc_poll_slot usgc_current_poll = {
    kAlwaysReadableBytes, 0, UINT32_MAX};

namespace usgc::safepoint {
namespace {

struct State {
  SafepointSlot* slots = nullptr;
  uint32_t slot_count = 0;
  SafepointHooks hooks{};
  bool initialized = false;

  kernel::FutexMutex<kernel::LockRank::kSafepointOperation> operation_lock;  // serializes requests
  std::atomic<uint32_t> epoch{0};          // the latest request's epoch
  std::atomic<uint32_t> resumed_epoch{0};  // futex word; == epoch when no request is in flight
  std::atomic<uint32_t> remaining{0};      // futex word: acknowledgements still missing
  std::atomic<uint64_t> last_ack_ns{0};    // when `remaining` reached zero (written by that acker)
  // The earliest acknowledgement by a running slot's holder (0: none yet); like last_ack_ns.
  std::atomic<uint64_t> first_running_ack_ns{0};
  StopBreakdown last_breakdown{};  // the requester's, under operation_lock (stop_breakdown_last)
  // Configuration: read at initialization, changed by tests and benchmarks between stops (their
  // setters), read relaxed everywhere (a request sees one value or the other; both are valid).
  // How a stop arms the Ps (USGC_SAFEPOINT_ARMING, read at initialization; see safepoint_arming()).
  std::atomic<SafepointArming> arming{SafepointArming::kSwapPollPointers};
  uint32_t online_cpus = 1;                // read at initialization (requester_spin_ns)
  std::atomic<int64_t> fixed_spin_ns{-1};  // set_requester_spin_for_benchmark; -1: adaptive
  // USGC_SAFEPOINT_WAIT, read at initialization; set_safepoint_wait between stops.
  std::atomic<SafepointWait> wait{SafepointWait::kSpin};
  std::atomic<int64_t> requester_cap_ns{-1};     // set_spin_caps_for_test; -1: kRequesterSpinCapNs
  std::atomic<int64_t> resume_cap_ns{-1};        // set_spin_caps_for_test; -1: kResumeSpinNs
  std::atomic<bool> ignore_machine_load{false};  // set_spin_caps_for_test
  // Whether the machine had a CPU for every runnable thread when the current request began
  // (spinning_leaves_cpus_free): written by the requester before begin_request's seq_cst stores,
  // read relaxed by the threads that acknowledge it (after their acquire of requested_epoch).
  std::atomic<bool> cpus_free{false};
  // The slot the current requester kept (stop_the_world's keep_slot), or nullptr: written by the
  // requester under operation_lock, read by it (end_request).
  SafepointSlot* kept_slot = nullptr;
  // Threads spinning on resumed_epoch now (wait_until_resumed): relaxed, a budget only.
  std::atomic<uint32_t> resume_spinners{0};
  // Threads about to sleep or sleeping on resumed_epoch. Seq_cst: the Dekker pair with
  // end_request's store of resumed_epoch and load of this count (wait_until_resumed).
  std::atomic<uint32_t> resume_sleepers{0};
  std::atomic<uint64_t> requester_futex_waits{0};
  std::atomic<uint64_t> resume_futex_wakes{0};
  std::atomic<uint64_t> stops_kept_slot{0};
  // USGC_SAFEPOINT_ACK, read at initialization; set_safepoint_ack between stops.
  std::atomic<SafepointAck> ack{SafepointAck::kHandler};
  // 1 while the requester sleeps (or is about to) on `remaining`: the last acknowledger wakes it
  // only then (kHandler). Seq_cst: the Dekker pair of acknowledge / wait_for_acknowledgements.
  std::atomic<uint32_t> requester_sleeping{0};
  std::atomic<uint64_t> acknowledger_futex_wakes{0};
  std::atomic<uint64_t> handler_acknowledgements{0};
  // set_monitor_quiet_during_stops; read relaxed by the monitor.
  std::atomic<bool> monitor_quiet{true};
  std::atomic<uint64_t> scheduler_claims{0};
  std::atomic<uint64_t> claimed_holder_waits{0};
  std::atomic<uint64_t> stale_claims{0};

  std::atomic<uint64_t> stops{0};
  std::atomic<uint64_t> handshakes{0};
  std::atomic<uint64_t> preemptions{0};
  // Slot records the requests' loops went through (SafepointStatistics::slot_visits).
  std::atomic<uint64_t> slot_visits{0};
  std::atomic<uint64_t> ttsp_last_ns{0};
  std::atomic<uint64_t> ttsp_max_ns{0};
  std::atomic<uint64_t> ttsp_total_ns{0};
  std::atomic<uint64_t> ttsp_histogram[20]{};
};
State g_state;

thread_local SafepointSlot* t_current_slot [[gnu::tls_model("initial-exec")]] = nullptr;
// The stop this thread holds (between usgc_stop_the_world and usgc_start_the_world).
thread_local bool t_holds_stop [[gnu::tls_model("initial-exec")]] = false;
thread_local bool t_stop_gave_up_slot [[gnu::tls_model("initial-exec")]] = false;
// A poll fault's handler acknowledged request t_handler_acked_epoch for this thread's slot
// (poll_fault_in_handler); its slow path, on the same thread, waits for the resume. Written in
// signal context and read after sigreturn by the same thread: no other reader.
thread_local bool t_handler_acked [[gnu::tls_model("initial-exec")]] = false;
thread_local uint32_t t_handler_acked_epoch [[gnu::tls_model("initial-exec")]] = 0;
// The calling thread's kernel id, cached (0: not read yet).
thread_local int t_thread_id [[gnu::tls_model("initial-exec")]] = 0;

int own_thread_id() {
  if (t_thread_id == 0) t_thread_id = kernel::thread_id();
  return t_thread_id;
}

bool serve_requests(SafepointSlot* slot, bool allow_preemption, bool stopped_already);

// A stop that waits this long prints one line per P it still waits for, then keeps waiting.
constexpr uint64_t kWarnAfterNs = 1'000'000'000;

// How long a requester spins for acknowledgements before it sleeps (requester_spin_ns), when a
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

// Wrap-around-safe "a is before b" for epochs.
bool epoch_before(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}

void reset_mirror(usgc_poll_slot* mirror) {
  const volatile uint8_t* readable = kAlwaysReadableBytes;
  __atomic_store_n(&mirror->poll_page, readable, __ATOMIC_RELAXED);
  __atomic_store_n(&mirror->poll_flag, 0u, __ATOMIC_RELAXED);
  mirror->slot_index = UINT32_MAX;
}

// Under slot->arm_lock: makes the holder's poll mirror match the reasons the slot is armed for.
void update_mirror_locked(SafepointSlot* slot) {
  usgc_poll_slot* mirror = slot->owner_poll;
  if (mirror == nullptr) return;
  bool own_page = slot->armed_for_handshake || slot->armed_for_preempt ||
                  (slot->armed_for_stop && g_state.arming.load(std::memory_order_relaxed) ==
                                               SafepointArming::kSwapPollPointers);
  const volatile uint8_t* page = own_page ? slot_bad_page(slot->index) : global_poll_page();
  bool armed = own_page || slot->armed_for_stop;
  // Release: what the arming requester wrote before (requested_epoch, preempt_requested) is seen
  // by the holder once its poll sees the armed page or flag. The poll is a plain load (the poll
  // ABI, usgc/safepoint.h), ordered like an acquire on x86-64; the slow path then reads the
  // request (reach_safepoint: requested_epoch with acquire).
  __atomic_store_n(&mirror->poll_page, page, __ATOMIC_RELEASE);
  __atomic_store_n(&mirror->poll_flag, armed ? 1u : 0u, __ATOMIC_RELEASE);
}

// The attribution trace's record of an arming (stop_trace.hpp): what the holder was doing.
void trace_slot_armed(SafepointSlot* slot) {
  if (!stop_trace_enabled()) return;
  stop_trace::slot_armed(slot->index, slot->activity.load(std::memory_order_relaxed),
                         static_cast<uint8_t>(slot->status.load(std::memory_order_relaxed)));
}

template <class Setter>
void change_arming(SafepointSlot* slot, Setter setter) {
  kernel::FutexMutexGuard guard(slot->arm_lock);
  setter(slot);
  update_mirror_locked(slot);
}

void acknowledge(SafepointSlot* slot, uint32_t epoch, AckKind kind) {
  const bool by_holder = kind == AckKind::kPollFault || kind == AckKind::kFlagPoll ||
                         kind == AckKind::kSchedulerPoint || kind == AckKind::kAsyncSignal;
  // acq_rel: the acknowledging side's work (it stopped mutating) happens-before the requester's
  // observation of zero; the last one wakes the requester.
  // The time of the latest acknowledgement is when the world was stopped: the end of the time
  // to safepoint (the requester's own wake-up comes after and is not part of it). Written before
  // the decrement, so the requester's acquire of remaining == 0 sees every acker's time.
  uint64_t now_ns = kernel::monotonic_ns();
  if (by_holder) {
    uint64_t first = 0;
    (void)g_state.first_running_ack_ns.compare_exchange_strong(first, now_ns,
                                                               std::memory_order_relaxed);
  }
  uint64_t latest = g_state.last_ack_ns.load(std::memory_order_relaxed);
  while (now_ns > latest &&
         !g_state.last_ack_ns.compare_exchange_weak(latest, now_ns, std::memory_order_relaxed,
                                                    std::memory_order_relaxed)) {
  }
  stop_trace::slot_acknowledged(slot->index, epoch, kind);
  // Seq_cst (at least acq_rel: pairs with the requester's acquire loads of remaining in
  // wait_for_acknowledgements): with the load of requester_sleeping below, the acknowledging side
  // of the Dekker pair with the sleeping requester (it stores requester_sleeping, then loads
  // remaining, both seq_cst): either it sees zero and does not sleep, or we see it asleep and wake
  // it. A requester that spins (or has not slept yet) costs the last acknowledger no system call.
  const uint32_t before = g_state.remaining.fetch_sub(1, std::memory_order_seq_cst);
  USGC_CHECK(before != 0, "safepoint: slot %u acknowledged epoch %u with no acknowledgement due",
             slot->index, epoch);
  if (before != 1) return;
  if (g_state.ack.load(std::memory_order_relaxed) == SafepointAck::kTrampoline ||
      g_state.requester_sleeping.load(std::memory_order_seq_cst) != 0) {
    g_state.acknowledger_futex_wakes.fetch_add(1, std::memory_order_relaxed);
    kernel::futex_wake(&g_state.remaining, 1);
  }
}

// After a won claim CAS for request `epoch` (from `released` to `claimed`): is that request still
// waiting for this slot? A requester claims for the request it is running, but a holder
// (scheduler_safepoint_slow) or a releaser (slot_release) claims for the requested_epoch it read
// before its CAS; descheduled in between, it may find the slot back in `released` after that
// request was acknowledged by someone else and resumed (the requester's claim and its resume, or
// another machine's acquire, poll and release). Acknowledging it then would decrement
// `remaining` of no request (or of the next one) and leave the slot stopped with nobody to resume
// it: the next stop waits forever for this slot while its holder waits for that stop's resume.
// Every request is acknowledged for each of its slots before it resumes, and acked_epoch is stored
// before the acknowledgement, so an epoch that is not before acked_epoch was served. The CAS read
// the status from the resume's seq_cst CAS (or the other machine's release CAS): acquire through
// it, this load sees that acked_epoch. A stale claim is undone (nobody else moves a claimed slot
// before it is acknowledged; the seq_cst CAS keeps the Dekker pairs of the header's table).
bool claim_is_current(SafepointSlot* slot, uint32_t epoch, SlotStatus claimed,
                      SlotStatus released) {
  // Acquire: see above.
  if (epoch_before(slot->acked_epoch.load(std::memory_order_acquire), epoch)) return true;
  SlotStatus expected = claimed;
  const bool undone =
      slot->status.compare_exchange_strong(expected, released, std::memory_order_seq_cst);
  USGC_CHECK(undone, "safepoint: slot %u moved to status %u while its stale claim was undone",
             slot->index, static_cast<unsigned>(expected));
  g_state.stale_claims.fetch_add(1, std::memory_order_relaxed);
  return false;
}

// Claims an idle slot for request `epoch`; true (and acknowledged) when this caller won it.
bool claim_idle_slot(SafepointSlot* slot, uint32_t epoch, AckKind kind) {
  SlotStatus expected = SlotStatus::kIdle;
  // seq_cst: the Dekker pair of the header's table. The requester stores requested_epoch, then
  // CASes here; slot_release stores Idle, then loads requested_epoch; all seq_cst, so at least one
  // of them sees the other, and this CAS (against slot_try_acquire's and the other claimant's)
  // decides who acknowledges.
  if (!slot->status.compare_exchange_strong(expected, SlotStatus::kStoppedIdle,
                                            std::memory_order_seq_cst))
    return false;
  if (!claim_is_current(slot, epoch, SlotStatus::kStoppedIdle, SlotStatus::kIdle)) return false;
  // Release: pairs with the acquire loads of acked_epoch (slot_release, signal_unacknowledged,
  // warn_unacknowledged): who sees the acknowledgement sees the slot StoppedIdle.
  slot->acked_epoch.store(epoch, std::memory_order_release);
  acknowledge(slot, epoch, kind);
  return true;
}

// Claims a slot whose holder is in its scheduler loop, for request `epoch` (the file comment of
// the header: Scheduling -> StoppedScheduling); true (and acknowledged) when this caller won it.
// The requester with kClaimedScheduler; the holder itself, at its scheduler point, with its kind.
bool claim_scheduling_slot(SafepointSlot* slot, uint32_t epoch, AckKind kind) {
  SlotStatus expected = SlotStatus::kScheduling;
  // seq_cst like claim_idle_slot's CAS. Against the holder's CAS Scheduling -> Running
  // (slot_leave_scheduler) exactly one wins: either the holder runs a goroutine (the slot was
  // armed before this CAS, so the goroutine faults at its first poll, or the holder's re-read of
  // requested_epoch serves the request first), or it finds the slot claimed and waits. Acquire
  // side: a CAS that reads the holder's release store of Scheduling sees the goroutine's work.
  if (!slot->status.compare_exchange_strong(expected, SlotStatus::kStoppedScheduling,
                                            std::memory_order_seq_cst))
    return false;
  if (!claim_is_current(slot, epoch, SlotStatus::kStoppedScheduling, SlotStatus::kScheduling))
    return false;
  // Release: as in claim_idle_slot.
  slot->acked_epoch.store(epoch, std::memory_order_release);
  if (kind == AckKind::kClaimedScheduler)
    g_state.scheduler_claims.fetch_add(1, std::memory_order_relaxed);
  acknowledge(slot, epoch, kind);
  return true;
}

// The requester's claim of a slot that is idle, or in its holder's scheduler loop (the claim on).
bool claim_slot(SafepointSlot* slot, uint32_t epoch) {
  if (claim_idle_slot(slot, epoch, AckKind::kClaimedIdle)) return true;
  return scheduler_claim_enabled() &&
         claim_scheduling_slot(slot, epoch, AckKind::kClaimedScheduler);
}

// While the requester waits: claims the slots of [first, first + count) still missing whose
// holder entered its scheduler loop after the scan (their thread may be off its CPU).
void claim_missing_scheduling_slots(uint32_t first, uint32_t count, uint32_t epoch) {
  if (!scheduler_claim_enabled()) return;
  for (uint32_t i = first; i < first + count; ++i) {
    SafepointSlot* slot = &g_state.slots[i];
    // Relaxed: a hint; the CAS decides.
    if (slot->status.load(std::memory_order_relaxed) != SlotStatus::kScheduling) continue;
    // Acquire: pairs with the release stores of acked_epoch (already acknowledged: skip).
    if (slot->acked_epoch.load(std::memory_order_acquire) == epoch) continue;
    (void)claim_scheduling_slot(slot, epoch, AckKind::kClaimedScheduler);
  }
}

bool resumed_since(uint32_t epoch) {
  // Acquire: pairs with end_request's store of resumed_epoch (what the requester did in the
  // stopped world is visible once resumed).
  return !epoch_before(g_state.resumed_epoch.load(std::memory_order_acquire), epoch);
}

// kSpin: spins first, if fewer than online CPUs - 1 threads already do (one CPU stays the
// requester's). Pure pauses, then yields between looks, up to the cap; the clock is read every
// 64 pauses. True when resumed meanwhile.
bool spin_until_resumed(uint32_t epoch) {
  if (!g_state.cpus_free.load(std::memory_order_relaxed)) return false;
  uint32_t budget = g_state.online_cpus > 1 ? g_state.online_cpus - 1 : 0;
  if (g_state.resume_spinners.fetch_add(1, std::memory_order_relaxed) >= budget) {
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
    const uint64_t spent_ns = kernel::monotonic_ns() - start_ns;
    if (spent_ns >= cap_ns) break;
    if (spent_ns >= kResumePureSpinNs) kernel::yield_cpu();
  }
  g_state.resume_spinners.fetch_sub(1, std::memory_order_relaxed);
  return resumed;
}

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

// The requester's wait for every acknowledgement: a short spin (time-to-safepoint is usually
// microseconds), then sleep; after kFirstSignalAfterNs (and every kResignalEveryNs) the holders
// still missing get the asynchronous safepoint signal; after kWarnAfterNs, one warning.
// Acquire loads of remaining: pair with acknowledge's acq_rel decrement, so every acker's work
// and its last_ack_ns are visible once remaining is 0.
struct WaitOutcome {
  bool slept = false;
  uint32_t signal_rounds = 0;
};
WaitOutcome wait_for_acknowledgements(uint32_t first, uint32_t count, uint32_t epoch,
                                      uint64_t start_ns, uint64_t spin_ns, bool handshake) {
  WaitOutcome outcome;
  uint64_t spin_until_ns = start_ns + spin_ns;
  uint64_t next_signal_ns = start_ns + kFirstSignalAfterNs;
  while (spin_ns != 0) {
    for (int spin = 0; spin < 64; ++spin) {
      if (g_state.remaining.load(std::memory_order_acquire) == 0) return outcome;
      __builtin_ia32_pause();
    }
    claim_missing_scheduling_slots(first, count, epoch);
    uint64_t now_ns = kernel::monotonic_ns();
    if (now_ns >= spin_until_ns) break;
    // A long spin (a requester with its own slot) sends the signal rounds as the sleeping loop
    // does, and yields between looks after its pure spin.
    if (now_ns >= next_signal_ns) {
      signal_unacknowledged(first, count, epoch);
      ++outcome.signal_rounds;
      next_signal_ns = now_ns + kResignalEveryNs;
    }
    if (now_ns - start_ns >= kRequesterPureSpinNs) kernel::yield_cpu();
  }
  bool warned = false;
  for (;;) {
    claim_missing_scheduling_slots(first, count, epoch);
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
    if (remaining != 0)
      kernel::futex_wait(&g_state.remaining, remaining, wake_ns > now_ns ? wake_ns - now_ns : 1);
    g_state.requester_sleeping.store(0, std::memory_order_relaxed);
  }
}

// How long the requester spins before it sleeps, given how many slots must reach a poll and
// whether it kept its own slot (its CPU: see kRequesterSpinNs, kRequesterSpinCapNs).
uint64_t requester_spin_ns(uint32_t running, bool kept_slot) {
  if (g_state.fixed_spin_ns.load(std::memory_order_relaxed) >= 0)
    return static_cast<uint64_t>(g_state.fixed_spin_ns.load(std::memory_order_relaxed));
  if (running >= g_state.online_cpus) return 0;
  if (!kept_slot || !g_state.cpus_free.load(std::memory_order_relaxed)) return kRequesterSpinNs;
  return g_state.requester_cap_ns.load(std::memory_order_relaxed) >= 0
             ? static_cast<uint64_t>(g_state.requester_cap_ns.load(std::memory_order_relaxed))
             : kRequesterSpinCapNs;
}

// Operation lock held, every acknowledgement in (remaining == 0).
void record_breakdown(uint64_t start_ns, uint64_t armed_ns, uint32_t running,
                      const WaitOutcome& waited) {
  StopBreakdown& breakdown = g_state.last_breakdown;
  breakdown.requested_at_ns = start_ns;
  breakdown.arming_ns = armed_ns - start_ns;
  uint64_t first = g_state.first_running_ack_ns.load(std::memory_order_relaxed);
  breakdown.first_running_ack_ns = first > start_ns ? first - start_ns : 0;
  breakdown.slots_running = running;
  breakdown.requester_slept = waited.slept;
  breakdown.signal_rounds = waited.signal_rounds;
  breakdown.requester_kept_slot = g_state.kept_slot != nullptr;
}

void record_time_to_safepoint(uint64_t duration_ns) {
  g_state.ttsp_last_ns.store(duration_ns, std::memory_order_relaxed);
  g_state.ttsp_total_ns.fetch_add(duration_ns, std::memory_order_relaxed);
  uint64_t max = g_state.ttsp_max_ns.load(std::memory_order_relaxed);
  if (duration_ns > max) g_state.ttsp_max_ns.store(duration_ns, std::memory_order_relaxed);
  g_state.ttsp_histogram[histogram_bucket_of(duration_ns)].fetch_add(1, std::memory_order_relaxed);
}

// Operation lock held, before the request's clock starts: may this request's threads spin?
void sample_machine_load() {
  bool free = g_state.ignore_machine_load.load(std::memory_order_relaxed) ||
              spinning_leaves_cpus_free(kernel::runnable_thread_count(), g_state.online_cpus);
  g_state.cpus_free.store(free, std::memory_order_relaxed);
}

// Starts a request for the slots [first, first+count): returns the epoch. Operation lock held.
uint32_t begin_request(uint32_t first, uint32_t count, bool handshake) {
  g_state.slot_visits.fetch_add(count, std::memory_order_relaxed);
  uint32_t epoch = g_state.epoch.load(std::memory_order_relaxed) + 1;
  stop_trace::request_begun(epoch, first, count, handshake);
  // Release: pairs with wait_for_resume's acquire load. A machine that finds its slot StoppedIdle
  // (this request's claim CAS, later in this thread) reads this epoch or a later one.
  g_state.epoch.store(epoch, std::memory_order_release);
  g_state.remaining.store(count, std::memory_order_relaxed);
  g_state.last_ack_ns.store(0, std::memory_order_relaxed);
  g_state.first_running_ack_ns.store(0, std::memory_order_relaxed);
  // seq_cst: a slot releaser that CASes Running -> Idle after this store sees the request
  // (Dekker with slot_release); reach_safepoint and safepoint_requested load it with acquire.
  for (uint32_t i = first; i < first + count; ++i)
    g_state.slots[i].requested_epoch.store(epoch, std::memory_order_seq_cst);
  return epoch;
}

// Claims the idle ones among the requested slots, and (the claim on) those whose holder is in its
// scheduler loop; returns how many were left to reach a poll or a scheduler point.
uint32_t claim_idle_slots(uint32_t first, uint32_t count, uint32_t epoch) {
  g_state.slot_visits.fetch_add(count, std::memory_order_relaxed);
  uint32_t running = 0;
  for (uint32_t i = first; i < first + count; ++i) {
    if (!claim_slot(&g_state.slots[i], epoch)) ++running;
  }
  return running;
}

// Returns the moment the world resumed: right after the store of resumed_epoch, before any
// wake-up (the end of the pause).
uint64_t end_request(uint32_t first, uint32_t count, uint32_t epoch) {
  g_state.slot_visits.fetch_add(count, std::memory_order_relaxed);
  for (uint32_t i = first; i < first + count; ++i) {
    SafepointSlot* slot = &g_state.slots[i];
    // seq_cst like every status change (at least release here): the slot is Idle (or
    // Scheduling) before resumed_epoch is published below, so a machine woken by it retries
    // slot_try_acquire (or slot_leave_scheduler: their seq_cst CASes) and finds it so. A loop:
    // the holder of a StoppedScheduling slot may release it meanwhile (-> StoppedIdle).
    SlotStatus expected = slot->status.load(std::memory_order_seq_cst);
    while (expected == SlotStatus::kStoppedIdle || expected == SlotStatus::kStoppedScheduling) {
      SlotStatus resumed =
          expected == SlotStatus::kStoppedIdle ? SlotStatus::kIdle : SlotStatus::kScheduling;
      if (slot->status.compare_exchange_weak(expected, resumed, std::memory_order_seq_cst)) break;
    }
  }
  if (g_state.kept_slot != nullptr) {
    // seq_cst like every status change: the requester's own slot runs again.
    g_state.kept_slot->status.store(SlotStatus::kRunning, std::memory_order_seq_cst);
    g_state.kept_slot = nullptr;
  }
  // Seq_cst (at least release: everything the requester did while the slots were stopped
  // happens-before each waiter's acquire load of the new resumed_epoch): the waking side of the
  // Dekker pair of wait_until_resumed, with the load of resume_sleepers below.
  g_state.resumed_epoch.store(epoch, std::memory_order_seq_cst);
  const uint64_t resumed_ns = kernel::monotonic_ns();
  if (g_state.wait.load(std::memory_order_relaxed) == SafepointWait::kSleep ||
      g_state.resume_sleepers.load(std::memory_order_seq_cst) != 0) {
    g_state.resume_futex_wakes.fetch_add(1, std::memory_order_relaxed);
    kernel::futex_wake_all(&g_state.resumed_epoch);
  }
  return resumed_ns;
}

// Requests are made without a slot: a goroutine gives its P up first (it could otherwise wait
// for itself), and takes one back after resuming. Unless it may keep it (keep_slot, kSpin): then
// it only tries the operation lock, because a requester holding the lock may be waiting for this
// very slot; *kept says which way it went.
int enter_request(bool keep_slot = false, bool* kept = nullptr) {
  if (!g_state.initialized) return EPERM;
  if (t_holds_stop) return EDEADLK;
  t_stop_gave_up_slot = false;
  if (kept != nullptr) *kept = false;
  if (keep_slot && t_current_slot != nullptr &&
      g_state.wait.load(std::memory_order_relaxed) == SafepointWait::kSpin &&
      g_state.operation_lock.try_lock()) {
    *kept = true;
    return 0;
  }
  if (t_current_slot != nullptr) {
    if (g_state.hooks.requester_enter_native == nullptr) return EDEADLK;
    g_state.hooks.requester_enter_native();
    t_stop_gave_up_slot = true;
    USGC_CHECK(t_current_slot == nullptr,
               "safepoint: requester_enter_native did not release the slot");
  }
  g_state.operation_lock.lock();
  return 0;
}

void leave_request() {
  g_state.operation_lock.unlock();
  if (t_stop_gave_up_slot) {
    t_stop_gave_up_slot = false;
    g_state.hooks.requester_leave_native();
  }
}

// Signal context: the poll fault's SIGSEGV handler, which has just redirected this thread to the
// trampoline (kHandler). The interrupted goroutine is at a poll, the one place it may stop, and
// from here to poll_fault_slow_path this thread runs only sigreturn and the trampoline, which
// write nothing but the registers they save below the goroutine's stack pointer (nothing a
// collector reads: a poll stop is scanned precisely, never conservatively). So the stop is
// acknowledged now, one sigreturn and one trampoline (4 us at the median on the VM of
// docs/benchmarks.md) before the slow path could, and the slow path waits for the resume.
// Lock-free and allocation-free: acknowledge's atomics, the vDSO clock and at most one futex
// wake, all async-signal-safe.
void poll_fault_in_handler() {
  SafepointSlot* slot = t_current_slot;
  if (slot == nullptr || g_state.ack.load(std::memory_order_relaxed) != SafepointAck::kHandler)
    return;
  // Acquire, as in reach_safepoint.
  uint32_t requested = slot->requested_epoch.load(std::memory_order_acquire);
  if (requested == slot->acked_epoch.load(std::memory_order_relaxed)) return;  // a preemption
  // As in reach_safepoint: seq_cst status, release acked_epoch (same pairings).
  slot->status.store(SlotStatus::kAtSafepoint, std::memory_order_seq_cst);
  slot->acked_epoch.store(requested, std::memory_order_release);
  t_handler_acked_epoch = requested;
  t_handler_acked = true;
  g_state.handler_acknowledgements.fetch_add(1, std::memory_order_relaxed);
  acknowledge(slot, requested, AckKind::kPollFault);
}

void poll_fault_slow_path() {
  SafepointSlot* slot = t_current_slot;
  stop_trace::set_next_ack_kind(AckKind::kPollFault);
  if (t_handler_acked) {
    // Acknowledged in the handler (poll_fault_in_handler): wait for that request's resume here,
    // then serve what came after (reach_safepoint) as if it had stopped there.
    t_handler_acked = false;
    wait_until_resumed(t_handler_acked_epoch);
    // seq_cst like every status change: Running again, after the resume.
    slot->status.store(SlotStatus::kRunning, std::memory_order_seq_cst);
    serve_requests(slot, true, true);
    return;
  }
  if (slot != nullptr) reach_safepoint(slot);
}

bool thread_holds_slot() {
  return t_current_slot != nullptr;
}

// USGC_SAFEPOINT_ARMING (kernel_iface/environment.hpp: the words mprotect, swap in this order);
// swap unless set.
SafepointArming arming_from_environment() {
  return kernel::read_environment_choice(kernel::EnvironmentVariableId::kSafepointArming, 1) == 0
             ? SafepointArming::kProtectGlobalPage
             : SafepointArming::kSwapPollPointers;
}

// USGC_SAFEPOINT_ACK (the words trampoline, handler in this order); handler unless set.
SafepointAck ack_from_environment() {
  return kernel::read_environment_choice(kernel::EnvironmentVariableId::kSafepointAck, 1) == 0
             ? SafepointAck::kTrampoline
             : SafepointAck::kHandler;
}

// USGC_SAFEPOINT_CLAIM (a boolean); on unless set.
bool claim_from_environment() {
  return kernel::read_environment_number(kernel::EnvironmentVariableId::kSafepointClaim, 1) != 0;
}

// USGC_SAFEPOINT_WAIT (the words sleep, spin in this order); spin unless set.
SafepointWait wait_from_environment() {
  return kernel::read_environment_choice(kernel::EnvironmentVariableId::kSafepointWait, 1) == 0
             ? SafepointWait::kSleep
             : SafepointWait::kSpin;
}

}  // namespace

bool requester_may_keep_slot() {
  return g_state.initialized &&
         g_state.wait.load(std::memory_order_relaxed) == SafepointWait::kSpin &&
         (g_state.ignore_machine_load.load(std::memory_order_relaxed) ||
          spinning_leaves_cpus_free(kernel::runnable_thread_count(), g_state.online_cpus));
}

bool spinning_leaves_cpus_free(uint32_t runnable_threads, uint32_t online_cpus) {
  return runnable_threads != 0 && runnable_threads <= online_cpus;
}

uint32_t histogram_bucket_of(uint64_t duration_ns) {
  uint64_t us = duration_ns / 1000;
  if (us == 0) return 0;
  uint32_t bucket = 64 - static_cast<uint32_t>(__builtin_clzll(us));  // us in [2^(b-1), 2^b)
  return bucket > 19 ? 19 : bucket;
}

kernel::Status safepoint_initialize(uint32_t slot_count, const SafepointHooks& hooks) {
  if (g_state.initialized || slot_count == 0) return kernel::Status::failure(EINVAL);
  kernel::Status pages = poll_pages_initialize(slot_count);
  if (!pages.ok()) return pages;
  if (!stop_trace::initialize(slot_count)) return kernel::Status::failure(ENOMEM);
  auto* slots = new (std::nothrow) SafepointSlot[slot_count];
  if (slots == nullptr) return kernel::Status::failure(ENOMEM);
  for (uint32_t i = 0; i < slot_count; ++i) slots[i].index = i;
  g_state.hooks = hooks;
  g_state.arming.store(arming_from_environment(), std::memory_order_relaxed);
  g_state.wait.store(wait_from_environment(), std::memory_order_relaxed);
  g_state.ack.store(ack_from_environment(), std::memory_order_relaxed);
  set_scheduler_claim(claim_from_environment());
  g_state.online_cpus = kernel::online_cpu_count();
  FaultHandlerHooks fault_hooks{};
  fault_hooks.thread_runs_goroutine =
      hooks.thread_runs_goroutine != nullptr ? hooks.thread_runs_goroutine : thread_holds_slot;
  fault_hooks.poll_slow_path = poll_fault_slow_path;
  fault_hooks.poll_fault_in_handler = poll_fault_in_handler;
  fault_hooks.stack_overflow_goroutine = hooks.stack_overflow_goroutine;
  kernel::Status handler = install_fault_handler(fault_hooks);
  if (!handler.ok()) {
    delete[] slots;
    return handler;
  }
  if (hooks.runs_goroutine_code != nullptr && hooks.blocked_call_release_processor != nullptr &&
      hooks.blocked_call_reacquire_processor != nullptr) {
    AsyncSafepointHooks async_hooks{hooks.runs_goroutine_code, hooks.blocked_call_release_processor,
                                    hooks.blocked_call_reacquire_processor, hooks.async_stop_begin,
                                    hooks.async_stop_end};
    kernel::Status async = async_safepoints_initialize(async_hooks);
    if (!async.ok())
      kernel::print_message(
          "asynchronous safepoints are off: installing the SIGURG handler failed (errno %d)",
          async.error());
  }
  g_state.slots = slots;
  g_state.slot_count = slot_count;
  uint32_t epoch = g_state.epoch.load(std::memory_order_relaxed);
  g_state.resumed_epoch.store(epoch, std::memory_order_relaxed);
  g_state.initialized = true;
  return kernel::Status::success();
}

void safepoint_shutdown() {
  if (!g_state.initialized) return;
  async_safepoints_shutdown();
  uninstall_fault_handler();
  if (stop_trace_enabled()) print_stop_attribution_totals();
  g_state.initialized = false;
  delete[] g_state.slots;
  g_state.slots = nullptr;
  g_state.slot_count = 0;
}

uint32_t slot_count() {
  return g_state.slot_count;
}
SafepointArming safepoint_arming() {
  return g_state.arming.load(std::memory_order_relaxed);
}
void set_safepoint_arming(SafepointArming arming) {
  g_state.arming.store(arming, std::memory_order_relaxed);
}
void set_requester_spin_for_benchmark(int64_t spin_ns) {
  g_state.fixed_spin_ns.store(spin_ns < 0 ? -1 : spin_ns, std::memory_order_relaxed);
}
SafepointAck safepoint_ack() {
  return g_state.ack.load(std::memory_order_relaxed);
}
void set_safepoint_ack(SafepointAck ack) {
  g_state.ack.store(ack, std::memory_order_relaxed);
}
SafepointWait safepoint_wait() {
  return g_state.wait.load(std::memory_order_relaxed);
}
void set_safepoint_wait(SafepointWait wait) {
  g_state.wait.store(wait, std::memory_order_relaxed);
}
void set_spin_caps_for_test(int64_t requester_cap_ns, int64_t resume_cap_ns,
                            bool ignore_machine_load) {
  g_state.requester_cap_ns.store(requester_cap_ns < 0 ? -1 : requester_cap_ns,
                                 std::memory_order_relaxed);
  g_state.resume_cap_ns.store(resume_cap_ns < 0 ? -1 : resume_cap_ns, std::memory_order_relaxed);
  g_state.ignore_machine_load.store(ignore_machine_load, std::memory_order_relaxed);
}
void set_scheduler_claim(bool enabled) {
  detail::g_scheduler_claim.store(enabled, std::memory_order_relaxed);
}
bool stop_in_flight() {
  // Relaxed: a hint for the monitor (it only decides whether to skip one round of its work).
  return g_state.epoch.load(std::memory_order_relaxed) !=
         g_state.resumed_epoch.load(std::memory_order_relaxed);
}
bool monitor_quiet_during_stops() {
  return g_state.monitor_quiet.load(std::memory_order_relaxed);
}
void set_monitor_quiet_during_stops(bool quiet) {
  g_state.monitor_quiet.store(quiet, std::memory_order_relaxed);
}
SafepointSlot* slot_at(uint32_t index) {
  return index < g_state.slot_count ? &g_state.slots[index] : nullptr;
}
SafepointSlot* current_slot() {
  return t_current_slot;
}

bool slot_try_acquire(SafepointSlot* slot) {
  SlotStatus expected = SlotStatus::kIdle;
  // seq_cst: pairs with begin_request's requested_epoch stores (see the header), and against
  // claim_idle_slot's CAS only one of the two wins an Idle slot.
  if (!slot->status.compare_exchange_strong(expected, SlotStatus::kRunning,
                                            std::memory_order_seq_cst))
    return false;
  t_current_slot = slot;
  const int tid = own_thread_id();
  change_arming(slot, [tid](SafepointSlot* s) {
    s->owner_poll = &usgc_current_poll;
    usgc_current_poll.slot_index = s->index;
    s->owner_tid.store(tid, std::memory_order_relaxed);
  });
  return true;
}

void slot_release(SafepointSlot* slot) {
  USGC_ASSERT(t_current_slot == slot, "safepoint: releasing slot %u that this thread does not hold",
              slot->index);
  {
    kernel::FutexMutexGuard guard(slot->arm_lock);
    slot->owner_poll = nullptr;
    slot->owner_tid.store(0, std::memory_order_relaxed);
    slot->armed_for_preempt = false;
    slot->preempt_requested.store(0, std::memory_order_relaxed);
    slot->retake_requested.store(0, std::memory_order_relaxed);
    slot->activity.store(ProcessorActivity::kNone, std::memory_order_relaxed);
    reset_mirror(&usgc_current_poll);
  }
  t_current_slot = nullptr;
  // A seq_cst CAS (a store would do for Running, but a Scheduling slot may be claimed under us),
  // then a seq_cst load: this side of the Dekker pair with begin_request (its requested_epoch
  // store, then its claim CAS); at least one of the two sees the other.
  SlotStatus expected = slot->status.load(std::memory_order_relaxed);
  for (;;) {
    if (expected == SlotStatus::kStoppedScheduling) {
      // Claimed in our scheduler loop (and acknowledged by the claimant): still stopped, now
      // with nobody holding it; the resume makes it Idle.
      if (slot->status.compare_exchange_weak(expected, SlotStatus::kStoppedIdle,
                                             std::memory_order_seq_cst))
        return;
      continue;
    }
    USGC_ASSERT(expected == SlotStatus::kRunning || expected == SlotStatus::kScheduling,
                "safepoint: releasing slot %u in status %u", slot->index,
                static_cast<unsigned>(expected));
    if (slot->status.compare_exchange_weak(expected, SlotStatus::kIdle, std::memory_order_seq_cst))
      break;
  }
  // A request that came after our last poll: acknowledge it on the way out, unless the
  // requester's scan claims the slot first (whoever wins the CAS acknowledges).
  uint32_t requested = slot->requested_epoch.load(std::memory_order_seq_cst);
  // Acquire: pairs with the release stores of acked_epoch (claim_idle_slot, reach_safepoint).
  if (requested != slot->acked_epoch.load(std::memory_order_acquire))
    claim_idle_slot(slot, requested, AckKind::kReleased);
}

void wait_for_resume() {
  // Acquire: pairs with begin_request's release store of epoch (see there).
  uint32_t epoch = g_state.epoch.load(std::memory_order_acquire);
  wait_until_resumed(epoch);
}

bool reach_safepoint(SafepointSlot* slot, bool allow_preemption) {
  return serve_requests(slot, allow_preemption, false);
}

void slot_leave_scheduler_slow(SafepointSlot* slot) {
  SlotStatus expected = slot->status.load(std::memory_order_relaxed);
  while (expected != SlotStatus::kRunning) {
    USGC_ASSERT(expected == SlotStatus::kScheduling || expected == SlotStatus::kStoppedScheduling,
                "safepoint: slot %u leaves the scheduler in status %u", slot->index,
                static_cast<unsigned>(expected));
    if (expected == SlotStatus::kScheduling) {
      // seq_cst: against the claim CAS (claim_scheduling_slot), exactly one of the two wins.
      if (slot->status.compare_exchange_weak(expected, SlotStatus::kRunning,
                                             std::memory_order_seq_cst))
        break;
      continue;
    }
    // Claimed by a stop: no goroutine may run on this P until it resumed (the resume makes the
    // slot Scheduling again before it publishes resumed_epoch).
    g_state.claimed_holder_waits.fetch_add(1, std::memory_order_relaxed);
    wait_for_resume();
    // seq_cst: after the resume's seq_cst CAS.
    expected = slot->status.load(std::memory_order_seq_cst);
  }
  // Running now: a request that came while we were in the loop is served before the goroutine
  // runs (its poll would fault anyway: the slot is armed; this saves the round trip).
  if (safepoint_requested(slot)) {
    stop_trace::set_next_ack_kind(AckKind::kSchedulerPoint);
    reach_safepoint(slot);
  }
}

bool holder_claim_scheduling_slot(SafepointSlot* slot, uint32_t requested, AckKind kind) {
  return claim_scheduling_slot(slot, requested, kind);
}

bool scheduler_safepoint_slow(SafepointSlot* slot) {
  const AckKind kind = stop_trace::take_next_ack_kind();
  for (;;) {
    // Acquire: a StoppedScheduling read here comes from a claim CAS made after begin_request's
    // release store of epoch (wait_for_resume reads it).
    SlotStatus status = slot->status.load(std::memory_order_acquire);
    if (status == SlotStatus::kStoppedScheduling) {
      g_state.claimed_holder_waits.fetch_add(1, std::memory_order_relaxed);
      wait_for_resume();
      return true;
    }
    if (!safepoint_requested(slot)) return false;
    if (status != SlotStatus::kScheduling) {  // the claim off
      stop_trace::set_next_ack_kind(kind);
      return reach_safepoint(slot);
    }
    // Acquire, as in serve_requests.
    uint32_t requested = slot->requested_epoch.load(std::memory_order_acquire);
    // The holder claims its own slot: the same CAS as the requester's, so the request is
    // acknowledged once whoever comes first. A lost CAS means the requester claimed it (the
    // loop then waits), a stale one that the request was served meanwhile (look again).
    if (holder_claim_scheduling_slot(slot, requested, kind)) {
      wait_for_resume();
      return true;
    }
  }
}

namespace {
// reach_safepoint's body; stopped_already: the caller already stopped for a request of this slot
// (acknowledged in the poll fault's handler) and waited for its resume.
bool serve_requests(SafepointSlot* slot, bool allow_preemption, bool stopped_already) {
  const AckKind kind = stop_trace::take_next_ack_kind();
  bool stopped = stopped_already;
  for (;;) {
    // Acquire: pairs with begin_request's seq_cst store of requested_epoch (what the requester
    // wrote before it is visible). acked_epoch is only written for this slot by its holder (here)
    // or, while it is idle, by its claimant: relaxed suffices for our own value.
    uint32_t requested = slot->requested_epoch.load(std::memory_order_acquire);
    if (requested == slot->acked_epoch.load(std::memory_order_relaxed)) break;
    USGC_ASSERT(slot->status.load(std::memory_order_relaxed) != SlotStatus::kScheduling &&
                    slot->status.load(std::memory_order_relaxed) != SlotStatus::kStoppedScheduling,
                "safepoint: slot %u serves a request from its scheduler loop without leaving it",
                slot->index);
    // seq_cst like every status change (the header's table); the requester's acquire loads of
    // status (signal_unacknowledged) see AtSafepoint and leave this thread alone.
    slot->status.store(SlotStatus::kAtSafepoint, std::memory_order_seq_cst);
    // Release: pairs with the acquire loads of acked_epoch (signal_unacknowledged,
    // warn_unacknowledged, slot_release).
    slot->acked_epoch.store(requested, std::memory_order_release);
    acknowledge(slot, requested, kind);
    wait_until_resumed(requested);
    // seq_cst like every status change: Running again, after the resume.
    slot->status.store(SlotStatus::kRunning, std::memory_order_seq_cst);
    stopped = true;
  }
  if (stopped && g_state.hooks.resumed_from_stop != nullptr) g_state.hooks.resumed_from_stop();
  if (allow_preemption && slot->preempt_requested.load(std::memory_order_relaxed) != 0) {
    slot->preempt_requested.store(0, std::memory_order_relaxed);
    change_arming(slot, [](SafepointSlot* s) { s->armed_for_preempt = false; });
    g_state.preemptions.fetch_add(1, std::memory_order_relaxed);
    if (g_state.hooks.preempt_current != nullptr) g_state.hooks.preempt_current();
    stopped = true;
  }
  return stopped;
}
}  // namespace

void request_preemption(SafepointSlot* slot, bool signal_thread) {
  slot->preempt_requested.store(1, std::memory_order_relaxed);
  change_arming(slot, [signal_thread](SafepointSlot* s) {
    if (s->owner_poll != nullptr) {
      s->armed_for_preempt = true;
      // In case it does not poll (asynchronous preemption).
      if (signal_thread) (void)signal_slot_holder_locked(s);
    }
  });
}

void record_probe_locked(SafepointSlot* slot, const kernel::ThreadProbe& probe) {
  slot->probed_system_call.store(probe.in_system_call ? probe.system_call : -1,
                                 std::memory_order_relaxed);
  slot->probed_instruction_pointer.store(probe.instruction_pointer, std::memory_order_relaxed);
  for (int i = 0; i < 6; ++i)
    slot->probed_arguments[i].store(probe.system_call_arguments[i], std::memory_order_relaxed);
}

bool request_retake(SafepointSlot* slot, int expected_tid, const kernel::ThreadProbe& probe) {
  kernel::FutexMutexGuard guard(slot->arm_lock);
  if (slot->owner_poll == nullptr ||
      slot->owner_tid.load(std::memory_order_relaxed) != expected_tid)
    return false;
  record_probe_locked(slot, probe);
  slot->retake_requested.store(1, std::memory_order_relaxed);
  return signal_slot_holder_locked(slot);
}

int stop_the_world(usgc_stop_info* info, uint64_t* world_stopped_at_ns, bool keep_slot) {
  bool kept = false;
  int error = enter_request(keep_slot, &kept);
  if (error != 0) return error;
  t_holds_stop = true;
  sample_machine_load();
  uint64_t start_ns = kernel::monotonic_ns();
  uint32_t count = g_state.slot_count;
  uint32_t epoch = begin_request(0, count, false);
  SafepointSlot* own = kept ? t_current_slot : nullptr;
  g_state.kept_slot = own;
  if (own != nullptr) {
    // The requester's own slot: acknowledged here, by its holder. AtSafepoint (seq_cst like every
    // status change) keeps the monitor's retake and the signal rounds away from it, and makes
    // claim_idle_slots count it as not idle (subtracted below). Release: pairs with the acquire
    // loads of acked_epoch, as in reach_safepoint.
    own->status.store(SlotStatus::kAtSafepoint, std::memory_order_seq_cst);
    own->acked_epoch.store(epoch, std::memory_order_release);
    acknowledge(own, epoch, AckKind::kRequesterOwn);
    g_state.stops_kept_slot.fetch_add(1, std::memory_order_relaxed);
  }
  if (g_state.arming.load(std::memory_order_relaxed) == SafepointArming::kProtectGlobalPage) {
    kernel::Status armed = arm_global_poll_page();
    USGC_CHECK(armed.ok(), "stop the world: mprotect of the global poll page failed (errno %d)",
               armed.error());
  }
  g_state.slot_visits.fetch_add(count, std::memory_order_relaxed);
  for (uint32_t i = 0; i < count; ++i) {
    if (&g_state.slots[i] == own) continue;  // it does not poll for this stop
    change_arming(&g_state.slots[i], [](SafepointSlot* s) { s->armed_for_stop = true; });
    trace_slot_armed(&g_state.slots[i]);
  }
  uint32_t running = claim_idle_slots(0, count, epoch) - (own != nullptr ? 1 : 0);
  uint64_t armed_ns = kernel::monotonic_ns();
  WaitOutcome waited = wait_for_acknowledgements(0, count, epoch, start_ns,
                                                 requester_spin_ns(running, own != nullptr), false);
  stop_trace::request_observed();
  uint64_t stopped_ns = g_state.last_ack_ns.load(std::memory_order_relaxed);
  record_breakdown(start_ns, armed_ns, running, waited);
  uint64_t ttsp_ns = stopped_ns > start_ns ? stopped_ns - start_ns : 0;
  uint64_t wake_ns = kernel::monotonic_ns() - (stopped_ns > start_ns ? stopped_ns : start_ns);
  record_time_to_safepoint(ttsp_ns);
  g_state.stops.fetch_add(1, std::memory_order_relaxed);
  if (world_stopped_at_ns != nullptr)
    *world_stopped_at_ns = stopped_ns > start_ns ? stopped_ns : start_ns;
  if (info != nullptr) {
    info->time_to_safepoint_ns = ttsp_ns;
    info->requester_wake_ns = wake_ns;
    info->procs = count;
    info->procs_running = running;
  }
  return 0;
}

int start_the_world(uint64_t* world_resumed_at_ns) {
  if (!t_holds_stop) return EPERM;
  uint32_t count = g_state.slot_count;
  if (g_state.arming.load(std::memory_order_relaxed) == SafepointArming::kProtectGlobalPage) {
    kernel::Status disarmed = disarm_global_poll_page();
    USGC_CHECK(disarmed.ok(), "start the world: mprotect of the global poll page failed (errno %d)",
               disarmed.error());
  }
  g_state.slot_visits.fetch_add(count, std::memory_order_relaxed);
  for (uint32_t i = 0; i < count; ++i) {
    if (&g_state.slots[i] == g_state.kept_slot) continue;  // never armed for this stop
    change_arming(&g_state.slots[i], [](SafepointSlot* s) { s->armed_for_stop = false; });
  }
  uint64_t resumed_ns = end_request(0, count, g_state.epoch.load(std::memory_order_relaxed));
  if (world_resumed_at_ns != nullptr) *world_resumed_at_ns = resumed_ns;
  t_holds_stop = false;
  leave_request();
  return 0;
}

int handshake(uint32_t slot_index, void (*fn)(uint32_t, void*), void* arg, usgc_stop_info* info) {
  if (g_state.initialized && slot_index >= g_state.slot_count) return EINVAL;
  int error = enter_request();
  if (error != 0) return error;
  SafepointSlot* slot = &g_state.slots[slot_index];
  sample_machine_load();
  uint64_t start_ns = kernel::monotonic_ns();
  uint32_t epoch = begin_request(slot_index, 1, true);
  change_arming(slot, [](SafepointSlot* s) { s->armed_for_handshake = true; });
  trace_slot_armed(slot);
  uint32_t running = claim_idle_slots(slot_index, 1, epoch);
  uint64_t armed_ns = kernel::monotonic_ns();
  WaitOutcome waited = wait_for_acknowledgements(slot_index, 1, epoch, start_ns,
                                                 requester_spin_ns(running, false), true);
  stop_trace::request_observed();
  uint64_t stopped_ns = g_state.last_ack_ns.load(std::memory_order_relaxed);
  record_breakdown(start_ns, armed_ns, running, waited);
  uint64_t ttsp_ns = stopped_ns > start_ns ? stopped_ns - start_ns : 0;
  uint64_t wake_ns = kernel::monotonic_ns() - (stopped_ns > start_ns ? stopped_ns : start_ns);
  if (fn != nullptr) fn(slot_index, arg);
  change_arming(slot, [](SafepointSlot* s) { s->armed_for_handshake = false; });
  end_request(slot_index, 1, epoch);
  g_state.handshakes.fetch_add(1, std::memory_order_relaxed);
  leave_request();
  if (info != nullptr) {
    info->time_to_safepoint_ns = ttsp_ns;
    info->requester_wake_ns = wake_ns;
    info->procs = 1;
    info->procs_running = running;
  }
  return 0;
}

StopBreakdown stop_breakdown_last() {
  kernel::FutexMutexGuard guard(g_state.operation_lock);
  return g_state.last_breakdown;
}

SafepointStatistics safepoint_statistics() {
  SafepointStatistics statistics{};
  statistics.stops = g_state.stops.load(std::memory_order_relaxed);
  statistics.handshakes = g_state.handshakes.load(std::memory_order_relaxed);
  statistics.preemptions = g_state.preemptions.load(std::memory_order_relaxed);
  statistics.slot_visits = g_state.slot_visits.load(std::memory_order_relaxed);
  statistics.time_to_safepoint_last_ns = g_state.ttsp_last_ns.load(std::memory_order_relaxed);
  statistics.time_to_safepoint_max_ns = g_state.ttsp_max_ns.load(std::memory_order_relaxed);
  statistics.time_to_safepoint_total_ns = g_state.ttsp_total_ns.load(std::memory_order_relaxed);
  for (int i = 0; i < 20; ++i)
    statistics.time_to_safepoint_histogram[i] =
        g_state.ttsp_histogram[i].load(std::memory_order_relaxed);
  statistics.requester_futex_waits = g_state.requester_futex_waits.load(std::memory_order_relaxed);
  statistics.resume_futex_wakes = g_state.resume_futex_wakes.load(std::memory_order_relaxed);
  statistics.stops_requester_kept_slot = g_state.stops_kept_slot.load(std::memory_order_relaxed);
  statistics.acknowledger_futex_wakes =
      g_state.acknowledger_futex_wakes.load(std::memory_order_relaxed);
  statistics.handler_acknowledgements =
      g_state.handler_acknowledgements.load(std::memory_order_relaxed);
  statistics.scheduler_claims = g_state.scheduler_claims.load(std::memory_order_relaxed);
  statistics.claimed_holder_waits = g_state.claimed_holder_waits.load(std::memory_order_relaxed);
  statistics.stale_claims = g_state.stale_claims.load(std::memory_order_relaxed);
  return statistics;
}

}  // namespace usgc::safepoint

extern "C" {
__attribute__((visibility("default"))) void usgc_safepoint_flag_slow_path(void) {
  usgc::safepoint::SafepointSlot* slot = usgc::safepoint::current_slot();
  usgc::safepoint::stop_trace::set_next_ack_kind(usgc::safepoint::AckKind::kFlagPoll);
  if (slot != nullptr) usgc::safepoint::reach_safepoint(slot);
}
__attribute__((visibility("default"))) int usgc_stop_the_world(usgc_stop_info* info) {
  return usgc::safepoint::stop_the_world(info);
}
__attribute__((visibility("default"))) int usgc_start_the_world(void) {
  return usgc::safepoint::start_the_world();
}
__attribute__((visibility("default"))) int usgc_handshake(uint32_t proc,
                                                          void (*fn)(uint32_t, void*), void* arg,
                                                          usgc_stop_info* info) {
  return usgc::safepoint::handshake(proc, fn, arg, info);
}
}
