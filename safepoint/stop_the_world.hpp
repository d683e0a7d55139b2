// safepoint/stop_the_world.hpp — the safepoint protocol: P slots, stop-the-world, per-P
// handshakes, preemption requests, and time-to-safepoint statistics.
//
// Participants are P slots, not goroutines: every goroutine that may mutate the heap runs on a
// P (safepoint/goroutine_state.hpp), so "every P stopped" is "every goroutine safe". Each slot
// has a status owned by this file:
//
//   status        meaning                                   who moves it
//   ------------  ----------------------------------------  ------------------------------------
//   kIdle         no machine holds the P                    slot_release (Running or Scheduling
//                                                           -> Idle)
//   kRunning      a machine holds it, its goroutine polls   slot_try_acquire (Idle -> Running)
//   kAtSafepoint  its machine waits in the slow path, or    the owner, in reach_safepoint, or
//                 it is the requester that kept its slot    in stop_the_world (keep_slot); back
//                 through the stop                          to Running at the resume
//   kStoppedIdle  idle, claimed by a stop: nobody may       the requester (or a releaser that saw
//                 acquire it until the stop ends            the stop): Idle -> StoppedIdle; the
//                                                           requester's resume: -> Idle; a holder
//                                                           releasing a StoppedScheduling slot
//   kScheduling   held, its machine is in the scheduler     the holder: Running -> Scheduling
//                 loop (between goroutines, looking for     (slot_enter_scheduler), and back by
//                 work, about to go idle), or its goroutine CAS before it runs one, or before
//                 makes a spawn's stack (runtime/           the spawner goes on
//                 scheduler.hpp, SpawnStackWork): no        (slot_leave_scheduler)
//                 goroutine code runs on it, nothing polls
//   kStoppedSched held, claimed by a stop in the scheduler  whoever wins the CAS Scheduling ->
//   (kStopped-    loop: its holder may not run a goroutine  StoppedScheduling: the requester, or
//   Scheduling)   until the stop ends                       the holder itself at its scheduler
//                                                           point; the resume: -> Scheduling; a
//                                                           holder releasing it: -> StoppedIdle
//   kStoppedAt-   still stopped by an earlier request (its  the requester: AtSafepoint ->
//   Safepoint     holder not back from that resume yet),    StoppedAtSafepoint when the slot's
//                 claimed by the next one: its holder may   acked_epoch is before the request;
//                 not run on until this one resumes         the resume: -> AtSafepoint
//
// A request (stop-the-world: every slot; handshake: one slot) gets the next epoch E. It sets
// requested_epoch = E on its slots, arms them, and waits until each one acknowledged E:
//   - a Running slot acknowledges itself at its next poll or scheduler point (reach_safepoint):
//     acked_epoch = E, status AtSafepoint, then it waits until resumed_epoch >= E; a poll that
//     faults acknowledges in the signal handler already (SafepointAck::kHandler, the default) and
//     waits in the trampoline's slow path;
//   - an Idle slot is acknowledged by whoever wins the CAS Idle -> StoppedIdle: the requester
//     while scanning, or the machine releasing it (slot_release re-checks requested_epoch after
//     its CAS Running -> Idle; both sides use seq_cst, so at least one sees the other: Dekker).
//   - a Scheduling slot (USGC_SAFEPOINT_CLAIM=1, the default) is claimed like an idle one, by a
//     CAS Scheduling -> StoppedScheduling (Go's stop-the-world takes _Pidle and _Psyscall Ps the
//     same way): the requester acknowledges it at once, without a fault, a signal or its thread
//     running (which may be off its CPU: woken by a timer, preempted by the kernel). The rule
//     that makes it safe: a goroutine runs on a P only after its holder's CAS Scheduling ->
//     Running succeeded (slot_leave_scheduler); a holder that finds its slot StoppedScheduling
//     (that CAS failed, or scheduler_safepoint looked) waits for the resume, which puts the slot
//     back to Scheduling before it publishes resumed_epoch; then it retries. While Scheduling (or
//     claimed), the holder touches only the scheduler's structures (run queues, the global queue
//     under its lock, the idle lists, the stack pool), as the machine of a claimed idle slot
//     already does during a stop; never a goroutine's stack or the heap. (A spawning goroutine in
//     its stack work is such a holder: it touches the pool and the new stack, not yet any
//     goroutine's, and its own frames stay as they were, so a stop scans it as one in native.)
//     After its CAS to Running it reads requested_epoch again and serves a request that came
//     meanwhile at once (the requester armed the slot before its claim CAS, so even without that
//     re-read the goroutine it runs would fault at its first poll: the re-read saves the round
//     trip). The holder's own acknowledgement in the loop (scheduler_safepoint) is the same CAS, so
//     a slot is acknowledged once whoever looks first. The requester tries the claim again on the
//     slots still missing while it waits (a holder that entered its loop after the scan).
//   - an AtSafepoint slot that acknowledged an earlier request is still stopped where it was:
//     its holder has not come back from that request's resume (asleep on resumed_epoch, or woken
//     and waiting for a CPU). It is claimed the same way, by a CAS AtSafepoint ->
//     StoppedAtSafepoint (HotSpot counts a thread still blocked in its safepoint barrier as safe
//     for the next safepoint), so a stop that comes soon after another never waits for the
//     previous resume's wake-ups. The rule that makes it safe: a holder leaves AtSafepoint only by
//     a CAS AtSafepoint -> Running (leave_safepoint); finding its slot StoppedAtSafepoint, it
//     waits for the resume of the claiming epoch (its acked_epoch) and tries again. The holder
//     acknowledging a new request itself stores acked_epoch *before* AtSafepoint, so a claim CAS
//     that reads that AtSafepoint also reads the new acked_epoch and is undone as stale (the
//     claim_slot_from rule below): a request is never acknowledged twice for one slot.
// Every acknowledgement decrements `remaining` exactly once (the CAS or the owner decides who);
// the one reaching zero wakes the requester (kHandler: only if it sleeps, requester_sleeping).
// A holder or releaser claims for the requested_epoch it read before its CAS; if that request
// was served and resumed meanwhile (it was descheduled in between), the won CAS is undone and
// nothing is acknowledged (slot_claims.cpp claim_slot_from: a served epoch is never after
// acked_epoch). Resuming: disarm, StoppedIdle -> Idle and StoppedScheduling -> Scheduling (one CAS
// loop per slot, against the holder's StoppedScheduling -> StoppedIdle), publish resumed_epoch = E
// (release), wake every waiter.
//
// Arming: the machine holding a slot polls through its own thread's usgc_current_poll (the poll
// ABI, usgc/safepoint.h); the slot knows that mirror while held (owner_poll). A stop points every
// holder's poll_page at its slot's bad page (the default; or, with USGC_SAFEPOINT_ARMING=mprotect,
// mprotects the global poll page PROT_NONE: one system call arms every thread that points at
// it) and sets every holder's poll_flag; a handshake or a preemption request points one holder's
// poll_page at the slot's bad page (no system call) and sets its poll_flag. The per-slot arm_lock
// keeps the mirror consistent with the reasons the slot is armed for, across acquire and release.
//
// Time to safepoint is measured from the request to the latest acknowledgement (each acker
// records its time before it decrements `remaining`): the moment the world is stopped. The
// time until the requester noticed is reported apart (usgc_stop_info.requester_wake_ns).
//
// Keeping the OS out of the stopped world (USGC_SAFEPOINT_WAIT=spin, the default; `sleep` is
// the protocol before, kept for comparison). Between "the last P acknowledged" and "the world
// resumed" nothing may wait for the kernel to run a thread:
//   - spinning pays only when no thread waits for a CPU: on a machine with more runnable threads
//     than CPUs (other processes included: the kernel's count, sampled once per request) a
//     spinner takes a CPU from a thread that must run (often the very P it waits for), and a
//     sleeper woken by the kernel is preferred over threads that kept running (its wake-up
//     preempts them). So every spin below happens only when that count fits the CPUs
//     (spinning_leaves_cpus_free); otherwise the protocol before applies (short spin, sleep);
//   - the requester keeps its P when it asks to (stop_the_world's keep_slot: the collector, as
//     Go's stop-the-world initiator does): it acknowledges its own slot itself, so it owns a CPU
//     that no P it waits for needs, and it spins on `remaining` instead of sleeping whenever the
//     Ps still running fit on the other CPUs (running < online CPUs); pure spinning for
//     kRequesterPureSpinNs, then spinning that yields the CPU between looks (sched_yield: it
//     stays runnable, so no wake-up is needed), for up to kRequesterSpinCapNs, then sleeping.
//     A requester without a slot (a thread outside the runtime, or the operation lock busy)
//     keeps the short adaptive spin (kRequesterSpinNs, none when the running Ps fill the CPUs);
//   - the stopped threads spin on resumed_epoch before they sleep (HotSpot's wait barrier, Go's
//     notesleep spin), at most online CPUs - requester_cpus of them at once (resume_spinners:
//     the requester's CPUs stay its own; requester_cpus is 1 unless its work in the stop runs on
//     more, stop_work_needs_cpus: a parallel mark in the stop), for kResumeSpinNs; a spinner
//     over that budget when the requester asks for more CPUs stops spinning and sleeps; a thread
//     that does sleep counts itself in resume_sleepers first, and the resume is one store of
//     resumed_epoch followed by a futex wake only when resume_sleepers is not zero (seq_cst on both
//     sides: Dekker, see wait_until_resumed). The common resume is a store, not N system calls.
// The pause of a stop is from the last acknowledgement to that store (start_the_world's
// world_resumed_at_ns is taken right after it, before any wake-up).
//
// Requests are serialized by one operation lock: concurrent stop requests from two threads are
// served one after the other, each complete, and in turn: a requester takes a ticket and the lock
// when its ticket is served (State::next_ticket / serving_ticket), so a thread that stops the
// world back to back (an embedder's loop) cannot take the lock again ahead of a requester that
// waits for it (the collector goroutine: it waited up to 0.6 s, bench/stops_collector.cpp), as
// Go's startTheWorld hands worldsema to a waiter. A goroutine that requests a stop first gives up
// its P (the hook enter_native), so it can never wait for itself, unless it keeps its slot: it
// then only takes the lock when no other requester holds or waits for a ticket (one may be
// waiting for this very P: it gives the P up as before), and acknowledges its slot before
// waiting.
#pragma once

#include <atomic>
#include <cstdint>

#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/result.hpp"
#include "kernel_iface/thread_control.hpp"
#include "safepoint/stop_trace.hpp"
#include "usgc/safepoint.h"

namespace usgc::safepoint {

enum class SlotStatus : uint32_t {
  kIdle,
  kRunning,
  kAtSafepoint,
  kStoppedIdle,
  kScheduling,
  kStoppedScheduling,
  kStoppedAtSafepoint
};

struct alignas(64) SafepointSlot {
  uint32_t index = 0;  // immutable
  std::atomic<SlotStatus> status{SlotStatus::kIdle};
  std::atomic<uint32_t> requested_epoch{0};  // written by the requester under the operation lock
  std::atomic<uint32_t> acked_epoch{0};      // written by whoever acknowledges (see above)
  // Set by the monitor, cleared by the holder (serve_requests) or slot_release: every change under
  // arm_lock, together with armed_for_preempt (request_preemption); read relaxed anywhere.
  std::atomic<uint32_t> preempt_requested{0};
  // Set by the monitor (under arm_lock) when the holder looks blocked in a system call: give the
  // P up (async_safepoint.hpp). Cleared by the holder's handler and by slot_release.
  std::atomic<uint32_t> retake_requested{0};
  // What the prober saw the holder blocked in (probe_thread), for re-issuing a call that returns
  // EINTR (async_safepoint.hpp): written by the prober under arm_lock before it signals, read by
  // the holder's handler. Relaxed: the handler checks them against its own registers and PC.
  std::atomic<int64_t> probed_system_call{-1};
  std::atomic<uint64_t> probed_instruction_pointer{0};
  std::atomic<uint64_t> probed_arguments[6] = {};
  // The holder thread's kernel id (0: none), for signals and the one-second warning. Written
  // under arm_lock by acquire/release; read under arm_lock by signallers, relaxed by warnings.
  std::atomic<int32_t> owner_tid{0};
  // A hint: the kernel id of a holder thread that came back from a blocking call outside usgc
  // that the asynchronous signal interrupted (a stop's or a retake's: the call was re-issued
  // without the P, or it returned EINTR to a stop and the thread handed its P off), 0 once it
  // acknowledged a stop at a poll or scheduler point. Written relaxed by that holder
  // (async_safepoint.cpp note_blocking_holder once it holds a P again; serve_requests,
  // poll_fault_in_handler), read relaxed by a requester: a missing slot whose holder is still that
  // thread gets the first signal round early even on a loaded machine (first_signal_after_ns,
  // stop_waits.cpp): it is most likely blocked again, and no poll will come from it.
  std::atomic<int32_t> blocking_holder_tid{0};
  // The holder thread's rseq CPU word (kernel::current_thread_cpu_word; nullptr: none or no
  // holder). Written under arm_lock by acquire/release, read under arm_lock by a requester as it
  // arms the slot (the word lives in the holder thread's TLS: only the lock keeps it alive).
  const uint32_t* owner_cpu_word = nullptr;
  // Set by a requester while it arms the slot (operation lock held): the holder's thread was on
  // the requester's CPU then (preempted by it, or asleep there), so it cannot reach a poll while
  // the requester keeps that CPU.
  bool holder_on_requester_cpu = false;
  kernel::FutexMutex<kernel::LockRank::kSafepointArm>
      arm_lock;                          // guards owner_poll, *owner_poll and the arm reasons
  usgc_poll_slot* owner_poll = nullptr;  // the holder thread's usgc_current_poll; under arm_lock
  bool armed_for_handshake = false;      // under arm_lock
  bool armed_for_preempt = false;        // under arm_lock
  bool armed_for_stop = false;           // under arm_lock
  // What the holder is doing (stop_trace.hpp): written by the holder (relaxed, a hint), read by
  // a requester when it arms the slot (the attribution trace). kNone while nobody holds it.
  std::atomic<ProcessorActivity> activity{ProcessorActivity::kNone};
};

// The holder of slot says what it does now (a relaxed byte store; cheap enough for every goroutine
// switch). slot may be nullptr (no P held): nothing.
inline void set_processor_activity(SafepointSlot* slot, ProcessorActivity activity) {
  if (slot != nullptr) slot->activity.store(activity, std::memory_order_relaxed);
}

// Called by the runtime once at start: slot_count slots, fault handler installed, poll pages
// mapped. hooks decide what a poll fault does above this layer.
struct SafepointHooks {
  // The poll slow path found a preemption request: yield the current goroutine (runtime).
  void (*preempt_current)();
  // An asynchronous safepoint in program code found one: yield the P but keep the goroutine on
  // the calling thread (async_safepoint.hpp, "Preempted in place"). Null: not preempted there.
  void (*preempt_current_in_place)();
  // A goroutine requesting a stop gives up its P first (held back from other machines until the
  // resume: runtime/native.cpp, "Native for a stop"), and takes one back after;
  // requester_hand_off_held hands a P held back that way on before the requester waits for
  // another requester's stop (null: nothing held back).
  void (*requester_enter_native)();
  void (*requester_leave_native)();
  void (*requester_hand_off_held)();
  // Signal context: the id of the current goroutine if address is in its stack guard, else 0.
  uint64_t (*stack_overflow_goroutine)(const void* address);
  // Signal context: the calling thread runs a goroutine on a P.
  bool (*thread_runs_goroutine)();
  // Signal context: the calling thread is executing its goroutine's code (not the scheduler's).
  // Null: no asynchronous safepoints (async_safepoint.hpp).
  bool (*runs_goroutine_code)();
  // From the asynchronous safepoint trampoline, inside a library call blocked in the kernel: give
  // the P up around the re-issued call (or, for a call that returned EINTR to a stop and cannot
  // be re-issued, before the caller sees the EINTR) and take one back after, the goroutine
  // staying on the calling thread throughout (async_safepoint.hpp). Null: no asynchronous
  // safepoints.
  void (*blocked_call_release_processor)();
  void (*blocked_call_reacquire_processor)();
  // Normal context, with a P held: goroutines or threads wait for a P (the P's run queue, the
  // global queue, the pinned waiters' line). A stop that finds a call just returned EINTR hands
  // the P off only then (async_safepoint.cpp). Null: never.
  bool (*others_wait_for_processor)();
  // Normal context, from the asynchronous slow paths: the interrupted code's registers and stack
  // from `saved_state` up are the goroutine's until the matching end call; a collection in
  // between scans them conservatively (gc/conservative_roots.hpp). Null: not reported.
  void (*async_stop_begin)(const void* saved_state);
  void (*async_stop_end)();
  // Normal context, on the thread that acknowledged a stop in reach_safepoint, once the world
  // resumed and before its goroutine runs on (or yields to a preemption): the runtime lets the
  // collector scan that goroutine there if a concurrent mark begun in the stop has not yet
  // (gc/concurrent_mark.hpp), so the stop itself scans no goroutine. Null: nothing.
  void (*resumed_from_stop)();
};
kernel::Status safepoint_initialize(uint32_t slot_count, const SafepointHooks& hooks);
// Back to "no slots" (usgc_shutdown): the fault handler is uninstalled; poll pages stay mapped.
void safepoint_shutdown();

// How a stop-the-world arms the Ps:
//   kSwapPollPointers (default, USGC_SAFEPOINT_ARMING=swap): every holder's poll pointer is
//     swapped to its slot's bad page, as a handshake does for one slot (HotSpot's thread-local
//     polls, JEP 312); no system call, no IPI: the holder's next poll loads the new pointer (one
//     cache-line transfer) and faults on the bad page. Arming 2 Ps: well under 1 us;
//   kProtectGlobalPage (USGC_SAFEPOINT_ARMING=mprotect): one mprotect of the global page; the
//     kernel must shoot the page's TLB entry down on every CPU that polled it (an IPI, which on a
//     VM costs tens of microseconds: see docs/benchmarks.md). Kept for comparison and for
//     embedders that emit their own polls against the global page.
// Both keep the fault-based design: the poll is the same load, the fault the same trampoline.
enum class SafepointArming : uint8_t { kProtectGlobalPage, kSwapPollPointers };
SafepointArming safepoint_arming();
// Benchmarks and tests: change it between stops (no stop may be in flight).
void set_safepoint_arming(SafepointArming arming);
// Benchmarks: the requester spins exactly spin_ns before it sleeps, whatever the number of Ps
// to stop (5000: the policy before the adaptive one); -1 (the default) restores the adaptive
// policy of stop_waits.cpp (kRequesterSpinNs). Between stops, like set_safepoint_arming.
void set_requester_spin_for_benchmark(int64_t spin_ns);

// Where a running P acknowledges a stop it reaches through a poll fault (USGC_SAFEPOINT_ACK):
//   kHandler (default): in the SIGSEGV handler, right after it redirected the thread to the
//     trampoline (the goroutine is at its poll; sigreturn and the trampoline touch nothing a
//     collector reads); the slow path then waits for the resume. The last acknowledger makes the
//     futex wake only when the requester sleeps, and the monitor counts a P's acknowledged stop
//     as progress (no /proc probe of a P that just stopped at a safepoint);
//   kTrampoline: the protocol before: acknowledged in the slow path after sigreturn and the
//     trampoline, the last acknowledger always wakes, the monitor ignores stops. For comparison.
enum class SafepointAck : uint8_t { kTrampoline, kHandler };
SafepointAck safepoint_ack();
// Benchmarks and tests: between stops, like set_safepoint_arming.
void set_safepoint_ack(SafepointAck ack);

// How the requester and the stopped threads wait (USGC_SAFEPOINT_WAIT, see the file comment):
//   kSpin (default): the requester may keep its slot and spin; stopped threads spin before they
//     sleep; the resume wakes only sleepers;
//   kSleep: the protocol before: the requester always gives its P up and sleeps after a short
//     spin, stopped threads sleep after 64 pauses, the resume always makes the wake system call.
enum class SafepointWait : uint8_t { kSleep, kSpin };
SafepointWait safepoint_wait();
// Benchmarks and tests: between stops, like set_safepoint_arming.
void set_safepoint_wait(SafepointWait wait);
// Tests: the spin caps (requester with its slot, stopped threads), in ns; -1 restores the
// defaults (kRequesterSpinCapNs, kResumeSpinNs); ignore_machine_load: spin even when the machine
// has more runnable threads than CPUs (what other processes do is then not the test's outcome).
// Whether anyone spins at all otherwise stays the policy's (CPUs against running Ps and
// spinners). Between stops.
void set_spin_caps_for_test(int64_t requester_cap_ns, int64_t resume_cap_ns,
                            bool ignore_machine_load = false);
// Tests: every request samples the machine as loaded (more runnable threads than CPUs), whatever
// the kernel says, so the loaded machine's policy (no spin, the signal rounds waiting out the load)
// is what a test sees. Between stops.
void set_machine_loaded_for_test(bool loaded);
// The load half of the spin policy: a thread of ours may spin only while the machine has a CPU for
// every runnable thread (kernel::runnable_thread_count, the caller included, sampled once per
// request); 0 (unknown) counts as busy.
bool spinning_leaves_cpus_free(uint32_t runnable_threads, uint32_t online_cpus);
// Whether a requester holding a slot should keep it for its next stop: kSpin, and the machine has
// a CPU for every runnable thread now (a kept slot pays through the spin it allows; on a loaded
// machine the requester sleeps anyway, and giving the P up measured better there: the file
// comment). The collector asks before each of its stops.
bool requester_may_keep_slot();
// The thread that holds the stop (between stop_the_world and start_the_world) is about to run
// work on `cpus` CPUs at once, itself included (the collector's parallel mark inside a stop):
// threads spinning for the resume give those CPUs up (they sleep; the resume wakes them) for the
// rest of the stop (every request starts at 1). No effect on a thread that holds no stop, or
// with 0.
void stop_work_needs_cpus(uint32_t cpus);

uint32_t slot_count();
SafepointSlot* slot_at(uint32_t index);

// The slot the calling thread holds (nullptr: none).
SafepointSlot* current_slot();

// Idle -> Running, and the calling thread polls for this slot from now on. False when the slot
// is not Idle (claimed by a stop: wait_for_resume(), then retry).
bool slot_try_acquire(SafepointSlot* slot);
// Running -> Idle (the calling thread polls the always-readable page again), acknowledging a
// pending request on the way out.
void slot_release(SafepointSlot* slot);
// Blocks until the current request (if any) that claimed idle slots has resumed.
void wait_for_resume();

// At a poll slow path or a scheduler point, with the slot held: acknowledge every pending
// request for it and wait until resumed; then handle a preemption request (hook). Returns true
// when it stopped or preempted.
// allow_preemption false: acknowledge stops only (an asynchronous safepoint inside a system
// library, where the goroutine must not move to another thread).
bool reach_safepoint(SafepointSlot* slot, bool allow_preemption = true);
inline bool safepoint_requested(const SafepointSlot* slot) {
  // Acquire: pairs with begin_request's seq_cst store of requested_epoch.
  return slot->requested_epoch.load(std::memory_order_acquire) !=
         slot->acked_epoch.load(std::memory_order_relaxed);
}

// The slot's holder waits in the slow path, stopped at a safepoint (AtSafepoint), or still does
// while claimed by a later request (StoppedAtSafepoint): it is in no system call of its own.
// Relaxed: a hint (the monitor's probes).
inline bool slot_stopped_at_safepoint(const SafepointSlot* slot) {
  const SlotStatus status = slot->status.load(std::memory_order_relaxed);
  return status == SlotStatus::kAtSafepoint || status == SlotStatus::kStoppedAtSafepoint;
}

// Claiming the slots of Ps in the scheduler loop and of Ps still stopped by an earlier request
// (USGC_SAFEPOINT_CLAIM, default on; the file comment). Off: holders never enter Scheduling and
// requesters claim only idle slots (the protocol before). Benchmarks and tests may switch it at any
// time: a holder already in Scheduling is served either way.
namespace detail {
// Written at initialization and by set_scheduler_claim; read relaxed (a holder already in
// Scheduling is served whatever a reader sees here).
inline std::atomic<bool> g_scheduler_claim{true};
}  // namespace detail
inline bool scheduler_claim_enabled() {
  return detail::g_scheduler_claim.load(std::memory_order_relaxed);
}
void set_scheduler_claim(bool enabled);

// The holder of slot, entering its scheduler loop with no goroutine running on the P: Running ->
// Scheduling (a release store: the goroutine's work before it is seen by a requester whose
// claim CAS reads Scheduling). Nothing when the claim is off or the slot is not Running.
inline void slot_enter_scheduler(SafepointSlot* slot) {
  if (!scheduler_claim_enabled()) return;
  if (slot->status.load(std::memory_order_relaxed) != SlotStatus::kRunning) return;
  slot->status.store(SlotStatus::kScheduling, std::memory_order_release);
}
// The holder in its loop: should it stop looking for work and come to scheduler_safepoint? (a
// request not acknowledged, or the slot claimed).
inline bool scheduler_stop_pending(const SafepointSlot* slot) {
  return safepoint_requested(slot) ||
         slot->status.load(std::memory_order_relaxed) == SlotStatus::kStoppedScheduling;
}
// Tests: called by a holder after the resume it waited for, before it leaves AtSafepoint
// (slot_claims.cpp leave_safepoint), on its own thread: a test holds the thread there, as one not
// back from a resume yet (asleep, or waiting for a CPU). nullptr (the default): nothing.
void set_before_leaving_safepoint_for_test(void (*hook)(SafepointSlot* slot));
// The slow paths of the two below (slot_claims.cpp).
void slot_leave_scheduler_slow(SafepointSlot* slot);
bool scheduler_safepoint_slow(SafepointSlot* slot);
// The holder's claim of its own Scheduling slot for `requested` (the requested_epoch it read),
// as scheduler_safepoint_slow makes it: true when it won and acknowledged; false when the slot
// was claimed by the requester, or when that request was already served (a stale claim: undone,
// counted in stale_claims). Used by scheduler_safepoint_slow; tests drive it with a stale epoch.
bool holder_claim_scheduling_slot(SafepointSlot* slot, uint32_t requested, AckKind kind);
// The holder of slot, about to run a goroutine on it: Scheduling -> Running by CAS, waiting out a
// stop that claimed it; then serves a request that came meanwhile (reach_safepoint) before the
// goroutine runs. On a Running slot (the claim off) only the latter.
inline void slot_leave_scheduler(SafepointSlot* slot) {
  SlotStatus expected = SlotStatus::kScheduling;
  // seq_cst: against the claim CAS (slot_claims.cpp claim_scheduling_slot), exactly one wins.
  if ((slot->status.compare_exchange_strong(expected, SlotStatus::kRunning,
                                            std::memory_order_seq_cst) ||
       expected == SlotStatus::kRunning) &&
      !safepoint_requested(slot))
    return;
  slot_leave_scheduler_slow(slot);
}
// The holder's scheduler point in its loop (replaces `if requested: reach_safepoint`): a claimed
// slot waits for the resume; a pending request is acknowledged (the claim's CAS, by the holder)
// and waited out. True when it stopped.
inline bool scheduler_safepoint(SafepointSlot* slot) {
  return scheduler_stop_pending(slot) && scheduler_safepoint_slow(slot);
}

// A stop-the-world or handshake is in flight (requested, not yet resumed): the monitor skips its
// work then (monitor_quiet_during_stops).
bool stop_in_flight();
// Whether the monitor thread skips its work while a stop is in flight (default on; off is the
// behaviour before, for the benchmark's comparison). Between stops, like set_safepoint_arming.
bool monitor_quiet_during_stops();
void set_monitor_quiet_during_stops(bool quiet);
// Whether the monitor, quiet during a stop, backs off (default on): it looks again 100 us after
// it found a stop in flight, then twice as long each time the same or another stop is still in
// flight, up to 2 ms (runtime/monitor.cpp). Off: every 100 us, the policy before (a stop of a few
// milliseconds on a loaded machine woke it tens of times, each wake-up on a CPU a stopping P's
// thread was waiting for), for the benchmark's comparison. Between stops.
bool monitor_backs_off_during_stops();
void set_monitor_backs_off_during_stops(bool backs_off);
// Whether the requester's first signal round waits out a loaded machine (default on; off: the
// policy before, signals after kFirstSignalAfterNs whatever the load, for the benchmark's
// comparison). stop_waits.cpp, first_signal_after_ns, says why. Between stops.
bool signal_rounds_wait_out_load();
void set_signal_rounds_wait_out_load(bool wait);

// Asks the goroutine on slot to yield at its next poll (the monitor's preemption): arms its poll
// and sets preempt_requested, both under arm_lock; signal_thread: also signals its thread at once
// in case it does not poll (asynchronous preemption). Nothing when no thread holds slot.
void request_preemption(SafepointSlot* slot, bool signal_thread);
// The monitor's second step (runtime/monitor.cpp): a request still pending one look later belongs
// to a goroutine that does not poll; signal its thread (asynchronous preemption). False when the
// request was served meanwhile, or no signal went out.
bool signal_pending_preemption(SafepointSlot* slot);
// The monitor found slot's holder (thread expected_tid) blocked in a system call the kernel
// restarts transparently: signal it to re-issue the call without the P. False when the holder
// changed or no signal went out.
bool request_retake(SafepointSlot* slot, int expected_tid, const kernel::ThreadProbe& probe);
// Under slot->arm_lock: records what probe_thread saw the holder blocked in.
void record_probe_locked(SafepointSlot* slot, const kernel::ThreadProbe& probe);

// The C API (usgc_stop_the_world & co.) is implemented over these. The optional instants are for
// honest pause accounting (the collector's pause is *world_resumed_at_ns - *world_stopped_at_ns):
// world_stopped_at_ns is the latest acknowledgement (the world is stopped from then on; the
// request came time_to_safepoint_ns before it); world_resumed_at_ns is taken as resumed_epoch is
// published, before a requester that gave up its P waits to take one back (that wait is not
// part of anyone's pause: the other goroutines run meanwhile).
// keep_slot: a caller holding a slot keeps it through the stop (acknowledging it itself) when
// the wait mode is kSpin and the operation lock is free; it must then neither poll for nor wait on
// anything another goroutine does until start_the_world (the collector's stopped-world work).
// Whether it did is in stop_breakdown_last().requester_kept_slot.
int stop_the_world(usgc_stop_info* info, uint64_t* world_stopped_at_ns = nullptr,
                   bool keep_slot = false);
int start_the_world(uint64_t* world_resumed_at_ns = nullptr);
int handshake(uint32_t slot_index, void (*fn)(uint32_t, void*), void* arg, usgc_stop_info* info);

struct SafepointStatistics {
  uint64_t stops;
  uint64_t handshakes;
  uint64_t preemptions;
  // Slot records the requests' own loops went through (arming, claiming, acknowledging,
  // resuming): a fixed multiple of the slots per request, whatever the number of goroutines.
  uint64_t slot_visits;
  uint64_t time_to_safepoint_last_ns;
  uint64_t time_to_safepoint_max_ns;
  uint64_t time_to_safepoint_total_ns;
  uint64_t time_to_safepoint_histogram[20];  // the stats block's buckets (usgc/stats_block.h)
  // Futex sleeps of requesters waiting for acknowledgements (each futex_wait call), and resumes
  // that made the wake system call because a stopped thread slept (kSpin; kSleep: every resume).
  uint64_t requester_futex_waits;
  uint64_t resume_futex_wakes;
  // Stops whose requester kept its slot (stop_the_world's keep_slot honoured).
  uint64_t stops_requester_kept_slot;
  // Futex wakes made by the last acknowledger of a request (kHandler: only for a sleeping
  // requester), and acknowledgements made in the poll fault's signal handler (kHandler).
  uint64_t acknowledger_futex_wakes;
  uint64_t handler_acknowledgements;
  // Slots a requester claimed in their holder's scheduler loop (AckKind::kClaimedScheduler), and
  // holders that found their slot claimed when they looked (slot_leave_scheduler,
  // scheduler_safepoint: each then waited for the resume).
  uint64_t scheduler_claims;
  uint64_t claimed_holder_waits;
  // Slots a requester claimed while still stopped by an earlier request (AckKind::kClaimedStopped:
  // their holder had not come back from that resume), and holders that then found their slot
  // claimed as they came back (leave_safepoint: each waited for that request's resume too).
  uint64_t stopped_claims;
  uint64_t stopped_holder_waits;
  // Claims won by a holder or a releaser for a request already served and resumed (it read
  // requested_epoch, was descheduled, and then won its CAS): undone, not acknowledged
  // (slot_claims.cpp claim_slot_from).
  uint64_t stale_claims;
  // Stopped threads that stopped spinning for the resume before it came because the requester
  // asked for their CPUs (stop_work_needs_cpus), and slept instead.
  uint64_t resume_spins_ceded;
  // Requests on a loaded machine whose first signal round came after kFirstSignalAfterNs rather
  // than kResignalEveryNs: a missing holder came back from a blocking call a signal interrupted
  // (SafepointSlot::blocking_holder_tid, stop_waits.cpp first_signal_after_ns).
  uint64_t early_signal_rounds;
  // Stopped threads spinning for the resume right now (a gauge, not a count).
  uint32_t resume_spinners_now;
};
SafepointStatistics safepoint_statistics();

// Where the last stop-the-world or handshake spent its time to safepoint (benchmarks, tests):
// arming_ns from the request to every slot armed and every idle slot claimed (the requester's
// own work); first_running_ack_ns from the request to the first acknowledgement by a running
// slot's holder (0: none); slots_running the slots that had to reach a poll; requester_slept
// whether the requester went to sleep before the last acknowledgement; signal_rounds how many
// times it sent the asynchronous safepoint signal to the slots still missing.
struct StopBreakdown {
  uint64_t requested_at_ns;
  uint64_t arming_ns;
  uint64_t first_running_ack_ns;
  uint32_t slots_running;
  uint32_t signal_rounds;
  bool requester_slept;
  bool requester_kept_slot;
  // A P it waited for had its thread on the requester's CPU when armed (the requester's own
  // wake-up displaced it): the requester did not spin with pauses (stop_waits.cpp).
  bool requester_shared_cpu;
  // How long the requester meant to spin before sleeping, and of that with pauses only.
  uint64_t requester_spin_ns;
  uint64_t requester_pure_spin_ns;
};
// Takes the operation lock: call it after the stop's start_the_world (or handshake) returned.
StopBreakdown stop_breakdown_last();
// The stats block's bucket of a duration: 0 below 1 us, i for [2^(i-1), 2^i) us, 19 above.
uint32_t histogram_bucket_of(uint64_t duration_ns);

}  // namespace usgc::safepoint
