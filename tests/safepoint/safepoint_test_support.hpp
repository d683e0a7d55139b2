// tests/safepoint/safepoint_test_support.hpp — helpers the safepoint tests share.
//
// Fresh processes: arming a poll page or installing the fault handler changes process-wide state
// that other suites in the same binary (the runtime's) also own. Tests that do either run their
// body in a freshly exec'd copy of the binary (GoogleTest's "threadsafe" death-test style), where
// GoogleTest's own EXPECTs would go unreported: the body reports through FreshProcessChecks
// (one "FAILED: ..." line on stderr each) and its exit status.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "tests/support/death_test_support.hpp"

namespace usgc_test {

class FreshProcessChecks {
 public:
  // Records a failure (and prints it) unless `condition` holds; returns condition.
  bool expect(bool condition, const char* format, ...) __attribute__((format(printf, 3, 4))) {
    if (condition) return true;
    ++failures_;
    va_list args;
    va_start(args, format);
    std::fprintf(stderr, "FAILED: ");
    std::vfprintf(stderr, format, args);
    std::fprintf(stderr, "\n");
    va_end(args);
    return false;
  }
  // Prints the failure and ends the process at once (for a state the rest cannot run from).
  [[noreturn]] void abandon(const char* what) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    std::fflush(stderr);
    std::_Exit(1);
  }
  int failures() const { return failures_; }

 private:
  int failures_ = 0;
};

// Runs `body` (an expression yielding the number of failures) in a fresh process; the test
// passes when it yields 0. The child's stderr is shown when it does not.
#define USGC_EXPECT_PASSES_IN_FRESH_PROCESS(body)                  \
  do {                                                             \
    ::usgc_test::ThreadsafeDeathTests usgc_threadsafe_death_tests; \
    EXPECT_EXIT(                                                   \
        {                                                          \
          const int usgc_failures = (body);                        \
          std::fflush(nullptr);                                    \
          std::_Exit(usgc_failures == 0 ? 0 : 1);                  \
        },                                                         \
        ::testing::ExitedWithCode(0), "");                         \
  } while (0)

// True when one byte at `address` can be read, found without a fault: write(2) from an
// unreadable address fails with EFAULT instead of raising SIGSEGV.
inline bool readable_without_fault(const volatile void* address) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  const ssize_t written = write(fds[1], const_cast<const void*>(address), 1);
  close(fds[0]);
  close(fds[1]);
  return written == 1;
}

// For children expected to die by a signal: no core file litters the working directory.
inline void no_core_dumps() {
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);
}

// The poll of usgc_safepoint_poll, on a page pointer given directly (the tests have no
// usgc_current_poll, which the runtime owns; these tests run without it).
inline void poll(const volatile uint8_t* page) {
  __asm__ volatile("testb $0, (%0)" : : "r"(page) : "cc", "memory");
}

}  // namespace usgc_test
