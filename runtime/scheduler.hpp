// runtime/scheduler.hpp — the M:N scheduler's records and the functions its files share
// (runtime/scheduler.cpp: run queues, find/execute, park/ready, spawn; runtime/native.cpp:
// native calls and attached threads; runtime/monitor.cpp: timers and preemption).
//
// Vocabulary (Go's): G = Goroutine (goroutine.hpp); P = Processor, one per USGC_PROCS, owns a
// local run queue and a safepoint slot; M = Machine, an OS thread that runs goroutines while it
// holds a P. A worker M runs the scheduler loop on its own thread stack (the "scheduler
// context") and switches into goroutines from there; a goroutine hands control back by
// switching to that context with a request (Machine::request) the loop then carries out. An
// attached M is an embedder's thread turned goroutine; its scheduler context is a separate small
// stack, and its goroutine is locked to it (only it runs that goroutine).
//
// Lock order (docs/HACKING.md): a channel or wait-group lock -> g_scheduler.lock ->
// a safepoint slot's arm_lock. The timer lock is never held while calling ready().
//
// Who writes what:
//   Processor::run_queue          see run_queue.hpp
//   Processor::next_idle          g_scheduler.lock
//   Processor::current_goroutine  the holding machine (relaxed; the monitor reads it)
//   Machine::processor            the machine itself (a handoff writes next_processor instead)
//   Machine::next_processor       the hander, under g_scheduler.lock, before waking the machine
//   Machine::pinned               the machine itself (runtime/blocked_call.cpp); read by itself
//   global queue, idle lists      g_scheduler.lock (also the pinned waiters' line)
//   global dead-goroutine cache   g_scheduler.free_goroutines_lock (a leaf)
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/signals.hpp"
#include "runtime/goroutine.hpp"
#include "runtime/run_queue.hpp"
#include "safepoint/stop_the_world.hpp"
#include "usgc/runtime.h"

namespace usgc::runtime {

struct alignas(64) Processor {
  uint32_t index = 0;
  safepoint::SafepointSlot* slot = nullptr;
  LocalRunQueue run_queue;
  Processor* next_idle = nullptr;
  uint32_t schedule_tick = 0;
  // Dead goroutines kept with their stacks for the next spawn (holder only).
  Goroutine* free_goroutines = nullptr;
  uint32_t free_goroutine_count = 0;
  // The monitor's view (preemption): written by the holder with relaxed stores.
  std::atomic<Goroutine*> current_goroutine{nullptr};
  std::atomic<uint64_t> switch_count{0};
  // Turns (runtime/scheduler.cpp, "Turns"): the P's last holder took it from the pinned waiters'
  // line, so while goroutines are queued its next hand-off runs one of them, not the line. Set by
  // whoever hands the P to a pinned waiter (its holder, or a releaser under the scheduler lock),
  // cleared by a worker holding it when it runs a queued goroutine; read by the P's next hander,
  // to which the hand-over (hand_processor_to's release/acquire, or the scheduler lock) orders it.
  bool served_pinned_waiter = false;
};

// What a goroutine asks of its machine's scheduler context when it switches to it.
enum class SwitchRequest : uint8_t {
  kNone,
  kPark,           // state -> Parked, then run the commit (may resume at once)
  kYield,          // state -> Runnable, to the back of the local queue
  kPreempt,        // state -> Runnable, to the global queue
  kExit,           // state -> Dead, recycled
  kRequeueGlobal,  // left native (or attached) with no P to take: -> Runnable, global queue
};

struct Machine {
  uint32_t id = 0;
  bool attached = false;               // an embedder's thread (usgc_attach_thread)
  std::atomic<uint32_t> wake_word{0};  // futex: 1 = woken with next_processor set (or exit)
  Processor* processor = nullptr;
  Processor* next_processor = nullptr;
  Goroutine* current = nullptr;           // the goroutine this machine runs (also while in native)
  Goroutine* locked_goroutine = nullptr;  // attached machines: their goroutine
  void* scheduler_stack_pointer = nullptr;  // the scheduler context while a goroutine runs
  void* scheduler_fiber = nullptr;          // its sanitizer fiber (context_switch.hpp)
  GoroutineStack scheduler_stack;           // attached machines only
  bool spinning = false;                    // looking for work (counted in spinning_machines)
  // A worker whose goroutine gave its P up inside a blocked library call and is locked to it
  // until it has a P again (runtime/blocked_call.cpp): it waits in the pinned waiters' line,
  // never on the idle-machine list.
  bool pinned = false;
  // The P this machine's goroutine released for a stop it requests (enter_native_for_stop): its
  // slot released (Idle: the stop claims it), on no idle list and handed to no machine, so that
  // no thread is woken to run on it while the world stops. Taken back by leave_native, or handed
  // on by hand_off_held_processor (after the resume, or before a wait for another requester's
  // stop). Only this machine's thread reads or writes it.
  Processor* held_for_stop = nullptr;
  Machine* next_idle = nullptr;
  Machine* next_all = nullptr;  // every machine, for shutdown
  pthread_t thread{};
  kernel::AlternateSignalStack signal_stack;  // where the fault handler runs (stack overflows)
  // Attached machines, their thread only: the thread's signal mask before usgc_attach_thread
  // unblocked the runtime's signals (safepoint/thread_signals.hpp), given back when it detaches.
  sigset_t signal_mask_before_attach;
  bool signal_mask_saved = false;

  SwitchRequest request = SwitchRequest::kNone;
  bool (*park_commit)(Goroutine*, void*) = nullptr;
  void* park_argument = nullptr;
};

inline constexpr uint32_t kDefaultMaxWorkerThreads = 10000;

struct Scheduler {
  kernel::FutexMutex<kernel::LockRank::kScheduler> lock;
  usgc_config config{};
  bool initialized = false;
  std::atomic<bool> shutting_down{false};
  Processor* processors = nullptr;
  uint32_t processor_count = 0;

  Processor* idle_processors = nullptr;           // lock
  std::atomic<uint32_t> idle_processor_count{0};  // written under lock; read anywhere
  Machine* idle_machines = nullptr;               // lock
  Machine* all_machines = nullptr;                // lock
  Goroutine* global_head = nullptr;               // lock
  Goroutine* global_tail = nullptr;               // lock
  std::atomic<uint32_t> global_size{0};           // written under lock; read anywhere
  kernel::FutexMutex<kernel::LockRank::kFreeGoroutines>
      free_goroutines_lock;              // a leaf: guards the two fields below
  Goroutine* free_goroutines = nullptr;  // free_goroutines_lock
  uint32_t free_goroutine_count = 0;     // free_goroutines_lock
  std::atomic<uint32_t> spinning_machines{0};

  std::atomic<uint64_t> next_goroutine_id{1};
  std::atomic<uint64_t> live_goroutines{0};
  std::atomic<uint64_t> goroutines_created{0};
  std::atomic<uint64_t> context_switches{0};
  std::atomic<uint64_t> steals{0};
  // Preemptions after which the goroutine ran on at once (keep_running_after_preemption); relaxed:
  // statistics (tests).
  std::atomic<uint64_t> preemptions_kept_running{0};
  // Asynchronous preemptions served in place, the goroutine kept on its thread
  // (runtime_lifecycle.cpp, preempt_current_goroutine_in_place); relaxed: statistics (tests).
  std::atomic<uint64_t> preemptions_in_place{0};
  // Spawns that yielded first (spawn back-pressure, scheduler.cpp); relaxed: statistics.
  std::atomic<uint64_t> spawn_backlog_yields{0};
  // Spawns whose stack work ran with the P claimable (SpawnStackWork, goroutine_cache.cpp), and
  // those that found a stop pending as they began it and acknowledged it on the spot; relaxed:
  // statistics (tests, the churn benchmark).
  std::atomic<uint64_t> spawn_claimable_stack_works{0};
  std::atomic<uint64_t> spawn_stack_work_acknowledgements{0};
  std::atomic<uint64_t> worker_threads{0};
  // Worker threads alive now (started, not yet joined), and their bound (Go's maxmcount, 10 000):
  // start_worker_machine reserves with a fetch_add and gives back what it could not use. Tests
  // may lower the bound between usgc_init and the first goroutine.
  std::atomic<uint32_t> live_worker_threads{0};
  uint32_t max_worker_threads = kDefaultMaxWorkerThreads;
  // Threads back from a blocked library call waiting for a P, FIFO through Machine::next_idle
  // (runtime/blocked_call.cpp): a released P goes to the first before anything else, and every
  // worker gives its P to one at its next scheduling point. Head and tail under lock; the count
  // written under lock, read anywhere (relaxed: a stale zero only delays to the next point).
  Machine* pinned_waiters_head = nullptr;
  Machine* pinned_waiters_tail = nullptr;
  std::atomic<uint32_t> pinned_waiter_count{0};
  // Ps given up by threads blocked in a library call (runtime/blocked_call.cpp).
  std::atomic<uint64_t> blocked_call_handoffs{0};
  uint32_t next_machine_id = 0;  // lock
};
extern Scheduler g_scheduler;

// The calling thread's machine (nullptr on threads that are neither workers nor attached).
Machine* current_machine();
void set_current_machine(Machine* machine);

// Switches from the running goroutine to its machine's scheduler context with a request. Returns
// when the goroutine runs again (possibly on another machine: re-read current_machine()).
void switch_to_scheduler(SwitchRequest request);

// Carries out what the goroutine asked when it switched away (called on the scheduler context).
// Returns true when the goroutine must be resumed at once (a park whose commit said no).
bool carry_out_request(Machine* machine, Goroutine* goroutine);

// Switches into goroutine on machine (which holds a P); returns when it switches back.
void run_goroutine(Machine* machine, Goroutine* goroutine);

// Takes P, making its slot Running for the calling thread; waits while a stop holds it.
void acquire_processor(Machine* machine, Processor* processor);
// Releases the machine's P (its slot released, no current goroutine, the machine without a P) and
// returns it, for the caller to hand on, park or hold.
Processor* release_processor(Machine* machine);
// Gives the machine's P up: to a machine that will run queued work, or to the idle list.
void hand_off_processor(Machine* machine);
// The same for a P whose slot its holder already released (held_for_stop).
void hand_off_released_processor(Processor* processor);
// An idle P, or nullptr. Takes g_scheduler.lock.
Processor* take_idle_processor();

// Queues a runnable goroutine: on the caller's P when it holds one, else globally; then wakes
// an idle P when there is one and nobody is looking for work.
void make_runnable(Goroutine* goroutine);
void global_queue_put(Goroutine* goroutine);  // takes the lock
// The monitor preempted the goroutine machine runs: true when nothing else waits to run (its P's
// local queue, the global queue, a thread waiting in line for a P after a blocked call), and the
// goroutine then runs on at once with a new time slice, as Go's scheduler runs a preempted
// goroutine again when it finds nothing else: no switch to the scheduler context, no wake-up of
// an idle P (whose thread would only look for the goroutine, find it gone or take it, and sleep
// again), no lock. False: yield (SwitchRequest::kPreempt).
bool keep_running_after_preemption(Machine* machine);
void wake_idle_processor();

// A thread back from a blocked call (runtime/blocked_call.cpp): an idle P, or nullptr after
// putting machine in line for the next released P (then wait_for_processor). Takes the lock.
Processor* take_idle_processor_or_wait_in_line(Machine* machine);
// At a scheduling point: gives the machine's P to the first thread in that line; false if none.
bool give_processor_to_pinned_waiter(Machine* machine);

// Under g_scheduler.lock, the P's slot already released: to the first pinned waiter, else onto
// the idle list (runtime/processor_handoff.cpp).
void put_idle_processor_locked(Processor* processor);
// Turns: the P served the pinned waiters' line last and goroutines are queued (read racily).
bool queued_goroutines_wait_their_turn(Processor* processor);
// The machine found work or gives up looking: no longer counted in spinning_machines; the last
// spinner wakes another P (the no-lost-wake-up protocol, runtime/processor_handoff.cpp).
void stop_spinning(Machine* machine);
// Parks the calling machine (it holds no P) until a P is handed to it; false on shutdown.
bool wait_for_processor(Machine* machine);
// Hands P to machine (idle or locked) and wakes it.
void hand_processor_to(Machine* machine, Processor* processor, bool spinning);

// Starts an OS thread for a new worker machine that begins with processor (spinning: counted in
// spinning_machines). nullptr when no thread could be made (the caller keeps the P).
Machine* start_worker_machine(Processor* processor, bool spinning);
// Adds a machine to the list usgc_shutdown joins; false (not added) once shutdown began.
bool register_machine(Machine* machine);
// safepoint::SafepointHooks::resumed_from_stop: the goroutine this thread runs is scanned for a
// concurrent shared mark before it runs on, if the mark has not scanned it yet.
void resumed_from_stop();
void unregister_machine(Machine* machine);
// The scheduler loop of a worker machine (runs until shutdown).
void worker_loop(Machine* machine);

// usgc_go: a new goroutine running entry(argument); exit_notify (may be nullptr) is set to 1
// and futex-woken after entry returns and the goroutine stopped counting as live.
// runtime/reference_channels.cpp: the runtime's roots for shared collections (gc::GcHooks).
void visit_reference_channel_roots(void (*visit)(void** slot, void* context), void* context);

int spawn_goroutine(void (*entry)(void*), void* argument, usgc_goroutine_id* id,
                    std::atomic<uint32_t>* exit_notify, void* start_object = nullptr);

// Goroutine records (runtime/goroutine_cache.cpp).
// A spawn that finds no dead goroutine in the caches takes a stack from the pool: its lock, a
// refill's system calls (guards, populates), first touches of new pages and the record's page, tens
// to hundreds of microseconds on a VM. kClaimable (a goroutine's spawn, on a P): that work runs
// with the P's slot in the scheduler state, as a machine's scheduler loop does, so a stop claims
// the P by a CAS instead of waiting for it (safepoint/stop_the_world.hpp, kScheduling): the work
// touches only the pool and the new stack, never the heap or the spawner's frames, and the spawner
// waits out the stop (and is scanned for a concurrent mark) before it goes on. usgc_go_object's
// object is rooted in a frame of the spawner meanwhile (spawn_goroutine). kOnTheProcessor (a
// thread that runs no goroutine, or USGC_SAFEPOINT_CLAIM=0): the slot stays Running throughout.
enum class SpawnStackWork : uint8_t { kOnTheProcessor, kClaimable };
Goroutine* goroutine_allocate(bool with_stack,  // nullptr: ENOMEM
                              SpawnStackWork work = SpawnStackWork::kOnTheProcessor);
// Tests: `hook` (nullptr: none) is called by every spawn that takes its stack from the pool, on
// the spawning thread: at kBegin before its slot enters the scheduler state, at kStackTaken once
// the stack is acquired and before the record is made on it (inside the claimable stretch when
// there is one).
enum class SpawnStackWorkPoint : uint8_t { kBegin, kStackTaken };
void set_spawn_stack_work_hook_for_testing(void (*hook)(SpawnStackWorkPoint point));
void goroutine_recycle(Goroutine* goroutine);
void goroutine_destroy(Goroutine* goroutine);  // stack, sanitizer fiber and record
// Destroys the dead goroutines cached by idle Ps and globally (runtime/stack_scavenger.cpp's
// trim); the caches of Ps in use are left to their holders.
void release_cached_goroutines();
// Holder of processor: true when its cache holds a dead goroutine, after taking a batch from the
// global cache if it was empty.
bool fill_processor_cache(Processor* processor);

// Monitor (runtime/monitor.cpp).
void monitor_start();
void monitor_stop();
void monitor_notify_busy();                    // a P became busy: the monitor may need to watch it
void timer_sleep_until(uint64_t deadline_ns);  // parks the calling goroutine
// /proc probes of P holders the monitor made for retake, and its looks at the Ps, since start
// (tests).
uint64_t monitor_retake_probes();
uint64_t monitor_looks();
// Procfs reads among the monitor's probes (a holder's /proc files), for tests.
uint64_t monitor_procfs_probes();
// Rounds the monitor skipped because a stop was in flight (safepoint::monitor_quiet_during_stops).
uint64_t monitor_rounds_skipped_during_stops();
// Preemption requests the monitor made in those rounds (its time slices go on during stops).
uint64_t monitor_preemptions_requested_during_stops();

// The runtime's entry points behind the C API (runtime/native.cpp, runtime_lifecycle.cpp); the
// safepoint layer also calls enter/leave_native around a goroutine's stop request.
void enter_native();
void leave_native();
// enter_native for a goroutine about to request a stop (the collector, usgc_stop_the_world from a
// goroutine): its P is released but held back (Machine::held_for_stop) instead of handed to a
// machine that would be woken only to stop at once and compete for the CPUs the stop needs;
// leave_native takes it back; hand_off_held_processor hands it on (a collector that stays native
// after the resume, or a requester that must first wait for another's stop).
void enter_native_for_stop();
void hand_off_held_processor();
int attach_thread();
int detach_thread();
int config_from_environment(usgc_config* config);
int runtime_init(const usgc_config* config);
int runtime_shutdown();

// A goroutine's thread blocked in a library call outside usgc (runtime/blocked_call.cpp): from
// the asynchronous safepoint trampoline, give the P up around the re-issued call and take one
// back after, the goroutine staying on this thread.
void blocked_call_release_processor();
void blocked_call_reacquire_processor();
// With a P held: a goroutine is queued (this P's run queue or the global queue) or a thread waits
// in the pinned waiters' line. A relaxed look, a hint (safepoint/async_safepoint.cpp).
bool others_wait_for_processor();

// Signal-context hooks for the safepoint layer.
uint64_t stack_overflow_goroutine_id(const void* address);

}  // namespace usgc::runtime
