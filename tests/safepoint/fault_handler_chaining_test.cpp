// tests/safepoint/fault_handler_chaining_test.cpp — what the fault handler does with faults that
// are not polls (safepoint/fault_handler.hpp), with the test's hooks
// (fault_handler_test_hooks.hpp).
//
// Proves:
//   - a fault on a poll page by a thread that runs no goroutine, or by an instruction that is no
//     poll (a store), is a crash (SIGSEGV), not a safepoint;
//   - a real crash (NULL dereference) still dies by SIGSEGV, with a core where the system allows;
//     a sent SIGSEGV too;
//   - chaining: a handler installed before usgc's gets the non-poll faults (and can siglongjmp
//     out, _exit, or ask for SA_RESETHAND; SIG_IGN still dies); one installed after usgc's that
//     calls usgc's keeps polls working; uninstall restores the earlier handler only while usgc's
//     is still current; a second install only replaces the hooks, also over usgc's own action put
//     back by the program;
//   - a guard-page hit on a goroutine stack prints "goroutine 7: stack overflow" and dies by
//     SIGSEGV, also when the overflow is a poll with no room left below the red zone.
// Each runs in a fresh process (safepoint_test_support.hpp).
#include "safepoint/fault_handler.hpp"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "kernel_iface/signals.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "safepoint/poll_page.hpp"
#include "tests/safepoint/fault_handler_test_hooks.hpp"
#include "tests/safepoint/safepoint_test_support.hpp"
#include "tests/support/death_test_support.hpp"

namespace usgc::safepoint {
namespace {

using namespace test_hooks;
using usgc_test::FreshProcessChecks;
using usgc_test::poll;

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
        usgc_test::store_through_null(1);
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
  if (std::system(command.c_str()) != 0)
    std::fprintf(stderr, "could not remove %s\n", directory.c_str());
}

TEST_F(FaultHandlerDeathTest, NullDereferenceDiesBySegvWithACoreDump) {
  // Made and entered by the child only (this body also runs in the child up to EXPECT_EXIT, so
  // it creates nothing itself): the directory is named after the test process, the child's parent.
  const std::string directory = core_directory_for(getpid());
  EXPECT_EXIT(
      {
        start_from_default_dispositions();
        const std::string own_directory = core_directory_for(getppid());
        if ((mkdir(own_directory.c_str(), 0700) != 0 && errno != EEXIST) ||
            chdir(own_directory.c_str()) != 0) {
          std::_Exit(3);
        }
        struct rlimit limit;
        getrlimit(RLIMIT_CORE, &limit);
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_CORE, &limit);
        FreshProcessChecks checks;
        set_up_or_abandon(checks, slow_path_returning_at_once);
        usgc_test::store_through_null(1);
        std::_Exit(0);
      },
      killed_by_segv_recording_status, "");
  const int status = g_core_child_status.load();
  const bool dumped = WIFSIGNALED(status) && WCOREDUMP(status);
  const std::string pattern = read_core_pattern();
  struct rlimit limit;
  getrlimit(RLIMIT_CORE, &limit);
  const bool directory_had_files =
      std::system(("test -n \"$(ls -A '" + directory + "')\"").c_str()) == 0;
  remove_directory_and_files(directory);
  if (!dumped) {
    if (!pattern.empty() && pattern[0] == '|') {
      GTEST_SKIP() << "died by SIGSEGV as it should; the core part is skipped: core_pattern pipes "
                      "cores to a "
                      "program ("
                   << pattern << "), which may drop them";
    }
    if (limit.rlim_max == 0) {
      GTEST_SKIP() << "died by SIGSEGV as it should; the core part is skipped: the hard "
                      "RLIMIT_CORE is 0 here";
    }
    FAIL() << "died by SIGSEGV without a core although core_pattern is '" << pattern
           << "' and RLIMIT_CORE allows one: usgc's handler must let the fault re-execute under "
              "SIG_DFL";
  }
  if (pattern.find('/') == std::string::npos) {
    EXPECT_TRUE(directory_had_files)
        << "the core (pattern '" << pattern << "') should be in the child's directory";
  }
}

// ---- (c) chaining
// --------------------------------------------------------------------------------

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

void program_plain_handler_that_exits(int) {
  _exit(42);
}

void install_program_handler(void (*handler)(int, siginfo_t*, void*), int extra_flags,
                             kernel::SignalAction* previous) {
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
    if (!checks.expect(g_slow_path_calls.load() == static_cast<uint64_t>(round) &&
                           g_program_handler_calls.load() == round,
                       "round %d: %lu slow-path calls, %d program handler calls", round,
                       static_cast<unsigned long>(g_slow_path_calls.load()),
                       g_program_handler_calls.load())) {
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
    checks.expect(g_program_handler_calls.load() == round - 1,
                  "round %d: the earlier handler saw a poll fault", round);
    if (sigsetjmp(g_recover, 1) == 0) {
      usgc_test::store_through_null(round);
      checks.abandon("a NULL store did not fault");
    }
    checks.expect(g_program_handler_calls.load() == round,
                  "round %d: the earlier handler ran %d times", round,
                  g_program_handler_calls.load());
  }
  checks.expect(g_slow_path_calls.load() == 3, "%lu slow-path calls for 3 polls",
                static_cast<unsigned long>(g_slow_path_calls.load()));
  uninstall_fault_handler();
  checks.expect(kernel::signal_action_runs(kernel::current_signal_action(SIGSEGV).value(),
                                           program_handler_that_recovers),
                "uninstall did not put the earlier handler back");
  return checks.failures();
}

TEST(FaultHandler, HandlerInstalledBeforeUsgcGetsTheNonPollFaults) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(an_earlier_handler_gets_the_non_poll_faults());
}

// A stray load from an armed poll page (a mov or cmp, not the emitted `testb` poll) is a real
// fault: it is chained, never skipped (skipping a mov would resume with its register unloaded).
int stray_loads_from_an_armed_poll_page_are_chained_not_skipped() {
  FreshProcessChecks checks;
  start_from_default_dispositions();
  install_program_handler(program_handler_that_recovers, 0, nullptr);
  set_up_or_abandon(checks, slow_path_disarming_global_page);
  t_runs_goroutine = true;
  const volatile uint8_t* page = global_poll_page();
  for (int round = 1; round <= 2; ++round) {
    if (!arm_global_poll_page().ok()) checks.abandon("arm_global_poll_page");
    volatile uint64_t loaded = 0x5a5a;
    if (sigsetjmp(g_recover, 1) == 0) {
      uint64_t destination = 0x5a5a;
      if (round == 1) {
        __asm__ volatile("movzbq (%1), %0" : "+r"(destination) : "r"(page) : "memory");
      } else {
        __asm__ volatile("cmpb $0, (%0)" : : "r"(page) : "cc", "memory");
        destination = 1;
      }
      loaded = destination;
      checks.expect(false, "round %d: the stray load was skipped (destination %lu)", round,
                    static_cast<unsigned long>(loaded));
    }
    checks.expect(g_program_handler_calls.load() == round,
                  "round %d: the earlier handler ran %d times", round,
                  g_program_handler_calls.load());
    if (!disarm_global_poll_page().ok()) checks.abandon("disarm_global_poll_page");
  }
  checks.expect(g_slow_path_calls.load() == 0, "%lu slow-path calls for stray loads",
                static_cast<unsigned long>(g_slow_path_calls.load()));
  return checks.failures();
}

TEST(FaultHandler, StrayMovAndCmpLoadsFromAnArmedPollPageAreChainedNotSkipped) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(
      stray_loads_from_an_armed_poll_page_are_chained_not_skipped());
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
        usgc_test::store_through_null(1);
        std::_Exit(0);
      },
      testing::ExitedWithCode(42), "");
}

// A program that saved usgc's action and puts it back after usgc uninstalled: installing again
// must keep chaining to the handler from before usgc, not to usgc's own.
TEST_F(FaultHandlerDeathTest, ReinstallOverOwnRestoredActionKeepsTheEarlierHandler) {
  EXPECT_EXIT(
      {
        start_from_default_dispositions();
        struct sigaction action {};
        action.sa_handler = program_plain_handler_that_exits;
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, nullptr);
        install_for_death_test();
        struct sigaction usgc_action {};
        sigaction(SIGSEGV, nullptr, &usgc_action);
        uninstall_fault_handler();
        sigaction(SIGSEGV, &usgc_action, nullptr);
        install_for_death_test();
        usgc_test::store_through_null(1);
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
          usgc_test::store_through_null(1);
          std::_Exit(3);
        }
        if (g_program_handler_calls.load() != 1) std::_Exit(4);
        usgc_test::store_through_null(2);  // now the default action
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
        usgc_test::store_through_null(1);
        std::_Exit(0);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

// ---- (c) stack overflow -------------------------------------------------------------------------

constexpr size_t kGoroutineStackBytes =
    2 * 1024 * 1024;  // ThreadSanitizer wants ~1 MiB for a thread

// A "goroutine stack": a guard page, then the stack.
void* map_goroutine_stack() {
  const size_t page = kernel::os_page_size();
  kernel::Result<void*> mapped = kernel::map_aligned(page + kGoroutineStackBytes, page);
  if (!mapped.ok() || !kernel::protect(mapped.value(), page, kernel::Access::kNone).ok())
    std::abort();
  g_guard_page.store(reinterpret_cast<uintptr_t>(mapped.value()));
  return static_cast<char*>(mapped.value()) + page;
}

volatile bool g_keep_recursing =
    true;  // never cleared; keeps the compiler from seeing an endless loop

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
