// runtime/blocked_call.cpp — a goroutine's thread blocked in the kernel outside usgc gives its P
// up, and takes one back when the call returns (Go's sysmon retake and exitsyscall, for calls
// usgc never sees: a library's read, pthread_cond_wait, a mutex, nanosleep, poll).
//
// How it happens: the monitor (runtime/monitor.cpp) finds a P whose goroutine has not switched
// for 250 us and whose thread /proc shows blocked in a system call outside usgc that the
// asynchronous safepoint handler can re-issue; it signals the thread (SIGURG). The handler
// redirects the thread to the trampoline, which calls blocked_call_release_processor, re-issues
// the call, and calls blocked_call_reacquire_processor (safepoint/async_safepoint.hpp). A stop or
// handshake that finds such a thread does the same; and a stop whose signal finds a library call
// just returned EINTR that cannot be re-issued (nanosleep without a remainder, poll with a
// timeout: calls the monitor never signals) has the thread call both with no call in between, so
// the P goes to other work while the world is stopped and the caller sees its EINTR only once
// the thread holds a P again (a goroutine sleeping in a loop of such calls kept its P through
// every stop before, and the monitor never retook it). So the P always leaves its thread by that
// thread's own hand: the monitor never takes a P away from under a running thread, and no two
// threads ever hold one P (slot_try_acquire's Idle -> Running CAS is the only way in).
//
// The goroutine stays on its thread. It is inside a library call (a libc wrapper, a
// pthread_cond_wait that will retake its mutex on this thread, a FILE lock held by this thread),
// so it must finish that call where it began. While the P is away the machine is *pinned*
// (machine->pinned): its goroutine is kInNative, in no run queue, and the thread never joins the
// idle-machine list (nobody may hand it other work). On return:
//   - an idle P: take it (waiting while a stop holds it), and run on;
//   - none: the thread gets in line (Scheduler::pinned_waiters, FIFO) and sleeps on its wake
//     word, on the goroutine's own stack. It is served first, in turns with the run queues
//     (runtime/scheduler.cpp, "Turns"): a P being released goes to the first in line
//     (put_idle_processor_locked, hand_off_processor), and every worker gives its P to it at its
//     next scheduling point (worker_loop), before its run queue, unless that P served the line
//     last and goroutines are queued — so a goroutine back from the kernel waits at most one
//     scheduling round more than Go's exitsyscall'd G taken by the next P, queued goroutines are
//     not starved by threads that block and return over and over, and the line needs no other
//     thread to run: the worker-thread bound can never strand it. (Queueing the goroutine itself
//     would need a third machine to dequeue it and hand its P over; at the bound there may be
//     none.)
// A preemption request found on the way back is left pending (armed) for the goroutine's next
// poll in program code: it must not move while inside the library call.
//
// What the P owns stays consistent because the thread gives it up the usual way (hand_off_
// processor): the P's run queue, goroutine cache and shared-allocation cache (gc/shared_heap)
// are only used by the thread holding it, and the goroutine's TLAB is the goroutine's own
// (gc/mutator.hpp), so the thread touches nothing of the P between release and reacquire.
//
// Threads: hand_off_processor gives the P to an idle worker or starts one; the number of worker
// threads is bounded (Scheduler::max_worker_threads, Go's maxmcount). At the bound no new thread
// starts: the P waits idle until a worker or a returning blocked thread takes it.
//
// Execution context: both functions run in normal context on the goroutine's stack (called by
// the trampoline after the signal handler returned), inside the interrupted library call: they
// may block, take the scheduler lock and start a worker thread (malloc, pthread_create) — the
// interrupted call is a blocking system call, and libc holds none of those locks across one.
#include "gc/concurrent_mark.hpp"
#include "kernel_iface/fatal.hpp"
#include "runtime/scheduler.hpp"

namespace usgc::runtime {

void blocked_call_release_processor() {
  Machine* machine = current_machine();
  if (machine == nullptr || machine->current == nullptr || machine->processor == nullptr) return;
  if (!machine->attached) machine->pinned = true;
  g_scheduler.blocked_call_handoffs.fetch_add(1, std::memory_order_relaxed);
  enter_native();
}

bool others_wait_for_processor() {
  Machine* machine = current_machine();
  if (machine == nullptr || machine->processor == nullptr) return false;
  // Relaxed: a hint (a stale answer keeps the P through one stop, or hands it to the idle list).
  return !machine->processor->run_queue.empty() ||
         g_scheduler.global_size.load(std::memory_order_relaxed) != 0 ||
         g_scheduler.pinned_waiter_count.load(std::memory_order_relaxed) != 0;
}

void blocked_call_reacquire_processor() {
  Machine* machine = current_machine();
  if (machine == nullptr || machine->current == nullptr) return;
  Goroutine* goroutine = machine->current;
  // Not released (the handler ran on a thread that had no P after all): nothing to take back.
  if (goroutine->state.load(std::memory_order_relaxed) != safepoint::GoroutineState::kInNative)
    return;
  // Attached threads take the same way back as pinned workers (their goroutine is locked to them
  // anyway): through the line, which cannot be stranded by the worker-thread bound.
  Processor* processor = take_idle_processor_or_wait_in_line(machine);
  if (processor != nullptr) {
    acquire_processor(machine, processor);
  } else {
    // Pinned or attached: off the idle-machine list.
    bool got_processor = wait_for_processor(machine);
    USGC_CHECK(got_processor, "goroutine %lu: woken without a P after a blocked call",
               static_cast<unsigned long>(goroutine->id));
    processor = machine->processor;
  }
  machine->pinned = false;
  // Release, as every state store (set_state, runtime/scheduler.cpp): pairs with the acquire
  // load in ready(); the state's other readers load it relaxed as a hint.
  goroutine->state.store(safepoint::GoroutineState::kRunning, std::memory_order_release);
  processor->current_goroutine.store(goroutine, std::memory_order_relaxed);
  processor->switch_count.fetch_add(1, std::memory_order_relaxed);
  // Stops only: a preemption stays armed for the next poll outside the library call.
  if (safepoint::safepoint_requested(processor->slot))
    safepoint::reach_safepoint(processor->slot, false);
  // A concurrent shared mark begun while the call was blocked scans us before we run on.
  gc::ensure_scanned(goroutine->mutator);
}

}  // namespace usgc::runtime
