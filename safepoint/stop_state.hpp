// safepoint/stop_state.hpp — the state the safepoint protocol's files share (internal: included
// only by the safepoint/ files below).
//
//   stop_the_world.cpp  requests (stop the world, handshakes): their turn, arming, the resume
//   serve_requests.cpp  the holder's side: serving requests at a poll, in the poll fault's
//                       handler and at a flag poll; preemption and retake requests
//   safepoint_setup.cpp initialization, configuration and statistics
//   slot_claims.cpp     acknowledgements and the slot status machine: claims of idle and
//                       scheduling slots, acquire and release, the scheduler loop's points
//   stop_waits.cpp      waiting: the requester for acknowledgements (spin, sleep, signal rounds,
//                       the one-second warning), the stopped threads for the resume
//
// Invariants are those of stop_the_world.hpp's table; every field of State says who writes it
// and with which ordering. Who writes what:
//   epoch, remaining, stats                    the requester, under g_state.operation_lock
//   resumed_epoch                              the requester, last thing before it unlocks
//   slot.status / requested / acked            see the table in stop_the_world.hpp
//   usgc_current_poll (each thread's mirror)   its own thread while it holds no slot; while it
//                                              holds one, whoever holds that slot's arm_lock
#pragma once

#include <atomic>
#include <cstdint>

#include "kernel_iface/futex_mutex.hpp"
#include "safepoint/stop_the_world.hpp"
#include "safepoint/stop_trace.hpp"

namespace usgc::safepoint {

struct State {
  SafepointSlot* slots = nullptr;
  uint32_t slot_count = 0;
  SafepointHooks hooks{};
  bool initialized = false;

  kernel::FutexMutex<kernel::LockRank::kSafepointOperation> operation_lock;  // serializes requests
  // Requesters take the operation lock in ticket order (enter_request, "Requests in turn" in
  // stop_the_world.hpp): next_ticket is taken with a relaxed fetch_add (a CAS for a requester
  // that only tries), serving_ticket is advanced by the holder after it unlocked (release: pairs
  // with the waiters' acquire loads; it is their futex word), so a requester that stops the
  // world back to back cannot take the lock again ahead of one that waits.
  std::atomic<uint32_t> next_ticket{0};
  std::atomic<uint32_t> serving_ticket{0};
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
  uint32_t online_cpus = 1;                // read at initialization (requester_spin)
  std::atomic<int64_t> fixed_spin_ns{-1};  // set_requester_spin_for_benchmark; -1: adaptive
  // USGC_SAFEPOINT_WAIT, read at initialization; set_safepoint_wait between stops.
  std::atomic<SafepointWait> wait{SafepointWait::kSpin};
  std::atomic<int64_t> requester_cap_ns{-1};     // set_spin_caps_for_test; -1: kRequesterSpinCapNs
  std::atomic<int64_t> resume_cap_ns{-1};        // set_spin_caps_for_test; -1: kResumeSpinNs
  std::atomic<bool> ignore_machine_load{false};  // set_spin_caps_for_test
  // set_machine_loaded_for_test: every request samples the machine as loaded (cpus_free false).
  std::atomic<bool> machine_loaded_for_test{false};
  // Whether the machine had a CPU for every runnable thread when the current request began
  // (spinning_leaves_cpus_free): written by the requester before begin_request's seq_cst stores,
  // read relaxed by the threads that acknowledge it (after their acquire of requested_epoch).
  std::atomic<bool> cpus_free{false};
  // The slot the current requester kept (stop_the_world's keep_slot), or nullptr: written by the
  // requester under operation_lock, read by it (end_request).
  SafepointSlot* kept_slot = nullptr;
  // Threads spinning on resumed_epoch now (wait_until_resumed): relaxed, a budget only; a
  // spinner leaves only through a decrement of its own (a CAS when it leaves over budget).
  std::atomic<uint32_t> resume_spinners{0};
  // CPUs the current request's own work runs on (the requester, plus the helpers of a parallel
  // mark in the stop): the stopped threads' spin budget is online_cpus minus this. Written by the
  // requester (1 at begin_request, stop_work_needs_cpus while it holds the stop), read relaxed by
  // the spinners at each look (a budget: a stale value costs one look's worth of spinning).
  std::atomic<uint32_t> requester_cpus{1};
  std::atomic<uint64_t> resume_spins_ceded{0};
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
  // set_monitor_backs_off_during_stops; read relaxed by the monitor.
  std::atomic<bool> monitor_backs_off{true};
  // set_signal_rounds_wait_out_load; read relaxed by the requester (first_signal_after_ns).
  std::atomic<bool> signal_rounds_wait_out_load{true};
  // Requests whose first signal round came early on a loaded machine because a missing holder
  // needed the signal at its last stop (first_signal_after_ns): relaxed, statistics.
  std::atomic<uint64_t> early_signal_rounds{0};
  std::atomic<uint64_t> scheduler_claims{0};
  std::atomic<uint64_t> claimed_holder_waits{0};
  std::atomic<uint64_t> stopped_claims{0};        // AckKind::kClaimedStopped
  std::atomic<uint64_t> stopped_holder_waits{0};  // leave_safepoint found its slot claimed
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
extern State g_state;

// The slot this thread holds (slot_try_acquire .. slot_release), or nullptr. Read in the poll
// fault's signal handler: initial-exec TLS, no lazy allocation.
extern __thread SafepointSlot* t_current_slot __attribute__((tls_model("initial-exec")));

// Wrap-around-safe "a is before b" for epochs.
inline bool epoch_before(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}

// stop_the_world.cpp: a released slot's poll mirror back to the always-readable byte; the
// holder's mirror made to match the reasons its slot is armed for (slot->arm_lock held).
void reset_mirror(usgc_poll_slot* mirror);
void update_mirror_locked(SafepointSlot* slot);
template <class Setter>
void change_arming(SafepointSlot* slot, Setter setter) {
  kernel::FutexMutexGuard guard(slot->arm_lock);
  setter(slot);
  update_mirror_locked(slot);
}
// serve_requests.cpp: reach_safepoint's body (stopped_already: the caller already stopped for a
// request of this slot, acknowledged in the poll fault's handler, and waited for its resume); the
// poll fault's two hooks (FaultHandlerHooks: in the signal handler, then after the trampoline).
bool serve_requests(SafepointSlot* slot, bool allow_preemption, bool stopped_already);
// The holder takes its slot's pending preemption request (clears the preemption pair under
// arm_lock and counts it): true if there was one, which the caller then serves by yielding.
// Without wait_for_requester, false too while the requester still holds arm_lock (the request
// stays armed for the next poll).
bool take_preemption_request(SafepointSlot* slot, bool wait_for_requester);
void poll_fault_in_handler();
void poll_fault_slow_path();

// slot_claims.cpp: one acknowledgement of request `epoch` for slot (decrements remaining, wakes a
// sleeping requester); the requester's claims of the idle, scheduling and still-stopped slots
// among [first, first + count) (returns how many were left to reach a poll); its retry, while
// it waits, of the slots that entered their scheduler loop or acknowledged the previous request
// since; the holder's way out of AtSafepoint after a resume (a CAS: a slot claimed meanwhile by
// the next request waits for that one's resume too).
void acknowledge(SafepointSlot* slot, uint32_t epoch, AckKind kind);
uint32_t claim_idle_slots(uint32_t first, uint32_t count, uint32_t epoch);
void claim_missing_slots(uint32_t first, uint32_t count, uint32_t epoch);
void leave_safepoint(SafepointSlot* slot);

// stop_waits.cpp: a stopped thread's wait for the resume of `epoch`; the requester's wait for
// every acknowledgement of [first, first + count) and how it went; how long it spins first;
// the machine's load sampled before a request (may its threads spin?).
// How the requester waits: spin_ns in all before it sleeps, of which the first pure_spin_ns with
// pauses only (then yielding between looks). shares_cpu: a P it waits for has its thread on the
// requester's CPU (SafepointSlot::holder_on_requester_cpu).
struct RequesterSpin {
  uint64_t spin_ns = 0;
  uint64_t pure_spin_ns = 0;
};
RequesterSpin requester_spin(uint32_t running, bool kept_slot, bool shares_cpu);
void wait_until_resumed(uint32_t epoch);
struct WaitOutcome {
  bool slept = false;
  uint32_t signal_rounds = 0;
};
WaitOutcome wait_for_acknowledgements(uint32_t first, uint32_t count, uint32_t epoch,
                                      uint64_t start_ns, RequesterSpin spin, bool handshake);

void sample_machine_load();

}  // namespace usgc::safepoint
