// tests/gc/gc_counters_test.cpp — the GC counters generated from one list (gc/gc_counters.hpp):
// every public usgc_gc_stats field is filled from its counter, a level that dipped below zero reads
// as 0, and the statistics block receives each counter where usgc-top expects it (the mapping
// written out by hand here, so a wrong `block` column fails).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gc/gc_counters.hpp"

namespace usgc::gc {
namespace {

// GcCounters holds nothing but counter words: numbers them 1, 2, 3, ... in declaration order.
void number_every_counter_word(GcCounters& counters) {
  static_assert(sizeof(GcCounters) % sizeof(std::atomic<uint64_t>) == 0);
  auto* words = reinterpret_cast<std::atomic<uint64_t>*>(&counters);
  for (size_t i = 0; i < sizeof(GcCounters) / sizeof(std::atomic<uint64_t>); ++i)
    words[i].store(i + 1, std::memory_order_relaxed);
}

TEST(GcCounters, EveryPublicStatsFieldIsFilledFromItsCounter) {
  GcCounters counters{};
  number_every_counter_word(counters);
  usgc_gc_stats stats;
  std::memset(&stats, 0, sizeof stats);
  export_counters(read_counters(counters), stats);
  // Every 8-byte word but the four that are not counters holds a counter's (non-zero) number.
  const size_t not_counters[] = {offsetof(usgc_gc_stats, version),
                                 offsetof(usgc_gc_stats, bytes_committed),
                                 offsetof(usgc_gc_stats, heap_limit_bytes)};
  for (size_t offset = 0; offset < sizeof stats; offset += sizeof(uint64_t)) {
    bool counter = true;
    for (size_t skipped : not_counters) counter = counter && offset != skipped;
    uint64_t word;
    std::memcpy(&word, reinterpret_cast<const char*>(&stats) + offset, sizeof word);
    if (counter) {
      EXPECT_NE(word, 0u) << "usgc_gc_stats word at offset " << offset << " left unfilled";
    } else {
      EXPECT_EQ(word, 0u) << "usgc_gc_stats word at offset " << offset << " is not a counter";
    }
  }
  EXPECT_EQ(stats.bytes_in_use[2], counters.bytes_in_use[2].load());
  EXPECT_EQ(stats.shared_pause_histogram[19], counters.shared_pause_histogram[19].load());
  EXPECT_EQ(stats.shared_minor_collections, counters.shared_minor_collections.load());
}

TEST(GcCounters, BytesInUseBelowZeroReadsAsZeroOtherCountersAsStored) {
  GcCounters counters{};
  counters.bytes_in_use[1].store(5);
  counters.bytes_in_use[1].fetch_sub(7);  // a free counted before its allocation
  counters.bytes_in_use[2].store(12345);
  counters.objects_allocated[1].store(uint64_t{1} << 63);  // a plain counter is never clamped
  GcCounterValues values = read_counters(counters);
  EXPECT_EQ(values.bytes_in_use[1], 0u);
  EXPECT_EQ(values.bytes_in_use[2], 12345u);
  EXPECT_EQ(values.objects_allocated[1], uint64_t{1} << 63);
}

TEST(GcCounters, StatisticsBlockGetsEachCounterInItsField) {
  GcCounters counters{};
  counters.private_collections.store(11);
  counters.shared_collections.store(12);
  counters.shared_minor_collections.store(13);
  counters.explicit_collections.store(14);
  counters.last_pause_ns.store(15);
  counters.shared_pause_max_ns.store(16);
  counters.private_pause_max_ns.store(17);
  counters.barrier_slow_paths.store(18);
  counters.publications.store(19);
  counters.objects_published.store(20);
  for (int i = 0; i < USGC_GC_HISTOGRAM_BUCKETS; ++i) {
    counters.shared_pause_histogram[i].store(100 + i);
    counters.private_pause_histogram[i].store(200 + i);
  }
  for (int c = 0; c < 4; ++c) counters.bytes_in_use[c].store(300 + c);
  // Published nowhere in the block:
  counters.objects_allocated[0].store(901);
  counters.private_pause_total_ns.store(902);
  counters.shared_pause_total_ns.store(903);
  counters.bytes_freed_private.store(904);
  counters.bytes_freed_shared.store(905);
  counters.heap_limit_failures.store(906);
  counters.private_minor_collections.store(907);
  counters.last_private_objects_marked.store(908);
  counters.last_shared_objects_marked.store(909);

  static usgc_stats_block block;  // large: not on the stack
  std::memset(&block, 0, sizeof block);
  publish_counters(read_counters(counters), block);
  EXPECT_EQ(block.collections[USGC_STATS_GC_PRIVATE], 11u);
  EXPECT_EQ(block.collections[USGC_STATS_GC_SHARED], 12u);
  EXPECT_EQ(block.collections[USGC_STATS_GC_SHARED_MINOR], 13u);
  EXPECT_EQ(block.collections[USGC_STATS_GC_EXPLICIT], 14u);
  EXPECT_EQ(block.last_pause_ns, 15u);
  EXPECT_EQ(block.max_pause_ns, 16u) << "the block's max pause is the worst shared (STW) pause";
  EXPECT_EQ(block.private_max_pause_ns, 17u);
  EXPECT_EQ(block.barrier_slow_paths, 18u);
  EXPECT_EQ(block.publications, 19u);
  EXPECT_EQ(block.objects_published, 20u);
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS && i < USGC_GC_HISTOGRAM_BUCKETS; ++i) {
    EXPECT_EQ(block.pause_histogram[i], static_cast<uint64_t>(100 + i)) << "bucket " << i;
    EXPECT_EQ(block.private_pause_histogram[i], static_cast<uint64_t>(200 + i)) << "bucket " << i;
  }
  for (int c = 0; c < 4; ++c) EXPECT_EQ(block.gc_bytes_in_use[c], static_cast<uint64_t>(300 + c));

  // Nothing else of the block was written: it sums to what the fields above hold.
  uint64_t expected_sum = 11 + 12 + 13 + 14 + 15 + 16 + 17 + 18 + 19 + 20;
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS && i < USGC_GC_HISTOGRAM_BUCKETS; ++i)
    expected_sum += 100 + i + 200 + i;
  for (int c = 0; c < 4; ++c) expected_sum += 300 + c;
  uint64_t sum = 0;
  for (size_t offset = 0; offset + sizeof(uint64_t) <= sizeof block; offset += sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, reinterpret_cast<const char*>(&block) + offset, sizeof word);
    sum += word;
  }
  EXPECT_EQ(sum, expected_sum);
}

}  // namespace
}  // namespace usgc::gc
