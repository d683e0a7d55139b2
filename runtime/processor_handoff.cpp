// runtime/processor_handoff.cpp — who gets a P: the idle lists, the pinned waiters' line, hand-offs
// and wake-ups. Read runtime/scheduler.hpp first (vocabulary, lock order, who writes what);
// runtime/scheduler.cpp finds work and runs goroutines on the P a machine holds.
//
// Invariants: the idle P list, the idle machine list and the pinned waiters' line change only
// under g_scheduler.lock; a P on the idle list has its safepoint slot released; a P is handed to
// exactly one machine (next_processor, published by wake_word's release store).
//
// Turns. A thread back from a blocked call with no P to take waits in the pinned waiters' line
// (runtime/blocked_call.cpp); a released P, and a worker's P at its scheduling point, serve that
// line before the run queues, but only every other time while goroutines are queued: a P handed
// to a pinned waiter is marked (Processor::served_pinned_waiter) and its next hand-off goes to a
// worker for the queues (hand_off_processor, worker_loop), after which the line comes first
// again. Go puts a goroutine back from a system call in the global queue, in line with the rest;
// here it must stay on its thread, and always first let threads that block and return over and
// over (a sleeper, a poller, readers woken by every stop) pass a P among themselves while queued
// goroutines, the collector's among them, waited for seconds. With turns a pinned waiter waits
// for at most one queued goroutine's time slice more, and a queued one for one pinned turn.
// When no worker can take the queues' turn (the worker-thread bound), the P goes to the line.
//
// No lost wake-ups between "I found nothing and go to sleep" and "I queued work" (Go's
// spinning protocol): a producer queues, then (seq_cst fence) reads idle_processor_count and
// spinning_machines and wakes a P only if some P is idle and no machine is looking for work. A
// machine that stops looking decrements spinning_machines (seq_cst) and then re-reads every
// run queue; so either the producer sees no spinner and wakes someone, or the last spinner sees
// the work. A machine started to look for work is counted as spinning before it runs.
#include <atomic>

#include "kernel_iface/futex.hpp"
#include "runtime/scheduler.hpp"

namespace usgc::runtime {

namespace {

// Under lock.
Processor* take_idle_processor_locked() {
  Processor* processor = g_scheduler.idle_processors;
  if (processor == nullptr) return nullptr;
  g_scheduler.idle_processors = processor->next_idle;
  processor->next_idle = nullptr;
  // Seq_cst store: pairs with wake_idle_processor's fence and load and with the monitor's
  // any_processor_busy (file comments: no lost wake-ups).
  g_scheduler.idle_processor_count.store(
      g_scheduler.idle_processor_count.load(std::memory_order_relaxed) - 1,
      std::memory_order_seq_cst);
  return processor;
}

Machine* take_pinned_waiter_locked() {
  Machine* machine = g_scheduler.pinned_waiters_head;
  if (machine == nullptr) return nullptr;
  g_scheduler.pinned_waiters_head = machine->next_idle;
  if (g_scheduler.pinned_waiters_head == nullptr) g_scheduler.pinned_waiters_tail = nullptr;
  machine->next_idle = nullptr;
  g_scheduler.pinned_waiter_count.store(
      g_scheduler.pinned_waiter_count.load(std::memory_order_relaxed) - 1,
      std::memory_order_relaxed);
  return machine;
}

Machine* take_idle_machine_locked() {
  Machine* machine = g_scheduler.idle_machines;
  if (machine != nullptr) {
    g_scheduler.idle_machines = machine->next_idle;
    machine->next_idle = nullptr;
  }
  return machine;
}

}  // namespace

// A released P (its slot already released) goes to a thread waiting to take one back after a
// blocked call, before the idle list: that thread needs no other machine to run (its goroutine is
// in no queue), so it can never be stranded by the worker-thread bound.
void put_idle_processor_locked(Processor* processor) {
  if (Machine* waiter = take_pinned_waiter_locked()) {
    processor->served_pinned_waiter = true;
    hand_processor_to(waiter, processor, false);
    return;
  }
  processor->next_idle = g_scheduler.idle_processors;
  g_scheduler.idle_processors = processor;
  // Seq_cst store: pairs with wake_idle_processor's fence and load and with the monitor's
  // any_processor_busy (file comments: no lost wake-ups).
  g_scheduler.idle_processor_count.store(
      g_scheduler.idle_processor_count.load(std::memory_order_relaxed) + 1,
      std::memory_order_seq_cst);
}

// Turns: goroutines are queued that the P could run instead of serving the pinned waiters' line
// once more. Holder, or a hander after slot_release (the queues are read racily: a stale answer
// costs one turn, never a goroutine: the line is served at the next scheduling point).
bool queued_goroutines_wait_their_turn(Processor* processor) {
  return processor->served_pinned_waiter &&
         (!processor->run_queue.empty() ||
          g_scheduler.global_size.load(std::memory_order_relaxed) != 0);
}

void stop_spinning(Machine* machine) {
  if (!machine->spinning) return;
  machine->spinning = false;
  // The last spinner to find work makes sure another one looks (ramps up, as Go does).
  // Seq_cst: pairs with wake_idle_processor's fence and CAS (file comment).
  if (g_scheduler.spinning_machines.fetch_sub(1, std::memory_order_seq_cst) == 1)
    wake_idle_processor();
}

Processor* take_idle_processor() {
  kernel::FutexMutexGuard guard(g_scheduler.lock);
  return take_idle_processor_locked();
}

void acquire_processor(Machine* machine, Processor* processor) {
  while (!safepoint::slot_try_acquire(processor->slot)) safepoint::wait_for_resume();
  machine->processor = processor;
  monitor_notify_busy();
}

void hand_processor_to(Machine* machine, Processor* processor, bool spinning) {
  machine->next_processor = processor;
  machine->spinning = spinning;
  // Release: next_processor (and the goroutine handed with it) is visible to the woken machine.
  machine->wake_word.store(1, std::memory_order_release);
  kernel::futex_wake(&machine->wake_word, 1);
}

bool wait_for_processor(Machine* machine) {
  // A new machine starts with its P already handed (wake_word 1): it never joins the idle list.
  // An idle one has wake_word 0 until a hander took it off the list. Attached and pinned machines
  // wait off the list: for the worker that dequeues their goroutine (hand_to_locked_machine), or
  // for a P from the pinned waiters' line (runtime/blocked_call.cpp).
  // Acquire (here and in the loop): pairs with hand_processor_to's release store (next_processor
  // is seen).
  if (machine->wake_word.load(std::memory_order_acquire) == 0 && !machine->attached &&
      !machine->pinned) {
    kernel::FutexMutexGuard guard(g_scheduler.lock);
    if (g_scheduler.shutting_down.load(std::memory_order_relaxed)) return false;
    machine->next_idle = g_scheduler.idle_machines;
    g_scheduler.idle_machines = machine;
  }
  for (;;) {
    if (machine->wake_word.load(std::memory_order_acquire) != 0) break;
    kernel::futex_wait(&machine->wake_word, 0);
  }
  machine->wake_word.store(0, std::memory_order_relaxed);
  Processor* processor = machine->next_processor;
  machine->next_processor = nullptr;
  if (processor == nullptr) return false;  // woken to exit
  acquire_processor(machine, processor);
  return true;
}

void wake_idle_processor() {
  // seq_cst fence: our queue store is ordered before these loads (see the file comment).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (g_scheduler.idle_processor_count.load(std::memory_order_seq_cst) == 0) return;
  // Shutting down: machines only leave now (usgc_shutdown joins the ones it knows). Acquire:
  // pairs with runtime_shutdown's seq_cst store.
  if (g_scheduler.shutting_down.load(std::memory_order_acquire)) return;
  uint32_t expected = 0;
  // Seq_cst CAS: pairs with the spinners' seq_cst increments and decrements (go_idle,
  // find_runnable, stop_spinning): a spinner seen here will re-read the queues.
  if (!g_scheduler.spinning_machines.compare_exchange_strong(expected, 1,
                                                             std::memory_order_seq_cst))
    return;
  Processor* processor;
  Machine* machine;
  safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kWakeIdle);  // a spawn's wake-up
  {
    kernel::FutexMutexGuard guard(g_scheduler.lock);
    processor = take_idle_processor_locked();
    machine = processor != nullptr ? take_idle_machine_locked() : nullptr;
  }
  if (processor == nullptr) {
    // Seq_cst: gives back the spinning slot taken by the CAS above (same total order).
    g_scheduler.spinning_machines.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  if (machine != nullptr) {
    hand_processor_to(machine, processor, true);
  } else if (start_worker_machine(processor, true) == nullptr) {
    // No thread: the P goes back; the work stays queued for the busy Ps.
    kernel::FutexMutexGuard guard(g_scheduler.lock);
    put_idle_processor_locked(processor);
    // Seq_cst: gives back the spinning slot taken by the CAS above (same total order).
    g_scheduler.spinning_machines.fetch_sub(1, std::memory_order_seq_cst);
  }
}

bool give_processor_to_pinned_waiter(Machine* machine) {
  Processor* processor = machine->processor;
  Machine* waiter;
  {
    kernel::FutexMutexGuard guard(g_scheduler.lock);
    waiter = take_pinned_waiter_locked();
  }
  if (waiter == nullptr) return false;
  stop_spinning(machine);
  processor->served_pinned_waiter = true;
  hand_processor_to(waiter, release_processor(machine), false);
  return true;
}

Processor* take_idle_processor_or_wait_in_line(Machine* machine) {
  kernel::FutexMutexGuard guard(g_scheduler.lock);
  Processor* processor = take_idle_processor_locked();
  if (processor != nullptr) return processor;
  machine->next_idle = nullptr;
  if (g_scheduler.pinned_waiters_tail != nullptr) {
    g_scheduler.pinned_waiters_tail->next_idle = machine;
  } else {
    g_scheduler.pinned_waiters_head = machine;
  }
  g_scheduler.pinned_waiters_tail = machine;
  g_scheduler.pinned_waiter_count.store(
      g_scheduler.pinned_waiter_count.load(std::memory_order_relaxed) + 1,
      std::memory_order_relaxed);
  return nullptr;
}

Processor* release_processor(Machine* machine) {
  Processor* processor = machine->processor;
  safepoint::slot_release(processor->slot);
  processor->current_goroutine.store(nullptr, std::memory_order_relaxed);
  machine->processor = nullptr;
  return processor;
}

void hand_off_processor(Machine* machine) {
  hand_off_released_processor(release_processor(machine));
}

void hand_off_released_processor(Processor* processor) {
  // A thread back from a blocked call first, unless it is the queued goroutines' turn (Turns).
  // A stale zero count is harmless: the P then goes to a worker (which serves the line at its
  // first scheduling point) or to the idle list (which serves it under the lock).
  if (g_scheduler.pinned_waiter_count.load(std::memory_order_relaxed) != 0 &&
      !queued_goroutines_wait_their_turn(processor)) {
    kernel::FutexMutexGuard guard(g_scheduler.lock);
    if (Machine* waiter = take_pinned_waiter_locked()) {
      processor->served_pinned_waiter = true;
      hand_processor_to(waiter, processor, false);
      return;
    }
  }
  // Seq_cst global_size load: after slot_release, pairs with a producer's fence in
  // wake_idle_processor (file comment).
  if (!processor->run_queue.empty() ||
      g_scheduler.global_size.load(std::memory_order_seq_cst) != 0) {
    Machine* worker;
    {
      kernel::FutexMutexGuard guard(g_scheduler.lock);
      worker = take_idle_machine_locked();
    }
    if (worker != nullptr) {
      hand_processor_to(worker, processor, false);
      return;
    }
    if (start_worker_machine(processor, false) != nullptr) return;
  }
  {
    kernel::FutexMutexGuard guard(g_scheduler.lock);
    put_idle_processor_locked(processor);
  }
  // Work may have been queued after our look — on this P, or on the global queue by a goroutine
  // leaving native that found no idle P (it queued itself before we made the P idle, so we see
  // it: both sides hold g_scheduler.lock; after, its own wake-up sees the idle P).
  if (!processor->run_queue.empty() || g_scheduler.global_size.load(std::memory_order_seq_cst) != 0)
    wake_idle_processor();
}

}  // namespace usgc::runtime
