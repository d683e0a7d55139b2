// kernel_iface/decommit_queue.hpp — batched return of memory to the OS.
//
// The allocator (and the goroutine stack pool) hands ranges it no longer needs to the process's
// DecommitQueue. Three ways to send them to the kernel, chosen once per process:
//   process_madvise  the ranges wait in a batch of up to 64 and go to the kernel in one
//                    process_madvise(2)(MADV_DONTNEED) on ourselves, made by the thread that fills
//                    the batch (or flushes, polls or waits for it). One call flushes the TLB once
//                    for the whole batch: on this project's VM a 60 KiB range cost ~10-20 us
//                    batched against ~270 us per madvise(2) or IORING_OP_MADVISE, each of which
//                    flushes on its own (docs/benchmarks.md). Linux 6.13 or later.
//   io_uring         one submission of IORING_OP_MADVISE operations: the calling thread does not
//                    wait, a kernel worker of this process makes one madvise per range.
//   madvise          madvise(2) on the caller's thread, one call per range.
// The default (auto) takes the first that works: process_madvise, else io_uring (old kernel,
// seccomp filter, io_uring_disabled sysctl, RLIMIT_MEMLOCK or no IORING_OP_MADVISE keep it out),
// else madvise.
//
// The invariant that makes batching safe — the "decommit ticket" rule: a range given to
// enqueue() must not be written (or handed to a user) until is_complete(ticket) is true, or
// wait(ticket) has returned; otherwise the late MADV_DONTNEED would zero live data. The
// allocator keeps the ticket with the page and checks it before reuse.
//
// Thread safety: all members may be called from any thread; an internal spin lock guards the
// ring and the batch (this is never on an allocation fast path). Nothing here calls malloc
// (liburing's setup and submission paths only mmap and make system calls), so it runs inside
// malloc.
// fork(): call reset_after_fork() in the child; operations queued or in flight belong to the
// parent's address space, so every ticket counts as complete in the child.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

enum class DecommitMode : uint8_t {
  kAuto,            // process_madvise, else io_uring, else madvise (the default)
  kIoUring,         // io_uring only; init fails if io_uring is unavailable
  kMadvise,         // synchronous madvise(2) only
  kProcessMadvise,  // process_madvise(2) batches only; init fails if the kernel refuses them
};

struct DecommitCounters {
  uint64_t io_uring_operations;  // MADV_DONTNEED operations completed through io_uring
  uint64_t madvise_calls;        // synchronous madvise(2) calls (fallback or forced)
  uint64_t bytes_decommitted;    // by either path
  uint64_t submissions;          // io_uring_submit batches
  uint64_t failures;             // operations the kernel refused (range stays committed)
  uint64_t batch_calls;          // process_madvise(2) calls that returned a whole batch
  uint64_t batched_operations;   // ranges returned by those calls
};

class DecommitQueue {
 public:
  // The process-wide queue. Initialized lazily on first use with the mode from the environment
  // variable USGC_DECOMMIT=auto|io_uring|madvise|process_madvise (default auto).
  static DecommitQueue& process();

  // (Re)initializes with a mode; finishes every queued operation and tears down any existing
  // ring first. kIoUring and kProcessMadvise return the errno of the failed setup (ENOSYS,
  // EPERM, ...) and leave the queue in madvise mode.
  Status init(DecommitMode mode);

  // The path actually in use: kProcessMadvise, kIoUring or kMadvise (never kAuto).
  DecommitMode active_mode() const;

  // Why the path asked for is not in use: the errno of the last failed setup or submission
  // (ENOSYS, EPERM, EOPNOTSUPP when the kernel lacks IORING_OP_MADVISE, ...): for auto, the
  // process_madvise probe's when io_uring is in use, io_uring's when madvise is; 0 when the
  // first choice is in use or madvise was asked for.
  int fallback_reason() const;

  // Queues MADV_DONTNEED of [address, address+bytes) (page aligned); returns its ticket.
  // Tickets increase from 1; ticket 0 means "nothing queued" and is always complete.
  // In madvise mode the call is done before returning and the ticket is already complete.
  // The batch is submitted when full (64 ranges); flush() submits it at once. In
  // process_madvise mode the submission is the system call itself, made by the thread that
  // filled the batch (tens of microseconds per range at most).
  uint64_t enqueue(void* address, size_t bytes);

  // Submits every queued operation (does not wait for io_uring ones; a process_madvise batch
  // is done when it returns).
  void flush();

  // True when the operation with this ticket (and every earlier one) has completed.
  // Reaps completions without blocking (false when another thread holds the queue); submits the
  // batch if the ticket is still queued, so polling is_complete() alone makes progress.
  bool is_complete(uint64_t ticket);

  // True when the ticket is known complete: one acquire load of the completion watermark. Never
  // takes the lock nor submits (is_complete may make the batch's system call), so a caller that
  // must not make one (a spawning goroutine: a stop waits for it) can choose another range.
  bool is_known_complete(uint64_t ticket) const;

  // Blocks until the ticket is complete (submits first if it is still queued).
  void wait(uint64_t ticket);

  // fork() child side: drops the parent's ring, marks all tickets complete, re-inits lazily.
  void reset_after_fork();

  DecommitCounters counters() const;
};

}  // namespace usgc::kernel
