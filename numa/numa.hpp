// numa/numa.hpp — NUMA topology and placement for usgc (the numa layer's umbrella header).
//
// Topology comes from libnuma. A single node is the ordinary case, not an error: on a machine
// (or kernel) without NUMA every call works and reports node 0.
//
// Bootstrap rule: libnuma allocates while it initializes (its constructor). usgc's allocator
// may run before any constructor (it is malloc under LD_PRELOAD), so nothing here touches
// libnuma until initialize() has been called (from usgc's own constructor, which runs after
// libnuma's because usgc depends on it). Before that, topology() is a single node, node 0, and
// bind/query calls are successful no-ops. None of these functions calls malloc after
// initialize() either: the cpu->node table is a fixed array filled once.
//
// Testability (tcmalloc's injectable topology, HotSpot's LibNuma): inject_fake_topology(n)
// makes topology() report n nodes with CPUs spread round-robin, so node-local logic is tested
// on a one-node machine; bind_to_node on a fake node binds to the real node (fake % real).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::numa {

// A NUMA node number; a strong type so it is never mixed with CPU numbers or counts.
struct NodeId {
  int value = 0;
  friend bool operator==(NodeId, NodeId) = default;
};

inline constexpr int kMaxNodes = 64;
inline constexpr int kMaxCpus = 1024;

struct Topology {
  int node_count = 1;           // nodes with memory, at least 1; NodeIds number them densely
  int cpu_count = 1;            // configured CPUs
  bool is_fake = false;         // injected by a test
  bool numa_available = false;  // libnuma reports a NUMA kernel
  // node_of_cpu[c] for c < cpu_count (c >= kMaxCpus is treated as node 0)
  int8_t node_of_cpu[kMaxCpus] = {};
};

// Reads the topology through libnuma. Idempotent; thread safe. Called from usgc's constructor.
void initialize();

// True once initialize() has run (or a fake topology was injected).
bool is_initialized();

// The current topology (a single node before initialize()).
const Topology& topology();

// Tests: report `node_count` nodes (>= 1) with CPUs assigned round-robin; 0 restores the real one.
void inject_fake_topology(int node_count);

// The node of the CPU the calling thread runs on now (sched_getcpu; node 0 when unknown).
NodeId current_node();

// The node of a CPU number.
NodeId node_of_cpu(int cpu);

// Binds the pages of [address, address+bytes) to `node` (mbind MPOL_PREFERRED, so allocation
// still succeeds when the node is full). A no-op success on a single real node.
kernel::Status bind_to_node(void* address, size_t bytes, NodeId node);

// Where the (touched) page holding `address` resides now: move_pages(2) with no target node.
// A page never touched is an error (ENOENT), as is an address that is not mapped (EFAULT).
// With a fake topology the answer is still the real node (fake nodes own no memory).
kernel::Result<NodeId> node_of_address(const void* address);

}  // namespace usgc::numa
