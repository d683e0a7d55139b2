// kernel_iface/decommit_queue.hpp — batched, asynchronous return of memory to the OS.
//
// The allocator hands ranges it no longer needs to the process's DecommitQueue; they are sent
// to the kernel as one io_uring submission of IORING_OP_MADVISE(MADV_DONTNEED) operations, so
// the calling thread does not wait for the page-table work. Where io_uring is unavailable
// (old kernel, seccomp filter, io_uring_disabled sysctl, RLIMIT_MEMLOCK on older kernels, or
// IORING_OP_MADVISE not supported) the queue falls back to madvise(2) on the caller's thread.
//
// The invariant that makes asynchrony safe — the "decommit ticket" rule: a range given to
// enqueue() must not be written (or handed to a user) until is_complete(ticket) is true, or
// wait(ticket) has returned; otherwise the late MADV_DONTNEED would zero live data. The
// allocator keeps the ticket with the page and checks it before reuse.
//
// Thread safety: all members may be called from any thread; an internal spin lock guards the
// ring (this is never on an allocation fast path). Nothing here calls malloc (liburing's setup
// and submission paths only mmap and make system calls), so it runs inside malloc.
// fork(): call reset_after_fork() in the child; in-flight operations belong to the parent's
// address space, so every ticket counts as complete in the child.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

enum class DecommitMode : uint8_t {
  kAuto,     // io_uring when it works, madvise otherwise (the default)
  kIoUring,  // io_uring only; init fails if io_uring is unavailable
  kMadvise,  // synchronous madvise(2) only
};

struct DecommitCounters {
  uint64_t io_uring_operations;  // MADV_DONTNEED operations completed through io_uring
  uint64_t madvise_calls;        // synchronous madvise(2) calls (fallback or forced)
  uint64_t bytes_decommitted;    // by either path
  uint64_t submissions;          // io_uring_submit batches
  uint64_t failures;             // operations the kernel refused (range stays committed)
};

class DecommitQueue {
 public:
  // The process-wide queue. Initialized lazily on first use with the mode from the environment
  // variable USGC_DECOMMIT=auto|io_uring|madvise (default auto).
  static DecommitQueue& process();

  // (Re)initializes with a mode; tears down any existing ring first. kIoUring returns the
  // errno of the failed setup (ENOSYS, EPERM, ...) and leaves the queue in madvise mode.
  Status init(DecommitMode mode);

  // The path actually in use: kIoUring or kMadvise (never kAuto).
  DecommitMode active_mode() const;

  // Why io_uring is not in use: the errno of the failed setup or submission (ENOSYS, EPERM,
  // EOPNOTSUPP when the kernel lacks IORING_OP_MADVISE, ...); 0 when io_uring is in use or
  // madvise was asked for.
  int fallback_reason() const;

  // Queues MADV_DONTNEED of [address, address+bytes) (page aligned); returns its ticket.
  // Tickets increase from 1; ticket 0 means "nothing queued" and is always complete.
  // In madvise mode the call is done before returning and the ticket is already complete.
  // The batch is submitted when full; flush() submits it at once.
  uint64_t enqueue(void* address, size_t bytes);

  // Submits every queued operation (does not wait for them).
  void flush();

  // True when the operation with this ticket (and every earlier one) has completed.
  // Reaps completions without blocking (false when another thread holds the queue); submits the
  // batch if the ticket is still queued, so polling is_complete() alone makes progress.
  bool is_complete(uint64_t ticket);

  // Blocks until the ticket is complete (submits first if it is still queued).
  void wait(uint64_t ticket);

  // fork() child side: drops the parent's ring, marks all tickets complete, re-inits lazily.
  void reset_after_fork();

  DecommitCounters counters() const;
};

}  // namespace usgc::kernel
