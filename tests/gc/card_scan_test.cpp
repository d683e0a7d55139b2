// tests/gc/card_scan_test.cpp — minor shared collections scan the card table in parallel, and
// full ones clear the mark bitmaps lazily (gc/parallel_mark.hpp, gc/block.hpp), with the heap
// verifier on:
//   - the card table is cut into units that the markers claim; every unit is claimed exactly once
//     per minor collection and every dirty card is found once: old shared objects whose only
//     reference to a young object sits on a card at a unit boundary (the first slot card of a
//     unit's first block, the last card of a unit's last block) or on a card its object does not
//     start on keep that young object alive, over many minor collections;
//   - a full collection leaves the blocks stale (nothing cleared in its stop); a block holding a
//     live shared object is current again after it, and its bits read as marked.
// A skipped unit frees a young object (its magic word reads zero, or the verifier aborts); a unit
// claimed twice, or two markers scanning one card, shows in the counts.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <utility>
#include <vector>

#include "gc/block.hpp"
#include "gc/object_header.hpp"
#include "gc/parallel_mark.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::testing::run_main;
namespace gc = usgc::gc;

struct Box {
  Box* ref;
  int64_t magic;
};

usgc_type_id box_type() {
  static usgc_type_id type = [] {
    size_t offsets[] = {offsetof(Box, ref)};
    usgc_type_info info = {"CardBox", USGC_KIND_OBJECT, sizeof(Box), offsets, 1};
    return usgc_register_type(&info);
  }();
  return type;
}

Box* new_box(int64_t magic) {
  auto* box = static_cast<Box*>(usgc_alloc(box_type(), USGC_GOROUTINE_SHARED));
  if (box == nullptr) std::abort();
  box->magic = magic;
  return box;
}

// The index of b's block within its chunk, or -1.
int block_index_in_chunk(const gc::Block* block) {
  auto address = reinterpret_cast<uintptr_t>(block);
  for (uint32_t c = 0; c < gc::chunk_count(); ++c) {
    auto chunk = reinterpret_cast<uintptr_t>(gc::chunk_at(c));
    if (address >= chunk && address < chunk + gc::kChunkBytes)
      return static_cast<int>((address - chunk) / gc::kBlockBytes);
  }
  return -1;
}

uint32_t card_of(const void* address) {
  const gc::Block* block = gc::block_of(address);
  return static_cast<uint32_t>(
      (static_cast<const char*>(address) - reinterpret_cast<const char*>(block)) / gc::kCardBytes);
}

// 4 Ps (markers: as many as the CPUs allow), verifier on.
class CardScanTest : public usgc::testing::VerifiedRuntimeTest {
 protected:
  uint32_t procs() const override { return 4; }
};

TEST_F(CardScanTest, EveryUnitAndEveryDirtyCardIsScannedOnceAcrossMinorCollections) {
  run_main([] {
    // About 3.5 units of 24-byte slots (a unit is 16 blocks: 1 MiB).
    constexpr uint64_t kOld = 150000;
    USGC_ROOTS(roots, 1);
    roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kOld, USGC_GOROUTINE_SHARED);
    ASSERT_NE(roots[0], nullptr);
    for (uint64_t i = 0; i < kOld; ++i) usgc_array_write(roots[0], i, new_box(-1));
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);  // every box old, every card clean

    // The boxes whose ref field lies on a boundary card of a unit, or on a card the box does
    // not start on (the scanner must find a slot that begins on the card before).
    std::vector<Box*> chosen;
    for (uint64_t i = 0; i < kOld; ++i) {
      auto* box = static_cast<Box*>(usgc_array_read(roots[0], i));
      gc::Block* block = gc::block_of(box);
      int index = block_index_in_chunk(block);
      ASSERT_GE(index, 0) << "a small object outside every chunk";
      uint32_t field_card = card_of(&box->ref);
      uint32_t first_slot_card = static_cast<uint32_t>(gc::kBlockHeaderBytes / gc::kCardBytes);
      bool unit_start = index % gc::kCardUnitBlocks == 0 && field_card == first_slot_card;
      bool unit_end = index % gc::kCardUnitBlocks == gc::kCardUnitBlocks - 1 &&
                      field_card == gc::kCardsPerBlock - 1;
      bool straddles = card_of(reinterpret_cast<char*>(box) - gc::kHeaderBytes) != field_card;
      if (unit_start || unit_end || (straddles && i % 7 == 0)) chosen.push_back(box);
    }
    ASSERT_GT(chosen.size(), 20u) << "the old objects do not reach a unit boundary";

    constexpr int kRounds = 40;
    for (int round = 0; round < kRounds; ++round) {
      std::set<std::pair<const void*, uint32_t>> dirty;
      for (size_t k = 0; k < chosen.size(); ++k) {
        // Young, and referred to by this old box only (the allocation cannot collect: a few
        // hundred boxes stay far under the shared budget; if one did, the counts below say so).
        Box* young = new_box(round * 1000003 + static_cast<int64_t>(k));
        usgc_write(chosen[k], reinterpret_cast<void**>(&chosen[k]->ref), young);
        dirty.emplace(gc::block_of(&chosen[k]->ref), card_of(&chosen[k]->ref));
      }
      ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED_MINOR), 0);
      gc::CardScanCounts counts = gc::last_card_scan();
      ASSERT_EQ(counts.units, counts.units_expected)
          << "round " << round << ": a card unit was skipped or claimed twice (" << counts.markers
          << " markers)";
      ASSERT_EQ(counts.cards, dirty.size())
          << "round " << round << ": dirty cards found " << counts.cards << " times, expected "
          << dirty.size() << " (" << counts.markers << " markers)";
      for (size_t k = 0; k < chosen.size(); ++k) {
        Box* young = chosen[k]->ref;
        ASSERT_NE(young, nullptr);
        ASSERT_TRUE(gc::is_shared_class(gc::header_of(young)))
            << "round " << round << ": a young object referred to from a dirty card was freed";
        ASSERT_EQ(young->magic, round * 1000003 + static_cast<int64_t>(k));
      }
    }
  });
}

TEST_F(CardScanTest, AFullCollectionClearsMarksLazilyAndLiveBlocksAreCurrentAfterIt) {
  run_main([] {
    USGC_ROOTS(roots, 1);
    roots[0] = new_box(7);
    ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    gc::Block* block = gc::block_of(roots[0]);
    uint32_t epoch = gc::g_shared_mark_epoch.load();
    EXPECT_EQ(block->mark_epoch.load(), epoch);
    EXPECT_TRUE(block->shared_marked(block->slot_index_of(static_cast<char*>(roots[0]) - 8)));
    for (int i = 0; i < 5; ++i) {
      for (int k = 0; k < 1000; ++k) new_box(k);  // garbage next to the live box
      ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
      EXPECT_EQ(gc::g_shared_mark_epoch.load(), epoch + 2 * static_cast<uint32_t>(i + 1))
          << "a full collection starts a new mark epoch";
      EXPECT_TRUE(block->shared_marks_current()) << "a block with a live object was not renewed";
      EXPECT_TRUE(block->shared_marked(block->slot_index_of(static_cast<char*>(roots[0]) - 8)));
      EXPECT_EQ(static_cast<Box*>(roots[0])->magic, 7);
    }
  });
}

}  // namespace
