// bench/bench_support.hpp — what the benchmark programs share: the clock, a busy wait, a pacing
// jitter, medians and percentiles over repetitions, and splitting a "--cases" word list.
// Header-only: every bench/*.cpp is its own program.
#pragma once

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace usgc::bench {

inline uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// Nearest-rank percentile of sorted values (q in [0, 1]).
template <class T>
T percentile(const std::vector<T>& sorted, double q) {
  if (sorted.empty()) return T{};
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  if (rank < 1) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

// Busy-waits (pause) for ns nanoseconds of the monotonic clock.
inline void busy_wait_ns(uint64_t ns) {
  uint64_t until = now_ns() + ns;
  while (now_ns() < until) __builtin_ia32_pause();
}

// One step of a xorshift32 generator (jitter for pacing; not for statistics).
inline uint32_t xorshift32(uint32_t* state) {
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return *state;
}

inline std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

// True when `word` is one of the space-separated words of `list` (the --cases options).
inline bool has_word(const std::string& list, const char* word) {
  for (const std::string& w : words(list))
    if (w == word) return true;
  return false;
}

}  // namespace usgc::bench
