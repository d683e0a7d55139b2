// kernel_iface/library_call_scope.hpp — marks the stretches where usgc's own code runs inside a
// system library that makes system calls itself (liburing: io_uring_enter is an inline `syscall`
// in liburing, not libc's syscall(3) wrapper).
//
// Why: the asynchronous-safepoint handler (safepoint/async_safepoint.hpp) tells usgc's code from
// the program's by the interrupted program counter, and a blocking call made by usgc from the
// return address of libc's syscall(3) leaf. Inside liburing neither shows that usgc is the caller,
// and usgc may hold its own locks there (the decommit queue's): a thread stopped there left the
// next allocation spinning on that lock without a poll, and the stop waited for it forever.
// Inside a LibraryCallScope the handler leaves the thread alone, as in usgc's own code: it polls
// soon after the call returns (these calls wait microseconds: an madvise to complete).
//
// Invariant: t_library_call_depth is only written by its own thread; the handler reads it on the
// same thread (signal fences order the write before the call and after it).
#pragma once

#include <atomic>
#include <cstdint>

namespace usgc::kernel {

inline thread_local uint32_t t_library_call_depth [[gnu::tls_model("initial-exec")]] = 0;

// Async-signal-safe (initial-exec TLS, no call).
inline bool in_library_call_for_usgc() {
  return t_library_call_depth != 0;
}

class LibraryCallScope {
 public:
  LibraryCallScope() {
    ++t_library_call_depth;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  ~LibraryCallScope() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    --t_library_call_depth;
  }
  LibraryCallScope(const LibraryCallScope&) = delete;
  LibraryCallScope& operator=(const LibraryCallScope&) = delete;
};

}  // namespace usgc::kernel
