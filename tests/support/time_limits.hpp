// tests/support/time_limits.hpp — the limits that only turn a hang into a failure. No test asserts
// on a duration: these bound how long a test waits for something that must happen, so they grow
// where the whole program runs slower. Invariant: every such limit is scaled here, never tuned
// per test for a slow build.
#pragma once

#include <cstdint>

namespace usgc::testing {

// ThreadSanitizer runs the runtime 5-15 times slower (more on a loaded machine): the limits that
// only catch a hang (the watchdog's, `eventually`'s, a .usir run's) grow with it, so the
// sanitizer never trips them.
#if defined(__SANITIZE_THREAD__)
inline constexpr int kTimeLimitScale = 10;
#else
inline constexpr int kTimeLimitScale = 1;
#endif

// The wall-time limit of a .usir run in the tests (RunOptions::time_limit_ms).
inline constexpr uint32_t kRunTimeLimitMs = 60000 * kTimeLimitScale;

}  // namespace usgc::testing
