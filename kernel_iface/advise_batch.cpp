// kernel_iface/advise_batch.cpp — process_madvise(2) on ourselves (see the .hpp).
//
// State: g_pidfd caches a pidfd_open(2) descriptor of our pid, for kernels before PIDFD_SELF,
// packed with the pid it names ((pid << 32) | fd) in one atomic word, so no lock is needed: a
// forked child finds a different getpid(), opens its own and installs it by CAS (acq_rel: the
// winner's descriptor is complete before others use it); a loser closes its spare.
// g_self_sentinel_works: 1 after PIDFD_SELF_THREAD_GROUP worked, 2 after it failed with EBADF
// (relaxed: each value is self-contained; a racing thread at worst probes once more).
#include "kernel_iface/advise_batch.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "kernel_iface/uncancellable_io.hpp"

// Debian 12's headers predate these; the values are the kernel's ABI.
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace usgc::kernel {
namespace {

constexpr int kPidfdSelfThreadGroup = -10001;  // PIDFD_SELF_THREAD_GROUP (Linux 6.15)
constexpr size_t kMaxRangesPerCall = 512;      // below UIO_MAXIOV (1024)

std::atomic<int> g_self_sentinel_works{0};
std::atomic<uint64_t> g_pidfd{0};  // (pid << 32) | fd; 0: none yet

int advice_value(BatchAdvice advice) {
  switch (advice) {
    case BatchAdvice::kGuardInstall:
      return MADV_GUARD_INSTALL;
    case BatchAdvice::kPopulateWrite:
      return MADV_POPULATE_WRITE;
    case BatchAdvice::kDontNeed:
      return MADV_DONTNEED;
  }
  return -1;  // not reached: every advice is above
}

// A pidfd naming this process (the fallback before PIDFD_SELF), or -errno.
int own_pidfd() {
  const uint64_t pid = static_cast<uint32_t>(::getpid());
  uint64_t cached = g_pidfd.load(std::memory_order_acquire);  // pairs with the CAS below
  if (cached != 0 && (cached >> 32) == pid) return static_cast<int>(cached & 0xffffffffu);
  const long fd = ::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0);
  if (fd < 0) return -errno;
  const uint64_t mine = (pid << 32) | static_cast<uint32_t>(fd);
  if (g_pidfd.compare_exchange_strong(cached, mine, std::memory_order_acq_rel)) {
    if (cached != 0) sys_close(static_cast<int>(cached & 0xffffffffu));  // the parent's, via fork
    return static_cast<int>(fd);
  }
  sys_close(static_cast<int>(fd));  // another thread installed one first
  if ((cached >> 32) == pid) return static_cast<int>(cached & 0xffffffffu);
  return -EAGAIN;
}

// One process_madvise call on this process: the bytes advised, or -errno.
long process_madvise_self(const iovec* vectors, size_t count, int advice) {
  if (g_self_sentinel_works.load(std::memory_order_relaxed) != 2) {
    long done = ::syscall(SYS_process_madvise, kPidfdSelfThreadGroup, vectors, count, advice, 0);
    if (done >= 0) {
      g_self_sentinel_works.store(1, std::memory_order_relaxed);
      return done;
    }
    if (errno != EBADF) return -errno;
    g_self_sentinel_works.store(2, std::memory_order_relaxed);  // a kernel before 6.15
  }
  const int pidfd = own_pidfd();
  if (pidfd < 0) return pidfd;
  const long done = ::syscall(SYS_process_madvise, pidfd, vectors, count, advice, 0);
  return done >= 0 ? done : -errno;
}

// Advises every range; returns 0 or an errno. process_madvise stops at the first range it
// refuses and returns the bytes advised before it (no errno): a call starting at that range then
// reports why (or advises it, if the refusal was transient).
int advise_call(const iovec* vectors, size_t count, int advice) {
  size_t first = 0;
  while (first < count) {
    const long done = process_madvise_self(vectors + first, count - first, advice);
    if (done < 0) return static_cast<int>(-done);
    size_t advised = static_cast<size_t>(done);
    const size_t before = first;
    while (first < count && advised >= vectors[first].iov_len) advised -= vectors[first++].iov_len;
    if (first == before) return EINVAL;  // no progress and no errno: refuse rather than spin
  }
  return 0;
}

}  // namespace

Status advise_batch(std::span<const AdviseRange> ranges, BatchAdvice advice) {
  iovec vectors[kMaxRangesPerCall];
  size_t done = 0;
  while (done < ranges.size()) {
    size_t count = 0;
    while (count < kMaxRangesPerCall && done + count < ranges.size()) {
      vectors[count].iov_base = ranges[done + count].address;
      vectors[count].iov_len = ranges[done + count].bytes;
      ++count;
    }
    const int error = advise_call(vectors, count, advice_value(advice));
    if (error != 0) return Status::failure(error);
    done += count;
  }
  return Status::success();
}

Status advise_one(const AdviseRange& range, BatchAdvice advice) {
  if (::madvise(range.address, range.bytes, advice_value(advice)) != 0)
    return Status::failure(errno);
  return Status::success();
}

}  // namespace usgc::kernel
