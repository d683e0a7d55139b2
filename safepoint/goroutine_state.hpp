// safepoint/goroutine_state.hpp — the states of a goroutine and who may move it between them.
//
// Why it lives in safepoint/: "may this goroutine touch the heap right now?" is exactly what a
// stop-the-world needs to know. A goroutine is *safe* (the collector may scan and change its
// objects) in every state except kRunning.
//
// State table (HotSpot's habit: the protocol beside the code; runtime/scheduler.cpp makes the
// transitions, each one with the store order named there):
//
//   from          to            by                          when
//   ------------  ------------  --------------------------  --------------------------------------
//   kIdle         kRunnable     the creator (usgc_go)       a new goroutine enters a run queue
//   kRunnable     kRunning      the machine that dequeued   schedule() switches to it; the
//                                                            machine holds a P (so it polls)
//   kRunning      kRunnable     the goroutine itself        yield, preemption at a poll
//   kRunning      kParked       the goroutine itself        park(): after its context is saved
//   kParked       kRunnable     the waker                   ready(): channel, wait group, timer
//   kRunning      kInNative     the goroutine itself        usgc_enter_native: gives up its P;
//                                                            also the asynchronous safepoint path
//                                                            around a blocked system call it
//                                                            re-issues (async_safepoint.hpp)
//   kInNative     kRunning      the goroutine itself        usgc_leave_native: has a P again;
//                                                            waits while the world is stopped
//   kRunning      kAtSafepoint  the goroutine itself        poll slow path with a stop pending
//   kAtSafepoint  kRunning      the goroutine itself        the world resumed (or handshake done)
//   kRunning      kDead         the goroutine itself        its function returned
//   kIdle         kInNative     an attaching thread         usgc_attach_thread (then leaves native)
//   kInNative     kRunnable     the goroutine's machine     left native with no idle P: it queues
//                                                            itself and waits for one
//   kInNative     kDead         a detaching thread          usgc_detach_thread
//
// Safe states: kIdle, kRunnable, kParked, kInNative, kAtSafepoint, kDead. Only a goroutine in
// kRunning may be mutating; stop-the-world does not wait for goroutines but for Ps
// (safepoint/stop_the_world.hpp): every kRunning goroutine holds a P, and a P is stopped only
// when the goroutine on it (if any) has left kRunning.
#pragma once

#include <cstdint>

namespace usgc::safepoint {

enum class GoroutineState : uint8_t {
  kIdle,
  kRunnable,
  kRunning,
  kParked,
  kInNative,
  kAtSafepoint,
  kDead,
};

inline constexpr bool is_safe(GoroutineState state) {
  return state != GoroutineState::kRunning;
}

// The table above as data: true when `from -> to` is a transition the runtime may make.
// Debug builds check every transition against it (runtime/scheduler.cpp).
inline constexpr bool is_allowed_transition(GoroutineState from, GoroutineState to) {
  using S = GoroutineState;
  switch (from) {
    case S::kIdle:
      return to == S::kRunnable || to == S::kInNative;
    case S::kRunnable:
      return to == S::kRunning;
    case S::kRunning:
      return to == S::kRunnable || to == S::kParked || to == S::kInNative ||
             to == S::kAtSafepoint || to == S::kDead;
    case S::kParked:
      return to == S::kRunnable;
    case S::kInNative:
      return to == S::kRunning || to == S::kRunnable || to == S::kDead;
    case S::kAtSafepoint:
      return to == S::kRunning;
    case S::kDead:
      return false;
  }
  return false;
}

const char* goroutine_state_name(GoroutineState state);

}  // namespace usgc::safepoint
