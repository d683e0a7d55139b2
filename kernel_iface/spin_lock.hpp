// kernel_iface/spin_lock.hpp — usgc's one lock, and the table of lock ranks.
//
// usgc locks only on slow paths (segment caches, the abandoned-segment list, the heap pool,
// the io_uring decommit queue). A pthread mutex could allocate or recurse into malloc in some
// configurations; this lock cannot, and it is a single byte, so it can be reset in a fork()
// child. It spins briefly, then yields the CPU: a holder may be preempted (2 cores) or blocked
// in io_uring_enter, and spinning against it would only delay it.
//
// Lock order (Go's lockrank, HotSpot's mutex ranks): a thread may take a lock only if every
// lock it holds has a lower rank. Debug builds (USGC_DEBUG) check each acquisition.
//   rank  lock                         guards
//   1     kHeapPool                    the heap registry and the pool of unused heaps
//   2     kAbandonedSegments           the list of segments whose thread exited
//   3     kSegmentCache                the per-node caches of empty segments
//   4     kDecommitQueue               the io_uring ring (a leaf: takes no other lock)
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>

#include "kernel_iface/fatal.hpp"

namespace usgc::kernel {

enum class LockRank : uint8_t {
  kHeapPool = 1,
  kAbandonedSegments = 2,
  kSegmentCache = 3,
  kDecommitQueue = 4
};

#if defined(USGC_DEBUG) && USGC_DEBUG
// Bit set of ranks the calling thread holds (debug builds only).
inline thread_local uint32_t t_held_lock_ranks = 0;
#endif

class SpinLock {
 public:
  explicit constexpr SpinLock(LockRank rank) : rank_(rank) {}

  void lock() {
    check_rank_before_acquire();
    unsigned spins = 0;
    // Acquire: the critical section sees what the previous holder wrote before unlock().
    while (held_.exchange(true, std::memory_order_acquire)) {
      while (held_.load(std::memory_order_relaxed)) {
        if (++spins < kSpinsBeforeYield) {
          __builtin_ia32_pause();
        } else {
          ::sched_yield();
        }
      }
    }
  }
  bool try_lock() {
    if (held_.load(std::memory_order_relaxed) || held_.exchange(true, std::memory_order_acquire))
      return false;
    check_rank_before_acquire();
    return true;
  }
  void unlock() {
#if defined(USGC_DEBUG) && USGC_DEBUG
    t_held_lock_ranks &= ~(1u << static_cast<unsigned>(rank_));
#endif
    // Release: publishes the critical section's writes to the next acquirer.
    held_.store(false, std::memory_order_release);
  }
  // fork() child only: the other threads that might hold it do not exist there.
  void reset_after_fork() {
    held_.store(false, std::memory_order_relaxed);
  }

 private:
  static constexpr unsigned kSpinsBeforeYield = 128;

  void check_rank_before_acquire() {
#if defined(USGC_DEBUG) && USGC_DEBUG
    uint32_t bit = 1u << static_cast<unsigned>(rank_);
    USGC_CHECK(
        t_held_lock_ranks < bit,
        "lock order: taking lock of rank %u while holding ranks 0x%x (see alloc/spin_lock.hpp)",
        static_cast<unsigned>(rank_), t_held_lock_ranks);
    t_held_lock_ranks |= bit;
#endif
  }

  std::atomic<bool> held_{false};
  [[maybe_unused]] LockRank rank_;  // read only by the debug rank checks
};

// fork() child: the locks were reset; the forking thread holds none of them any more.
inline void forget_held_locks_after_fork() {
#if defined(USGC_DEBUG) && USGC_DEBUG
  t_held_lock_ranks = 0;
#endif
}

class SpinLockGuard {
 public:
  explicit SpinLockGuard(SpinLock& lock) : lock_(lock) { lock_.lock(); }
  ~SpinLockGuard() { lock_.unlock(); }
  SpinLockGuard(const SpinLockGuard&) = delete;
  SpinLockGuard& operator=(const SpinLockGuard&) = delete;

 private:
  SpinLock& lock_;
};

}  // namespace usgc::kernel
