// safepoint/goroutine_state.cpp — names of the goroutine states (messages, usgc-top, tests).
#include "safepoint/goroutine_state.hpp"

namespace usgc::safepoint {

const char* goroutine_state_name(GoroutineState state) {
  switch (state) {
    case GoroutineState::kIdle:
      return "idle";
    case GoroutineState::kRunnable:
      return "runnable";
    case GoroutineState::kRunning:
      return "running";
    case GoroutineState::kParked:
      return "parked";
    case GoroutineState::kInNative:
      return "in native";
    case GoroutineState::kAtSafepoint:
      return "at safepoint";
    case GoroutineState::kDead:
      return "dead";
  }
  return "?";
}

}  // namespace usgc::safepoint
