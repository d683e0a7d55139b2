// safepoint/fork_child.cpp — marking a fork() child of a process whose runtime is up, and the
// refusals (fork_child.hpp has the design and the invariants).
#include "safepoint/fork_child.hpp"

#include <pthread.h>

#include <cerrno>

#include "kernel_iface/fatal.hpp"
#include "safepoint/stop_state.hpp"

namespace usgc::safepoint {

std::atomic<bool> g_in_fork_child{false};

namespace {

std::atomic<bool> g_watching{false};
bool g_refusal_printed = false;  // the child's single thread only

// The atfork child handler: the only thread of the new process, before fork() returns in it.
void on_fork_child() {
  if (!g_state.initialized) return;  // the runtime was down: nothing of it was running
  g_in_fork_child.store(true, std::memory_order_relaxed);
  // The forking thread's poll reads a page that is never armed again here (an arming at fork()
  // time would otherwise fault at its next poll and wait for a resume nobody sends).
  reset_mirror(&usgc_current_poll);
}

}  // namespace

void watch_for_fork() {
  if (g_watching.exchange(true, std::memory_order_relaxed)) return;
  if (::pthread_atfork(nullptr, nullptr, on_fork_child) != 0)
    kernel::print_message(
        "pthread_atfork failed: a fork() child that calls usgc may wait forever for threads it "
        "does not have");
}

const char* fork_child_reason() {
  return "usgc's heap and goroutines stay with the process that started them (fork() copied only "
         "the calling thread); the child may use malloc, exec and _exit";
}

int refuse_in_fork_child(const char* operation) {
  if (!g_refusal_printed) {
    g_refusal_printed = true;
    kernel::print_message("%s in a fork() child: %s", operation, fork_child_reason());
  }
  errno = ENOTRECOVERABLE;
  return ENOTRECOVERABLE;
}

}  // namespace usgc::safepoint
