// tests/support/memory_patterns.hpp — byte patterns to fill blocks with and check later, so a
// test notices any byte an allocator lost or overwrote (header-only: also used by the preload
// tests, which link nothing of usgc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace usgc_test {

inline bool is_aligned(const void* pointer, size_t alignment) {
  return reinterpret_cast<uintptr_t>(pointer) % alignment == 0;
}

inline uint8_t pattern_byte(uint64_t tag, size_t index) {
  return static_cast<uint8_t>((tag * 0x9E3779B97F4A7C15ull >> 56) ^ (index * 131) ^ (index >> 9));
}

inline void fill_pattern(void* pointer, size_t bytes, uint64_t tag) {
  auto* p = static_cast<uint8_t*>(pointer);
  for (size_t i = 0; i < bytes; ++i) p[i] = pattern_byte(tag, i);
}

// Index of the first byte that differs from the pattern, or `bytes` if all match.
inline size_t first_pattern_mismatch(const void* pointer, size_t bytes, uint64_t tag) {
  const auto* p = static_cast<const uint8_t*>(pointer);
  for (size_t i = 0; i < bytes; ++i) {
    if (p[i] != pattern_byte(tag, i)) return i;
  }
  return bytes;
}

inline bool all_zero(const void* pointer, size_t bytes) {
  const auto* p = static_cast<const uint8_t*>(pointer);
  for (size_t i = 0; i < bytes; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace usgc_test
