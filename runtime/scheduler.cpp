// runtime/scheduler.cpp — run queues, finding work, running goroutines, park/ready, spawning.
// Read runtime/scheduler.hpp first (vocabulary, lock order, who writes what).
//
// Finding work (find_runnable, on a machine that holds a P), in order: a pending safepoint;
// every 61st round the global queue first (so it cannot starve); the local queue; the global
// queue (a batch, so a flood spreads over the Ps); stealing half of another P's queue. With
// nothing found the machine gives its P up and sleeps — idle workers never spin for long.
// While it looks, its P's safepoint slot is kScheduling (safepoint/stop_the_world.hpp): a stop
// claims it by a CAS instead of waiting for this thread, and the thread may run the goroutine it
// found only after its own CAS back to Running (slot_leave_scheduler) succeeded; a thread that
// finds its slot claimed waits for the resume, then goes on.
//
// Who gets a P (idle lists, the pinned waiters' line and its turns with the queues, hand-offs,
// the no-lost-wake-up protocol between producers and spinning machines): runtime/
// processor_handoff.cpp.
#include "runtime/scheduler.hpp"

#include <sched.h>

#include "gc/concurrent_mark.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "runtime/context_switch.hpp"
#include "runtime/stack_scavenger.hpp"
#include "safepoint/fork_child.hpp"
#include "usgc/gc.h"

namespace usgc::runtime {

Scheduler g_scheduler;

namespace {

thread_local Machine* t_machine [[gnu::tls_model("initial-exec")]] = nullptr;
thread_local uint32_t t_random_state [[gnu::tls_model("initial-exec")]] = 0;

constexpr int kStealRounds = 4;

void set_state(Goroutine* goroutine, safepoint::GoroutineState to) {
  USGC_ASSERT(
      safepoint::is_allowed_transition(goroutine->state.load(std::memory_order_relaxed), to),
      "goroutine %lu: transition %s -> %s is not in the state table",
      static_cast<unsigned long>(goroutine->id),
      safepoint::goroutine_state_name(goroutine->state.load(std::memory_order_relaxed)),
      safepoint::goroutine_state_name(to));
  // Release: what the goroutine (or its waker) wrote before the transition is seen by a thread
  // that acquires the state (pairs with ready()'s acquire load).
  goroutine->state.store(to, std::memory_order_release);
}

// Under lock.
Goroutine* global_queue_get_locked() {
  Goroutine* goroutine = g_scheduler.global_head;
  if (goroutine == nullptr) return nullptr;
  g_scheduler.global_head = goroutine->next_in_queue;
  if (g_scheduler.global_head == nullptr) g_scheduler.global_tail = nullptr;
  goroutine->next_in_queue = nullptr;
  g_scheduler.global_size.store(g_scheduler.global_size.load(std::memory_order_relaxed) - 1,
                                std::memory_order_relaxed);
  return goroutine;
}

void global_queue_put_locked(Goroutine* goroutine) {
  goroutine->next_in_queue = nullptr;
  if (g_scheduler.global_tail != nullptr) {
    g_scheduler.global_tail->next_in_queue = goroutine;
  } else {
    g_scheduler.global_head = goroutine;
  }
  g_scheduler.global_tail = goroutine;
  g_scheduler.global_size.store(g_scheduler.global_size.load(std::memory_order_relaxed) + 1,
                                std::memory_order_relaxed);
}

// Takes a batch for processor: one to run, some more into its local queue.
Goroutine* global_queue_get_batch(Processor* processor) {
  kernel::FutexMutexGuard guard(g_scheduler.lock);
  uint32_t size = g_scheduler.global_size.load(std::memory_order_relaxed);
  if (size == 0) return nullptr;
  uint32_t batch = size / g_scheduler.processor_count + 1;
  if (batch > size) batch = size;
  if (batch > LocalRunQueue::kCapacity / 2) batch = LocalRunQueue::kCapacity / 2;
  Goroutine* run_now = global_queue_get_locked();
  for (uint32_t i = 1; i < batch; ++i) {
    Goroutine* goroutine = global_queue_get_locked();
    if (!processor->run_queue.push(goroutine)) {
      global_queue_put_locked(goroutine);
      break;
    }
  }
  return run_now;
}

void queue_overflow(Processor* processor, Goroutine* goroutine) {
  Goroutine* batch[LocalRunQueue::kCapacity / 2];
  uint32_t count = processor->run_queue.take_half(batch);
  kernel::FutexMutexGuard guard(g_scheduler.lock);
  for (uint32_t i = 0; i < count; ++i) global_queue_put_locked(batch[i]);
  global_queue_put_locked(goroutine);
}

void local_queue_put(Processor* processor, Goroutine* goroutine) {
  if (!processor->run_queue.push(goroutine)) queue_overflow(processor, goroutine);
}

Goroutine* steal_work(Machine* machine) {
  Processor* self = machine->processor;
  uint32_t count = g_scheduler.processor_count;
  for (int round = 0; round < kStealRounds; ++round) {
    uint32_t start = cheap_random() % count;
    for (uint32_t i = 0; i < count; ++i) {
      Processor* victim = &g_scheduler.processors[(start + i) % count];
      if (victim == self) continue;
      Goroutine* goroutine = self->run_queue.steal_from(victim->run_queue);
      if (goroutine != nullptr) {
        g_scheduler.steals.fetch_add(1, std::memory_order_relaxed);
        return goroutine;
      }
    }
  }
  return nullptr;
}

// A spinning machine that found nothing keeps looking for up to kSpinBeforeIdleNs before it
// gives its P up (Go's thief waits on the victim's runnext the same way): a goroutine spawning
// others one by one then finds the spinner still looking, and wakes no machine per spawn (a
// futex wake and sleep, two context switches: on a VM the bulk of a spawn's cost). Stops early
// for a safepoint request or shutdown (find_runnable handles both). While it spins it refills the
// stack pool ahead of a spawner (goroutine_stack.hpp): the guards, populates and first touches
// of new stacks then run on the idle P instead of in the spawns.
constexpr uint64_t kSpinBeforeIdleNs = 50 * 1000;

bool stop_or_shutdown_requested() {
  Machine* machine = t_machine;
  return safepoint::scheduler_stop_pending(machine->processor->slot) ||
         g_scheduler.shutting_down.load(std::memory_order_relaxed);
}

Goroutine* spin_before_idle(Machine* machine) {
  Processor* self = machine->processor;
  safepoint::set_processor_activity(self->slot, safepoint::ProcessorActivity::kSpinning);
  const uint64_t deadline_ns = kernel::monotonic_ns() + kSpinBeforeIdleNs;
  do {
    // Idle time put to use: stacks made ready for a spawner on another P.
    if (!stack_pool_refill_ahead(stop_or_shutdown_requested)) {
      for (int i = 0; i < 64; ++i) __builtin_ia32_pause();
    }
    if (safepoint::scheduler_stop_pending(self->slot) ||
        g_scheduler.shutting_down.load(std::memory_order_relaxed))
      return nullptr;
    if (Goroutine* goroutine = self->run_queue.pop()) return goroutine;
    if (g_scheduler.global_size.load(std::memory_order_relaxed) != 0) {
      if (Goroutine* goroutine = global_queue_get_batch(self)) return goroutine;
    }
    for (uint32_t i = 0; i < g_scheduler.processor_count; ++i) {
      Processor* victim = &g_scheduler.processors[i];
      if (victim == self || victim->run_queue.empty()) continue;
      if (Goroutine* goroutine = self->run_queue.steal_from(victim->run_queue)) {
        g_scheduler.steals.fetch_add(1, std::memory_order_relaxed);
        return goroutine;
      }
    }
  } while (kernel::monotonic_ns() < deadline_ns);
  return nullptr;
}

bool any_run_queue_has_work() {
  // Seq_cst: after the spinning_machines decrement (go_idle), pairs with a producer's seq_cst
  // fence in wake_idle_processor (file comment).
  if (g_scheduler.global_size.load(std::memory_order_seq_cst) != 0) return true;
  for (uint32_t i = 0; i < g_scheduler.processor_count; ++i) {
    if (!g_scheduler.processors[i].run_queue.empty()) return true;
  }
  return false;
}

// Gives the P up because there is nothing to run. Returns false on shutdown.
bool go_idle(Machine* machine) {
  Processor* processor = machine->processor;
  {
    kernel::FutexMutexGuard guard(g_scheduler.lock);
    if (g_scheduler.global_size.load(std::memory_order_relaxed) != 0 &&
        !g_scheduler.shutting_down.load(std::memory_order_relaxed))
      return true;  // work arrived: keep the P and look again
    safepoint::slot_release(processor->slot);
    processor->current_goroutine.store(nullptr, std::memory_order_relaxed);
    put_idle_processor_locked(processor);
    machine->processor = nullptr;
  }
  bool was_spinning = machine->spinning;
  if (was_spinning) {
    machine->spinning = false;
    // Seq_cst: the decrement, then the re-read of every queue (any_run_queue_has_work); pairs
    // with wake_idle_processor's fence and CAS (file comment).
    g_scheduler.spinning_machines.fetch_sub(1, std::memory_order_seq_cst);
  }
  // The delicate part: work queued after our last look, by a producer that saw us spinning.
  if (!g_scheduler.shutting_down.load(std::memory_order_relaxed) && any_run_queue_has_work()) {
    Processor* again = take_idle_processor();
    if (again != nullptr) {
      if (was_spinning) {
        machine->spinning = true;
        // Seq_cst: counted as spinning before looking (pairs with wake_idle_processor's CAS).
        g_scheduler.spinning_machines.fetch_add(1, std::memory_order_seq_cst);
      }
      acquire_processor(machine, again);
      return true;
    }
  }
  return wait_for_processor(machine);
}

// On a machine holding a P: the next goroutine to run, or nullptr on shutdown.
Goroutine* find_runnable(Machine* machine) {
  for (;;) {
    Processor* processor = machine->processor;
    safepoint::set_processor_activity(processor->slot, safepoint::ProcessorActivity::kScheduler);
    // No goroutine runs on the P from here until find_runnable returns one: a stop may claim the
    // slot meanwhile without this thread's help (safepoint/stop_the_world.hpp, kScheduling).
    safepoint::slot_enter_scheduler(processor->slot);
    safepoint::scheduler_safepoint(processor->slot);
    // Acquire: pairs with runtime_shutdown's seq_cst store.
    if (g_scheduler.shutting_down.load(std::memory_order_acquire)) {
      stop_spinning(machine);
      safepoint::slot_release(processor->slot);
      kernel::FutexMutexGuard guard(g_scheduler.lock);
      put_idle_processor_locked(processor);
      machine->processor = nullptr;
      return nullptr;
    }
    Goroutine* goroutine = nullptr;
    if (++processor->schedule_tick % 61 == 0 &&
        g_scheduler.global_size.load(std::memory_order_relaxed) != 0) {
      kernel::FutexMutexGuard guard(g_scheduler.lock);
      goroutine = global_queue_get_locked();
    }
    if (goroutine == nullptr) goroutine = processor->run_queue.pop();
    if (goroutine == nullptr && g_scheduler.global_size.load(std::memory_order_relaxed) != 0)
      goroutine = global_queue_get_batch(processor);
    if (goroutine == nullptr) {
      // Go's limit: at most half of the busy Ps spin, so idle Ps do not burn the CPU.
      uint32_t busy = g_scheduler.processor_count -
                      g_scheduler.idle_processor_count.load(std::memory_order_relaxed);
      if (machine->spinning ||
          2 * g_scheduler.spinning_machines.load(std::memory_order_relaxed) < busy) {
        if (!machine->spinning) {
          machine->spinning = true;
          // Seq_cst: counted as spinning before looking (pairs with wake_idle_processor's CAS).
          g_scheduler.spinning_machines.fetch_add(1, std::memory_order_seq_cst);
        }
        goroutine = steal_work(machine);
        if (goroutine == nullptr) goroutine = spin_before_idle(machine);
      }
    }
    if (goroutine != nullptr) {
      stop_spinning(machine);
      // The CAS that gives this thread the right to run a goroutine on the P (it waits out a stop
      // that claimed the slot, and serves a request that came meanwhile).
      safepoint::slot_leave_scheduler(processor->slot);
      return goroutine;
    }
    // A stop came while we looked (spin_before_idle stopped early): serve it and look again
    // rather than give the P up (with the claim the stop needs nothing from this thread).
    if (safepoint::scheduler_claim_enabled() && safepoint::scheduler_stop_pending(processor->slot))
      continue;
    if (!go_idle(machine)) return nullptr;
  }
}

// A goroutine locked to another machine (an attached thread): give that machine our P.
void hand_to_locked_machine(Machine* machine, Goroutine* goroutine) {
  Processor* processor = release_processor(machine);
  Machine* owner = goroutine->locked_machine;
  owner->current = goroutine;
  hand_processor_to(owner, processor, false);
}

// The entry of every goroutine made by usgc_go, on its own stack.
void goroutine_main(void* argument) {
  sanitizer_fiber_entered();
  auto* goroutine = static_cast<Goroutine*>(argument);
  goroutine->entry(goroutine->entry_argument);
  // A fork() child whose forking goroutine returned: there is no scheduler to go back to (its
  // threads stayed with the parent, safepoint/fork_child.hpp), and no error can be returned.
  if (safepoint::in_fork_child())
    kernel::fatal(
        "goroutine %lu called fork() and returned in the child, which has no runtime to go back "
        "to: end the child with exec or _exit",
        static_cast<unsigned long>(goroutine->id));
  gc::mutator_unregister(&goroutine->mutator);  // its private objects die, its blocks go shared
  // Acq_rel: the goroutine's work before the count drops (pairs with runtime_shutdown's acquire
  // load that sees 0).
  g_scheduler.live_goroutines.fetch_sub(1, std::memory_order_acq_rel);
  if (goroutine->exit_notify != nullptr) {
    // Release: the goroutine's work happens-before the waiter's acquire of the 1.
    goroutine->exit_notify->store(1, std::memory_order_release);
    kernel::futex_wake_all(goroutine->exit_notify);
  }
  switch_to_scheduler(SwitchRequest::kExit);
  USGC_CHECK(false, "goroutine %lu: resumed after it exited",
             static_cast<unsigned long>(goroutine->id));
}

}  // namespace

Machine* current_machine() {
  return t_machine;
}
void set_current_machine(Machine* machine) {
  t_machine = machine;
}

Goroutine* current_goroutine() {
  Machine* machine = t_machine;
  return machine != nullptr ? machine->current : nullptr;
}

uint32_t cheap_random() {
  uint32_t x = t_random_state;
  if (x == 0) x = static_cast<uint32_t>(kernel::monotonic_ns()) | 1u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  t_random_state = x;
  return x;
}

bool register_machine(Machine* machine) {
  kernel::FutexMutexGuard guard(g_scheduler.lock);
  // usgc_shutdown takes the machine list under this lock once shutting_down is set: a machine
  // added after that would never be joined.
  if (g_scheduler.shutting_down.load(std::memory_order_relaxed)) return false;
  machine->id = g_scheduler.next_machine_id++;
  machine->next_all = g_scheduler.all_machines;
  g_scheduler.all_machines = machine;
  return true;
}

void resumed_from_stop() {
  // An exiting goroutine (unregistered, its private objects freed) has nothing to scan.
  gc::Mutator* mutator = gc::current_mutator();
  if (mutator != nullptr && mutator->registered) gc::ensure_scanned(*mutator);
}

void unregister_machine(Machine* machine) {
  kernel::FutexMutexGuard guard(g_scheduler.lock);
  for (Machine** link = &g_scheduler.all_machines; *link != nullptr; link = &(*link)->next_all) {
    if (*link == machine) {
      *link = machine->next_all;
      return;
    }
  }
}

void global_queue_put(Goroutine* goroutine) {
  kernel::FutexMutexGuard guard(g_scheduler.lock);
  global_queue_put_locked(goroutine);
}

bool keep_running_after_preemption(Machine* machine) {
  Processor* processor = machine->processor;
  if (processor == nullptr) return false;
  // Relaxed loads: a hint, as every look at the queues outside the lock. Work queued after them
  // waits for the next scheduling point of some P, as work queued just after a switch would: the
  // producer woke an idle P if there was one (wake_idle_processor), and this goroutine is asked
  // again after another period.
  if (!processor->run_queue.empty() ||
      g_scheduler.global_size.load(std::memory_order_relaxed) != 0 ||
      g_scheduler.pinned_waiter_count.load(std::memory_order_relaxed) != 0 ||
      g_scheduler.shutting_down.load(std::memory_order_relaxed))
    return false;
  // A new time slice, as a switch back to the same goroutine would give it: the monitor restarts
  // its period when the P's switch count moves.
  processor->switch_count.fetch_add(1, std::memory_order_relaxed);
  g_scheduler.preemptions_kept_running.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void make_runnable(Goroutine* goroutine) {
  Machine* machine = t_machine;
  if (machine != nullptr && machine->processor != nullptr) {
    local_queue_put(machine->processor, goroutine);
  } else {
    global_queue_put(goroutine);
  }
  wake_idle_processor();
}

void ready(Goroutine* goroutine) {
  // Acquire: pairs with set_state's release store of kParked (the park is complete).
  USGC_CHECK(goroutine->state.load(std::memory_order_acquire) == safepoint::GoroutineState::kParked,
             "ready: goroutine %lu is %s, not parked", static_cast<unsigned long>(goroutine->id),
             safepoint::goroutine_state_name(goroutine->state.load(std::memory_order_relaxed)));
  set_state(goroutine, safepoint::GoroutineState::kRunnable);
  make_runnable(goroutine);
}

void switch_to_scheduler(SwitchRequest request) {
  Machine* machine = t_machine;
  Goroutine* goroutine = machine->current;
  if (machine->processor != nullptr)
    safepoint::set_processor_activity(machine->processor->slot,
                                      safepoint::ProcessorActivity::kSwitching);
  // A spawn that switches (its back-pressure yield, a preemption where its stack work ends) stops
  // stamping this thread's spawn steps: it may go on on another thread (begin_spawning again).
  safepoint::stop_trace::spawn_end();
  machine->request = request;
  switch_context(&goroutine->saved_stack_pointer, goroutine->sanitizer_fiber,
                 machine->scheduler_stack_pointer, machine->scheduler_fiber,
                 request == SwitchRequest::kExit ? ContextEnd::kEnds : ContextEnd::kResumes);
}

void park(bool (*commit)(Goroutine*, void*), void* argument, WaitReason reason) {
  Machine* machine = t_machine;
  USGC_CHECK(machine != nullptr && machine->current != nullptr, "park: called outside a goroutine");
  machine->current->wait_reason = reason;
  machine->park_commit = commit;
  machine->park_argument = argument;
  switch_to_scheduler(SwitchRequest::kPark);
  // Resumed, perhaps on another machine.
}

bool carry_out_request(Machine* machine, Goroutine* goroutine) {
  SwitchRequest request = machine->request;
  machine->request = SwitchRequest::kNone;
  switch (request) {
    case SwitchRequest::kPark: {
      set_state(goroutine, safepoint::GoroutineState::kParked);
      auto commit = machine->park_commit;
      void* argument = machine->park_argument;
      machine->park_commit = nullptr;
      if (commit != nullptr && !commit(goroutine, argument)) {
        set_state(goroutine, safepoint::GoroutineState::kRunnable);
        return true;
      }
      return false;
    }
    case SwitchRequest::kYield:
      set_state(goroutine, safepoint::GoroutineState::kRunnable);
      if (machine->processor != nullptr && goroutine->locked_machine == nullptr) {
        local_queue_put(machine->processor, goroutine);
      } else {
        global_queue_put(goroutine);
        wake_idle_processor();
      }
      return false;
    case SwitchRequest::kPreempt:
    case SwitchRequest::kRequeueGlobal:
      set_state(goroutine, safepoint::GoroutineState::kRunnable);
      global_queue_put(goroutine);
      wake_idle_processor();
      return false;
    case SwitchRequest::kExit:
      set_state(goroutine, safepoint::GoroutineState::kDead);
      if (machine->processor != nullptr) {
        // Nothing of the goroutine is left to stop. Its record and stack go back to the caches
        // or the stack pool, whose decommit may make a system call (the decommit queue's batch:
        // up to ~1 ms), with the slot in the scheduler state: a stop claims the P instead of
        // waiting for this thread (the claim's rule allows the stack pool: stop_the_world.hpp).
        safepoint::set_processor_activity(machine->processor->slot,
                                          safepoint::ProcessorActivity::kScheduler);
        safepoint::slot_enter_scheduler(machine->processor->slot);
      }
      goroutine_recycle(goroutine);
      return false;
    case SwitchRequest::kNone:
      break;
  }
  USGC_CHECK(false, "scheduler: goroutine %lu switched away without a request",
             static_cast<unsigned long>(goroutine->id));
}

void run_goroutine(Machine* machine, Goroutine* goroutine) {
  for (;;) {
    Processor* processor = machine->processor;
    set_state(goroutine, safepoint::GoroutineState::kRunning);
    machine->current = goroutine;
    processor->current_goroutine.store(goroutine, std::memory_order_relaxed);
    processor->switch_count.fetch_add(1, std::memory_order_relaxed);
    g_scheduler.context_switches.fetch_add(1, std::memory_order_relaxed);
    gc::set_current_mutator(&goroutine->mutator);
    safepoint::set_processor_activity(processor->slot, safepoint::ProcessorActivity::kGoroutine);
    switch_context(&machine->scheduler_stack_pointer, machine->scheduler_fiber,
                   goroutine->saved_stack_pointer, goroutine->sanitizer_fiber);
    gc::set_current_mutator(nullptr);
    // Back on the scheduler context. (The goroutine may have left native on this machine with
    // no P: then machine->processor is nullptr now.)
    machine->current = nullptr;
    if (machine->processor != nullptr)
      machine->processor->current_goroutine.store(nullptr, std::memory_order_relaxed);
    if (!carry_out_request(machine, goroutine)) return;
    if (machine->processor == nullptr) {
      // Resume at once, but we hold no P: queue it like any runnable goroutine.
      make_runnable(goroutine);
      return;
    }
  }
}

void worker_loop(Machine* machine) {
  for (;;) {
    if (machine->processor == nullptr && !wait_for_processor(machine)) return;
    // A scheduling point: a thread back from a blocked call takes this P first, unless it is
    // the queued goroutines' turn (Turns).
    if (g_scheduler.pinned_waiter_count.load(std::memory_order_relaxed) != 0 &&
        !queued_goroutines_wait_their_turn(machine->processor) &&
        give_processor_to_pinned_waiter(machine))
      continue;
    Goroutine* goroutine = find_runnable(machine);
    if (goroutine == nullptr) return;
    machine->processor->served_pinned_waiter = false;
    if (goroutine->locked_machine != nullptr && goroutine->locked_machine != machine) {
      hand_to_locked_machine(machine, goroutine);
      continue;
    }
    run_goroutine(machine, goroutine);
  }
}

// Spawn back-pressure. A goroutine that spawns faster than its P's queue drains (a spawn loop on
// one P, or with the other Ps busy) would make a new stack for every goroutine waiting in that
// queue, though most of them are about to end and leave their stacks behind: on a VM each new
// stack's first touch costs tens of microseconds (a first-touch fault or populate plus the
// hypervisor's shadow-page fill), and the stacks made stay in the caches and the pool after the
// burst. So a spawn that would need a new stack — no dead goroutine in its P's cache nor in the
// global one — while kSpawnBacklogYield goroutines wait in its P's local queue first yields, once,
// to the back of that queue: the queued goroutines run, the ones that end leave their records and
// stacks in this P's cache, and the spawn reuses one. Go needs no such rule (its first stacks are
// 2 KiB from already-resident heap spans); without it usgc made twice the stacks Go's scheduler
// would keep live on this benchmark (docs/benchmarks.md). Only a goroutine of usgc_go /
// usgc_run_main that holds a P and is not locked to an attached thread yields; a spawn with a start
// object (usgc_go_object) never does, so its object is never held across a switch by nothing but
// the C stack. The yield is a scheduling point like a poll: a pending stop or preemption is served.
constexpr uint32_t kSpawnBacklogYield = LocalRunQueue::kCapacity / 2;

bool spawn_should_yield_first() {
  Machine* machine = t_machine;
  if (machine == nullptr || machine->processor == nullptr) return false;
  Goroutine* spawner = machine->current;
  if (spawner == nullptr || spawner->locked_machine != nullptr) return false;
  Processor* processor = machine->processor;
  return processor->run_queue.size() >= kSpawnBacklogYield && !fill_processor_cache(processor);
}

namespace {

safepoint::SafepointSlot* current_processor_slot() {
  Machine* machine = t_machine;
  return machine != nullptr && machine->processor != nullptr ? machine->processor->slot : nullptr;
}

// The calling thread's slot, and it says it spawns (the activity byte, the spawn steps of the
// attribution trace: safepoint/stop_trace.hpp). nullptr: no P held.
safepoint::SafepointSlot* begin_spawning() {
  safepoint::SafepointSlot* slot = current_processor_slot();
  if (slot == nullptr) return nullptr;
  safepoint::set_processor_activity(slot, safepoint::ProcessorActivity::kSpawning);
  safepoint::stop_trace::spawn_begin(slot->index, safepoint::SpawnStep::kCache);
  return slot;
}

void end_spawning(safepoint::SafepointSlot* slot) {
  safepoint::stop_trace::spawn_end();
  safepoint::set_processor_activity(slot, safepoint::ProcessorActivity::kGoroutine);
}

}  // namespace

int spawn_goroutine(void (*entry)(void*), void* argument, usgc_goroutine_id* id,
                    std::atomic<uint32_t>* exit_notify, void* start_object) {
  safepoint::SafepointSlot* slot = begin_spawning();
  if (start_object == nullptr && spawn_should_yield_first()) {
    g_scheduler.spawn_backlog_yields.fetch_add(1, std::memory_order_relaxed);
    switch_to_scheduler(SwitchRequest::kYield);
    slot = begin_spawning();  // perhaps another P, another thread
  }
  // usgc_go_object's object is rooted in a frame of the spawning goroutine until the new goroutine
  // holds it (registered): the stack work may then stop (SpawnStackWork). A thread that runs no
  // goroutine has no frames: its spawn keeps its P Running throughout.
  void* start_root = start_object;
  usgc_frame start_frame = {nullptr, &start_root, 1, nullptr};
  const bool start_rooted = start_object != nullptr && gc::current_mutator() != nullptr;
  if (start_rooted) usgc_frame_push(&start_frame);
  const bool claimable = start_object == nullptr || start_rooted;
  Goroutine* goroutine = goroutine_allocate(
      true, claimable ? SpawnStackWork::kClaimable : SpawnStackWork::kOnTheProcessor);
  // A claimable stack work is a scheduling point: the spawner may go on on another P.
  if (claimable && current_processor_slot() != slot) slot = begin_spawning();
  if (goroutine == nullptr) {
    if (start_rooted) usgc_frame_pop(&start_frame);
    end_spawning(slot);
    return ENOMEM;
  }
  safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kRegister);
  gc::mutator_register(&goroutine->mutator, goroutine->id, start_object);
  if (start_rooted) usgc_frame_pop(&start_frame);  // the new goroutine's root now
  goroutine->mutator.stack_top = reinterpret_cast<uintptr_t>(goroutine->stack.top());
  goroutine->entry = entry;
  goroutine->entry_argument = argument;
  goroutine->exit_notify = exit_notify;
  goroutine->saved_stack_pointer =
      context_prepare(goroutine->stack.top(), goroutine_main, goroutine);
  if (id != nullptr) *id = goroutine->id;
  g_scheduler.live_goroutines.fetch_add(1, std::memory_order_relaxed);
  g_scheduler.goroutines_created.fetch_add(1, std::memory_order_relaxed);
  set_state(goroutine, safepoint::GoroutineState::kRunnable);
  safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kQueue);
  make_runnable(goroutine);
  end_spawning(slot);
  return 0;
}

uint64_t stack_overflow_goroutine_id(const void* address) {
  Machine* machine = t_machine;
  if (machine == nullptr) return 0;
  Goroutine* goroutine = machine->current;
  if (goroutine != nullptr && goroutine->stack.guard_contains(address)) return goroutine->id;
  return 0;
}

}  // namespace usgc::runtime
