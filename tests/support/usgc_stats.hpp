// tests/support/usgc_stats.hpp — the process's allocator statistics, for tests linked with usgc.
#pragma once

#include <gtest/gtest.h>

#include "usgc/usgc.h"

namespace usgc_test {

inline usgc_malloc_stats read_stats() {
  usgc_malloc_stats stats{};
  stats.version = USGC_MALLOC_STATS_VERSION;
  EXPECT_EQ(usgc_malloc_get_stats(&stats), 0);
  return stats;
}

}  // namespace usgc_test
