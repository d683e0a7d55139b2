// tests/support/child_process.hpp — waiting for a forked test child without hanging the suite.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

namespace usgc_test {

// Waits for `child`; returns its wait status, -1 if waitpid failed, or -2 if it was still
// running after a generous grace period: taken to be deadlocked (a lock held across fork),
// killed, so the test fails instead of hanging.
inline int wait_for_child(pid_t child) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(child, &status, WNOHANG);
    if (done == child) return status;
    if (done < 0) return -1;
    if (std::chrono::steady_clock::now() > give_up) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      return -2;
    }
    usleep(1000);
  }
}

}  // namespace usgc_test
