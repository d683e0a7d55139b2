// kernel_iface/guard_region.cpp — MADV_GUARD_INSTALL wrappers and their probe (see the .hpp).
#include "kernel_iface/guard_region.hpp"

#include <sys/mman.h>

#include <atomic>
#include <cerrno>

#include "kernel_iface/virtual_memory.hpp"

// Debian 12's headers predate Linux 6.13; the values are the kernel's ABI
// (include/uapi/asm-generic/mman-common.h).
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

namespace usgc::kernel {
namespace {

enum ProbeState : int { kNotProbed = 0, kSupported = 1, kUnsupported = 2 };
// Written once by the first prober (a racing second prober computes the same answer); relaxed:
// the value is self-contained, and g_probe_error is written before it with release (below).
std::atomic<int> g_probe_state{kNotProbed};
std::atomic<int> g_probe_error{0};

int probe() {
  const size_t page = os_page_size();
  Result<void*> scratch = map_aligned(2 * page, page);
  if (!scratch.ok()) return scratch.error();
  int error = 0;
  if (::madvise(scratch.value(), page, MADV_GUARD_INSTALL) != 0) error = errno;
  (void)unmap(scratch.value(), 2 * page);
  return error;
}

}  // namespace

bool guard_regions_supported() {
  int state = g_probe_state.load(std::memory_order_acquire);  // pairs with the release below
  if (state == kNotProbed) {
    int error = probe();
    g_probe_error.store(error, std::memory_order_relaxed);
    state = error == 0 ? kSupported : kUnsupported;
    g_probe_state.store(state, std::memory_order_release);  // publishes g_probe_error
  }
  return state == kSupported;
}

int guard_regions_probe_error() {
  if (g_probe_state.load(std::memory_order_acquire) == kNotProbed) return 0;
  return g_probe_error.load(std::memory_order_relaxed);
}

Status install_guard_region(void* address, size_t bytes) {
  if (::madvise(address, bytes, MADV_GUARD_INSTALL) != 0) return Status::failure(errno);
  return Status::success();
}

Status remove_guard_region(void* address, size_t bytes) {
  if (::madvise(address, bytes, MADV_GUARD_REMOVE) != 0) return Status::failure(errno);
  return Status::success();
}

}  // namespace usgc::kernel
