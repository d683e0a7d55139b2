// safepoint/thread_signals.cpp — see thread_signals.hpp.
#include "safepoint/thread_signals.hpp"

#include "kernel_iface/signals.hpp"
#include "safepoint/async_safepoint.hpp"

namespace usgc::safepoint {

kernel::Status unblock_goroutine_signals(sigset_t* previous) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGSEGV);
  sigaddset(&signals, SIGBUS);
  // Only when usgc sends it: otherwise a program that waits for SIGURG with sigwait keeps it.
  if (async_safepoints_enabled()) sigaddset(&signals, kAsyncSignal);
  return kernel::unblock_signals(signals, previous);
}

}  // namespace usgc::safepoint
