// tests/gc/gc_numa_test.cpp — the GC heap's per-node block pools (gc/block.hpp, "NUMA placement"),
// with the injectable fake topology (2 and 4 nodes over this machine's CPUs).
//
// Proves:
//   GcNumaPool.*  a thread pinned to CPU c takes blocks (and large objects) from the pool of
//     node_of_cpu(c); a released block goes back to the pool it came from (and only to it); an
//     explicit node is served by that node's pool; the per-node figures move with each block;
//     every touched page of a block resides where numa::node_of_address says the node's memory is
//     (move_pages: on a one-node machine node 0; on a multi-node one the real node the fake node
//     is bound to, which is the node itself with the real topology); one node uses node 0 only.
//   GcNumaRuntime.*  with the runtime's workers all on CPU c (the test thread's affinity is
//     inherited by every thread usgc_init starts), a goroutine's private blocks, its stack arena
//     and the shared heap's per-P cache blocks come from node_of_cpu(c)'s pool; other nodes'
//     in-use bytes do not grow; after the goroutines exit and a full shared collection sweeps,
//     the blocks are back in that node's pool; the per-node figures add up to the GC heap's.
#include <pthread.h>
#include <sched.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "gc/block.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "numa/numa.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::gc::AcquireFailure;
using usgc::gc::Block;
using usgc::gc::BlockKind;

// The CPUs this process may run on.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

bool pin_this_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

void pin_this_thread_to(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) CPU_SET(cpu, &set);
  ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof set, &set), 0);
}

// Runs f on a new thread pinned to `cpu`.
void on_cpu(int cpu, const std::function<void()>& f) {
  std::thread thread([&] {
    ASSERT_TRUE(pin_this_thread(cpu)) << "pinning to cpu " << cpu;
    f();
  });
  thread.join();
}

int real_node_count() {
  usgc::numa::inject_fake_topology(0);
  return usgc::numa::topology().node_count;
}

// Where the memory of (fake or real) node `node` is: bind_to_node binds a fake node to the real
// node fake % real.
int real_node_of(int node, int real_nodes) {
  return node % real_nodes;
}

// Every page of the block's slots, touched, resides on `expected_real_node`.
void expect_pages_on(Block* block, int expected_real_node) {
  size_t page = usgc::kernel::os_page_size();
  char* begin = reinterpret_cast<char*>(block);
  for (size_t offset = 0; offset < usgc::gc::kBlockBytes; offset += page) {
    if (offset >= usgc::gc::kBlockHeaderBytes) begin[offset + 8] = 1;  // touch (a free slot)
    usgc::kernel::Result<usgc::numa::NodeId> where = usgc::numa::node_of_address(begin + offset);
    ASSERT_TRUE(where.ok()) << "move_pages query at offset " << offset << ": errno "
                            << where.error();
    EXPECT_EQ(where.value().value, expected_real_node) << "page at offset " << offset;
  }
  for (size_t offset = usgc::gc::kBlockHeaderBytes; offset < usgc::gc::kBlockBytes; offset += page)
    begin[offset + 8] = 0;  // free slots are zero again (the pool's invariant)
}

// Releases a small block taken empty: its one free run's words are zeroed first (free slots are
// zero in the pool).
void give_back(Block* block) {
  std::memset(block->slots_begin(), 0, sizeof(usgc::gc::FreeRun));
  block->free_runs = nullptr;
  usgc::gc::release_block(block);
}

class RealTopologyAtExit {
 public:
  RealTopologyAtExit() = default;
  ~RealTopologyAtExit() { usgc::numa::inject_fake_topology(0); }
  RealTopologyAtExit(const RealTopologyAtExit&) = delete;
  RealTopologyAtExit& operator=(const RealTopologyAtExit&) = delete;
};

class GcNumaPool : public ::testing::TestWithParam<int> {};

TEST_P(GcNumaPool, ThePoolOfTheCpusNodeServesTheThreadAndGetsItsBlocksBack) {
  RealTopologyAtExit restore;
  const int real_nodes = real_node_count();
  const int nodes = GetParam();
  usgc::numa::inject_fake_topology(nodes);
  ASSERT_EQ(usgc::numa::topology().node_count, nodes);
  for (int cpu : allowed_cpus()) {
    on_cpu(cpu, [&] {
      const int node = usgc::numa::node_of_cpu(cpu).value;
      SCOPED_TRACE("cpu " + std::to_string(cpu) + " node " + std::to_string(node));
      ASSERT_EQ(usgc::gc::block_node_of_caller(), node);
      std::vector<usgc::gc::NodePoolBytes> before;
      for (int n = 0; n < nodes; ++n) before.push_back(usgc::gc::node_pool_bytes(n));

      AcquireFailure failure = AcquireFailure::kNone;
      Block* block = usgc::gc::acquire_block(BlockKind::kSmall, 0, 0, &failure);
      ASSERT_NE(block, nullptr);
      EXPECT_EQ(block->node, node);
      EXPECT_EQ(usgc::gc::node_pool_bytes(node).bytes_in_use,
                before[node].bytes_in_use + usgc::gc::kBlockBytes);
      expect_pages_on(block, real_node_of(node, real_nodes));

      Block* large = usgc::gc::acquire_large(3 * usgc::gc::kBlockBytes, 0, &failure);
      ASSERT_NE(large, nullptr);
      EXPECT_EQ(large->node, node);
      usgc::gc::release_large(large);

      give_back(block);
      for (int n = 0; n < nodes; ++n) {
        usgc::gc::NodePoolBytes after = usgc::gc::node_pool_bytes(n);
        EXPECT_EQ(after.bytes_in_use, before[n].bytes_in_use) << "node " << n;
        if (n != node) {
          EXPECT_EQ(after.free_blocks, before[n].free_blocks)
              << "a block of node " << node << " went to node " << n << "'s pool";
        }
      }
      // Back on its node's free stack: the next block of that node is the same one.
      Block* again = usgc::gc::acquire_block(BlockKind::kSmall, 0, 0, &failure);
      EXPECT_EQ(again, block);
      give_back(again);
    });
  }
}

TEST_P(GcNumaPool, AnExplicitNodeIsServedByThatNodesPool) {
  RealTopologyAtExit restore;
  const int real_nodes = real_node_count();
  const int nodes = GetParam();
  usgc::numa::inject_fake_topology(nodes);
  std::vector<Block*> blocks;
  for (int node = 0; node < nodes; ++node) {
    AcquireFailure failure = AcquireFailure::kNone;
    Block* block = usgc::gc::acquire_block_on_node(node, BlockKind::kArena, 0, 0, &failure);
    ASSERT_NE(block, nullptr) << "node " << node;
    EXPECT_EQ(block->node, node);
    expect_pages_on(block, real_node_of(node, real_nodes));
    blocks.push_back(block);
  }
  uint32_t count = 0;
  ASSERT_EQ(usgc_gc_get_node_stats(nullptr, 0, &count), 0);
  EXPECT_GE(count, static_cast<uint32_t>(nodes));
  std::vector<usgc_gc_node_stats> figures(count);
  ASSERT_EQ(usgc_gc_get_node_stats(figures.data(), count, &count), 0);
  for (int node = 0; node < nodes; ++node) {
    EXPECT_GE(figures[node].bytes_in_use, usgc::gc::kBlockBytes) << "node " << node;
    EXPECT_GE(figures[node].bytes_committed, figures[node].bytes_in_use) << "node " << node;
  }
  for (Block* block : blocks) {
    usgc::gc::NodePoolBytes before = usgc::gc::node_pool_bytes(block->node);
    int node = block->node;
    usgc::gc::release_block(block);
    EXPECT_EQ(usgc::gc::node_pool_bytes(node).free_blocks, before.free_blocks + 1);
    EXPECT_EQ(usgc::gc::node_pool_bytes(node).bytes_in_use,
              before.bytes_in_use - usgc::gc::kBlockBytes);
  }
}

INSTANTIATE_TEST_SUITE_P(FakeNodes, GcNumaPool, ::testing::Values(2, 4));

TEST(GcNumaPoolOneNode, OneNodeUsesNodeZeroOnly) {
  RealTopologyAtExit restore;
  if (real_node_count() != 1) GTEST_SKIP() << "a multi-node machine";
  for (int cpu : allowed_cpus()) {
    on_cpu(cpu, [&] {
      EXPECT_EQ(usgc::gc::block_node_of_caller(), 0);
      AcquireFailure failure = AcquireFailure::kNone;
      Block* block = usgc::gc::acquire_block(BlockKind::kArena, 0, 0, &failure);
      ASSERT_NE(block, nullptr);
      EXPECT_EQ(block->node, 0);
      expect_pages_on(block, 0);
      usgc::gc::release_block(block);
    });
  }
}

// ---- the runtime: which pool serves which P

struct Item {
  void* next;
  uint64_t value;
};

usgc_type_id item_type() {
  static usgc_type_id type = [] {
    size_t offsets[] = {offsetof(Item, next)};
    usgc_type_info info = {"NumaItem", USGC_KIND_OBJECT, sizeof(Item), offsets, 1};
    return usgc_register_type(&info);
  }();
  return type;
}

class GcNumaRuntime : public ::testing::TestWithParam<int> {
 protected:
  void TearDown() override {
    pin_this_thread_to(all_cpus_);
    usgc::numa::inject_fake_topology(0);
  }
  std::vector<int> all_cpus_ = allowed_cpus();
};

TEST_P(GcNumaRuntime, EveryPTakesBlocksFromItsCpusNodeAndSweepingReturnsThem) {
  const int nodes = GetParam();
  for (int cpu : all_cpus_) {
    usgc::numa::inject_fake_topology(nodes);
    const int node = usgc::numa::node_of_cpu(cpu).value;
    SCOPED_TRACE("cpu " + std::to_string(cpu) + " node " + std::to_string(node));
    ASSERT_TRUE(pin_this_thread(cpu));
    std::vector<usgc::gc::NodePoolBytes> before;
    for (int n = 0; n < nodes; ++n) before.push_back(usgc::gc::node_pool_bytes(n));

    usgc_config config = usgc::testing::runtime_config(2);
    ASSERT_EQ(usgc_init(&config), 0);
    std::atomic<int> wrong_node{0};
    std::atomic<int> checked{0};
    usgc::testing::run_main([&] {
      usgc_waitgroup done = USGC_WAITGROUP_INIT;
      for (int g = 0; g < 4; ++g) {
        usgc_waitgroup_add(&done, 1);
        usgc::testing::go([&] {
          auto check = [&](void* object) {
            if (object == nullptr || usgc::gc::block_of(object)->node != node) ++wrong_node;
            ++checked;
          };
          // Private: several blocks' worth; shared through the P's cache; one stack-local.
          for (int i = 0; i < 6000; ++i) check(usgc_alloc(item_type(), USGC_GOROUTINE_PRIVATE));
          for (int i = 0; i < 6000; ++i) check(usgc_alloc(item_type(), USGC_GOROUTINE_SHARED));
          check(usgc_alloc(item_type(), USGC_STACK_LOCAL));
          usgc_waitgroup_done(&done);
        });
      }
      usgc_waitgroup_wait(&done);
      ASSERT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0);
    });
    EXPECT_EQ(usgc_shutdown(), 0);
    EXPECT_EQ(checked.load(), 4 * 12001);
    EXPECT_EQ(wrong_node.load(), 0) << "objects in blocks of another node's pool";
    for (int n = 0; n < nodes; ++n) {
      if (n == node) continue;
      EXPECT_LE(usgc::gc::node_pool_bytes(n).bytes_in_use, before[n].bytes_in_use)
          << "node " << n << " served a P running on node " << node;
    }
    // The garbage was swept: node's blocks went back to node's pool (the runtime keeps a few
    // blocks, e.g. the main goroutine's, so compare with what 4 x 12000 objects needed).
    EXPECT_LT(usgc::gc::node_pool_bytes(node).bytes_in_use,
              before[node].bytes_in_use + 8 * usgc::gc::kBlockBytes);
    uint32_t count = 0;
    usgc_gc_node_stats figures[usgc::numa::kMaxNodes];
    ASSERT_EQ(usgc_gc_get_node_stats(figures, usgc::numa::kMaxNodes, &count), 0);
    usgc_gc_stats stats{};
    stats.version = USGC_GC_STATS_VERSION;
    ASSERT_EQ(usgc_gc_get_stats(&stats), 0);
    uint64_t in_use = 0;
    for (uint32_t n = 0; n < count; ++n) in_use += figures[n].bytes_in_use;
    EXPECT_EQ(in_use, stats.bytes_committed) << "the nodes' figures add up to the heap's";
  }
}

INSTANTIATE_TEST_SUITE_P(FakeNodes, GcNumaRuntime, ::testing::Values(2, 4));

}  // namespace
