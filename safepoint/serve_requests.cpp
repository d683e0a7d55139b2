// safepoint/serve_requests.cpp — the holder's side of the safepoint protocol (stop_the_world.hpp's
// table): a thread that holds a slot serves its requests at a poll (reach_safepoint: acknowledge,
// wait for the resume, then a pending preemption), in the poll fault's signal handler (the
// early acknowledgement of SafepointAck::kHandler) and at a flag poll; and the requests other
// threads make of one holder (preemption, retake).
//
// Invariants: a slot's acked_epoch is written only by its holder (here) or, while the slot is
// idle, in its holder's scheduler loop or still stopped, by its claimant (slot_claims.cpp); a
// holder leaves AtSafepoint only by leave_safepoint's CAS (a slot claimed still stopped waits for
// that request's resume); a holder stops only at a poll, a scheduler point or in the poll fault's
// handler, never elsewhere; the preemption pair — preempt_requested and
// armed_for_preempt change together under the slot's arm_lock. Not on the poll's fast path (the
// poll is one load, usgc/safepoint.h); the handler's part is async-signal-safe.
#include <cstdint>

#include "kernel_iface/thread_control.hpp"
#include "safepoint/async_safepoint.hpp"
#include "safepoint/fork_child.hpp"
#include "safepoint/stop_state.hpp"

namespace usgc::safepoint {

namespace {

// A poll fault's handler acknowledged request t_handler_acked_epoch for this thread's slot
// (poll_fault_in_handler); its slow path, on the same thread, waits for the resume. Written in
// signal context and read after sigreturn by the same thread: no other reader.
thread_local bool t_handler_acked [[gnu::tls_model("initial-exec")]] = false;
thread_local uint32_t t_handler_acked_epoch [[gnu::tls_model("initial-exec")]] = 0;

}  // namespace

// Signal context: the poll fault's SIGSEGV handler, which has just redirected this thread to the
// trampoline (kHandler). The interrupted goroutine is at a poll, the one place it may stop, and
// from here to poll_fault_slow_path this thread runs only sigreturn and the trampoline, which
// write nothing but the registers they save below the goroutine's stack pointer (nothing a
// collector reads: a poll stop is scanned precisely, never conservatively). So the stop is
// acknowledged now, one sigreturn and one trampoline (4 us at the median on the VM of
// docs/benchmarks.md) before the slow path could, and the slow path waits for the resume.
// Lock-free and allocation-free: acknowledge's atomics, the vDSO clock and at most one futex
// wake, all async-signal-safe.
namespace {
// The holder acknowledged a stop at a poll or scheduler point: it polls again, so the next stop
// need not signal it early (SafepointSlot::blocking_holder_tid). Signal-safe.
void forget_blocking_holder(SafepointSlot* slot) {
  if (slot->blocking_holder_tid.load(std::memory_order_relaxed) != 0)
    slot->blocking_holder_tid.store(0, std::memory_order_relaxed);
}
}  // namespace

void poll_fault_in_handler() {
  SafepointSlot* slot = t_current_slot;
  if (slot == nullptr || g_state.ack.load(std::memory_order_relaxed) != SafepointAck::kHandler)
    return;
  // Acquire, as in reach_safepoint.
  uint32_t requested = slot->requested_epoch.load(std::memory_order_acquire);
  if (requested == slot->acked_epoch.load(std::memory_order_relaxed)) return;  // a preemption
  // As in serve_requests: release acked_epoch, then seq_cst status (same pairings, same order).
  slot->acked_epoch.store(requested, std::memory_order_release);
  slot->status.store(SlotStatus::kAtSafepoint, std::memory_order_seq_cst);
  t_handler_acked_epoch = requested;
  t_handler_acked = true;
  g_state.handler_acknowledgements.fetch_add(1, std::memory_order_relaxed);
  forget_blocking_holder(slot);
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
    // A request that came meanwhile is acknowledged below at this point, with no fault of its own
    // (unless it claimed the slot still stopped: leave_safepoint then waits for its resume).
    stop_trace::set_next_ack_kind(AckKind::kSchedulerPoint);
    leave_safepoint(slot);
    serve_requests(slot, true, true);
    return;
  }
  if (slot != nullptr) reach_safepoint(slot);
}

bool reach_safepoint(SafepointSlot* slot, bool allow_preemption) {
  return serve_requests(slot, allow_preemption, false);
}

// reach_safepoint's body (stop_state.hpp).
bool serve_requests(SafepointSlot* slot, bool allow_preemption, bool stopped_already) {
  const AckKind kind = stop_trace::take_next_ack_kind();
  bool stopped = stopped_already;
  for (;;) {
    // Acquire: pairs with begin_request's seq_cst store of requested_epoch (what the requester
    // wrote before it is visible). acked_epoch is only written for this slot by its holder (here)
    // or by a claimant while the holder runs nothing (idle, scheduling, still stopped: then
    // leave_safepoint's CAS read the resume that followed that claim): relaxed suffices.
    uint32_t requested = slot->requested_epoch.load(std::memory_order_acquire);
    if (requested == slot->acked_epoch.load(std::memory_order_relaxed)) break;
    USGC_ASSERT(slot->status.load(std::memory_order_relaxed) != SlotStatus::kScheduling &&
                    slot->status.load(std::memory_order_relaxed) != SlotStatus::kStoppedScheduling,
                "safepoint: slot %u serves a request from its scheduler loop without leaving it",
                slot->index);
    // Release: pairs with the acquire loads of acked_epoch (signal_unacknowledged,
    // warn_unacknowledged, slot_release, the claims). Stored before the status: a requester's
    // claim CAS that reads this AtSafepoint sees the request acknowledged and undoes itself
    // (claim_stopped_slot), so a request is acknowledged once per slot.
    slot->acked_epoch.store(requested, std::memory_order_release);
    // seq_cst like every status change (the header's table); the requester's acquire loads of
    // status (signal_unacknowledged) see AtSafepoint and leave this thread alone.
    slot->status.store(SlotStatus::kAtSafepoint, std::memory_order_seq_cst);
    acknowledge(slot, requested, kind);
    if (kind != AckKind::kAsyncSignal) forget_blocking_holder(slot);
    wait_until_resumed(requested);
    // Running again, after the resume; a request that claimed the slot meanwhile (still stopped)
    // is waited for first.
    leave_safepoint(slot);
    stopped = true;
  }
  if (stopped && g_state.hooks.resumed_from_stop != nullptr) g_state.hooks.resumed_from_stop();
  if (allow_preemption && take_preemption_request(slot, false)) {
    if (g_state.hooks.preempt_current != nullptr) g_state.hooks.preempt_current();
    stopped = true;
  }
  return stopped;
}

bool take_preemption_request(SafepointSlot* slot, bool wait_for_requester) {
  if (slot->preempt_requested.load(std::memory_order_relaxed) == 0) return false;
  // The flag and the arming change together under arm_lock (the preemption pair, see
  // request_preemption): a request is either served here, disarmed, or still armed. A holder
  // that reads the flag directly (the collector's polls) can see it while the requester still
  // holds arm_lock (it arms the mirror and may signal after storing the flag): at a poll it does
  // not wait for the requester but leaves the request armed, for its next poll (a thread that
  // slept there would lose its CPU to the monitor's critical section; TSan's slower atomics made
  // it happen in Preemption.CollectorStylePollsServe...). The asynchronous slow path, whose code
  // does not poll, waits: the monitor signals under the lock and lets go at once.
  if (wait_for_requester) {
    slot->arm_lock.lock();
  } else if (!slot->arm_lock.try_lock()) {
    return false;
  }
  slot->preempt_requested.store(0, std::memory_order_relaxed);
  slot->armed_for_preempt = false;
  update_mirror_locked(slot);
  slot->arm_lock.unlock();
  g_state.preemptions.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// The preemption pair: preempt_requested and armed_for_preempt change together under arm_lock
// (here, serve_requests, slot_release), so a holder that reads the flag without the lock (the
// collector's polls) sees a complete request and disarms after it was armed (docs/runtime.md,
// "Preempting a goroutine": set before, it slept on arm_lock or was left armed).
void request_preemption(SafepointSlot* slot, bool signal_thread) {
  change_arming(slot, [signal_thread](SafepointSlot* s) {
    if (s->owner_poll == nullptr) return;
    s->armed_for_preempt = true;
    s->preempt_requested.store(1, std::memory_order_relaxed);
    // In case it does not poll (asynchronous preemption).
    if (signal_thread) (void)signal_slot_holder_locked(s);
  });
}

bool signal_pending_preemption(SafepointSlot* slot) {
  kernel::FutexMutexGuard guard(slot->arm_lock);
  if (slot->owner_poll == nullptr || slot->preempt_requested.load(std::memory_order_relaxed) == 0)
    return false;
  return signal_slot_holder_locked(slot);
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

}  // namespace usgc::safepoint

extern "C" {
__attribute__((visibility("default"))) void usgc_safepoint_flag_slow_path(void) {
  if (usgc::safepoint::in_fork_child()) return;  // no stop is ever served here
  usgc::safepoint::SafepointSlot* slot = usgc::safepoint::current_slot();
  usgc::safepoint::stop_trace::set_next_ack_kind(usgc::safepoint::AckKind::kFlagPoll);
  if (slot != nullptr) usgc::safepoint::reach_safepoint(slot);
}
}
