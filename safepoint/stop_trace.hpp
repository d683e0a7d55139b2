// safepoint/stop_trace.hpp — who was last to stop, and why: the attribution trace of the stop
// protocol (off by default; USGC_TRACE=safepoint, or set_stop_trace_enabled from a benchmark or a
// test).
//
// Time to safepoint is the time of the slowest P. To shorten its tail one must know, for the slow
// stops, which P was last and what it was doing when it was armed. With the trace on, every stop
// and handshake records, per requested P slot, TSC timestamps (rdtscp, with the CPU it ran on):
//   armed     the requester armed the slot (after its arming step, stop_the_world.cpp)
//   fault     the holder's SIGSEGV handler entered for the poll fault (0: it did not fault)
//   acked     the slot was acknowledged (by its holder, by the releaser, or by the requester's
//             claim of an idle slot)
//   woken     its acknowledger (the last) called the requester's wake-up
// and for the stop: requested (the clock start), the requester's first sleep and its return from
// the last, observed (the requester saw every acknowledgement). The requester also records each
// slot's ProcessorActivity (what its holder said it was doing, stop_the_world.hpp
// SafepointSlot::activity) and status when it armed it, and how the slot acknowledged (AckKind). At
// the end of the stop the slot with the latest acknowledgement is "the last P"; its activity x ack
// kind goes into a histogram (two: all stops, and stops slower than kSlowStopNs), with two
// load-independent facts about it: it acknowledged on the CPU the requester armed from (the
// requester's own wake-up displaced it), and the monitor thread worked during the stop
// (monitor_work_begin/end: it may have displaced it).
//
// Who writes what: the per-slot record of a request is written by the requester (armed, activity,
// status; before any acknowledgement can be counted as the last) and by the one acknowledger of
// that slot (fault, acked, kind, CPUs; before its acq_rel decrement of `remaining`), and read by
// the requester after its acquire load of remaining == 0: every field is a relaxed atomic ordered
// by those two. The fault timestamp is written by the holder's signal handler into a thread-local
// word and copied into the record by the same thread's acknowledgement (signal-safe: rdtscp and a
// TLS store). The histograms are written by the requester under the operation lock and read by
// anyone (relaxed counters).
//
// Cost: one relaxed load of the enabled flag on each acknowledgement and poll fault when off;
// rdtscp and a few stores when on. Not on the poll's fast path (which stays one load).
#pragma once

#include <cstdint>

namespace usgc::safepoint {

// What the holder of a P slot is doing, as it last said (a relaxed byte store at each change,
// runtime/scheduler.cpp): the requester reads it when it arms the slot.
enum class ProcessorActivity : uint8_t {
  kNone,       // nobody holds the slot (idle, or held by a thread that never said)
  kGoroutine,  // running a goroutine's code (compiled, interpreted or C): reaches a poll
  kScheduler,  // the scheduler loop: finding the next goroutine (checks the request, no fault)
  kSwitching,  // between a goroutine and the scheduler (context switch, requeue, park commit)
  kSpinning,   // looking for work before going idle (spin_before_idle, stack refill ahead)
  kSpawning,   // inside usgc_go: making a goroutine
  kCount
};

// Where a spawn (usgc_go) is, as its thread last said (stop_trace::spawn_step): the steps that may
// take long or wait, each named after what it waits for. The holder's thread stamps each change
// (TSC) into its slot's ring; for the last P of a stop the requester splits the time from its
// arming to its fault (or acknowledgement) by step (StopAttribution::spawn_step_ns): a P that was
// "spawning" when armed says where that time went, with no second mechanism.
enum class SpawnStep : uint8_t {
  kOutside,       // not in a spawn (goroutine code, the scheduler, ...): the ring's default
  kCache,         // the goroutine-record caches (the global cache's lock)
  kPoolLock,      // the stack pool: waiting for or holding its lock (goroutine_stack.cpp)
  kDecommitWait,  // waiting for a decommit ticket (the decommit queue's batch)
  kChunkMap,      // mapping a new 1 GiB chunk of stacks (mmap)
  kGuardInstall,  // installing new slots' guards (process_madvise or madvise or mprotect)
  kPopulate,      // populating top pages (process_madvise MADV_POPULATE_WRITE)
  kFirstTouch,    // the first user write to populated top pages (the VM's shadow-page fill)
  kRecord,        // constructing the record on its stack's top page (a fault if untouched)
  kRegister,      // the collector's mutator registry (its lock)
  kQueue,         // queueing the new goroutine (the scheduler's lock on overflow)
  kWakeIdle,      // waking an idle P for it (a futex wake, or starting a thread)
  kCount
};
const char* spawn_step_name(SpawnStep step);

// How a slot acknowledged a request.
enum class AckKind : uint8_t {
  kNone,              // not acknowledged (the record is of another request)
  kPollFault,         // its holder's poll faulted (SIGSEGV, trampoline, slow path)
  kFlagPoll,          // its holder's flag poll (usgc_safepoint_flag_slow_path)
  kSchedulerPoint,    // its holder's runtime code checked the request (no fault): scheduler,
                      // native entry/exit, the private collector's loops
  kAsyncSignal,       // the asynchronous safepoint signal stopped its holder
  kReleased,          // its holder released the slot and acknowledged on the way out
  kClaimedIdle,       // the requester claimed it idle (a CAS: no round trip)
  kRequesterOwn,      // the requester's own slot (stop_the_world's keep_slot)
  kClaimedScheduler,  // the requester claimed it in its holder's scheduler loop (a CAS: the
                      // holder ran no goroutine, its thread was not needed)
  kClaimedStopped,    // the requester claimed it still stopped by an earlier request (a CAS: its
                      // holder was not back from that resume yet)
  kCount
};

const char* processor_activity_name(ProcessorActivity activity);
const char* ack_kind_name(AckKind kind);

// Stops slower than this count in the slow histogram (the target time to safepoint).
inline constexpr uint64_t kSlowStopNs = 50'000;

// The last stop's attribution (stop_attribution_last), in ns from the request.
struct StopAttribution {
  bool valid;                       // the trace was on for the whole stop
  bool handshake;                   // a handshake (one slot), not a stop-the-world
  uint32_t slots;                   // slots requested
  uint32_t slots_faulted;           // slots acknowledged through a poll fault
  uint32_t last_slot;               // the slot acknowledged last
  ProcessorActivity last_activity;  // what its holder was doing when armed
  uint8_t last_status_at_arm;       // its SlotStatus when armed
  AckKind last_kind;                // how it acknowledged
  bool last_on_requester_cpu;       // it acknowledged on the CPU the requester armed from
  bool monitor_worked;              // the monitor thread worked during the stop
  uint64_t time_to_safepoint_ns;    // request to the last acknowledgement (TSC)
  uint64_t last_armed_ns;           // request to the last slot's arming
  uint64_t last_fault_ns;           // request to its fault handler's entry (0: no fault)
  uint64_t last_ack_ns;             // request to its acknowledgement
  uint64_t observed_ns;             // request to the requester seeing every acknowledgement
  // The requester's side and the other Ps (0: did not happen in this stop).
  uint64_t first_fault_ns;      // request to the earliest poll fault handler entry of any slot
  uint64_t requester_slept_ns;  // request to the requester's first sleep on `remaining`
  uint64_t requester_woke_ns;   // request to its return from its last sleep
  uint64_t wake_call_ns;        // request to the last acknowledger's wake call (before it)
  uint32_t requester_sleeps;    // how many times the requester slept on `remaining`
  // The last P's time from its arming to its poll fault (its acknowledgement if it did not fault),
  // by the spawn step its thread was in (stop_trace::spawn_step; kOutside: in no spawn), and the
  // step when armed. spawn_steps_known is false when the slot's ring no longer reached back to the
  // arming (more steps since than the ring holds): then the split covers only the later part.
  SpawnStep spawn_step_at_arm;
  bool spawn_steps_known;
  uint64_t spawn_step_ns[static_cast<int>(SpawnStep::kCount)];
};

// Cumulative histograms of who was last: [activity][kind], over every traced stop and over the
// traced stops slower than kSlowStopNs, with the two facts above counted alike.
struct StopAttributionTotals {
  uint64_t stops;
  uint64_t slow_stops;
  uint64_t last[static_cast<int>(ProcessorActivity::kCount)][static_cast<int>(AckKind::kCount)];
  uint64_t slow_last[static_cast<int>(ProcessorActivity::kCount)]
                    [static_cast<int>(AckKind::kCount)];
  uint64_t last_on_requester_cpu, slow_last_on_requester_cpu;
  uint64_t monitor_worked, slow_monitor_worked;
  // Acknowledgements of every slot (not only the last) by kind, and poll faults taken.
  uint64_t acknowledgements[static_cast<int>(AckKind::kCount)];
  uint64_t poll_faults;
};

// Benchmarks and tests: turn the trace on or off between stops (no stop may be in flight).
// USGC_TRACE=safepoint turns it on at initialization and prints the totals at shutdown.
void set_stop_trace_enabled(bool enabled);
bool stop_trace_enabled();
StopAttribution stop_attribution_last();
StopAttributionTotals stop_attribution_totals();
void reset_stop_attribution_totals();
// One line per non-zero cell of the totals on stderr ("usgc: safepoint trace: ...").
void print_stop_attribution_totals();

// The monitor thread (runtime/monitor.cpp) brackets its work with these: a stop that saw the
// count move or odd had the monitor running (it may have taken a P's CPU).
void monitor_work_begin();
void monitor_work_end();

namespace stop_trace {
// The protocol's side (stop_the_world.cpp, fault_handler.cpp); cheap no-ops when the trace is off.
// Signal context: the poll fault's handler entry, on the faulting thread.
void poll_fault_entered();
// The thread about to call reach_safepoint says how it got there (default kSchedulerPoint).
void set_next_ack_kind(AckKind kind);
AckKind take_next_ack_kind();
// Requester, operation lock held.
void request_begun(uint32_t epoch, uint32_t first, uint32_t count, bool handshake);
void slot_armed(uint32_t slot_index, ProcessorActivity activity, uint8_t status);
void request_observed();
// Acknowledger of slot_index for `epoch`, before its decrement of `remaining`.
void slot_acknowledged(uint32_t slot_index, uint32_t epoch, AckKind kind);
// The last acknowledger of slot_index for `epoch`, right before it wakes the sleeping requester.
void requester_wake_called(uint32_t slot_index, uint32_t epoch);
// Requester, operation lock held: around each sleep on `remaining` (wait_for_acknowledgements).
void requester_sleep_begins();
void requester_sleep_ended();
// Initialization: room for slot_count slots (false: no memory; the trace then stays off).
bool initialize(uint32_t slot_count);

// The spawn steps (SpawnStep). A spawning thread that holds slot_index calls spawn_begin once
// (nothing is recorded while the trace is off or the thread holds no slot), spawn_step at each
// change, and spawn_end as it returns (the step goes back to kOutside, and later calls record
// nothing until the next spawn_begin; a spawn that yields ends before it and begins again after).
// Cost with the trace off: one thread-local load per call.
struct SpawnRing;
// The calling thread's ring while it spawns with the trace on (nullptr otherwise).
extern thread_local SpawnRing* t_spawn_ring [[gnu::tls_model("initial-exec")]];
void spawn_begin(uint32_t slot_index, SpawnStep first);
void spawn_step_slow(SpawnRing* ring, SpawnStep step);
inline void spawn_step(SpawnStep step) {
  if (SpawnRing* ring = t_spawn_ring) spawn_step_slow(ring, step);
}
inline void spawn_end() {
  if (SpawnRing* ring = t_spawn_ring) {
    spawn_step_slow(ring, SpawnStep::kOutside);
    t_spawn_ring = nullptr;
  }
}
}  // namespace stop_trace

}  // namespace usgc::safepoint
