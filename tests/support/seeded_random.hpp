// tests/support/seeded_random.hpp — the seeds and random numbers of the time-bounded stress
// tests: a run's seed comes from USGC_TEST_SEED (to repeat a failure) or the clock, and every
// failure message carries seed_note(seed).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace usgc::testing {

inline uint64_t test_seed() {
  if (const char* text = std::getenv("USGC_TEST_SEED"); text != nullptr && *text != '\0')
    return std::strtoull(text, nullptr, 0);
  return static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

inline std::string seed_note(uint64_t seed) {
  return "seed=" + std::to_string(seed) + " (repeat with USGC_TEST_SEED=" + std::to_string(seed) +
         ")";
}

// splitmix64: small, fast, and good enough for choosing test actions.
struct Random {
  uint64_t state;
  explicit Random(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t bound) { return next() % bound; }
  uint64_t between(uint64_t low, uint64_t high) { return low + below(high - low + 1); }
};

}  // namespace usgc::testing
