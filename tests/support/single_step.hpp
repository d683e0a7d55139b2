// tests/support/single_step.hpp — exact instruction counts of a code region on any machine (no
// perf counters): a traced child runs the region between two int3 breakpoints and the parent
// single-steps it with ptrace, one instruction per step. Used by the fast-path budget tests of
// several layers.
//
// Protocol: the child calls ptrace(PTRACE_TRACEME) and raise(SIGSTOP), then runs its regions;
// each region is `int3; <code>; int3`. The parent: start_traced_child(), then per region
// wait_for_breakpoint() + count_to_next_breakpoint(), then finish_traced_child().
#pragma once

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace usgc::testing {

// Single-steps from the current int3 stop to the next int3; returns the instructions between,
// or -1 on a ptrace failure. A stop for another signal (the child's runtime may send its
// asynchronous safepoint signal, SIGURG, to a thread that looks stuck while it is being traced)
// is not an instruction: it is not counted, and the signal is suppressed (the runtime re-sends).
inline long count_to_next_breakpoint(pid_t child) {
  long steps = 0;
  for (;;) {
    if (ptrace(PTRACE_SINGLESTEP, child, nullptr, nullptr) != 0) return -1;
    int status;
    if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) return -1;
    if (WSTOPSIG(status) != SIGTRAP) continue;
    siginfo_t info;
    if (ptrace(PTRACE_GETSIGINFO, child, nullptr, &info) != 0) return -1;
    if (info.si_code == SI_KERNEL) return steps;  // the closing int3 executed
    ++steps;
  }
}

// Lets the child run to its next int3 (suppressing other signals' stops, as above).
inline bool wait_for_breakpoint(pid_t child) {
  for (;;) {
    if (ptrace(PTRACE_CONT, child, nullptr, nullptr) != 0) return false;
    int status;
    if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) return false;
    if (WSTOPSIG(status) == SIGTRAP) return true;
  }
}

// Forks a child running child_main (which must start with PTRACE_TRACEME + raise(SIGSTOP)) and
// waits for its first stop. -1 with *why set when it cannot be traced here.
inline pid_t start_traced_child(void (*child_main)(), std::string* why) {
  pid_t child = fork();
  if (child == 0) {
    child_main();
    _exit(0);
  }
  int status;
  if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) {
    *why = WIFEXITED(status) && WEXITSTATUS(status) != 3
               ? "the child exited with status " + std::to_string(WEXITSTATUS(status)) +
                     " before its first stop"
               : std::string(
                     "the child could not be traced (ptrace(PTRACE_TRACEME) refused: "
                     "yama ptrace_scope or seccomp)");
    if (WIFSTOPPED(status)) kill(child, SIGKILL);
    waitpid(child, &status, 0);
    return -1;
  }
  return child;
}

inline void finish_traced_child(pid_t child) {
  int status;
  ptrace(PTRACE_CONT, child, nullptr, nullptr);
  waitpid(child, &status, 0);
}

}  // namespace usgc::testing
