// kernel_iface/decommit_probe.cpp — the decommit queue's proofs that a path works (see the .hpp).
//
// State: none (each probe maps, writes and unmaps its own scratch page). Nothing allocates: the
// io_uring probe reads into a stack buffer (io_uring_get_probe_ring would calloc).
#include "kernel_iface/decommit_probe.hpp"

#include <liburing.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>

#include "kernel_iface/advise_batch.hpp"
#include "kernel_iface/library_call_scope.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

constexpr unsigned kProbeOperations = 256;  // io_uring_probe::ops_len is a u8
constexpr uint64_t kScratchUserData = 0;    // never a ticket of the queue

// IORING_REGISTER_PROBE into a stack buffer (io_uring_get_probe_ring would calloc).
int probe_madvise_support(io_uring& ring) {
  alignas(io_uring_probe) unsigned char
      storage[sizeof(io_uring_probe) + kProbeOperations * sizeof(io_uring_probe_op)] = {};
  auto* probe = reinterpret_cast<io_uring_probe*>(storage);
  int result = io_uring_register_probe(&ring, probe, kProbeOperations);
  if (result < 0) return -result;  // kernels before 5.6 have neither the probe nor MADVISE
  if (probe->ops_len <= IORING_OP_MADVISE ||
      (probe->ops[IORING_OP_MADVISE].flags & IO_URING_OP_SUPPORTED) == 0) {
    return EOPNOTSUPP;
  }
  return 0;
}

// End-to-end proof: MADV_DONTNEED of a written scratch page through the ring zeroes it.
int try_scratch_decommit(io_uring& ring) {
  size_t page = os_page_size();
  Result<void*> scratch = map_aligned(page, page);
  if (!scratch.ok()) return scratch.error();
  auto* first_byte = static_cast<volatile unsigned char*>(scratch.value());
  *first_byte = 1;
  int error = 0;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);  // a fresh ring has room
  io_uring_prep_madvise(sqe, scratch.value(), static_cast<off_t>(page), MADV_DONTNEED);
  io_uring_sqe_set_data64(sqe, kScratchUserData);
  LibraryCallScope in_liburing;  // the probe's submission and wait
  int submitted = io_uring_submit(&ring);
  if (submitted != 1) {
    error = submitted < 0 ? -submitted : EIO;
  } else {
    io_uring_cqe* cqe = nullptr;
    int result;
    do {
      result = io_uring_wait_cqe(&ring, &cqe);
    } while (result == -EINTR);
    if (result < 0) {
      error = -result;
    } else {
      if (cqe->res < 0) {
        error = -cqe->res;  // EINVAL: the kernel does not know IORING_OP_MADVISE
      } else if (*first_byte != 0) {
        error = EIO;
      }
      io_uring_cqe_seen(&ring, cqe);
    }
  }
  // Our own fresh page: unmap fails only by a programming error, and the page is harmless then.
  (void)unmap(scratch.value(), page);
  return error;
}

}  // namespace

int probe_ring_madvise(io_uring& ring) {
  const int error = probe_madvise_support(ring);
  return error != 0 ? error : try_scratch_decommit(ring);
}

int probe_batch_decommit() {
  size_t page = os_page_size();
  Result<void*> scratch = map_aligned(page, page);
  if (!scratch.ok()) return scratch.error();
  auto* first_byte = static_cast<volatile unsigned char*>(scratch.value());
  *first_byte = 1;
  const AdviseRange range{scratch.value(), page};
  Status status = advise_batch({&range, 1}, BatchAdvice::kDontNeed);
  int error = status.ok() ? (*first_byte != 0 ? EIO : 0) : status.error();
  // Our own fresh page: unmap fails only by a programming error, and the page is harmless then.
  (void)unmap(scratch.value(), page);
  return error;
}

}  // namespace usgc::kernel
