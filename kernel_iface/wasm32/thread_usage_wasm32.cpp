// kernel_iface/wasm32/thread_usage_wasm32.cpp — thread_usage.hpp on the WebAssembly back end
// (wasm32-wasi, built only by tools/build-wasm-runtime.sh): WASI reports no per-thread CPU time,
// faults or switches, so every figure is zero (the trace prints zeros there).
#include "kernel_iface/thread_usage.hpp"

namespace usgc::kernel {

Result<ThreadUsage> read_thread_usage() {
  return Result<ThreadUsage>::success(ThreadUsage{});
}

ThreadUsage thread_usage_delta(const ThreadUsage&, const ThreadUsage&) {
  return ThreadUsage{};
}

}  // namespace usgc::kernel
