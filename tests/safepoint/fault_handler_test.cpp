// tests/safepoint/fault_handler_test.cpp — the poll fault mechanism (safepoint/fault_handler.hpp
// and the trampoline) without the scheduler: the hooks are the test's own
// (fault_handler_test_hooks.hpp).
//
// Proves: a poller thread stopped by thousands of arms of the global page enters the slow path
// exactly once per poll fault, blocking there until the page is disarmed, or returning at once and
// faulting again while it stays armed; handshake-style arming (the polled pointer swapped to a
// slot's bad page, and back by the slow path) works the same with no system call; with and
// without an alternate stack; errno survives the handler; the register save area follows CPUID;
// install refuses missing hooks. Register contents across the trampoline:
// trampoline_register_test.cpp; crashes, chaining and stack overflows:
// fault_handler_chaining_test.cpp. Each runs in a fresh process (safepoint_test_support.hpp).
#include "safepoint/fault_handler.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <thread>

#include "kernel_iface/futex.hpp"
#include "kernel_iface/signals.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "safepoint/poll_page.hpp"
#include "tests/safepoint/fault_handler_test_hooks.hpp"
#include "tests/safepoint/safepoint_test_support.hpp"

namespace usgc::safepoint {
namespace {

using namespace test_hooks;
using usgc_test::FreshProcessChecks;
using usgc_test::poll;

// ---- (a) the mechanism: arm, fault, slow path, resume ----------------------------------------

// A goroutine-like thread: polls `page` (re-read each time, like usgc_current_poll.poll_page) until
// stopped.
struct Poller {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> polls{0};
  std::thread thread;

  void start(bool alternate_stack, const std::atomic<const volatile uint8_t*>& page) {
    thread = std::thread([this, alternate_stack, &page] {
      kernel::AlternateSignalStack stack;
      if (alternate_stack && !stack.install().ok()) std::abort();
      t_runs_goroutine = true;
      while (!stop.load(std::memory_order_relaxed)) {
        poll(page.load(std::memory_order_acquire));
        polls.fetch_add(1, std::memory_order_relaxed);
      }
      t_runs_goroutine = false;
    });
  }
  void finish() {
    stop.store(true);
    thread.join();
  }
};

int every_arm_of_the_global_page_stops_the_poller_once(bool alternate_stack) {
  FreshProcessChecks checks;
  start_from_default_dispositions();
  set_up_or_abandon(checks, slow_path_blocking_until_released);
  std::atomic<const volatile uint8_t*> page{global_poll_page()};
  Poller poller;
  poller.start(alternate_stack, page);
  constexpr uint32_t kArms = 2000;
  for (uint32_t arm = 1; arm <= kArms; ++arm) {
    if (!arm_global_poll_page().ok()) checks.abandon("arm_global_poll_page");
    if (!wait_until(g_slow_path_calls, arm))
      checks.abandon("the poller never reached the slow path");
    if (!checks.expect(g_slow_path_calls.load() == arm, "arm %u: %lu slow-path calls", arm,
                       static_cast<unsigned long>(g_slow_path_calls.load()))) {
      break;
    }
    if (!disarm_global_poll_page().ok()) checks.abandon("disarm_global_poll_page");
    g_released_calls.store(arm, std::memory_order_release);
    kernel::futex_wake_all(&g_released_calls);
  }
  poller.finish();
  checks.expect(g_slow_path_calls.load() == kArms, "%lu slow-path calls for %u arms",
                static_cast<unsigned long>(g_slow_path_calls.load()), kArms);
  checks.expect(g_goroutine_poll_faults.load() == kArms, "%lu poll faults for %u arms",
                static_cast<unsigned long>(g_goroutine_poll_faults.load()), kArms);
  checks.expect(poller.polls.load() >= kArms, "only %lu polls completed",
                static_cast<unsigned long>(poller.polls.load()));
  return checks.failures();
}

TEST(FaultHandler, EveryArmOfTheGlobalPageStopsThePollerOnceInTheSlowPath) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(
      every_arm_of_the_global_page_stops_the_poller_once(/*alternate_stack=*/true));
}

TEST(FaultHandler, EveryArmStopsThePollerOnceAlsoWithoutAnAlternateStack) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(
      every_arm_of_the_global_page_stops_the_poller_once(/*alternate_stack=*/false));
}

int a_slow_path_that_returns_at_once_is_called_once_per_poll_fault() {
  FreshProcessChecks checks;
  start_from_default_dispositions();
  set_up_or_abandon(checks, slow_path_returning_at_once);
  std::atomic<const volatile uint8_t*> page{global_poll_page()};
  Poller poller;
  poller.start(/*alternate_stack=*/true, page);
  constexpr uint64_t kArms = 2000;
  for (uint64_t arm = 1; arm <= kArms; ++arm) {
    const uint64_t before = g_slow_path_calls.load();
    if (!arm_global_poll_page().ok()) checks.abandon("arm_global_poll_page");
    if (!wait_until(g_slow_path_calls, before + 1))
      checks.abandon("the poller never reached the slow path");
    if (!disarm_global_poll_page().ok()) checks.abandon("disarm_global_poll_page");
  }
  // Let it pass a few disarmed polls, so no fault is in flight when it stops.
  const uint64_t polls = poller.polls.load();
  while (poller.polls.load() < polls + 10) std::this_thread::yield();
  poller.finish();
  checks.expect(g_slow_path_calls.load() >= kArms, "%lu slow-path calls for %lu arms",
                static_cast<unsigned long>(g_slow_path_calls.load()),
                static_cast<unsigned long>(kArms));
  checks.expect(g_slow_path_calls.load() == g_goroutine_poll_faults.load(),
                "%lu slow-path calls for %lu poll faults",
                static_cast<unsigned long>(g_slow_path_calls.load()),
                static_cast<unsigned long>(g_goroutine_poll_faults.load()));
  return checks.failures();
}

TEST(FaultHandler, SlowPathThatReturnsAtOnceIsCalledOncePerPollFault) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(
      a_slow_path_that_returns_at_once_is_called_once_per_poll_fault());
}

int handshake_arming_by_pointer_swap_stops_the_poller_once() {
  FreshProcessChecks checks;
  start_from_default_dispositions();
  set_up_or_abandon(checks, slow_path_acknowledging_handshake);
  g_polled_page.store(always_readable_page());
  Poller poller;
  poller.start(/*alternate_stack=*/true, g_polled_page);
  constexpr uint64_t kHandshakes = 2000;
  for (uint64_t handshake = 1; handshake <= kHandshakes; ++handshake) {
    g_polled_page.store(slot_bad_page(1), std::memory_order_release);  // arm: a pointer swap
    if (!wait_until(g_slow_path_calls, handshake))
      checks.abandon("the poller never reached the slow path");
  }
  poller.finish();
  checks.expect(g_slow_path_calls.load() == kHandshakes, "%lu slow-path calls for %lu handshakes",
                static_cast<unsigned long>(g_slow_path_calls.load()),
                static_cast<unsigned long>(kHandshakes));
  checks.expect(g_goroutine_poll_faults.load() == kHandshakes, "%lu poll faults for %lu handshakes",
                static_cast<unsigned long>(g_goroutine_poll_faults.load()),
                static_cast<unsigned long>(kHandshakes));
  return checks.failures();
}

TEST(FaultHandler, HandshakeArmingByPointerSwapStopsThePollerOnce) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(handshake_arming_by_pointer_swap_stops_the_poller_once());
}

TEST(FaultHandler, RegisterSaveAreaComesFromCpuid) {
  const uint32_t bytes = trampoline_register_save_bytes();
  EXPECT_EQ(bytes % 64, 0u);
  EXPECT_GE(bytes, 512u);
  if (__builtin_cpu_supports("avx")) {
    EXPECT_GE(bytes, 512u + 64u + 256u) << "XSAVE with the AVX component";
  }
  if (__builtin_cpu_supports("avx512f")) {
    EXPECT_GE(bytes, 2432u) << "XSAVE with the AVX-512 components";
  }
}

TEST(FaultHandler, InstallNeedsTheTwoPollHooks) {
  EXPECT_EQ(install_fault_handler(FaultHandlerHooks{nullptr, slow_path_returning_at_once, nullptr})
                .error(),
            EINVAL);
  EXPECT_EQ(install_fault_handler(FaultHandlerHooks{runs_goroutine, nullptr, nullptr}).error(),
            EINVAL);
}

// A program handler that repairs the fault (makes the page writable), sets errno, and returns.
void* g_repairable_page = nullptr;
void program_handler_that_repairs(int, siginfo_t*, void*) {
  mprotect(g_repairable_page, kernel::os_page_size(), PROT_READ | PROT_WRITE);
  errno = 77;
}

int errno_survives_the_handler() {
  FreshProcessChecks checks;
  start_from_default_dispositions();
  g_repairable_page =
      mmap(nullptr, kernel::os_page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g_repairable_page == MAP_FAILED) checks.abandon("mmap");
  struct sigaction action {};
  action.sa_sigaction = program_handler_that_repairs;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, nullptr);
  set_up_or_abandon(checks, slow_path_disarming_global_page);
  errno = 1234;
  *static_cast<volatile int*>(g_repairable_page) = 5;  // faults; repaired by the program's handler
  int after = errno;
  checks.expect(after == 1234, "errno after a chained fault: %d", after);
  t_runs_goroutine = true;
  if (!arm_global_poll_page().ok()) checks.abandon("arm_global_poll_page");
  errno = 4321;
  poll(global_poll_page());
  after = errno;
  checks.expect(after == 4321, "errno after a poll fault: %d", after);
  checks.expect(g_slow_path_calls.load() == 1, "%lu slow-path calls",
                static_cast<unsigned long>(g_slow_path_calls.load()));
  return checks.failures();
}

TEST(FaultHandler, ErrnoSurvivesTheHandler) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(errno_survives_the_handler());
}

}  // namespace
}  // namespace usgc::safepoint
