// tests/safepoint/fault_handler_test.cpp — the fault handler (safepoint/fault_handler.hpp) and
// the trampoline, without the scheduler: the hooks are the test's own (a thread-local "runs a
// goroutine" flag, counting slow paths).
//
// Proves:
//   - a poller thread stopped by thousands of arms of the global page enters the slow path exactly
//     once per poll fault, blocking there until the page is disarmed, or returning at once and
//     faulting again while it stays armed; handshake-style arming (the slot pointer swapped to a
//     bad page and back) works the same with no system call; with and without an alternate stack;
//   - a fault on a poll page by a thread that runs no goroutine, or by an instruction that is no
//     poll (a store), is a crash (SIGSEGV), not a safepoint;
//   - a real crash (NULL dereference) still dies by SIGSEGV, with a core where the system allows;
//     a sent SIGSEGV too;
//   - chaining: a handler installed before usgc's gets the non-poll faults (and can siglongjmp
//     out, _exit, or ask for SA_RESETHAND); one installed after usgc's that calls usgc's keeps
//     polls working; uninstall restores the earlier handler only while usgc's is still current;
//     a second install only replaces the hooks; errno survives the handler;
//   - a guard-page hit on a goroutine stack prints "goroutine 7: stack overflow" and dies by
//     SIGSEGV, also when the overflow is a poll with no room left below the red zone.
// Each runs in a fresh process (safepoint_test_support.hpp): they arm poll pages and install
// process-wide signal handlers.
#include "safepoint/fault_handler.hpp"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "kernel_iface/futex.hpp"
#include "kernel_iface/signals.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "safepoint/poll_page.hpp"
#include "tests/safepoint/safepoint_test_support.hpp"
#include "tests/support/death_test_support.hpp"

namespace usgc::safepoint {
namespace {

using usgc_test::FreshProcessChecks;
using usgc_test::poll;

constexpr auto kDeadline = std::chrono::seconds(20);

// ---- the test's hooks ----------------------------------------------------------------------

constinit thread_local bool t_runs_goroutine = false;
std::atomic<uint64_t> g_goroutine_poll_faults{0};  // faults on poll pages by goroutine threads
std::atomic<uint64_t> g_slow_path_calls{0};
// Blocking slow path: call n returns once g_released_calls >= n (the main thread disarmed).
std::atomic<uint32_t> g_released_calls{0};
// Handshake slow path: puts the polled pointer back to the always-readable page.
std::atomic<const volatile uint8_t*> g_polled_page{nullptr};
// Stack overflow hook: the guard page of the test's goroutine stack.
std::atomic<uintptr_t> g_guard_page{0};

bool runs_goroutine() {
  if (t_runs_goroutine) g_goroutine_poll_faults.fetch_add(1, std::memory_order_relaxed);
  return t_runs_goroutine;
}

void slow_path_returning_at_once() { g_slow_path_calls.fetch_add(1, std::memory_order_acq_rel); }

void slow_path_blocking_until_released() {
  const uint32_t call = static_cast<uint32_t>(g_slow_path_calls.fetch_add(1, std::memory_order_acq_rel) + 1);
  kernel::futex_wake_all(reinterpret_cast<std::atomic<uint32_t>*>(&g_slow_path_calls));
  for (;;) {
    const uint32_t released = g_released_calls.load(std::memory_order_acquire);
    if (released >= call) return;
    kernel::futex_wait(&g_released_calls, released, 100'000'000);
  }
}

void slow_path_acknowledging_handshake() {
  g_polled_page.store(always_readable_page(), std::memory_order_release);
  g_slow_path_calls.fetch_add(1, std::memory_order_acq_rel);
}

void slow_path_disarming_global_page() {
  g_slow_path_calls.fetch_add(1, std::memory_order_acq_rel);
  if (!disarm_global_poll_page().ok()) std::abort();
}

uint64_t goroutine_7_when_in_guard(const void* address) {
  const uintptr_t guard = g_guard_page.load(std::memory_order_relaxed);
  const uintptr_t at = reinterpret_cast<uintptr_t>(address);
  return guard != 0 && at >= guard && at < guard + kernel::os_page_size() ? 7 : 0;
}

FaultHandlerHooks hooks_with(void (*slow_path)()) {
  return FaultHandlerHooks{runs_goroutine, slow_path, goroutine_7_when_in_guard};
}

// Sanitizer runtimes install their own SIGSEGV/SIGBUS handlers at start-up; the tests decide
// what came before usgc's, so they start from the default (a program's own handler, where a test
// wants one, is installed after this).
void start_from_default_dispositions() {
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
}

void set_up_or_abandon(FreshProcessChecks& checks, void (*slow_path)()) {
  if (!poll_pages_initialize(2).ok()) checks.abandon("poll_pages_initialize");
  if (!install_fault_handler(hooks_with(slow_path)).ok()) checks.abandon("install_fault_handler");
}

bool wait_until(const std::atomic<uint64_t>& counter, uint64_t at_least) {
  const auto give_up = std::chrono::steady_clock::now() + kDeadline;
  while (counter.load(std::memory_order_acquire) < at_least) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

// ---- (a) the mechanism: arm, fault, slow path, resume ----------------------------------------

// A goroutine-like thread: polls `page` (re-read each time, like slot->poll_page) until stopped.
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
    if (!wait_until(g_slow_path_calls, arm)) checks.abandon("the poller never reached the slow path");
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
  checks.expect(poller.polls.load() >= kArms, "only %lu polls completed", static_cast<unsigned long>(poller.polls.load()));
  return checks.failures();
}

TEST(FaultHandler, EveryArmOfTheGlobalPageStopsThePollerOnceInTheSlowPath) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(every_arm_of_the_global_page_stops_the_poller_once(/*alternate_stack=*/true));
}

TEST(FaultHandler, EveryArmStopsThePollerOnceAlsoWithoutAnAlternateStack) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(every_arm_of_the_global_page_stops_the_poller_once(/*alternate_stack=*/false));
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
    if (!wait_until(g_slow_path_calls, before + 1)) checks.abandon("the poller never reached the slow path");
    if (!disarm_global_poll_page().ok()) checks.abandon("disarm_global_poll_page");
  }
  // Let it pass a few disarmed polls, so no fault is in flight when it stops.
  const uint64_t polls = poller.polls.load();
  while (poller.polls.load() < polls + 10) std::this_thread::yield();
  poller.finish();
  checks.expect(g_slow_path_calls.load() >= kArms, "%lu slow-path calls for %lu arms",
                static_cast<unsigned long>(g_slow_path_calls.load()), static_cast<unsigned long>(kArms));
  checks.expect(g_slow_path_calls.load() == g_goroutine_poll_faults.load(), "%lu slow-path calls for %lu poll faults",
                static_cast<unsigned long>(g_slow_path_calls.load()),
                static_cast<unsigned long>(g_goroutine_poll_faults.load()));
  return checks.failures();
}

TEST(FaultHandler, SlowPathThatReturnsAtOnceIsCalledOncePerPollFault) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(a_slow_path_that_returns_at_once_is_called_once_per_poll_fault());
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
    if (!wait_until(g_slow_path_calls, handshake)) checks.abandon("the poller never reached the slow path");
  }
  poller.finish();
  checks.expect(g_slow_path_calls.load() == kHandshakes, "%lu slow-path calls for %lu handshakes",
                static_cast<unsigned long>(g_slow_path_calls.load()), static_cast<unsigned long>(kHandshakes));
  checks.expect(g_goroutine_poll_faults.load() == kHandshakes, "%lu poll faults for %lu handshakes",
                static_cast<unsigned long>(g_goroutine_poll_faults.load()), static_cast<unsigned long>(kHandshakes));
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
  EXPECT_EQ(install_fault_handler(FaultHandlerHooks{nullptr, slow_path_returning_at_once, nullptr}).error(), EINVAL);
  EXPECT_EQ(install_fault_handler(FaultHandlerHooks{runs_goroutine, nullptr, nullptr}).error(), EINVAL);
}

// ---- (c) what is not a poll is a crash ----------------------------------------------------------

class FaultHandlerDeathTest : public testing::Test {
 private:
  usgc_test::ThreadsafeDeathTests threadsafe_;
};

void install_for_death_test() {
  usgc_test::no_core_dumps();
  FreshProcessChecks checks;
  set_up_or_abandon(checks, slow_path_returning_at_once);
}

TEST_F(FaultHandlerDeathTest, NullDereferenceDiesBySegv) {
  EXPECT_EXIT(
      {
        start_from_default_dispositions();
        install_for_death_test();
        *static_cast<volatile int*>(usgc_test::launder(nullptr)) = 1;
        std::_Exit(0);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

TEST_F(FaultHandlerDeathTest, SentSegvDiesBySegv) {
  EXPECT_EXIT(
      {
        start_from_default_dispositions();
        install_for_death_test();
        raise(SIGSEGV);
        std::_Exit(0);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

TEST_F(FaultHandlerDeathTest, PollPageFaultOfAThreadThatRunsNoGoroutineIsACrash) {
  EXPECT_EXIT(
      {
        start_from_default_dispositions();
        install_for_death_test();
        if (!arm_global_poll_page().ok()) std::_Exit(3);
        poll(global_poll_page());  // t_runs_goroutine is false on this thread
        std::_Exit(0);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

TEST_F(FaultHandlerDeathTest, StoreToAPollPageIsNoPollButACrash) {
  EXPECT_EXIT(
      {
        start_from_default_dispositions();
        install_for_death_test();
        t_runs_goroutine = true;
        // The always-readable page is PROT_READ: a store faults there, and "mov %al, (%reg)" is
        // no poll instruction.
        *const_cast<volatile uint8_t*>(always_readable_page()) = 1;
        std::_Exit(0);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

// The core dump: only the fresh child's own image is dumped (a few MiB), into a directory made
// for it, removed afterwards.
std::string read_core_pattern() {
  std::ifstream file("/proc/sys/kernel/core_pattern");
  std::string pattern;
  std::getline(file, pattern);
  return pattern;
}

std::string core_directory_for(pid_t test_process) {
  return "/tmp/usgc-fault-handler-core-" + std::to_string(test_process);
}

std::atomic<int> g_core_child_status{0};
bool killed_by_segv_recording_status(int status) {
  g_core_child_status.store(status);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

void remove_directory_and_files(const std::string& directory) {
  const std::string command = "rm -rf '" + directory + "'";
  if (std::system(command.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", directory.c_str());
}

TEST_F(FaultHandlerDeathTest, NullDereferenceDiesBySegvWithACoreDump) {
  const std::string directory = core_directory_for(getpid());
  remove_directory_and_files(directory);
  ASSERT_EQ(mkdir(directory.c_str(), 0700), 0) << directory;
  EXPECT_EXIT(
      {
        start_from_default_dispositions();
        // In the child: getppid() is the test process that made the directory.
        if (chdir(core_directory_for(getppid()).c_str()) != 0) std::_Exit(3);
        struct rlimit limit;
        getrlimit(RLIMIT_CORE, &limit);
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_CORE, &limit);
        FreshProcessChecks checks;
        set_up_or_abandon(checks, slow_path_returning_at_once);
        *static_cast<volatile int*>(usgc_test::launder(nullptr)) = 1;
        std::_Exit(0);
      },
      killed_by_segv_recording_status, "");
  const int status = g_core_child_status.load();
  const bool dumped = WIFSIGNALED(status) && WCOREDUMP(status);
  const std::string pattern = read_core_pattern();
  struct rlimit limit;
  getrlimit(RLIMIT_CORE, &limit);
  const bool directory_had_files = std::system(("test -n \"$(ls -A '" + directory + "')\"").c_str()) == 0;
  remove_directory_and_files(directory);
  if (!dumped) {
    if (!pattern.empty() && pattern[0] == '|') {
      GTEST_SKIP() << "died by SIGSEGV as it should; the core part is skipped: core_pattern pipes cores to a "
                      "program ("
                   << pattern << "), which may drop them";
    }
    if (limit.rlim_max == 0) {
      GTEST_SKIP() << "died by SIGSEGV as it should; the core part is skipped: the hard RLIMIT_CORE is 0 here";
    }
    FAIL() << "died by SIGSEGV without a core although core_pattern is '" << pattern
           << "' and RLIMIT_CORE allows one: usgc's handler must let the fault re-execute under SIG_DFL";
  }
  if (pattern.find('/') == std::string::npos) {
    EXPECT_TRUE(directory_had_files) << "the core (pattern '" << pattern << "') should be in the child's directory";
  }
}

// ---- (c) chaining --------------------------------------------------------------------------------

std::atomic<int> g_program_handler_calls{0};
sigjmp_buf g_recover;
kernel::SignalAction g_usgc_action;  // what the program's later handler chains to

void program_handler_that_chains_to_usgc(int signal_number, siginfo_t* info, void* context) {
  g_program_handler_calls.fetch_add(1);
  g_usgc_action.sa_sigaction(signal_number, info, context);
}

void program_handler_that_recovers(int, siginfo_t*, void*) {
  g_program_handler_calls.fetch_add(1);
  siglongjmp(g_recover, 1);
}

void program_plain_handler_that_exits(int) { _exit(42); }

void install_program_handler(void (*handler)(int, siginfo_t*, void*), int extra_flags, kernel::SignalAction* previous) {
  struct sigaction action {};
  action.sa_sigaction = handler;
  action.sa_flags = SA_SIGINFO | extra_flags;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGSEGV, &action, previous) != 0) std::abort();
}

int a_later_handler_that_chains_to_usgc_keeps_polls_working() {
  FreshProcessChecks checks;
  start_from_default_dispositions();
  set_up_or_abandon(checks, slow_path_disarming_global_page);
  install_program_handler(program_handler_that_chains_to_usgc, 0, &g_usgc_action);
  t_runs_goroutine = true;
  for (int round = 1; round <= 200; ++round) {
    if (!arm_global_poll_page().ok()) checks.abandon("arm_global_poll_page");
    poll(global_poll_page());
    if (!checks.expect(g_slow_path_calls.load() == static_cast<uint64_t>(round) && g_program_handler_calls.load() == round,
                       "round %d: %lu slow-path calls, %d program handler calls", round,
                       static_cast<unsigned long>(g_slow_path_calls.load()), g_program_handler_calls.load())) {
      break;
    }
  }
  // uninstall leaves both alone: usgc's is no longer the installed one.
  uninstall_fault_handler();
  checks.expect(kernel::signal_action_runs(kernel::current_signal_action(SIGSEGV).value(),
                                           program_handler_that_chains_to_usgc),
                "uninstall replaced a handler installed after usgc's");
  return checks.failures();
}

TEST(FaultHandler, HandlerInstalledAfterUsgcThatChainsKeepsPollsWorking) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(a_later_handler_that_chains_to_usgc_keeps_polls_working());
}

int an_earlier_handler_gets_the_non_poll_faults() {
  FreshProcessChecks checks;
  start_from_default_dispositions();
  install_program_handler(program_handler_that_recovers, 0, nullptr);
  set_up_or_abandon(checks, slow_path_disarming_global_page);
  set_up_or_abandon(checks, slow_path_disarming_global_page);  // twice: the second only sets hooks
  t_runs_goroutine = true;
  for (int round = 1; round <= 3; ++round) {
    if (!arm_global_poll_page().ok()) checks.abandon("arm_global_poll_page");
    poll(global_poll_page());
    checks.expect(g_program_handler_calls.load() == round - 1, "round %d: the earlier handler saw a poll fault",
                  round);
    if (sigsetjmp(g_recover, 1) == 0) {
      *static_cast<volatile int*>(usgc_test::launder(nullptr)) = round;
      checks.abandon("a NULL store did not fault");
    }
    checks.expect(g_program_handler_calls.load() == round, "round %d: the earlier handler ran %d times", round,
                  g_program_handler_calls.load());
  }
  checks.expect(g_slow_path_calls.load() == 3, "%lu slow-path calls for 3 polls",
                static_cast<unsigned long>(g_slow_path_calls.load()));
  uninstall_fault_handler();
  checks.expect(kernel::signal_action_runs(kernel::current_signal_action(SIGSEGV).value(), program_handler_that_recovers),
                "uninstall did not put the earlier handler back");
  return checks.failures();
}

TEST(FaultHandler, HandlerInstalledBeforeUsgcGetsTheNonPollFaults) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(an_earlier_handler_gets_the_non_poll_faults());
}

TEST_F(FaultHandlerDeathTest, EarlierPlainHandlerGetsTheCrash) {
  EXPECT_EXIT(
      {
        start_from_default_dispositions();
        struct sigaction action {};
        action.sa_handler = program_plain_handler_that_exits;
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, nullptr);
        install_for_death_test();
        *static_cast<volatile int*>(usgc_test::launder(nullptr)) = 1;
        std::_Exit(0);
      },
      testing::ExitedWithCode(42), "");
}

TEST_F(FaultHandlerDeathTest, EarlierResetHandHandlerRunsOnceThenTheDefaultKills) {
  EXPECT_EXIT(
      {
        start_from_default_dispositions();
        install_program_handler(program_handler_that_recovers, SA_RESETHAND, nullptr);
        install_for_death_test();
        if (sigsetjmp(g_recover, 1) == 0) {
          *static_cast<volatile int*>(usgc_test::launder(nullptr)) = 1;
          std::_Exit(3);
        }
        if (g_program_handler_calls.load() != 1) std::_Exit(4);
        *static_cast<volatile int*>(usgc_test::launder(nullptr)) = 2;  // now the default action
        std::_Exit(5);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

TEST_F(FaultHandlerDeathTest, EarlierIgnoredSegvStillKillsOnAFault) {
  EXPECT_EXIT(
      {
        start_from_default_dispositions();
        signal(SIGSEGV, SIG_IGN);
        install_for_death_test();
        *static_cast<volatile int*>(usgc_test::launder(nullptr)) = 1;
        std::_Exit(0);
      },
      testing::KilledBySignal(SIGSEGV), "");
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
  g_repairable_page = mmap(nullptr, kernel::os_page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g_repairable_page == MAP_FAILED) checks.abandon("mmap");
  install_program_handler(program_handler_that_repairs, 0, nullptr);
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
  checks.expect(g_slow_path_calls.load() == 1, "%lu slow-path calls", static_cast<unsigned long>(g_slow_path_calls.load()));
  return checks.failures();
}

TEST(FaultHandler, ErrnoSurvivesTheHandler) { USGC_EXPECT_PASSES_IN_FRESH_PROCESS(errno_survives_the_handler()); }

// ---- (c) stack overflow -------------------------------------------------------------------------

constexpr size_t kGoroutineStackBytes = 256 * 1024;

// A "goroutine stack": a guard page, then the stack.
void* map_goroutine_stack() {
  const size_t page = kernel::os_page_size();
  kernel::Result<void*> mapped = kernel::map_aligned(page + kGoroutineStackBytes, page);
  if (!mapped.ok() || !kernel::protect(mapped.value(), page, kernel::Access::kNone).ok()) std::abort();
  g_guard_page.store(reinterpret_cast<uintptr_t>(mapped.value()));
  return static_cast<char*>(mapped.value()) + page;
}

volatile bool g_keep_recursing = true;  // never cleared; keeps the compiler from seeing an endless loop

[[gnu::noinline]] uint64_t recurse_forever(uint64_t depth) {
  volatile uint8_t frame[512];
  frame[0] = static_cast<uint8_t>(depth);
  frame[511] = static_cast<uint8_t>(depth >> 8);
  const uint64_t below = g_keep_recursing ? recurse_forever(depth + 1) : 0;
  return below + frame[0] + frame[511];
}

void run_on_goroutine_stack(void* (*body)(void*)) {
  start_from_default_dispositions();
  usgc_test::no_core_dumps();
  FreshProcessChecks checks;
  set_up_or_abandon(checks, slow_path_returning_at_once);
  void* stack = map_goroutine_stack();
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstack(&attributes, stack, kGoroutineStackBytes);
  pthread_t thread;
  if (pthread_create(&thread, &attributes, body, nullptr) != 0) std::abort();
  pthread_join(thread, nullptr);
}

void* overflow_by_recursion(void*) {
  kernel::AlternateSignalStack alternate;
  if (!alternate.install().ok()) std::abort();
  t_runs_goroutine = true;
  recurse_forever(0);
  return nullptr;
}

TEST_F(FaultHandlerDeathTest, GuardPageHitPrintsGoroutineStackOverflowAndDiesBySegv) {
  EXPECT_EXIT(run_on_goroutine_stack(overflow_by_recursion), testing::KilledBySignal(SIGSEGV),
              "usgc: goroutine 7: stack overflow \\(fault address 0x[0-9a-f]+");
}

// A poll whose resume words would land in the guard page: the handler reports the overflow
// instead of faulting inside itself (which the kernel would answer with a silent kill).
void* poll_with_no_stack_room(void*) {
  kernel::AlternateSignalStack alternate;
  if (!alternate.install().ok()) std::abort();
  t_runs_goroutine = true;
  if (!arm_global_poll_page().ok()) std::abort();
  // 64 bytes above the guard page: T - 16 = rsp - 152 lies in the guard.
  const uintptr_t low_stack = g_guard_page.load() + kernel::os_page_size() + 64;
  __asm__ volatile(
      "mov %%rsp, %%rbx\n\t"
      "mov %1, %%rsp\n\t"
      "testb $0, (%0)\n\t"
      "mov %%rbx, %%rsp"
      :
      : "r"(global_poll_page()), "r"(low_stack)
      : "rbx", "cc", "memory");
  return nullptr;
}

TEST_F(FaultHandlerDeathTest, PollWithoutStackRoomBelowTheRedZoneIsAStackOverflow) {
  EXPECT_EXIT(run_on_goroutine_stack(poll_with_no_stack_room), testing::KilledBySignal(SIGSEGV),
              "usgc: goroutine 7: stack overflow");
}

}  // namespace
}  // namespace usgc::safepoint
