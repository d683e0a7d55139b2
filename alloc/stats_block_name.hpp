// alloc/stats_block_name.hpp — the name of a statistics block file: "usgc-<uid>-<pid>" in
// /dev/shm (include/usgc/stats_block.h). Shared by the writer (stats_export) and the reader
// (stats_reader) so the two can never disagree. Allocation-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "usgc/stats_block.h"

namespace usgc::alloc {

inline constexpr size_t kStatsBlockNameBytes = 48;

namespace stats_block_name_detail {
inline size_t append_decimal(char* out, uint64_t value) {
  char digits[24];
  size_t count = 0;
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (size_t i = 0; i < count; ++i) out[i] = digits[count - 1 - i];
  return count;
}
}  // namespace stats_block_name_detail

// "usgc-<uid>-" into buffer (kStatsBlockNameBytes); the length.
inline size_t format_stats_block_prefix(char* buffer, uint32_t uid) {
  size_t length = sizeof(USGC_STATS_BLOCK_NAME_PREFIX) - 1;
  std::memcpy(buffer, USGC_STATS_BLOCK_NAME_PREFIX, length);
  length += stats_block_name_detail::append_decimal(buffer + length, uid);
  buffer[length++] = '-';
  buffer[length] = '\0';
  return length;
}

// "usgc-<uid>-<pid>" into buffer (kStatsBlockNameBytes); the length.
inline size_t format_stats_block_name(char* buffer, uint32_t uid, int pid) {
  size_t length = format_stats_block_prefix(buffer, uid);
  length += stats_block_name_detail::append_decimal(buffer + length, static_cast<uint32_t>(pid));
  buffer[length] = '\0';
  return length;
}

// The pid of a name "usgc-<uid>-<pid>" of this uid (digits only, no leading zero, > 0);
// -1 for any other name.
inline int parse_stats_block_pid(const char* name, uint32_t uid) {
  char prefix[kStatsBlockNameBytes];
  size_t prefix_length = format_stats_block_prefix(prefix, uid);
  if (std::strncmp(name, prefix, prefix_length) != 0) return -1;
  const char* digits = name + prefix_length;
  if (*digits < '1' || *digits > '9') return -1;
  uint64_t pid = 0;
  for (const char* p = digits; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return -1;
    pid = pid * 10 + static_cast<uint64_t>(*p - '0');
    if (pid > 0x7fffffff) return -1;
  }
  return static_cast<int>(pid);
}

}  // namespace usgc::alloc
