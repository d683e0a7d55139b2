// tests/alloc/huge_chunks_test.cpp — huge mappings give back and take 4 MiB chunks
// (alloc/huge_chunks.cpp), from the public API, checked in bytes, segment counts, resident OS
// pages (mincore) and the process's mapping count, never in time.
//
// What it proves:
//   - a huge object shrunk by whole chunks keeps its pointer and bytes, and its trailing chunk
//     becomes a segment of its own (in the segment map; nothing is mapped for it);
//   - a huge object made after that takes the given-back chunk's resident pages (they are
//     resident before the object is written: they were moved, not faulted in);
//   - a huge object grown beyond its mapping keeps every byte, and its new chunk is resident
//     memory from the cache;
//   - a realloc chain from 100 KiB to 12 MiB and back, with neighbours in between, keeps every
//     word at every step (span to span, span to huge, huge grown, huge shrunk);
//   - the free pages past a live huge object (after a shrink) go back to the OS after the decay,
//     and at once on malloc_trim; resized and freed objects take their tails out of the decay
//     first, so no purge zeroes live bytes;
//   - 20 000 rounds of growing, shrinking and freeing large and huge objects leave the process's
//     mapping count (/proc/self/maps lines) within a fixed bound: chunks moved between mappings
//     never split them into more and more VMAs (vm.max_map_count is 65530).
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "alloc/segment.hpp"
#include "tests/support/usgc_stats.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::alloc::Segment;
using usgc::alloc::segment_map_is_segment;
using usgc_test::read_stats;

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;
constexpr size_t kChunk = 4 * kMiB;
constexpr size_t kHeader = 16 * kKiB;  // a segment's header, before a huge object

size_t os_page_bytes() {
  return static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// Resident OS pages of [start, start + bytes), both rounded inwards to OS pages.
size_t resident_pages(const void* start, size_t bytes) {
  uintptr_t page = os_page_bytes();
  uintptr_t first = (reinterpret_cast<uintptr_t>(start) + page - 1) & ~(page - 1);
  uintptr_t last = (reinterpret_cast<uintptr_t>(start) + bytes) & ~(page - 1);
  if (last <= first) return 0;
  std::vector<unsigned char> vector((last - first) / page);
  EXPECT_EQ(::mincore(reinterpret_cast<void*>(first), last - first, vector.data()), 0);
  size_t resident = 0;
  for (unsigned char v : vector) resident += v & 1;
  return resident;
}

size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  size_t lines = 0;
  for (std::string line; std::getline(maps, line);) ++lines;
  return lines;
}

uint32_t word_at(uint64_t id, size_t index) {
  return static_cast<uint32_t>(id * 2654435761u) ^ static_cast<uint32_t>(index * 40503u);
}

// Writes words [from, to) of the object (`stride`: the multiples of stride, and the last one).
void fill_words(void* object, size_t from, size_t to, uint64_t id, size_t stride = 1) {
  auto* words = static_cast<uint32_t*>(object);
  for (size_t i = (from + stride - 1) / stride * stride; i < to; i += stride)
    words[i] = word_at(id, i);
  if (to > from) words[to - 1] = word_at(id, to - 1);
}

// The index of the first of words [0, count) that differs (stride as above), or count.
size_t first_wrong_word(const void* object, size_t count, uint64_t id, size_t stride = 1) {
  const auto* words = static_cast<const uint32_t*>(object);
  for (size_t i = 0; i < count; i += stride)
    if (words[i] != word_at(id, i)) return i;
  if (count != 0 && words[count - 1] != word_at(id, count - 1)) return count - 1;
  return count;
}

TEST(HugeChunks, AHugeObjectShrunkByWholeChunksGivesThemBackAsSegments) {
  usgc_malloc_trim(0);
  constexpr size_t kBig = 7 * kMiB;  // an 8 MiB mapping: two chunks
  constexpr size_t kSmall = 3 * kMiB;
  void* object = usgc_malloc(kBig);
  ASSERT_NE(object, nullptr);
  fill_words(object, 0, kBig / 4, 1);
  auto* second_chunk =
      reinterpret_cast<const Segment*>(static_cast<unsigned char*>(object) - kHeader + kChunk);
  ASSERT_FALSE(segment_map_is_segment(second_chunk)) << "a continuation of the huge mapping";
  usgc_malloc_stats before = read_stats();
  void* shrunk = usgc_realloc(object, kSmall);
  usgc_malloc_stats after = read_stats();
  ASSERT_EQ(shrunk, object) << "a huge object shrinks in place";
  EXPECT_EQ(first_wrong_word(shrunk, kSmall / 4, 1), kSmall / 4);
  EXPECT_TRUE(segment_map_is_segment(second_chunk)) << "the second chunk became a segment";
  // Nothing was mapped (a purged cached segment may have made room for it: unmapped).
  EXPECT_LE(after.bytes_reserved, before.bytes_reserved);
  usgc_free(shrunk);
}

TEST(HugeChunks, AHugeObjectTakesTheResidentPagesOfAChunkGivenBack) {
  usgc_malloc_trim(0);  // the caches hold nothing resident now
  constexpr size_t kBig = 7 * kMiB;
  void* object = usgc_malloc(kBig);
  ASSERT_NE(object, nullptr);
  fill_words(object, 0, kBig / 4, 2);  // the second chunk's first 3 MiB become resident
  void* shrunk = usgc_realloc(object, 3 * kMiB);
  ASSERT_EQ(shrunk, object);
  // A new huge object of two chunks: its first chunk is the one given back (the only resident
  // cached one), so its bytes are resident before anything writes them.
  constexpr size_t kNext = 5 * kMiB;
  void* next = usgc_malloc(kNext);
  ASSERT_NE(next, nullptr);
  size_t resident = resident_pages(next, 2 * kMiB);
  EXPECT_GE(resident, 2 * kMiB / os_page_bytes() - 1)
      << "the new object's first chunk was faulted in, not moved from the cache";
  fill_words(next, 0, kNext / 4, 3);
  EXPECT_EQ(first_wrong_word(shrunk, 3 * kMiB / 4, 2), 3 * kMiB / 4);
  EXPECT_EQ(first_wrong_word(next, kNext / 4, 3), kNext / 4);
  usgc_free(next);
  usgc_free(shrunk);
}

TEST(HugeChunks, AHugeObjectGrownBeyondItsMappingKeepsItsBytesAndTakesResidentChunks) {
  usgc_malloc_trim(0);
  // A chunk given back (resident), as above.
  void* donor = usgc_malloc(7 * kMiB);
  ASSERT_NE(donor, nullptr);
  fill_words(donor, 0, 7 * kMiB / 4, 4);
  ASSERT_EQ(usgc_realloc(donor, 3 * kMiB), donor);
  constexpr size_t kFrom = 5 * kMiB;     // an 8 MiB mapping
  constexpr size_t kTo = 11 * kMiB;      // 12 MiB: one chunk more
  void* object = usgc_calloc(1, kFrom);  // calloc: a fresh mapping, the donor stays cached
  ASSERT_NE(object, nullptr);
  fill_words(object, 0, kFrom / 4, 5);
  void* grown = usgc_realloc(object, kTo);
  ASSERT_NE(grown, nullptr);
  EXPECT_EQ(first_wrong_word(grown, kFrom / 4, 5), kFrom / 4);
  // Its third chunk (from 8 MiB of the mapping on) came from the cache: resident, unwritten.
  auto* third_chunk = static_cast<unsigned char*>(grown) - kHeader + 2 * kChunk;
  EXPECT_GE(resident_pages(third_chunk + kHeader, 2 * kMiB), 2 * kMiB / os_page_bytes() - 1);
  fill_words(grown, kFrom / 4, kTo / 4, 5);
  EXPECT_EQ(first_wrong_word(grown, kTo / 4, 5), kTo / 4);
  usgc_free(grown);
  usgc_free(donor);
}

TEST(HugeChunks, AGrowingAndShrinkingObjectKeepsEveryWord) {
  std::vector<void*> neighbours;
  void* object = usgc_malloc(100 * kKiB);
  ASSERT_NE(object, nullptr);
  size_t words = 100 * kKiB / 4;
  fill_words(object, 0, words, 6);
  auto step = [&](size_t new_words) {
    object = usgc_realloc(object, new_words * 4);
    ASSERT_NE(object, nullptr) << new_words * 4;
    size_t kept = new_words < words ? new_words : words;
    ASSERT_EQ(first_wrong_word(object, kept, 6), kept) << "after realloc to " << new_words * 4;
    fill_words(object, kept, new_words, 6);
    words = new_words;
    neighbours.push_back(usgc_malloc(64 * kKiB + neighbours.size() * 4 * kKiB));
  };
  while (words * 4 < 12 * kMiB) step(words + words / 2);
  step(words / 2);
  step(words / 3);
  while (words * 4 < 9 * kMiB) step(words + words / 2);
  step(words / 8);
  usgc_free(object);
  for (void* p : neighbours) usgc_free(p);
}

// A huge object of 7 MiB (an 8 MiB mapping), written whole, then shrunk to 5 MiB in place: the
// 3 MiB past it are free, resident pages nobody else can use. Returns the object.
void* shrunk_huge_object(uint64_t id) {
  void* object = usgc_malloc(7 * kMiB);
  EXPECT_NE(object, nullptr);
  if (object == nullptr) return nullptr;
  fill_words(object, 0, 7 * kMiB / 4, id);
  void* shrunk = usgc_realloc(object, 5 * kMiB);
  EXPECT_EQ(shrunk, object) << "a huge object shrinks in place";
  return shrunk;
}

// The pages past the shrunk object, to the end of its mapping (less the header's 16 KiB).
const unsigned char* tail_of(void* object) {
  return static_cast<unsigned char*>(object) + 5 * kMiB;
}
constexpr size_t kTailBytes = 3 * kMiB - kHeader;

// Refills of small classes: the slow path that looks at the decay's deadlines.
void make_refills() {
  std::vector<void*> blocks;
  for (int i = 0; i < 4000; ++i) blocks.push_back(usgc_malloc(512 + (i % 7) * 512));
  for (void* block : blocks) usgc_free(block);
}

TEST(HugeChunks, ThePagesPastAShrunkHugeObjectGoBackAfterTheDecay) {
  usgc_malloc_trim(0);
  void* object = shrunk_huge_object(7);
  ASSERT_NE(object, nullptr);
  ASSERT_GE(resident_pages(tail_of(object), kTailBytes), kTailBytes / os_page_bytes() / 2)
      << "the written tail is resident after the shrink";
  // The decay (USGC_DECAY_MS, 250 ms by default) is honoured by a later refill; a generous
  // deadline. Before the tail decay the pages stayed resident until the object was freed.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  size_t resident = resident_pages(tail_of(object), kTailBytes);
  while (resident != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    make_refills();
    resident = resident_pages(tail_of(object), kTailBytes);
  }
  EXPECT_EQ(resident, 0u) << "OS pages past the live object still resident after the decay";
  EXPECT_EQ(first_wrong_word(object, 5 * kMiB / 4, 7), 5 * kMiB / 4);
  // Growing back into the returned pages (in place: they read as zero) keeps every word.
  void* grown = usgc_realloc(object, 7 * kMiB);
  ASSERT_EQ(grown, object);
  fill_words(grown, 5 * kMiB / 4, 7 * kMiB / 4, 7);
  EXPECT_EQ(first_wrong_word(grown, 7 * kMiB / 4, 7), 7 * kMiB / 4);
  usgc_free(grown);
}

TEST(HugeChunks, MallocTrimReturnsThePagesPastALiveHugeObjectAtOnce) {
  usgc_malloc_trim(0);
  void* object = shrunk_huge_object(8);
  ASSERT_NE(object, nullptr);
  ASSERT_GE(resident_pages(tail_of(object), kTailBytes), kTailBytes / os_page_bytes() / 2);
  EXPECT_EQ(usgc_malloc_trim(0), 1) << "trim found nothing to return";
  EXPECT_EQ(resident_pages(tail_of(object), kTailBytes), 0u)
      << "malloc_trim left the pages past a live huge object resident";
  EXPECT_EQ(first_wrong_word(object, 5 * kMiB / 4, 8), 5 * kMiB / 4);
  // A second trim has no tail left to return, and the object is intact.
  usgc_free(object);
}

TEST(HugeChunks, AResizedOrFreedHugeObjectTakesItsTailOutOfTheDecay) {
  // Objects resized and freed while their tails wait for the decay: the purge must never return
  // pages the object grew back into, nor pages of a segment that moved or went to the cache.
  std::vector<void*> objects;
  for (uint64_t id = 20; id < 60; ++id) {
    void* object = shrunk_huge_object(id);
    ASSERT_NE(object, nullptr);
    objects.push_back(object);
  }
  for (size_t i = 0; i < objects.size(); ++i) {
    uint64_t id = 20 + i;
    if (i % 4 == 3) {
      // A small shrink, then a small growth within the rounding: the entry is kept as it is
      // (nothing past it changed hands); its purge must still spare every word of the object.
      void* before = objects[i];
      objects[i] = usgc_realloc(objects[i], 5 * kMiB - 8 * kKiB);
      ASSERT_EQ(objects[i], before) << "a huge object shrinks in place";
      objects[i] = usgc_realloc(objects[i], 5 * kMiB - 8 * kKiB + 100);
      ASSERT_EQ(objects[i], before) << "and grows back in place";
      fill_words(objects[i], (5 * kMiB - 8 * kKiB) / 4, (5 * kMiB - 8 * kKiB + 100) / 4, id);
    } else if (i % 3 == 0) {
      // Grown back in place, written at once: a purge landing now would zero these words.
      objects[i] = usgc_realloc(objects[i], 7 * kMiB);
      ASSERT_NE(objects[i], nullptr);
      fill_words(objects[i], 5 * kMiB / 4, 7 * kMiB / 4, id);
    } else if (i % 3 == 1) {
      objects[i] = usgc_realloc(objects[i], 9 * kMiB);  // beyond the mapping: it moves
      ASSERT_NE(objects[i], nullptr);
      fill_words(objects[i], 5 * kMiB / 4, 9 * kMiB / 4, id);
    } else {
      usgc_free(objects[i]);
      objects[i] = nullptr;
    }
  }
  usgc_malloc_trim(0);  // every tail still waiting goes now
  for (size_t i = 0; i < objects.size(); ++i) {
    if (objects[i] == nullptr) continue;
    size_t words = i % 4 == 3 ? (5 * kMiB - 8 * kKiB + 100) / 4 : (i % 3 == 0 ? 7 : 9) * kMiB / 4;
    EXPECT_EQ(first_wrong_word(objects[i], words, 20 + i), words) << "object " << i;
    usgc_free(objects[i]);
  }
}

TEST(HugeChunks, TheMappingCountStaysBoundedOverALongGrowShrinkAndFreeLoop) {
  constexpr int kRounds = 20000;
  constexpr size_t kSlots = 8;
  constexpr size_t kStride = 1024;  // words between checked words: one per 4 KiB page
  std::mt19937_64 random(20261206);
  struct Slot {
    void* object = nullptr;
    size_t words = 0;
    uint64_t id = 0;
  };
  std::vector<Slot> slots(kSlots);
  size_t baseline = 0;
  size_t highest = 0;
  for (int round = 0; round < kRounds; ++round) {
    Slot& slot = slots[random() % kSlots];
    if (slot.object != nullptr) {
      ASSERT_EQ(first_wrong_word(slot.object, slot.words, slot.id, kStride), slot.words)
          << "round " << round;
      usgc_free(slot.object);
    }
    // Mostly large objects, one in eight growing into a huge one (up to 12 MiB); half shrink.
    size_t target = (random() % 8 == 0 ? 12 * kMiB : 2 * kMiB) * (random() % 1000 + 1) / 1000;
    slot.id = static_cast<uint64_t>(round);
    slot.words = 160 * kKiB / 4;
    slot.object = usgc_malloc(slot.words * 4);
    ASSERT_NE(slot.object, nullptr);
    fill_words(slot.object, 0, slot.words, slot.id, kStride);
    while ((slot.words + slot.words / 2) * 4 <= target) {
      size_t grown = slot.words + slot.words / 2;
      slot.object = usgc_realloc(slot.object, grown * 4);
      ASSERT_NE(slot.object, nullptr);
      fill_words(slot.object, slot.words, grown, slot.id, kStride);
      slot.words = grown;
    }
    if (random() % 2 == 0) {
      slot.words /= 2;
      slot.object = usgc_realloc(slot.object, slot.words * 4);
      ASSERT_NE(slot.object, nullptr);
      fill_words(slot.object, slot.words - 1, slot.words, slot.id, kStride);  // the new last word
    }
    if (round == 500) baseline = mapping_count();  // caches and arenas warmed up
    if (round > 500 && round % 500 == 0) {
      size_t now = mapping_count();
      if (now > highest) highest = now;
    }
  }
  for (Slot& slot : slots) usgc_free(slot.object);
  // Live objects (8, at most 3 chunks each), the segment cache (16 chunks) and the huge cache
  // (8 mappings) bound the chunks in use; each chunk is at most one mapping. A count that grew
  // with the rounds would pass this bound long before 20 000.
  EXPECT_LE(highest, baseline + 64) << "mappings at round 500: " << baseline;
}

}  // namespace
