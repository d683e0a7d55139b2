// kernel_iface/wasm32/decommit_queue_wasm32.cpp — decommit_queue.hpp on the WebAssembly back end
// (wasm32-wasi, built only by tools/build-wasm-runtime.sh).
//
// There is no io_uring and no madvise: linear memory never shrinks. A queued range is decommitted
// at once by virtual_memory.hpp's decommit (which zeroes it, what MADV_DONTNEED's readers expect),
// so every ticket is complete when enqueue returns and wait/flush have nothing to do. The mode is
// reported as kMadvise (synchronous, on the caller's thread), the counters as madvise calls.
// Single-threaded (one instance, one thread): no lock. Hot path: none (segment slow paths only).
#include <cerrno>

#include "kernel_iface/decommit_queue.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

DecommitCounters g_decommit_counters{};
uint64_t g_last_ticket = 0;

}  // namespace

DecommitQueue& DecommitQueue::process() {
  static constinit DecommitQueue queue;
  return queue;
}

Status DecommitQueue::init(DecommitMode mode) {
  if (mode == DecommitMode::kIoUring || mode == DecommitMode::kProcessMadvise)
    return Status::failure(ENOSYS);
  return Status::success();
}

DecommitMode DecommitQueue::active_mode() const {
  return DecommitMode::kMadvise;
}

int DecommitQueue::fallback_reason() const {
  return 0;
}

uint64_t DecommitQueue::enqueue(void* address, size_t bytes) {
  if (decommit(address, bytes).ok()) {
    ++g_decommit_counters.madvise_calls;
    g_decommit_counters.bytes_decommitted += bytes;
  } else {
    ++g_decommit_counters.failures;
  }
  return ++g_last_ticket;
}

void DecommitQueue::flush() {}

bool DecommitQueue::is_complete(uint64_t ticket) {
  (void)ticket;
  return true;
}

void DecommitQueue::wait(uint64_t ticket) {
  (void)ticket;
}

void DecommitQueue::reset_after_fork() {}

DecommitCounters DecommitQueue::counters() const {
  return g_decommit_counters;
}

}  // namespace usgc::kernel
