// kernel_iface/advise_batch.hpp — one system call for the same advice on many scattered ranges
// (process_madvise(2) on the calling process).
//
// Goroutine stacks are carved in batches: each slot needs its guard installed
// (MADV_GUARD_INSTALL) and, to spare the first-touch fault, its top page populated
// (MADV_POPULATE_WRITE). The ranges are a slot apart, so one madvise(2) cannot cover them; one
// process_madvise(2) with an iovec per range can. Linux 6.13 accepts any advice from a process
// on itself; the process is named by PIDFD_SELF_THREAD_GROUP (Linux 6.15) or, before that, by a
// pidfd_open(2) descriptor of our own pid (reopened after a fork). On a kernel without either,
// advise_batch returns the errno (ENOSYS, EINVAL, EPERM, EBADF) and the caller falls back to one
// madvise per range.
//
// Why it matters (measured on this project's VM, docs/benchmarks.md): a first-touch page fault
// costs ~40 us there; populating the same pages in one batched call costs ~3 us each, and a
// guard installed per slot costs one system call each (~5 us) against well under 1 us batched.
// MADV_DONTNEED most of all (the GC block pool returns free blocks' pages, gc/block.cpp): each
// madvise(2) of a 60 KiB range cost ~270 us there, nearly all of it the TLB flush; one
// process_madvise(2) of 256 such ranges cost ~10 us per range (the kernel here, 6.18, flushes
// once per call).
//
// Thread safety: any thread. Not on a hot path (a batch is 64 stack slots). Nothing allocates.
#pragma once

#include <cstddef>
#include <span>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

struct AdviseRange {
  void* address = nullptr;  // page aligned
  size_t bytes = 0;         // a multiple of the page size
};

enum class BatchAdvice : unsigned char {
  kGuardInstall,   // MADV_GUARD_INSTALL (kernel_iface/guard_region.hpp)
  kPopulateWrite,  // MADV_POPULATE_WRITE: fault the pages in writable now (Linux 5.14)
  kDontNeed,       // MADV_DONTNEED: give the pages back; the next touch reads zero pages
};

// Applies advice to every range (any number: split into calls of at most 512 ranges). On failure
// returns the errno of the first range refused (a call that stops part-way is continued from the
// range it stopped at, which reports why); ranges before it may have been advised (every advice
// here is idempotent, so the caller may simply redo the batch one range at a time).
[[nodiscard]] Status advise_batch(std::span<const AdviseRange> ranges, BatchAdvice advice);

// madvise(2) of one range with the same advice (the fallback, and for single ranges).
[[nodiscard]] Status advise_one(const AdviseRange& range, BatchAdvice advice);

}  // namespace usgc::kernel
