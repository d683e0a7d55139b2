// safepoint/wasm32/fork_child_wasm32.cpp — safepoint/fork_child.hpp on the WebAssembly target
// (wasm32-wasi, built only by tools/build-wasm-runtime.sh). WASI has no fork(): the process is
// never a fork child, so g_in_fork_child stays false and nothing is ever refused; the functions
// exist for the collector's calls, which never run here.
#include <cerrno>

#include "safepoint/fork_child.hpp"

namespace usgc::safepoint {

std::atomic<bool> g_in_fork_child{false};

void watch_for_fork() {}

const char* fork_child_reason() {
  return "WebAssembly has no fork()";
}

int refuse_in_fork_child(const char*) {
  errno = ENOTRECOVERABLE;
  return ENOTRECOVERABLE;
}

}  // namespace usgc::safepoint
