// tests/numa/numa_test.cpp — topology, placement and the fake topology (numa/numa.hpp).
//
// Proves: the topology has at least one node and every CPU maps to a valid node; current_node()
// is valid from any thread; a mapping bound to a node and then touched resides on that node, for
// every real node; querying an untouched or unmapped page is an error, not a crash; a fake
// topology of 4 nodes spreads the CPUs, binds to real nodes and can be swapped while other
// threads read it; before initialize() everything is a one-node no-op (the bootstrap rule).
#include "numa/numa.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kernel_iface/virtual_memory.hpp"

namespace usgc::numa {
namespace {

using kernel::os_page_size;

// Restores the real topology when a test that injected a fake one ends (even by a failure).
class RealTopologyAtExit {
 public:
  RealTopologyAtExit() = default;
  ~RealTopologyAtExit() { inject_fake_topology(0); }
  RealTopologyAtExit(const RealTopologyAtExit&) = delete;
  RealTopologyAtExit& operator=(const RealTopologyAtExit&) = delete;
};

// A fresh mapping of whole pages, unmapped at scope exit.
class Mapping {
 public:
  explicit Mapping(size_t pages) : bytes_(pages * os_page_size()) {
    kernel::Result<void*> mapping = kernel::map_aligned(bytes_, os_page_size());
    if (mapping.ok()) base_ = static_cast<unsigned char*>(mapping.value());
  }
  ~Mapping() {
    if (base_ != nullptr) {
      EXPECT_TRUE(kernel::unmap(base_, bytes_).ok());
    }
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  bool ok() const { return base_ != nullptr; }
  unsigned char* base() const { return base_; }
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_;
  unsigned char* base_ = nullptr;
};

// This binary links the allocator, whose constructor initializes NUMA before main (the
// bootstrap rule in numa.hpp: libnuma is touched only after its own constructor ran). Before
// that point the allocator runs with node 0; that state is not observable from a test body.
TEST(NumaBootstrap, AllocatorConstructorInitializedNumaBeforeMain) {
  EXPECT_TRUE(is_initialized());
  EXPECT_GE(topology().node_count, 1);
  EXPECT_FALSE(topology().is_fake);
}

TEST(NumaTopology, HasAtLeastOneNodeAndEveryCpuMapsToAValidNode) {
  initialize();
  initialize();  // idempotent
  ASSERT_TRUE(is_initialized());
  const Topology& real = topology();
  EXPECT_FALSE(real.is_fake);
  EXPECT_GE(real.node_count, 1);
  EXPECT_LE(real.node_count, kMaxNodes);
  EXPECT_GE(real.cpu_count, 1);
  EXPECT_GE(real.cpu_count, static_cast<int>(std::thread::hardware_concurrency()));
  for (int cpu = 0; cpu < real.cpu_count && cpu < kMaxCpus; ++cpu) {
    NodeId node = node_of_cpu(cpu);
    EXPECT_GE(node.value, 0) << "cpu " << cpu;
    EXPECT_LT(node.value, real.node_count) << "cpu " << cpu;
    EXPECT_EQ(node.value, real.node_of_cpu[cpu]) << "cpu " << cpu;
  }
  EXPECT_EQ(node_of_cpu(-1), NodeId{0});
  EXPECT_EQ(node_of_cpu(real.cpu_count), NodeId{0});
  EXPECT_EQ(node_of_cpu(kMaxCpus + 5), NodeId{0});
}

TEST(NumaTopology, CurrentNodeIsValidOnEveryThread) {
  initialize();
  std::atomic<int> invalid{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        NodeId node = current_node();
        if (node.value < 0 || node.value >= topology().node_count) invalid.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(invalid.load(), 0);
}

TEST(NumaPlacement, BoundAndTouchedPagesResideOnTheBoundNodeForEveryRealNode) {
  initialize();
  const int nodes = topology().node_count;
  for (int node = 0; node < nodes; ++node) {
    Mapping mapping(16);
    ASSERT_TRUE(mapping.ok());
    kernel::Status bound = bind_to_node(mapping.base(), mapping.bytes(), NodeId{node});
    ASSERT_TRUE(bound.ok()) << "node " << node << ": errno " << bound.error();
    std::memset(mapping.base(), 0x1f, mapping.bytes());  // first touch allocates on the bound node
    for (size_t offset = 0; offset < mapping.bytes(); offset += os_page_size()) {
      kernel::Result<NodeId> where =
          node_of_address(mapping.base() + offset + 17);  // any address in the page
      ASSERT_TRUE(where.ok()) << "node " << node << " offset " << offset << ": errno "
                              << where.error();
      EXPECT_EQ(where.value(), NodeId{node}) << "offset " << offset;
    }
  }
}

TEST(NumaPlacement, UntouchedOrUnmappedPageQueryIsAnErrorNotACrash) {
  initialize();
  if (!topology().numa_available)
    GTEST_SKIP() << "no NUMA kernel: every query reports node 0 by design";
  Mapping mapping(2);
  ASSERT_TRUE(mapping.ok());
  kernel::Result<NodeId> untouched = node_of_address(mapping.base());
  EXPECT_FALSE(untouched.ok());
  EXPECT_TRUE(untouched.error() == ENOENT || untouched.error() == EFAULT)
      << "errno " << untouched.error();

  kernel::Result<void*> gone = kernel::map_aligned(os_page_size(), os_page_size());
  ASSERT_TRUE(gone.ok());
  ASSERT_TRUE(kernel::unmap(gone.value(), os_page_size()).ok());
  kernel::Result<NodeId> unmapped = node_of_address(gone.value());
  EXPECT_FALSE(unmapped.ok());
  EXPECT_EQ(unmapped.error(), EFAULT);
}

TEST(NumaPlacement, BindingToANodeOutsideTheTopologyIsEinval) {
  initialize();
  Mapping mapping(1);
  ASSERT_TRUE(mapping.ok());
  EXPECT_EQ(bind_to_node(mapping.base(), mapping.bytes(), NodeId{topology().node_count}).error(),
            EINVAL);
  EXPECT_EQ(bind_to_node(mapping.base(), mapping.bytes(), NodeId{-1}).error(), EINVAL);
}

TEST(NumaFakeTopology, FourFakeNodesSpreadCpusAndBindToRealNodes) {
  initialize();
  const int real_nodes = topology().node_count;
  const int cpus = topology().cpu_count;
  RealTopologyAtExit restore;
  inject_fake_topology(4);
  const Topology& fake = topology();
  EXPECT_TRUE(fake.is_fake);
  EXPECT_EQ(fake.node_count, 4);
  EXPECT_EQ(fake.cpu_count, cpus);
  for (int cpu = 0; cpu < cpus && cpu < kMaxCpus; ++cpu)
    EXPECT_EQ(node_of_cpu(cpu), NodeId{cpu % 4}) << "cpu " << cpu;
  NodeId here = current_node();
  EXPECT_GE(here.value, 0);
  EXPECT_LT(here.value, 4);

  for (int node = 0; node < 4; ++node) {
    Mapping mapping(4);
    ASSERT_TRUE(mapping.ok());
    kernel::Status bound = bind_to_node(mapping.base(), mapping.bytes(), NodeId{node});
    ASSERT_TRUE(bound.ok()) << "fake node " << node << ": errno " << bound.error();
    std::memset(mapping.base(), 0x2e, mapping.bytes());
    kernel::Result<NodeId> where = node_of_address(mapping.base());
    ASSERT_TRUE(where.ok()) << "errno " << where.error();
    EXPECT_EQ(where.value(), NodeId{node % real_nodes})
        << "fake node " << node << " maps to real node";
  }
  EXPECT_EQ(bind_to_node(nullptr, 0, NodeId{4}).error(), EINVAL) << "fake node ids stop at 4";

  inject_fake_topology(0);
  EXPECT_FALSE(topology().is_fake);
  EXPECT_EQ(topology().node_count, real_nodes);
}

TEST(NumaFakeTopology, ReferencesStayValidWhileAnotherThreadSwapsTopologies) {
  initialize();
  RealTopologyAtExit restore;
  inject_fake_topology(2);
  const Topology& two = topology();
  inject_fake_topology(3);
  inject_fake_topology(2);
  EXPECT_EQ(two.node_count, 2) << "a fake topology is immutable once published";
  EXPECT_EQ(&topology(), &two);

  std::atomic<bool> stop{false};
  std::atomic<int> invalid{0};
  std::thread reader([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const Topology& seen = topology();
      NodeId node = current_node();
      if (seen.node_count < 1 || seen.node_count > kMaxNodes || node.value < 0 ||
          node.value >= kMaxNodes) {
        invalid.fetch_add(1);
      }
      for (int cpu = 0; cpu < seen.cpu_count && cpu < kMaxCpus; ++cpu) {
        if (seen.node_of_cpu[cpu] < 0 || seen.node_of_cpu[cpu] >= seen.node_count)
          invalid.fetch_add(1);
      }
    }
  });
  for (int i = 0; i < 2000; ++i) inject_fake_topology(i % 8);  // 0 restores the real one
  stop.store(true, std::memory_order_relaxed);
  reader.join();
  EXPECT_EQ(invalid.load(), 0);
}

TEST(NumaFakeTopology, NodeCountIsClampedToTheMaximum) {
  initialize();
  RealTopologyAtExit restore;
  inject_fake_topology(kMaxNodes + 10);
  EXPECT_EQ(topology().node_count, kMaxNodes);
}

}  // namespace
}  // namespace usgc::numa
