// runtime/native.cpp — goroutines in native calls, and embedder threads attached as goroutines.
//
// Native calls (usgc_enter_native / usgc_leave_native): entering gives the P up at once (to a
// machine that will run the queued goroutines, or to the idle list), so a goroutine blocked in
// read(2) holds neither a P nor up a stop-the-world: its goroutine is kInNative, a safe state.
// Leaving takes an idle P back; while a stop holds the idle Ps their slots are kStoppedIdle and
// acquire_processor waits for the resume ("leaving native while the world is stopped waits").
// With no idle P at all the goroutine queues itself (kRunnable, global queue) and its machine
// waits for work like any idle one.
//
// Native for a stop (enter_native_for_stop): a goroutine that requests a stop without keeping its
// P (the collector on a loaded machine, USGC_SAFEPOINT_WAIT=sleep, usgc_stop_the_world from a
// goroutine) releases its P's slot but holds the P back (Machine::held_for_stop) instead of
// handing it on: handed on, it woke a machine (a futex wake) that then competed for a CPU with the
// Ps that must reach their polls and with the requester's own wake-up, only to find its slot
// claimed and sleep until the resume. Held, its Idle slot is claimed by the stop at once. After
// the resume the requester takes it back (leave_native) or, staying native (the collector's
// concurrent mark), hands it on (hand_off_held_processor), as it does before waiting for another
// requester's stop.
//
// Attached threads (usgc_attach_thread): the thread becomes a machine whose goroutine runs on
// the thread's own stack and is locked to it — only this machine runs it (Go's LockOSThread).
// Its scheduler context is a separate small stack running locked_scheduler_loop: when the
// goroutine parks or yields it gives the P up and waits until a worker that dequeues the
// goroutine hands it a P back (hand_to_locked_machine in scheduler.cpp). Attaching starts the
// goroutine in kInNative and leaves native; detaching enters native and ends it.
//
// A thread that ends attached — returns from its start routine or calls pthread_exit without
// usgc_detach_thread, or is cancelled, perhaps inside a blocked call whose P was retaken — is
// detached by a thread-specific key's destructor on its way out (Go 1.21's cgo drops the M of a C
// thread the same way). Without it its P stayed held by a thread that no longer exists: the next
// stop of the world waited forever, and usgc_shutdown said EBUSY for good. The destructor first
// takes a P back if the goroutine is in native (a bracketed call, or a blocked call the monitor
// retook), so the goroutine's mutator is unregistered while it holds its P as in detach_thread.
// A cancel that lands while usgc works inside the thread's blocked call waits until the runtime's
// state is whole (safepoint/async_safepoint.cpp, "Cancellation"), so this destructor finds the
// goroutine either in native without a P or running on its P, never in between.
// g_attached_thread_key: created once (pthread_once), never deleted; its value is the thread's
// machine while attached, cleared by usgc_detach_thread (then no destructor runs).
#include <pthread.h>

#include <new>

#include "gc/concurrent_mark.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/signals.hpp"
#include "kernel_iface/thread_control.hpp"
#include "runtime/context_switch.hpp"
#include "runtime/scheduler.hpp"
#include "safepoint/thread_signals.hpp"

namespace usgc::runtime {
namespace {

void run_locked_goroutine(Machine* machine, Goroutine* goroutine) {
  // Release, as every state store (set_state, runtime/scheduler.cpp): pairs with the acquire
  // load in ready(); the state's other readers load it relaxed as a hint.
  goroutine->state.store(safepoint::GoroutineState::kRunning, std::memory_order_release);
  machine->current = goroutine;
  machine->processor->current_goroutine.store(goroutine, std::memory_order_relaxed);
  machine->processor->switch_count.fetch_add(1, std::memory_order_relaxed);
  g_scheduler.context_switches.fetch_add(1, std::memory_order_relaxed);
  gc::set_current_mutator(&goroutine->mutator);
  safepoint::set_processor_activity(machine->processor->slot,
                                    safepoint::ProcessorActivity::kGoroutine);
  switch_context(&machine->scheduler_stack_pointer, machine->scheduler_fiber,
                 goroutine->saved_stack_pointer, goroutine->sanitizer_fiber);
}

// The scheduler context of an attached machine: entered each time its goroutine switches away.
[[noreturn]] void locked_scheduler_loop(void* argument) {
  sanitizer_fiber_entered();
  auto* machine = static_cast<Machine*>(argument);
  for (;;) {
    Goroutine* goroutine = machine->locked_goroutine;
    if (machine->processor != nullptr)
      machine->processor->current_goroutine.store(nullptr, std::memory_order_relaxed);
    bool resume_now = carry_out_request(machine, goroutine);
    if (resume_now && machine->processor == nullptr) {
      make_runnable(goroutine);
      resume_now = false;
    }
    if (!resume_now) {
      if (machine->processor != nullptr) hand_off_processor(machine);
      // Our goroutine is parked or queued; a worker that dequeues it hands us its P.
      bool got_processor = wait_for_processor(machine);
      USGC_CHECK(got_processor, "attached thread: woken without a P");
      if (safepoint::safepoint_requested(machine->processor->slot))
        safepoint::reach_safepoint(machine->processor->slot);
    }
    run_locked_goroutine(machine, goroutine);
  }
}

pthread_key_t g_attached_thread_key;
bool g_attached_thread_key_ok = false;
pthread_once_t g_attached_thread_key_once = PTHREAD_ONCE_INIT;

void detach_at_thread_exit(void* value) {
  auto* machine = static_cast<Machine*>(value);
  if (current_machine() != machine) return;  // not this thread's attachment any more
  Goroutine* goroutine = machine->locked_goroutine;
  if (goroutine->state.load(std::memory_order_relaxed) == safepoint::GoroutineState::kInNative)
    leave_native();  // a P first, as detach_thread expects
  (void)detach_thread();
}

void create_attached_thread_key() {
  g_attached_thread_key_ok =
      ::pthread_key_create(&g_attached_thread_key, detach_at_thread_exit) == 0;
  if (!g_attached_thread_key_ok)
    kernel::print_message(
        "pthread_key_create failed: an attached thread that ends without usgc_detach_thread "
        "keeps its P");
}

}  // namespace

// The calling goroutine, running on a P, enters native: returns its machine (nullptr: not a
// goroutine holding a P; nothing done).
static Machine* goroutine_enters_native() {
  Machine* machine = current_machine();
  if (machine == nullptr || machine->current == nullptr || machine->processor == nullptr)
    return nullptr;
  Goroutine* goroutine = machine->current;
  USGC_ASSERT(
      goroutine->state.load(std::memory_order_relaxed) == safepoint::GoroutineState::kRunning,
      "enter_native: goroutine %lu is not running", static_cast<unsigned long>(goroutine->id));
  // Release, as every state store (set_state, runtime/scheduler.cpp): pairs with the acquire
  // load in ready(); the state's other readers load it relaxed as a hint.
  goroutine->state.store(safepoint::GoroutineState::kInNative, std::memory_order_release);
  return machine;
}

void enter_native() {
  if (Machine* machine = goroutine_enters_native()) hand_off_processor(machine);
}

void enter_native_for_stop() {
  Machine* machine = goroutine_enters_native();
  if (machine == nullptr) return;
  machine->held_for_stop = release_processor(machine);
}

void hand_off_held_processor() {
  Machine* machine = current_machine();
  if (machine == nullptr || machine->held_for_stop == nullptr) return;
  Processor* processor = machine->held_for_stop;
  machine->held_for_stop = nullptr;
  hand_off_released_processor(processor);
}

void leave_native() {
  Machine* machine = current_machine();
  if (machine == nullptr || machine->current == nullptr) return;
  Goroutine* goroutine = machine->current;
  if (goroutine->state.load(std::memory_order_relaxed) != safepoint::GoroutineState::kInNative)
    return;
  // The P held back for a stop (enter_native_for_stop) first: nobody else can have taken it.
  Processor* processor = machine->held_for_stop;
  machine->held_for_stop = nullptr;
  if (processor == nullptr) processor = take_idle_processor();
  if (processor != nullptr) {
    acquire_processor(machine, processor);
    // Release, as every state store (set_state, runtime/scheduler.cpp): pairs with the acquire
    // load in ready(); the state's other readers load it relaxed as a hint.
    goroutine->state.store(safepoint::GoroutineState::kRunning, std::memory_order_release);
    processor->current_goroutine.store(goroutine, std::memory_order_relaxed);
    processor->switch_count.fetch_add(1, std::memory_order_relaxed);
    safepoint::set_processor_activity(processor->slot, safepoint::ProcessorActivity::kGoroutine);
    if (safepoint::safepoint_requested(processor->slot))
      safepoint::reach_safepoint(processor->slot);
    // A concurrent shared mark begun while we were in native scans us before we run on.
    gc::ensure_scanned(goroutine->mutator);
    return;
  }
  // No P free: queue ourselves and let this machine wait; we resume where a P is.
  switch_to_scheduler(SwitchRequest::kRequeueGlobal);
}

int attach_thread() {
  if (!g_scheduler.initialized) return EPERM;
  if (current_machine() != nullptr) return EALREADY;
  auto* machine = new (std::nothrow) Machine();
  if (machine == nullptr) return ENOMEM;
  Goroutine* goroutine = goroutine_allocate(false);
  kernel::Result<GoroutineStack> stack = stack_acquire();
  if (goroutine == nullptr || !stack.ok()) {
    delete goroutine;
    if (stack.ok()) stack_release(stack.value());
    delete machine;
    return ENOMEM;
  }
  machine->attached = true;
  // Before it can hold a P: a stop's poll fault and signal must reach this thread whatever mask
  // the program gave it (safepoint/thread_signals.hpp); its own mask comes back at detach.
  machine->signal_mask_saved =
      safepoint::unblock_goroutine_signals(&machine->signal_mask_before_attach).ok();
  machine->scheduler_stack = stack.value();
  machine->scheduler_stack_pointer =
      context_prepare(machine->scheduler_stack.top(), locked_scheduler_loop, machine);
  machine->scheduler_fiber =
      sanitizer_fiber_create(machine->scheduler_stack.top() - machine->scheduler_stack.usable_bytes,
                             machine->scheduler_stack.usable_bytes);
  goroutine->sanitizer_fiber = sanitizer_fiber_of_thread();  // it runs on the thread's own stack
  machine->locked_goroutine = goroutine;
  machine->current = goroutine;
  (void)machine->signal_stack.install();  // without one, a stack overflow dies without the message
  goroutine->locked_machine = machine;
  // Release, as every state store (set_state, runtime/scheduler.cpp): pairs with the acquire
  // load in ready(); the state's other readers load it relaxed as a hint.
  goroutine->state.store(safepoint::GoroutineState::kInNative, std::memory_order_release);
  if (!register_machine(machine)) {
    if (machine->signal_mask_saved)
      (void)kernel::set_blocked_signals(machine->signal_mask_before_attach);
    (void)machine->signal_stack.release();
    stack_release(machine->scheduler_stack);
    sanitizer_fiber_destroy(machine->scheduler_fiber);
    sanitizer_fiber_destroy(goroutine->sanitizer_fiber, true);
    delete goroutine;
    delete machine;
    return EPERM;  // usgc_shutdown is under way
  }
  g_scheduler.live_goroutines.fetch_add(1, std::memory_order_relaxed);
  g_scheduler.goroutines_created.fetch_add(1, std::memory_order_relaxed);
  gc::mutator_register(&goroutine->mutator, goroutine->id, nullptr);
  goroutine->mutator.stack_top = kernel::current_thread_stack_top();  // the thread's own stack
  set_current_machine(machine);
  gc::set_current_mutator(&goroutine->mutator);
  ::pthread_once(&g_attached_thread_key_once, create_attached_thread_key);
  if (g_attached_thread_key_ok) (void)::pthread_setspecific(g_attached_thread_key, machine);
  leave_native();
  return 0;
}

int detach_thread() {
  Machine* machine = current_machine();
  if (machine == nullptr || !machine->attached) return EPERM;
  Goroutine* goroutine = machine->locked_goroutine;
  if (g_attached_thread_key_ok) (void)::pthread_setspecific(g_attached_thread_key, nullptr);
  gc::mutator_unregister(
      &goroutine->mutator);  // while it still holds its P: no stop sees half of it
  gc::set_current_mutator(nullptr);
  enter_native();
  // Release, as every state store (set_state, runtime/scheduler.cpp): pairs with the acquire
  // load in ready(); the state's other readers load it relaxed as a hint.
  goroutine->state.store(safepoint::GoroutineState::kDead, std::memory_order_release);
  // Acq_rel: the goroutine's work before the count drops (pairs with runtime_shutdown's acquire
  // load that sees 0).
  g_scheduler.live_goroutines.fetch_sub(1, std::memory_order_acq_rel);
  set_current_machine(nullptr);
  unregister_machine(machine);
  if (machine->signal_mask_saved)
    (void)kernel::set_blocked_signals(machine->signal_mask_before_attach);
  (void)machine->signal_stack.release();
  stack_release(machine->scheduler_stack);
  sanitizer_fiber_destroy(machine->scheduler_fiber);
  sanitizer_fiber_destroy(goroutine->sanitizer_fiber, true);
  delete goroutine;
  delete machine;
  return 0;
}

}  // namespace usgc::runtime
