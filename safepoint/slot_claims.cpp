// safepoint/slot_claims.cpp — acknowledgements and the P slot's status machine (the table in
// safepoint/stop_the_world.hpp): who wins a slot by compare-and-swap (the requester claiming an
// idle slot or one in its holder's scheduler loop, the holder acquiring or leaving its loop, a
// releaser acknowledging a request that came after its last poll), and the rule that each
// request is acknowledged exactly once per slot (claim_is_current undoes a claim made for a
// request already served). Not on the poll's fast path: reached from the scheduler (acquire,
// release, its loop's points) and from requests.
#include <cerrno>

#include "kernel_iface/clock.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/thread_control.hpp"
#include "safepoint/stop_state.hpp"

namespace usgc::safepoint {

namespace {

// set_before_leaving_safepoint_for_test; read relaxed by leave_safepoint (tests set it between
// stops).
std::atomic<void (*)(SafepointSlot*)> g_before_leaving_safepoint{nullptr};

// The calling thread's kernel id, cached (0: not read yet).
thread_local int t_thread_id [[gnu::tls_model("initial-exec")]] = 0;

int own_thread_id() {
  if (t_thread_id == 0) t_thread_id = kernel::thread_id();
  return t_thread_id;
}

}  // namespace

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
    stop_trace::requester_wake_called(slot->index, epoch);
    kernel::futex_wake(&g_state.remaining, 1);
  }
}

namespace {

// The claim of slot for request `epoch` by a CAS from `released` (Idle, Scheduling) to `claimed`
// (StoppedIdle, StoppedScheduling); true (and acknowledged) when this caller won it for a request
// still waiting for the slot. Seq_cst CAS: for an idle slot, the Dekker pair of the header's
// table (the requester stores requested_epoch, then CASes here; slot_release stores Idle, then
// loads requested_epoch; at least one sees the other) and against slot_try_acquire's CAS; for a
// scheduling slot, against the holder's CAS Scheduling -> Running (slot_leave_scheduler): either
// the holder runs a goroutine (the slot was armed before this CAS, so the goroutine faults at its
// first poll, or the holder's re-read of requested_epoch serves the request first), or it finds
// the slot claimed and waits; a CAS that reads the holder's release store of Scheduling sees the
// goroutine's work. Either way the CAS decides who acknowledges.
//
// A won CAS may be stale. The requester claims for the request it is running, but a holder
// (scheduler_safepoint_slow) or a releaser (slot_release) claims for the requested_epoch it read
// before its CAS; descheduled in between, it may find the slot back in `released` after that
// request was acknowledged by someone else and resumed (the requester's claim and its resume, or
// another machine's acquire, poll and release). Acknowledging it then would decrement
// `remaining` of no request (or of the next one) and leave the slot stopped with nobody to resume
// it: the next stop waits forever for this slot while its holder waits for that stop's resume.
// Every request is acknowledged for each of its slots before it resumes, acked_epoch stored
// before the acknowledgement, so an epoch that is not before acked_epoch was served; the CAS read
// the status from the resume's seq_cst CAS (or the other machine's release CAS), so through it
// the acquire load below sees that acked_epoch. A stale claim is undone (nobody else moves a
// claimed slot before it is acknowledged) and counted.
bool claim_slot_from(SafepointSlot* slot, uint32_t epoch, AckKind kind, SlotStatus released,
                     SlotStatus claimed) {
  SlotStatus expected = released;
  if (!slot->status.compare_exchange_strong(expected, claimed, std::memory_order_seq_cst))
    return false;
  // Acquire: see above.
  if (!epoch_before(slot->acked_epoch.load(std::memory_order_acquire), epoch)) {
    expected = claimed;
    const bool undone =
        slot->status.compare_exchange_strong(expected, released, std::memory_order_seq_cst);
    USGC_CHECK(undone, "safepoint: slot %u moved to status %u while its stale claim was undone",
               slot->index, static_cast<unsigned>(expected));
    g_state.stale_claims.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Release: pairs with the acquire loads of acked_epoch (slot_release, signal_unacknowledged,
  // warn_unacknowledged, claim_missing_slots): who sees the acknowledgement sees the
  // slot claimed.
  slot->acked_epoch.store(epoch, std::memory_order_release);
  if (kind == AckKind::kClaimedScheduler)
    g_state.scheduler_claims.fetch_add(1, std::memory_order_relaxed);
  if (kind == AckKind::kClaimedStopped)
    g_state.stopped_claims.fetch_add(1, std::memory_order_relaxed);
  acknowledge(slot, epoch, kind);
  return true;
}

// An idle slot (Idle -> StoppedIdle): the requester, or a releaser that saw the request.
bool claim_idle_slot(SafepointSlot* slot, uint32_t epoch, AckKind kind) {
  return claim_slot_from(slot, epoch, kind, SlotStatus::kIdle, SlotStatus::kStoppedIdle);
}

// A slot whose holder is in its scheduler loop (Scheduling -> StoppedScheduling): the requester
// with kClaimedScheduler; the holder itself, at its scheduler point, with its kind.
bool claim_scheduling_slot(SafepointSlot* slot, uint32_t epoch, AckKind kind) {
  return claim_slot_from(slot, epoch, kind, SlotStatus::kScheduling,
                         SlotStatus::kStoppedScheduling);
}

// A slot still stopped by an earlier request (AtSafepoint -> StoppedAtSafepoint): the requester,
// while its holder has not come back from that resume (leave_safepoint). The holder's own
// acknowledgement of this request stores acked_epoch before AtSafepoint, so a CAS that reads that
// AtSafepoint finds the request acknowledged and is undone (claim_slot_from); the acquire load
// here only skips the slots that already acknowledged it (no CAS, no stale claim counted).
bool claim_stopped_slot(SafepointSlot* slot, uint32_t epoch) {
  if (!epoch_before(slot->acked_epoch.load(std::memory_order_acquire), epoch)) return false;
  return claim_slot_from(slot, epoch, AckKind::kClaimedStopped, SlotStatus::kAtSafepoint,
                         SlotStatus::kStoppedAtSafepoint);
}

// The requester's claim of a slot that is idle, or (the claims on) in its holder's scheduler loop
// or still stopped by an earlier request.
bool claim_slot(SafepointSlot* slot, uint32_t epoch) {
  if (claim_idle_slot(slot, epoch, AckKind::kClaimedIdle)) return true;
  if (!scheduler_claim_enabled()) return false;
  return claim_scheduling_slot(slot, epoch, AckKind::kClaimedScheduler) ||
         claim_stopped_slot(slot, epoch);
}

}  // namespace

// While the requester waits: claims the slots of [first, first + count) still missing whose
// holder entered its scheduler loop after the scan (their thread may be off its CPU), or that
// are still stopped by the previous request (acknowledged it after this one's scan).
void claim_missing_slots(uint32_t first, uint32_t count, uint32_t epoch) {
  if (!scheduler_claim_enabled()) return;
  for (uint32_t i = first; i < first + count; ++i) {
    SafepointSlot* slot = &g_state.slots[i];
    // Relaxed: a hint; the CAS decides.
    const SlotStatus status = slot->status.load(std::memory_order_relaxed);
    if (status != SlotStatus::kScheduling && status != SlotStatus::kAtSafepoint) continue;
    // Acquire: pairs with the release stores of acked_epoch (already acknowledged: skip).
    if (slot->acked_epoch.load(std::memory_order_acquire) == epoch) continue;
    if (status == SlotStatus::kScheduling)
      (void)claim_scheduling_slot(slot, epoch, AckKind::kClaimedScheduler);
    else
      (void)claim_stopped_slot(slot, epoch);
  }
}

void set_before_leaving_safepoint_for_test(void (*hook)(SafepointSlot* slot)) {
  g_before_leaving_safepoint.store(hook, std::memory_order_relaxed);
}

void leave_safepoint(SafepointSlot* slot) {
  if (void (*hook)(SafepointSlot*) = g_before_leaving_safepoint.load(std::memory_order_relaxed))
    hook(slot);
  SlotStatus expected = SlotStatus::kAtSafepoint;
  // seq_cst like every status change: against claim_stopped_slot's CAS, exactly one of the two
  // wins; the requester's acquire loads of status see Running and leave this slot to its holder.
  while (!slot->status.compare_exchange_weak(expected, SlotStatus::kRunning,
                                             std::memory_order_seq_cst)) {
    if (expected == SlotStatus::kAtSafepoint) continue;  // a spurious failure
    USGC_CHECK(expected == SlotStatus::kStoppedAtSafepoint,
               "safepoint: slot %u leaves its safepoint in status %u", slot->index,
               static_cast<unsigned>(expected));
    // Claimed by the request in flight: its requested_epoch was stored (seq_cst) before the claim
    // CAS this failure read, so the acquire load sees it (or a later one, whose resume also
    // comes after that claim's). Wait for it, then try again.
    g_state.stopped_holder_waits.fetch_add(1, std::memory_order_relaxed);
    wait_until_resumed(slot->requested_epoch.load(std::memory_order_acquire));
    expected = SlotStatus::kAtSafepoint;
  }
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
    s->owner_cpu_word = kernel::current_thread_cpu_word();
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
    slot->owner_cpu_word = nullptr;
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

}  // namespace usgc::safepoint
