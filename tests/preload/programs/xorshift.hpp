// xorshift.hpp — the seeded generator every workload program uses, so a program's sizes and
// contents (and so its printed checksum) depend only on its arguments, never on the allocator.
#pragma once

#include <cstdint>

struct Xorshift64 {
  std::uint64_t state;
  explicit Xorshift64(std::uint64_t seed)
      : state(seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull) {
    if (state == 0) state = 1;
  }
  std::uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
};
