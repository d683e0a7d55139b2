// runtime/goroutine.hpp — the goroutine record (Go's g) and what code outside the scheduler may
// use of it: parking and readying (the primitive under channels, wait groups and sleep).
//
// A goroutine is a stack (runtime/goroutine_stack.hpp) plus the saved stack pointer of its
// context (runtime/context_switch.hpp) plus the fields below. Its state machine is in
// safepoint/goroutine_state.hpp (state table there); the transitions are made by the scheduler.
//
// Parking protocol (Go's gopark/goready, the reason there are no lost wake-ups):
//   1. the goroutine puts itself on a wait queue while holding that queue's lock;
//   2. it calls park(commit, arg). The scheduler saves its registers, switches to the worker's
//      scheduler stack, and only then calls commit(g, arg), which releases the lock. From that
//      moment a waker may find it on the queue and call ready(g): g's context is already saved,
//      so ready can never run before the goroutine has finished stopping.
//   3. if commit returns false the goroutine is resumed at once (nothing parked it after all).
// The scheduler calls commit with the goroutine already in kParked and without holding any lock
// of its own, so commit may release several locks one by one (select does) while a waker that
// got in after the first one already calls ready(g).
// ready(g) moves a parked goroutine to a run queue; calling it for a goroutine that is not
// parked is a bug (USGC_CHECK). A goroutine is readied once per park.
#pragma once

#include <atomic>
#include <cstdint>

#include "gc/mutator.hpp"
#include "runtime/goroutine_stack.hpp"
#include "safepoint/goroutine_state.hpp"

namespace usgc::runtime {

struct Machine;

enum class WaitReason : uint8_t {
  kNone,
  kChannelSend,
  kChannelReceive,
  kSelect,
  kSelectNoCases,  // select with no ready-able case: parks for ever (Go: "select (no cases)")
  kWaitGroup,
  kSleep,
  kYield,
};

struct Goroutine {
  // ---- context (written by the scheduler only) ----
  void* saved_stack_pointer = nullptr;  // the context while not running (context_switch.hpp)
  void* sanitizer_fiber = nullptr;      // context_switch.hpp (TSan and ASan builds only)
  GoroutineStack stack;                 // empty for an attached thread (it runs on its own stack)
  uint64_t id = 0;                      // GoroutineId; immutable after creation
  std::atomic<safepoint::GoroutineState> state{safepoint::GoroutineState::kIdle};
  void (*entry)(void*) = nullptr;
  void* entry_argument = nullptr;
  std::atomic<uint32_t>* exit_notify = nullptr;  // set to 1 and futex-woken when entry returned

  // ---- scheduler links (owned by whichever queue holds the goroutine) ----
  Goroutine* next_in_queue = nullptr;
  Machine* locked_machine = nullptr;  // attached thread: only this machine may run it
  WaitReason wait_reason = WaitReason::kNone;

  // ---- for wait queues (channels, select, wait groups, timers) ----
  // select: the first waker to CAS 0 -> 1 wins the goroutine; the others leave it alone.
  std::atomic<uint32_t> select_done{0};
  // Written by the waker before ready(), read by the goroutine after park() returns.
  void* wait_result = nullptr;
  uint64_t sleep_deadline_ns = 0;  // timers.hpp
  uint32_t timer_heap_index = 0;   // timers.hpp

  // ---- the goroutine's GC state (gc/mutator.hpp): registered at spawn (or attach), handed
  // over to the shared heap at exit (or detach); usgc_current_mutator points at it while it runs.
  gc::Mutator mutator;
};

// The calling thread's goroutine; nullptr on a thread that runs none (and on a worker thread
// between goroutines).
Goroutine* current_goroutine();

// Parks the calling goroutine (see the protocol above). Must be called from a goroutine.
void park(bool (*commit)(Goroutine* goroutine, void* argument), void* argument, WaitReason reason);

// Makes a parked goroutine runnable. Callable from any thread (goroutines, attached threads,
// the timer thread, foreign threads).
void ready(Goroutine* goroutine);

// A fast per-thread pseudo-random number (xorshift), for select and work stealing.
uint32_t cheap_random();

}  // namespace usgc::runtime
