// safepoint/stop_the_world.cpp — the requester's side of the safepoint protocol of
// stop_the_world.hpp (read its table first): requests (stop the world, handshakes) in ticket
// order, arming the Ps (each holder's poll mirror), and the resume. The holder's side (serving a
// request at a poll or in the poll fault's handler, preemption and retake requests) is in
// serve_requests.cpp, the slot status machine and the acknowledgements in slot_claims.cpp, the
// waits in stop_waits.cpp, setup and configuration in safepoint_setup.cpp; the state they share,
// with who writes what, in stop_state.hpp.
//
// Invariants: one request at a time (operation_lock, taken in ticket order); a slot's mirror is
// changed only under its arm_lock and always matches the reasons it is armed for; resumed_epoch
// is stored after every slot left its stopped status, and a resume wakes the futex only when
// someone sleeps on it (or the wait policy is kSleep).
#include "safepoint/stop_the_world.hpp"

#include <cerrno>

#include "kernel_iface/clock.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "safepoint/fork_child.hpp"
#include "safepoint/poll_page.hpp"
#include "safepoint/stop_state.hpp"

// Threads that hold no slot poll this: any readable byte will do, and it is readable before
// anything is initialized (the TLS image is relocated before any thread copies it).
alignas(64) static const uint8_t kAlwaysReadableBytes[64] = {};

__attribute__((visibility("default"),
               tls_model("initial-exec"))) __thread usgc_poll_slot usgc_current_poll = {
    kAlwaysReadableBytes, 0, UINT32_MAX};

namespace usgc::safepoint {

State g_state;
__thread SafepointSlot* t_current_slot __attribute__((tls_model("initial-exec"))) = nullptr;

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

namespace {

// The stop this thread holds (between usgc_stop_the_world and usgc_start_the_world).
thread_local bool t_holds_stop [[gnu::tls_model("initial-exec")]] = false;
thread_local bool t_stop_gave_up_slot [[gnu::tls_model("initial-exec")]] = false;
// The attribution trace's record of an arming (stop_trace.hpp): what the holder was doing.
void trace_slot_armed(SafepointSlot* slot) {
  if (!stop_trace_enabled()) return;
  stop_trace::slot_armed(slot->index, slot->activity.load(std::memory_order_relaxed),
                         static_cast<uint8_t>(slot->status.load(std::memory_order_relaxed)));
}

// Under slot->arm_lock, operation lock held: arms the slot for a stop or a handshake and notes
// whether its holder's thread is on the requester's CPU (requester_cpu) — off its CPU, then:
// displaced by the requester or asleep.
void arm_slot_locked(SafepointSlot* slot, uint32_t requester_cpu, bool handshake) {
  if (handshake)
    slot->armed_for_handshake = true;
  else
    slot->armed_for_stop = true;
  slot->holder_on_requester_cpu = slot->owner_cpu_word != nullptr &&
                                  kernel::cpu_word_value(slot->owner_cpu_word) == requester_cpu;
}

// After the claims: does a slot still to acknowledge `epoch` have its holder on the requester's
// CPU? (Operation lock held; acquire, as every reader of acked_epoch.)
bool waited_for_slot_shares_cpu(uint32_t first, uint32_t count, uint32_t epoch) {
  for (uint32_t i = first; i < first + count; ++i) {
    const SafepointSlot& slot = g_state.slots[i];
    if (slot.holder_on_requester_cpu && slot.acked_epoch.load(std::memory_order_acquire) != epoch)
      return true;
  }
  return false;
}

// Operation lock held, every acknowledgement in (remaining == 0).
void record_breakdown(uint64_t start_ns, uint64_t armed_ns, uint32_t running,
                      const WaitOutcome& waited, bool shared_cpu, const RequesterSpin& spin) {
  StopBreakdown& breakdown = g_state.last_breakdown;
  breakdown.requested_at_ns = start_ns;
  breakdown.arming_ns = armed_ns - start_ns;
  uint64_t first = g_state.first_running_ack_ns.load(std::memory_order_relaxed);
  breakdown.first_running_ack_ns = first > start_ns ? first - start_ns : 0;
  breakdown.slots_running = running;
  breakdown.requester_slept = waited.slept;
  breakdown.signal_rounds = waited.signal_rounds;
  breakdown.requester_kept_slot = g_state.kept_slot != nullptr;
  breakdown.requester_shared_cpu = shared_cpu;
  breakdown.requester_spin_ns = spin.spin_ns;
  breakdown.requester_pure_spin_ns = spin.pure_spin_ns;
}

void record_time_to_safepoint(uint64_t duration_ns) {
  g_state.ttsp_last_ns.store(duration_ns, std::memory_order_relaxed);
  g_state.ttsp_total_ns.fetch_add(duration_ns, std::memory_order_relaxed);
  uint64_t max = g_state.ttsp_max_ns.load(std::memory_order_relaxed);
  if (duration_ns > max) g_state.ttsp_max_ns.store(duration_ns, std::memory_order_relaxed);
  g_state.ttsp_histogram[histogram_bucket_of(duration_ns)].fetch_add(1, std::memory_order_relaxed);
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
  g_state.requester_cpus.store(1, std::memory_order_relaxed);
  g_state.last_ack_ns.store(0, std::memory_order_relaxed);
  g_state.first_running_ack_ns.store(0, std::memory_order_relaxed);
  // seq_cst: a slot releaser that CASes Running -> Idle after this store sees the request
  // (Dekker with slot_release); reach_safepoint and safepoint_requested load it with acquire.
  for (uint32_t i = first; i < first + count; ++i)
    g_state.slots[i].requested_epoch.store(epoch, std::memory_order_seq_cst);
  return epoch;
}

// Returns the moment the world resumed: right after the store of resumed_epoch, before any
// wake-up (the end of the pause).
uint64_t end_request(uint32_t first, uint32_t count, uint32_t epoch) {
  g_state.slot_visits.fetch_add(count, std::memory_order_relaxed);
  for (uint32_t i = first; i < first + count; ++i) {
    SafepointSlot* slot = &g_state.slots[i];
    // seq_cst like every status change (at least release here): the slot is Idle (or
    // Scheduling, or AtSafepoint) before resumed_epoch is published below, so a machine woken by
    // it retries slot_try_acquire (or slot_leave_scheduler, leave_safepoint: their seq_cst CASes)
    // and finds it so. A loop: the holder of a StoppedScheduling slot may release it meanwhile
    // (-> StoppedIdle).
    SlotStatus expected = slot->status.load(std::memory_order_seq_cst);
    while (expected == SlotStatus::kStoppedIdle || expected == SlotStatus::kStoppedScheduling ||
           expected == SlotStatus::kStoppedAtSafepoint) {
      SlotStatus resumed = expected == SlotStatus::kStoppedIdle         ? SlotStatus::kIdle
                           : expected == SlotStatus::kStoppedScheduling ? SlotStatus::kScheduling
                                                                        : SlotStatus::kAtSafepoint;
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
      g_state.wait.load(std::memory_order_relaxed) == SafepointWait::kSpin) {
    // Only when nobody holds or waits for a ticket: the next ticket is the one being served.
    uint32_t serving = g_state.serving_ticket.load(std::memory_order_acquire);
    uint32_t expected = serving;
    if (g_state.next_ticket.compare_exchange_strong(expected, serving + 1,
                                                    std::memory_order_relaxed)) {
      g_state.operation_lock.lock();  // free: its holder advances serving_ticket after unlocking
      *kept = true;
      return 0;
    }
  }
  if (t_current_slot != nullptr) {
    if (g_state.hooks.requester_enter_native == nullptr) return EDEADLK;
    g_state.hooks.requester_enter_native();
    t_stop_gave_up_slot = true;
    USGC_CHECK(t_current_slot == nullptr,
               "safepoint: requester_enter_native did not release the slot");
  }
  // Requests in turn (stop_the_world.hpp). No lost wake-up: futex_wait sleeps only while
  // serving_ticket still holds the value read, so a waiter that leave_request did not count yet
  // returns at once.
  uint32_t ticket = g_state.next_ticket.fetch_add(1, std::memory_order_relaxed);
  bool handed_on = false;
  for (;;) {
    // Acquire: pairs with leave_request's release increment (the previous holder unlocked).
    uint32_t serving = g_state.serving_ticket.load(std::memory_order_acquire);
    if (serving == ticket) break;
    // Another requester's stop comes first, for as long as it lasts: a P held back for ours goes
    // to the queued goroutines meanwhile.
    if (!handed_on && g_state.hooks.requester_hand_off_held != nullptr)
      g_state.hooks.requester_hand_off_held();
    handed_on = true;
    kernel::futex_wait(&g_state.serving_ticket, serving);
  }
  g_state.operation_lock.lock();
  return 0;
}

void leave_request() {
  g_state.operation_lock.unlock();
  // Release: the critical section and the unlock before the next ticket holder's acquire.
  uint32_t serving = g_state.serving_ticket.fetch_add(1, std::memory_order_release) + 1;
  if (g_state.next_ticket.load(std::memory_order_relaxed) != serving)
    kernel::futex_wake_all(&g_state.serving_ticket);
  if (t_stop_gave_up_slot) {
    t_stop_gave_up_slot = false;
    g_state.hooks.requester_leave_native();
  }
}

}  // namespace

uint32_t histogram_bucket_of(uint64_t duration_ns) {
  uint64_t us = duration_ns / 1000;
  if (us == 0) return 0;
  uint32_t bucket = 64 - static_cast<uint32_t>(__builtin_clzll(us));  // us in [2^(b-1), 2^b)
  return bucket > 19 ? 19 : bucket;
}

SafepointSlot* slot_at(uint32_t index) {
  return index < g_state.slot_count ? &g_state.slots[index] : nullptr;
}
SafepointSlot* current_slot() {
  return t_current_slot;
}

int stop_the_world(usgc_stop_info* info, uint64_t* world_stopped_at_ns, bool keep_slot) {
  if (in_fork_child()) return refuse_in_fork_child("stopping the world");
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
    // loads of acked_epoch, as in reach_safepoint (and stored first, as there).
    own->acked_epoch.store(epoch, std::memory_order_release);
    own->status.store(SlotStatus::kAtSafepoint, std::memory_order_seq_cst);
    acknowledge(own, epoch, AckKind::kRequesterOwn);
    g_state.stops_kept_slot.fetch_add(1, std::memory_order_relaxed);
  }
  if (g_state.arming.load(std::memory_order_relaxed) == SafepointArming::kProtectGlobalPage) {
    kernel::Status armed = arm_global_poll_page();
    USGC_CHECK(armed.ok(), "stop the world: mprotect of the global poll page failed (errno %d)",
               armed.error());
  }
  g_state.slot_visits.fetch_add(count, std::memory_order_relaxed);
  const uint32_t requester_cpu = kernel::current_cpu();
  for (uint32_t i = 0; i < count; ++i) {
    SafepointSlot* slot = &g_state.slots[i];
    slot->holder_on_requester_cpu = false;
    if (slot == own) continue;  // it does not poll for this stop
    change_arming(slot, [requester_cpu](SafepointSlot* s) {
      arm_slot_locked(s, requester_cpu, /*handshake=*/false);
    });
    trace_slot_armed(slot);
  }
  uint32_t running = claim_idle_slots(0, count, epoch) - (own != nullptr ? 1 : 0);
  const bool shared_cpu = waited_for_slot_shares_cpu(0, count, epoch);
  uint64_t armed_ns = kernel::monotonic_ns();
  const RequesterSpin spin = requester_spin(running, own != nullptr, shared_cpu);
  WaitOutcome waited = wait_for_acknowledgements(0, count, epoch, start_ns, spin, false);
  stop_trace::request_observed();
  uint64_t stopped_ns = g_state.last_ack_ns.load(std::memory_order_relaxed);
  record_breakdown(start_ns, armed_ns, running, waited, shared_cpu, spin);
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
  if (in_fork_child()) return refuse_in_fork_child("starting the world");
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
  if (in_fork_child()) return refuse_in_fork_child("usgc_handshake");
  if (g_state.initialized && slot_index >= g_state.slot_count) return EINVAL;
  int error = enter_request();
  if (error != 0) return error;
  SafepointSlot* slot = &g_state.slots[slot_index];
  sample_machine_load();
  uint64_t start_ns = kernel::monotonic_ns();
  uint32_t epoch = begin_request(slot_index, 1, true);
  const uint32_t requester_cpu = kernel::current_cpu();
  change_arming(slot, [requester_cpu](SafepointSlot* s) {
    arm_slot_locked(s, requester_cpu, /*handshake=*/true);
  });
  trace_slot_armed(slot);
  uint32_t running = claim_idle_slots(slot_index, 1, epoch);
  const bool shared_cpu = waited_for_slot_shares_cpu(slot_index, 1, epoch);
  uint64_t armed_ns = kernel::monotonic_ns();
  const RequesterSpin spin = requester_spin(running, false, shared_cpu);
  WaitOutcome waited = wait_for_acknowledgements(slot_index, 1, epoch, start_ns, spin, true);
  stop_trace::request_observed();
  uint64_t stopped_ns = g_state.last_ack_ns.load(std::memory_order_relaxed);
  record_breakdown(start_ns, armed_ns, running, waited, shared_cpu, spin);
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

void stop_work_needs_cpus(uint32_t cpus) {
  if (!t_holds_stop || cpus == 0) return;
  g_state.requester_cpus.store(cpus, std::memory_order_relaxed);
}

StopBreakdown stop_breakdown_last() {
  kernel::FutexMutexGuard guard(g_state.operation_lock);
  return g_state.last_breakdown;
}

}  // namespace usgc::safepoint

extern "C" {
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
