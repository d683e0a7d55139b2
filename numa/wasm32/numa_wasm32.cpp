// numa/wasm32/numa_wasm32.cpp — numa.hpp on the WebAssembly target (wasm32-wasi, built only by
// tools/build-wasm-runtime.sh): one linear memory, one thread, so one node (the ordinary case of
// numa.hpp) and no libnuma. Every call is the single-node answer; a fake topology is not
// supported here (the native build tests node-local logic). Hot path: none.
#include "numa/numa.hpp"

namespace usgc::numa {
namespace {
const Topology g_single_node{};
}  // namespace

void initialize() {}

bool is_initialized() {
  return true;
}

const Topology& topology() {
  return g_single_node;
}

void inject_fake_topology(int node_count) {
  (void)node_count;
}

NodeId current_node() {
  return NodeId{0};
}

NodeId node_of_cpu(int cpu) {
  (void)cpu;
  return NodeId{0};
}

kernel::Status bind_to_node(void* address, size_t bytes, NodeId node) {
  (void)address;
  (void)bytes;
  (void)node;
  return kernel::Status::success();
}

kernel::Result<NodeId> node_of_address(const void* address) {
  (void)address;
  return kernel::Result<NodeId>::success(NodeId{0});
}

}  // namespace usgc::numa
