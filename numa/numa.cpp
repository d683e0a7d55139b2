// numa/numa.cpp — NUMA topology from libnuma, placement with mbind(2), queries with
// move_pages(2). See numa.hpp for the bootstrap rule and the fake topology.
//
// The dense node rule: a usgc NodeId is an index 0..node_count-1 over the kernel's nodes that
// have memory, in kernel order. On an ordinary machine the two numberings are the same. Where
// kernel node ids are sparse, or a node has CPUs and no memory, the tables below translate: a
// CPU on a memoryless node belongs to the nearest memory node (numa_distance), which is where
// its local allocations go anyway.
//
// State, all constinit and never allocated:
//   g_real_topology, g_real_nodes  written once by initialize() under g_init_lock, before
//                                  g_initialized is set (release); read-only afterwards.
//   g_fake_topologies[n-1]         the fake topology of n nodes, filled once under g_init_lock
//                                  before it is first published; immutable afterwards, so a
//                                  reference returned by topology() stays valid forever.
//   g_current                      the published topology; every reader loads it (acquire).
// So every function is thread safe and none allocates after initialize(); only initialize()
// calls libnuma (which allocates).
//
// Hot path: current_node() is sched_getcpu (vDSO/rseq) plus one table load; bind and query are
// slow paths (one system call each).
#include "numa/numa.hpp"

#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>

#include "kernel_iface/cpu.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::numa {
namespace {

// Kernel node ids we can name in an mbind nodemask (the x86-64 kernel's MAX_NUMNODES is 1024).
constexpr int kMaxKernelNodes = 1024;
constexpr int kBitsPerWord = static_cast<int>(sizeof(unsigned long) * CHAR_BIT);
constexpr int kNodeMaskWords = kMaxKernelNodes / kBitsPerWord;

// The real memory nodes (the dense node rule). Written once by initialize().
struct RealNodes {
  int count = 1;                               // memory nodes; topology().node_count when real
  int kernel_node_of[kMaxNodes] = {};          // usgc node -> kernel node id
  int16_t usgc_node_of[kMaxKernelNodes] = {};  // kernel node id -> usgc node, or -1
};

constinit const Topology g_single_node_topology{};
constinit Topology g_real_topology{};
constinit RealNodes g_real_nodes{};
constinit Topology g_fake_topologies[kMaxNodes]{};
constinit bool g_fake_filled[kMaxNodes] = {};  // under g_init_lock

// Release/acquire: see each store.
constinit std::atomic<const Topology*> g_current{&g_single_node_topology};
constinit std::atomic<bool> g_initialized{false};
constinit std::atomic<bool> g_init_lock{false};

class InitLockGuard {
 public:
  InitLockGuard() {
    // Acquire: the holder sees what the previous holder wrote (tables, filled flags).
    while (g_init_lock.exchange(true, std::memory_order_acquire)) kernel::yield_cpu();
  }
  ~InitLockGuard() {
    // Release: publishes this holder's writes to the next one.
    g_init_lock.store(false, std::memory_order_release);
  }
  InitLockGuard(const InitLockGuard&) = delete;
  InitLockGuard& operator=(const InitLockGuard&) = delete;
};

int configured_cpu_count() {
  return static_cast<int>(kernel::configured_cpu_count());
}

int clamp_cpus(int cpus) {
  return cpus < kMaxCpus ? cpus : kMaxCpus;
}

// The usgc node of a CPU's kernel node: itself if it has memory, else the nearest memory node.
int usgc_node_for_cpu_node(int kernel_node) {
  if (kernel_node < 0 || kernel_node >= kMaxKernelNodes) return 0;
  if (g_real_nodes.usgc_node_of[kernel_node] >= 0) return g_real_nodes.usgc_node_of[kernel_node];
  int best = 0;
  int best_distance = INT_MAX;
  for (int node = 0; node < g_real_nodes.count; ++node) {
    int distance = ::numa_distance(kernel_node, g_real_nodes.kernel_node_of[node]);
    if (distance > 0 && distance < best_distance) {
      best = node;
      best_distance = distance;
    }
  }
  return best;
}

// Fills g_real_nodes and g_real_topology from libnuma. Under g_init_lock, before publication.
void read_real_topology() {
  Topology& topology = g_real_topology;
  for (int16_t& node : g_real_nodes.usgc_node_of) node = -1;
  g_real_nodes.count = 1;
  g_real_nodes.kernel_node_of[0] = 0;
  g_real_nodes.usgc_node_of[0] = 0;
  topology.is_fake = false;

  if (::numa_available() < 0) {  // no NUMA kernel: one node, every CPU on it
    topology.numa_available = false;
    topology.node_count = 1;
    topology.cpu_count = configured_cpu_count();
    return;
  }
  topology.numa_available = true;

  int memory_nodes = 0;
  int max_node = ::numa_max_node();
  for (int kernel_node = 0; kernel_node <= max_node && kernel_node < kMaxKernelNodes;
       ++kernel_node) {
    if (memory_nodes == kMaxNodes) break;
    if (!::numa_bitmask_isbitset(numa_nodes_ptr, static_cast<unsigned>(kernel_node))) continue;
    if (::numa_node_size64(kernel_node, nullptr) <= 0) continue;  // memoryless (or unreadable)
    g_real_nodes.kernel_node_of[memory_nodes] = kernel_node;
    g_real_nodes.usgc_node_of[kernel_node] = static_cast<int16_t>(memory_nodes);
    ++memory_nodes;
  }
  if (memory_nodes == 0) {  // sysfs unreadable: trust node 0
    memory_nodes = 1;
    g_real_nodes.kernel_node_of[0] = 0;
    g_real_nodes.usgc_node_of[0] = 0;
  }
  g_real_nodes.count = memory_nodes;
  topology.node_count = memory_nodes;

  int cpus = ::numa_num_configured_cpus();
  topology.cpu_count = cpus < 1 ? configured_cpu_count() : cpus;
  for (int cpu = 0; cpu < clamp_cpus(topology.cpu_count); ++cpu) {
    topology.node_of_cpu[cpu] =
        static_cast<int8_t>(usgc_node_for_cpu_node(::numa_node_of_cpu(cpu)));
  }
}

}  // namespace

void initialize() {
  // Acquire: pairs with the release store below; the tables are complete.
  if (g_initialized.load(std::memory_order_acquire)) return;
  InitLockGuard guard;
  if (g_initialized.load(std::memory_order_relaxed)) return;  // another thread did it (under lock)
  read_real_topology();
  // Release: a reader that loads &g_real_topology (acquire, topology()) or sees g_initialized
  // (acquire, bind/query) sees the filled tables.
  const Topology* expected = &g_single_node_topology;
  g_current.compare_exchange_strong(expected, &g_real_topology, std::memory_order_release,
                                    std::memory_order_relaxed);
  g_initialized.store(true, std::memory_order_release);
}

bool is_initialized() {
  // Acquire: as in initialize().
  return g_initialized.load(std::memory_order_acquire);
}

const Topology& topology() {
  // Acquire: pairs with the release stores that publish a filled topology.
  return *g_current.load(std::memory_order_acquire);
}

void inject_fake_topology(int node_count) {
  initialize();  // the fake one is built from the real CPU count, fixed from now on
  if (node_count <= 0) {
    // Release: publishes the real topology (filled before g_initialized was set).
    g_current.store(&g_real_topology, std::memory_order_release);
    return;
  }
  if (node_count > kMaxNodes) node_count = kMaxNodes;
  Topology& fake = g_fake_topologies[node_count - 1];
  {
    InitLockGuard guard;
    if (!g_fake_filled[node_count - 1]) {
      fake.node_count = node_count;
      fake.cpu_count = g_real_topology.cpu_count;
      fake.is_fake = true;
      fake.numa_available = g_real_topology.numa_available;
      for (int cpu = 0; cpu < clamp_cpus(fake.cpu_count); ++cpu) {
        fake.node_of_cpu[cpu] = static_cast<int8_t>(cpu % node_count);
      }
      g_fake_filled[node_count - 1] = true;
    }
  }
  // Release: readers that load this pointer (acquire, topology()) see the filled table.
  g_current.store(&fake, std::memory_order_release);
}

NodeId current_node() {
  return node_of_cpu(::sched_getcpu());
}

NodeId node_of_cpu(int cpu) {
  const Topology& current = topology();
  if (cpu < 0 || cpu >= current.cpu_count || cpu >= kMaxCpus) return NodeId{0};
  return NodeId{current.node_of_cpu[cpu]};
}

kernel::Status bind_to_node(void* address, size_t bytes, NodeId node) {
  // Acquire: as in initialize(); g_real_nodes is complete once this is true.
  if (!g_initialized.load(std::memory_order_acquire))
    return kernel::Status::success();  // bootstrap rule
  const Topology& current = topology();
  if (node.value < 0 || node.value >= current.node_count) return kernel::Status::failure(EINVAL);
  if (!g_real_topology.numa_available) return kernel::Status::success();  // no NUMA kernel
  if (!current.is_fake && g_real_nodes.count == 1)
    return kernel::Status::success();  // nothing to choose
  int real_node = current.is_fake ? node.value % g_real_nodes.count : node.value;
  int kernel_node = g_real_nodes.kernel_node_of[real_node];
  unsigned long nodemask[kNodeMaskWords] = {};
  nodemask[kernel_node / kBitsPerWord] |= 1ul << (kernel_node % kBitsPerWord);
  // maxnode counts one more than the mask's bits (the kernel's historical off-by-one; libnuma
  // passes size + 1 the same way).
  if (::mbind(address, bytes, MPOL_PREFERRED, nodemask, kMaxKernelNodes + 1, 0) != 0) {
    return kernel::Status::failure(errno);
  }
  return kernel::Status::success();
}

kernel::Result<NodeId> node_of_address(const void* address) {
  // Acquire: as in bind_to_node().
  if (!g_initialized.load(std::memory_order_acquire) || !g_real_topology.numa_available) {
    return kernel::Result<NodeId>::success(NodeId{0});  // bootstrap rule / no NUMA kernel
  }
  uintptr_t page_mask = ~(static_cast<uintptr_t>(kernel::os_page_size()) - 1);
  void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(address) & page_mask);
  int status = -EIO;
  // nodes == NULL: a query; status receives the node or a negative errno.
  if (::move_pages(0, 1, &page, nullptr, &status, 0) < 0)
    return kernel::Result<NodeId>::failure(errno);
  if (status < 0) return kernel::Result<NodeId>::failure(-status);
  if (status >= kMaxKernelNodes || g_real_nodes.usgc_node_of[status] < 0) {
    return kernel::Result<NodeId>::failure(ENODEV);  // a node we did not see at initialize()
  }
  return kernel::Result<NodeId>::success(NodeId{g_real_nodes.usgc_node_of[status]});
}

}  // namespace usgc::numa
