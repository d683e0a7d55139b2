// tests/gc/block_pool_return_test.cpp — the block pool gives free blocks' pages back to the OS
// after the decay, outside every pause (gc/block.hpp, "returning free blocks' pages").
//
// Proves, on the pool itself (no runtime: the test picks the cutoff, so nothing waits on a clock):
//   - a free block keeps its pages until a return pass whose cutoff is past its release; then its
//     slot pages leave the process (committed bytes and RSS fall by ~60 KiB per block) in batched
//     system calls (a few for 1 024 blocks where process_madvise takes MADV_DONTNEED);
//   - a block taken again reads zero in every slot (the pool invariant) and counts as committed;
//     a small one has its slot pages populated in one call, an arena's fault in as touched;
//   - a taker gets a resident free block before a returned one, and a returned one before a new
//     chunk is mapped.
// And with the runtime (the monitor and the scavenger thread decide when, from USGC_DECAY_MS, read
// here through alloc::g_decay_ms as the allocator's tests do):
//   - a private heap grown to 64 MiB and dropped by a collection gets its pages back after the
//     decay, with no return pass on any goroutine (so none inside a pause);
//   - a decay of 10 minutes keeps them through a second of the runtime's looks;
//   - with a decay of 0 pages go back as soon as blocks are free, while a goroutine keeps a live
//     list and churns garbage through collections (verifier on): nothing reachable is lost.
// Waits are bounded loops on a condition (no timed assertion).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "alloc/segment.hpp"
#include "gc/block.hpp"
#include "kernel_iface/advise_batch.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/process_info.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "runtime/stack_scavenger.hpp"
#include "tests/support/gc_node.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/saved_environment.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::gc::AcquireFailure;
using usgc::gc::Block;
using usgc::gc::BlockKind;
using usgc::testing::Node;

constexpr uint32_t kBlocks = 1024;  // 64 MiB

size_t resident_bytes() {
  usgc::kernel::Result<uint64_t> bytes = usgc::kernel::read_resident_bytes();
  EXPECT_TRUE(bytes.ok());
  return bytes.ok() ? bytes.value() : 0;
}

size_t returnable_bytes() {
  const size_t page = usgc::kernel::os_page_size();
  return usgc::gc::kBlockBytes - (usgc::gc::kBlockHeaderBytes + page - 1) / page * page;
}

struct PoolFigures {
  size_t committed = 0;
  size_t free_blocks = 0;
  size_t returned_blocks = 0;
};
PoolFigures pool_figures() {
  PoolFigures figures;
  for (int node = 0; node < usgc::gc::node_pool_span(); ++node) {
    usgc::gc::NodePoolBytes bytes = usgc::gc::node_pool_bytes(node);
    figures.committed += bytes.bytes_committed;
    figures.free_blocks += bytes.free_blocks;
    figures.returned_blocks += bytes.returned_blocks;
  }
  return figures;
}

// Whether this kernel takes MADV_DONTNEED through process_madvise (then a batch is one call).
bool batched_dontneed_supported() {
  const size_t page = usgc::kernel::os_page_size();
  usgc::kernel::Result<void*> mapping = usgc::kernel::map_aligned(page, page);
  if (!mapping.ok()) return false;
  usgc::kernel::AdviseRange range{mapping.value(), page};
  const bool ok =
      usgc::kernel::advise_batch({&range, 1}, usgc::kernel::BatchAdvice::kDontNeed).ok();
  (void)usgc::kernel::unmap(mapping.value(), page);
  return ok;
}

// Takes `count` arena blocks (their whole slot area is one object's room) and touches every page
// of their slots, leaving them zero.
std::vector<Block*> take_touched_blocks(uint32_t count) {
  std::vector<Block*> blocks;
  for (uint32_t i = 0; i < count; ++i) {
    AcquireFailure failure = AcquireFailure::kNone;
    Block* block = usgc::gc::acquire_block(BlockKind::kArena, 0, 0, &failure);
    EXPECT_NE(block, nullptr);
    if (block == nullptr) break;
    std::memset(block->slots_begin(), 0x5a, usgc::gc::kBlockBytes - usgc::gc::kBlockHeaderBytes);
    blocks.push_back(block);
  }
  return blocks;
}

// release_block zeroes an arena block's slots (the pool invariant) before it joins the pool.
void release_all(const std::vector<Block*>& blocks) {
  for (Block* block : blocks) usgc::gc::release_block(block);
}

// Every slot byte of the block reads zero.
bool slots_are_zero(Block* block) {
  const auto* words = reinterpret_cast<const uint64_t*>(block->slots_begin());
  const size_t count = (usgc::gc::kBlockBytes - usgc::gc::kBlockHeaderBytes) / sizeof(uint64_t);
  for (size_t i = 0; i < count; ++i) {
    if (words[i] != 0) return false;
  }
  return true;
}

TEST(BlockPoolReturn, FreeBlocksKeepTheirPagesUntilAPassPastTheirReleaseThenReadZero) {
  const size_t returnable = returnable_bytes();
  ASSERT_GT(returnable, 0u);
  const uint64_t before_release_ms = usgc::kernel::coarse_monotonic_ms();
  std::vector<Block*> blocks = take_touched_blocks(kBlocks);
  ASSERT_EQ(blocks.size(), kBlocks);
  release_all(blocks);
  const PoolFigures released = pool_figures();
  const size_t rss_released = resident_bytes();
  const usgc::gc::BlockPageReturnTotals totals_before = usgc::gc::block_page_return_totals();

  // A cutoff before their release: none of them goes.
  usgc::gc::BlockPageReturn early = usgc::gc::return_free_block_pages(before_release_ms - 1, ~0u);
  EXPECT_EQ(pool_figures().committed, released.committed - size_t{early.blocks} * returnable);
  for (Block* block : blocks)
    ASSERT_EQ(block->slot_pages, usgc::gc::SlotPages::kTouched) << "returned too early";

  // A cutoff at their release: all of them go, in batches.
  usgc::gc::BlockPageReturn all =
      usgc::gc::return_free_block_pages(usgc::kernel::coarse_monotonic_ms(), ~0u);
  EXPECT_GE(all.blocks, kBlocks);
  EXPECT_EQ(all.failures, 0u);
  for (Block* block : blocks) ASSERT_EQ(block->slot_pages, usgc::gc::SlotPages::kReturned);
  const PoolFigures returned = pool_figures();
  EXPECT_EQ(returned.committed,
            released.committed - size_t{early.blocks + all.blocks} * returnable);
  EXPECT_EQ(returned.free_blocks, released.free_blocks);
  EXPECT_GE(returned.returned_blocks, released.returned_blocks + kBlocks);
  const size_t rss_returned = resident_bytes();
  EXPECT_LT(rss_returned + size_t{kBlocks} * returnable * 9 / 10, rss_released)
      << "RSS " << rss_released << " -> " << rss_returned;
  if (batched_dontneed_supported()) {
    EXPECT_LE(all.system_calls, (all.blocks + 255) / 256 + 1) << "one call per 256 blocks";
  }
  const usgc::gc::BlockPageReturnTotals totals = usgc::gc::block_page_return_totals();
  EXPECT_EQ(totals.blocks_returned, totals_before.blocks_returned + all.blocks + early.blocks);
  EXPECT_EQ(totals.passes_on_goroutines, totals_before.passes_on_goroutines);

  // Taken again: zero in every slot, committed again.
  std::vector<Block*> again;
  for (uint32_t i = 0; i < kBlocks; ++i) {
    AcquireFailure failure = AcquireFailure::kNone;
    Block* block = usgc::gc::acquire_block(BlockKind::kArena, 0, 0, &failure);
    ASSERT_NE(block, nullptr);
    ASSERT_TRUE(slots_are_zero(block)) << "block " << i << " of the retaken ones";
    again.push_back(block);
  }
  EXPECT_GE(pool_figures().committed, returned.committed + size_t{kBlocks} * returnable);
  release_all(again);
}

TEST(BlockPoolReturn, ATakerGetsAResidentBlockThenAReturnedOneThenANewChunk) {
  // Empty the resident list first: every resident free block's pages go back.
  (void)usgc::gc::return_free_block_pages(usgc::kernel::coarse_monotonic_ms(), ~0u);
  std::vector<Block*> resident = take_touched_blocks(2);
  ASSERT_EQ(resident.size(), 2u);
  release_all(resident);  // resident[1] is the front (the newest)
  const uint32_t chunks = usgc::gc::chunk_count();
  const size_t returned_waiting = pool_figures().returned_blocks;
  AcquireFailure failure = AcquireFailure::kNone;
  Block* first = usgc::gc::acquire_block(BlockKind::kArena, 0, 0, &failure);
  Block* second = usgc::gc::acquire_block(BlockKind::kArena, 0, 0, &failure);
  Block* third = usgc::gc::acquire_block(BlockKind::kArena, 0, 0, &failure);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(first, resident[1]) << "the warmest block first";
  EXPECT_EQ(second, resident[0]);
  EXPECT_NE(third, resident[0]);
  EXPECT_NE(third, resident[1]);
  EXPECT_TRUE(slots_are_zero(third));
  if (returned_waiting > 0) {  // a returned (or fresh) block was there to take
    EXPECT_EQ(usgc::gc::chunk_count(), chunks) << "no new chunk while returned blocks wait";
  }
  release_all({first, second, third});
}

// A small block taken back after a return has its slot pages populated in one call (it is as
// resident as before its return); an arena block's fault in on first touch.
TEST(BlockPoolReturn, ASmallBlockTakenBackAfterAReturnIsPopulatedAnArenaIsNot) {
  const size_t page = usgc::kernel::os_page_size();
  auto resident_pages = [&](Block* block) {
    std::vector<unsigned char> vector(usgc::gc::kBlockBytes / page);
    EXPECT_EQ(mincore(block, usgc::gc::kBlockBytes, vector.data()), 0);
    size_t count = 0;
    for (size_t i = 1; i < vector.size(); ++i) count += vector[i] & 1;  // past the header page
    return count;
  };
  for (BlockKind kind : {BlockKind::kSmall, BlockKind::kArena}) {
    std::vector<Block*> blocks = take_touched_blocks(1);
    ASSERT_EQ(blocks.size(), 1u);
    release_all(blocks);
    (void)usgc::gc::return_free_block_pages(usgc::kernel::coarse_monotonic_ms(), ~0u);
    ASSERT_EQ(blocks[0]->slot_pages, usgc::gc::SlotPages::kReturned);
    ASSERT_EQ(resident_pages(blocks[0]), 0u);
    // The returned stack's top is the block just returned.
    AcquireFailure failure = AcquireFailure::kNone;
    Block* block = usgc::gc::acquire_block(kind, 0, 0, &failure);
    ASSERT_EQ(block, blocks[0]);
    EXPECT_EQ(resident_pages(block), kind == BlockKind::kSmall ? returnable_bytes() / page : 0u)
        << (kind == BlockKind::kSmall ? "small" : "arena");
    if (kind == BlockKind::kSmall) {  // its one free run's words, as sweepers leave a free block
      std::memset(block->slots_begin(), 0, sizeof(usgc::gc::FreeRun));
      block->free_runs = nullptr;
    }
    usgc::gc::release_block(block);
  }
}

// ---- with the runtime: the monitor and the scavenger decide when

// The runtime with a given decay (alloc::g_decay_ms: USGC_DECAY_MS as read at process start),
// restored after usgc_shutdown, and the heap verifier on where a test asks (USGC_VERIFY=1: every
// collection walks what is reachable, too slow for a 2-million-node list).
class BlockPoolReturnRuntime : public usgc::testing::RuntimeTest {
 protected:
  virtual uint64_t decay_ms() const = 0;
  virtual bool verify() const { return false; }
  void SetUp() override {
    saved_decay_ms_ = usgc::alloc::g_decay_ms;
    usgc::alloc::g_decay_ms = decay_ms();
    setenv("USGC_VERIFY", verify() ? "1" : "0", 1);
    RuntimeTest::SetUp();
  }
  void TearDown() override {
    RuntimeTest::TearDown();
    usgc::alloc::g_decay_ms = saved_decay_ms_;
  }

  // Builds a private list of about 64 MiB of nodes in a goroutine, drops it, and runs a full
  // private collection: its blocks are free in the pool when this returns.
  static void grow_then_drop_private_heap() {
    usgc::testing::run_main([] {
      USGC_ROOTS(roots, 2);
      for (int i = 0; i < 2'000'000; ++i) {  // 32-byte slots: 61 MiB
        roots[1] = usgc::testing::new_node(USGC_GOROUTINE_PRIVATE, i);
        usgc::testing::write(static_cast<Node*>(roots[1]), &static_cast<Node*>(roots[1])->left,
                             static_cast<Node*>(roots[0]));
        roots[0] = roots[1];
      }
      roots[0] = roots[1] = nullptr;
      ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
    });
  }

  // Waits (bounded) until the pool's committed bytes are at most `target`.
  static bool committed_falls_to(size_t target) {
    for (int i = 0; i < 3000; ++i) {  // up to ~60 s on a loaded machine
      if (pool_figures().committed <= target) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  uint64_t saved_decay_ms_ = 0;
  usgc::testing::SavedEnvironmentVariable saved_verify_{"USGC_VERIFY"};
};

class BlockPoolReturnShortDecay : public BlockPoolReturnRuntime {
 protected:
  // Long enough that the list's blocks are still committed when the test reads the pool after the
  // goroutine ends (under ThreadSanitizer that takes about ten times longer, as does the decay).
  uint64_t decay_ms() const override { return 100 * usgc::testing::kTimeLimitScale; }
};

TEST_F(BlockPoolReturnShortDecay, AShrunkPrivateHeapGoesBackAfterTheDecayWithNoPauseDoingIt) {
  const usgc::gc::BlockPageReturnTotals totals_before = usgc::gc::block_page_return_totals();
  const size_t committed_before = pool_figures().committed;
  grow_then_drop_private_heap();
  const PoolFigures dropped = pool_figures();
  const size_t rss_dropped = resident_bytes();
  EXPECT_GT(dropped.free_blocks - dropped.returned_blocks, 900u) << "the list's blocks are free";
  // Back to about where the pool was before the list (its other free blocks may go too).
  ASSERT_TRUE(committed_falls_to(committed_before + (8u << 20)))
      << "committed " << pool_figures().committed << ", before the list " << committed_before;
  EXPECT_LT(resident_bytes() + (40u << 20), rss_dropped) << "the pages left the process";
  // The target above leaves 8 MiB of slack; the passes go on until the list's blocks are back.
  bool list_returned = false;
  for (int i = 0; i < 3000 && !list_returned; ++i) {  // up to ~60 s on a loaded machine
    list_returned =
        usgc::gc::block_page_return_totals().blocks_returned >= totals_before.blocks_returned + 900;
    if (!list_returned) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const usgc::gc::BlockPageReturnTotals totals = usgc::gc::block_page_return_totals();
  EXPECT_TRUE(list_returned) << totals.blocks_returned - totals_before.blocks_returned
                             << " blocks returned";
  EXPECT_EQ(totals.passes_on_goroutines, totals_before.passes_on_goroutines)
      << "a return ran on a goroutine (a pause may have made the system calls)";
  // In short passes: each holds a CPU (and preempts a goroutine's thread) for its whole length.
  EXPECT_GE((totals.passes - totals_before.passes) * usgc::runtime::kScavengerBlocksPerPass,
            totals.blocks_returned - totals_before.blocks_returned);
}

class BlockPoolReturnLongDecay : public BlockPoolReturnRuntime {
 protected:
  uint64_t decay_ms() const override { return 600'000; }
};

TEST_F(BlockPoolReturnLongDecay, ATenMinuteDecayKeepsThePages) {
  grow_then_drop_private_heap();
  const usgc::gc::BlockPageReturnTotals before = usgc::gc::block_page_return_totals();
  const size_t committed = pool_figures().committed;
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the monitor looks ~4 000 times
  EXPECT_EQ(usgc::gc::block_page_return_totals().blocks_returned, before.blocks_returned);
  EXPECT_GE(pool_figures().committed, committed);
}

class BlockPoolReturnNoDecay : public BlockPoolReturnRuntime {
 protected:
  uint64_t decay_ms() const override { return 0; }
  bool verify() const override { return true; }
};

TEST_F(BlockPoolReturnNoDecay, PagesGoBackAtOnceWhileAGoroutineChurnsAndLosesNothing) {
  const usgc::gc::BlockPageReturnTotals before = usgc::gc::block_page_return_totals();
  usgc::testing::run_main([&] {
    USGC_ROOTS(roots, 3);
    constexpr int kLive = 20'000;
    for (int i = 0; i < kLive; ++i) {  // a live list, values 0..kLive-1
      roots[1] = usgc::testing::new_node(USGC_GOROUTINE_PRIVATE, i);
      usgc::testing::write(static_cast<Node*>(roots[1]), &static_cast<Node*>(roots[1])->left,
                           static_cast<Node*>(roots[0]));
      roots[0] = roots[1];
    }
    // Churn: garbage lists of 3 MiB, dropped and collected, so blocks go free and are taken
    // again while the scavenger returns their pages.
    for (int round = 0; round < 24; ++round) {
      roots[2] = nullptr;
      for (int i = 0; i < 100'000; ++i) {
        roots[1] = usgc::testing::new_node(USGC_GOROUTINE_PRIVATE, -1);
        usgc::testing::write(static_cast<Node*>(roots[1]), &static_cast<Node*>(roots[1])->left,
                             static_cast<Node*>(roots[2]));
        roots[2] = roots[1];
      }
      roots[1] = roots[2] = nullptr;
      ASSERT_EQ(usgc_gc_collect(USGC_GC_PRIVATE), 0);
      if (round % 8 == 7) {
        ASSERT_EQ(usgc_sleep_ns(20'000'000), 0);  // the scavenger runs
      }
    }
    int64_t sum = 0;
    int length = 0;
    for (auto* node = static_cast<Node*>(roots[0]); node != nullptr; node = node->left) {
      sum += node->value;
      ++length;
    }
    EXPECT_EQ(length, kLive);
    EXPECT_EQ(sum, int64_t{kLive} * (kLive - 1) / 2);
  });
  // Every free block's pages go back without waiting for any decay.
  for (int i = 0;
       i < 3000 && usgc::gc::block_page_return_totals().blocks_returned == before.blocks_returned;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const usgc::gc::BlockPageReturnTotals after = usgc::gc::block_page_return_totals();
  EXPECT_GT(after.blocks_returned, before.blocks_returned);
  EXPECT_EQ(after.passes_on_goroutines, before.passes_on_goroutines);
}

}  // namespace
