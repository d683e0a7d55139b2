// tests/safepoint/fault_handler_test_hooks.hpp — the hooks the fault handler tests install
// instead of the runtime's: a thread-local "runs a goroutine" flag, slow paths that count (and
// block, acknowledge a handshake or disarm), and a stack overflow hook that names goroutine 7 for
// the test's guard page. Every test using them runs in a fresh process.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <thread>

#include "kernel_iface/futex.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "safepoint/fault_handler.hpp"
#include "safepoint/poll_page.hpp"
#include "tests/safepoint/safepoint_test_support.hpp"

namespace usgc::safepoint::test_hooks {

using usgc_test::FreshProcessChecks;

inline constexpr auto kDeadline = std::chrono::seconds(20);

// ---- the test's hooks ----------------------------------------------------------------------

inline constinit thread_local bool t_runs_goroutine = false;
inline std::atomic<uint64_t> g_goroutine_poll_faults{
    0};  // faults on poll pages by goroutine threads
inline std::atomic<uint64_t> g_slow_path_calls{0};
// Blocking slow path: call n returns once g_released_calls >= n (the main thread disarmed).
inline std::atomic<uint32_t> g_released_calls{0};
// Handshake slow path: puts the polled pointer back to the always-readable page.
inline std::atomic<const volatile uint8_t*> g_polled_page{nullptr};
// Stack overflow hook: the guard page of the test's goroutine stack.
inline std::atomic<uintptr_t> g_guard_page{0};

inline bool runs_goroutine() {
  if (t_runs_goroutine) g_goroutine_poll_faults.fetch_add(1, std::memory_order_relaxed);
  return t_runs_goroutine;
}

inline void slow_path_returning_at_once() {
  g_slow_path_calls.fetch_add(1, std::memory_order_acq_rel);
}

inline void slow_path_blocking_until_released() {
  const uint32_t call =
      static_cast<uint32_t>(g_slow_path_calls.fetch_add(1, std::memory_order_acq_rel) + 1);
  for (;;) {
    const uint32_t released = g_released_calls.load(std::memory_order_acquire);
    if (released >= call) return;
    kernel::futex_wait(&g_released_calls, released, 100'000'000);
  }
}

inline void slow_path_acknowledging_handshake() {
  g_polled_page.store(always_readable_page(), std::memory_order_release);
  g_slow_path_calls.fetch_add(1, std::memory_order_acq_rel);
}

inline void slow_path_disarming_global_page() {
  g_slow_path_calls.fetch_add(1, std::memory_order_acq_rel);
  if (!disarm_global_poll_page().ok()) std::abort();
}

inline uint64_t goroutine_7_when_in_guard(const void* address) {
  const uintptr_t guard = g_guard_page.load(std::memory_order_relaxed);
  const uintptr_t at = reinterpret_cast<uintptr_t>(address);
  return guard != 0 && at >= guard && at < guard + kernel::os_page_size() ? 7 : 0;
}

inline FaultHandlerHooks hooks_with(void (*slow_path)()) {
  return FaultHandlerHooks{runs_goroutine, slow_path, goroutine_7_when_in_guard};
}

// Sanitizer runtimes install their own SIGSEGV/SIGBUS handlers at start-up; the tests decide
// what came before usgc's, so they start from the default (a program's own handler, where a test
// wants one, is installed after this).
inline void start_from_default_dispositions() {
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
}

inline void set_up_or_abandon(FreshProcessChecks& checks, void (*slow_path)()) {
  if (!poll_pages_initialize(2).ok()) checks.abandon("poll_pages_initialize");
  if (!install_fault_handler(hooks_with(slow_path)).ok()) checks.abandon("install_fault_handler");
}

inline bool wait_until(const std::atomic<uint64_t>& counter, uint64_t at_least) {
  const auto give_up = std::chrono::steady_clock::now() + kDeadline;
  while (counter.load(std::memory_order_acquire) < at_least) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace usgc::safepoint::test_hooks
