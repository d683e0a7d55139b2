// kernel_iface/spin_lock.hpp — usgc's one lock, and the table of lock ranks.
//
// usgc locks only on slow paths (segment caches, the abandoned-segment list, the heap pool,
// the io_uring decommit queue). A pthread mutex could allocate or recurse into malloc in some
// configurations; this lock cannot, and it is a single byte, so it can be reset in a fork()
// child. It spins briefly, then yields the CPU: a holder may be preempted (2 cores) or blocked
// in io_uring_enter, and spinning against it would only delay it.
//
// Lock order: every SpinLock has a rank in kernel_iface/lock_rank.hpp, the one table of ranks
// for every usgc lock; debug builds check each acquisition against it.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>

#include "kernel_iface/cpu.hpp"
#include "kernel_iface/lock_rank.hpp"

namespace usgc::kernel {

class SpinLock {
 public:
  explicit constexpr SpinLock(LockRank rank) : rank_(rank) {}

  void lock() {
    check_lock_order_then_record(rank_);
    unsigned spins = 0;
    // Acquire: the critical section sees what the previous holder wrote before unlock().
    while (held_.exchange(true, std::memory_order_acquire)) {
      while (held_.load(std::memory_order_relaxed)) {
        if (++spins < kSpinsBeforeYield) {
          kernel::cpu_relax();
        } else {
          ::sched_yield();
        }
      }
    }
  }
  bool try_lock() {
    if (held_.load(std::memory_order_relaxed) || held_.exchange(true, std::memory_order_acquire))
      return false;
    record_lock_taken_by_try(rank_);
    return true;
  }
  void unlock() {
    record_lock_released(rank_);
    // Release: publishes the critical section's writes to the next acquirer.
    held_.store(false, std::memory_order_release);
  }
  // fork() child only: the other threads that might hold it do not exist there.
  void reset_after_fork() { held_.store(false, std::memory_order_relaxed); }

 private:
  static constexpr unsigned kSpinsBeforeYield = 128;

  std::atomic<bool> held_{false};
  [[maybe_unused]] LockRank rank_;  // read only by the debug rank checks
};

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
