// kernel_iface/decommit_probe.hpp — proofs, made once when the decommit queue is set up, that a
// way of returning memory works here: the queue uses a path only after a written scratch page
// sent through it reads zero (a kernel, sandbox or seccomp filter may refuse any of them, or
// accept the call and do nothing).
//
// Thread safety: any thread; the queue calls them under its lock. Nothing allocates.
#pragma once

struct io_uring;

namespace usgc::kernel {

// IORING_OP_MADVISE on this ring: supported by the kernel (IORING_REGISTER_PROBE) and zeroing a
// scratch page end to end. 0, or the errno that keeps the ring out (EOPNOTSUPP: no
// IORING_OP_MADVISE; EIO: the page kept its data). The ring must be fresh (its SQ empty).
int probe_ring_madvise(io_uring& ring);

// MADV_DONTNEED through process_madvise(2) on ourselves (advise_batch.hpp) zeroes a scratch page:
// 0, or the errno that keeps batches out (ENOSYS, EINVAL before Linux 6.13, EPERM, ...).
int probe_batch_decommit();

}  // namespace usgc::kernel
