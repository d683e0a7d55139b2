// kernel_iface/fatal.hpp — usgc's two tiers of checks and its allocation-free error output.
//
//   USGC_CHECK(cond, fmt, ...)   always on: API misuse and heap corruption. Prints one line,
//                                 "usgc: <message>", and aborts (SIGABRT, core dump).
//   USGC_ASSERT(cond, fmt, ...)  debug builds only (USGC_DEBUG): internal invariants, stated in
//                                 words ("private-heap invariant: ...").
//
// Invariant: the failure path never allocates, takes no lock and uses only write(2) and
// abort(), so it is safe inside malloc, before constructors run, and in a signal handler
// (mimalloc's reason for its own printf). The formatter understands %s %d %u %ld %lu %zu %x
// %lx %p %c and %%; nothing else.
#pragma once

#include <cstdarg>
#include <cstddef>

namespace usgc::kernel {

// Formats into buffer (always NUL-terminated, truncated to fit); returns the length written.
size_t format_message(char* buffer, size_t buffer_size, const char* format, va_list args);

// Writes "usgc: <formatted message>\n" to stderr in one write(2). Never allocates.
void print_message(const char* format, ...) __attribute__((format(printf, 1, 2)));

// Prints like print_message, then aborts the process (SIGABRT, so a core is dumped).
[[noreturn, gnu::cold]] void fatal(const char* format, ...) __attribute__((format(printf, 1, 2)));

// A reporter fatal() hands its formatted message (without "usgc: ") to before printing it; one
// that can say more does not return (the WebAssembly runtime: it adds the source position of the
// lowered operation being served and stops the run through its host); one that returns lets
// fatal() print and abort as usual. The same rules as fatal(): no allocation, no lock. Set once,
// before anything can fail (relaxed atomic pointer: read only on the failure path); nullptr:
// none (the native default).
using FatalReporter = void (*)(const char* message);
void set_fatal_reporter(FatalReporter reporter);

}  // namespace usgc::kernel

#define USGC_CHECK(condition, ...)           \
  do {                                       \
    if (__builtin_expect(!(condition), 0)) { \
      ::usgc::kernel::fatal(__VA_ARGS__);    \
    }                                        \
  } while (0)

#if defined(USGC_DEBUG) && USGC_DEBUG
#define USGC_ASSERT(condition, ...) USGC_CHECK(condition, __VA_ARGS__)
#else
#define USGC_ASSERT(condition, ...) \
  do {                              \
    (void)sizeof(!(condition));     \
  } while (0)
#endif
