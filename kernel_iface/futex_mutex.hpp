// kernel_iface/futex_mutex.hpp — the runtime's blocking lock: a three-state futex mutex
// (Drepper, "Futexes Are Tricky", mutex #2) that spins briefly before sleeping.
//
// Used by the goroutine runtime (scheduler, channels, timers) and the collector, not by the
// allocator (whose SpinLocks never sleep in the kernel). Every FutexMutex has a rank in
// kernel_iface/lock_rank.hpp, the one lock order of usgc; debug builds check each acquisition.
// The rank is part of the type (FutexMutex<LockRank::kScheduler>), not a field: the lock stays
// one 32-bit word whose zero bytes are an unlocked mutex, so it can live in memory the user
// zeroed (usgc_waitgroup's opaque words) and be constinit.
//
// States of word_: 0 unlocked, 1 locked with no sleeper, 2 locked and maybe sleepers.
// Acquire/release ordering: lock() is an acquire (exchange/CAS acq), unlock() a release.
// It protects data, never goroutine stacks: holding one across a goroutine switch is allowed
// only in the parking protocol (runtime/goroutine.hpp), where the scheduler releases it.
//
// Code placement: lock/unlock are always inlined and the contended path is one non-template
// function in futex.cpp, so no instance of this template is emitted as a separate (COMDAT)
// function: every instruction of a usgc lock runs inside usgc's own code range, where
// asynchronous safepoints never stop a thread (safepoint/code_ranges.hpp). A goroutine stopped
// or preempted while holding or waiting for a runtime lock would deadlock the P that needs it.
#pragma once

#include <atomic>
#include <cstdint>

#include "kernel_iface/futex.hpp"
#include "kernel_iface/lock_rank.hpp"

namespace usgc::kernel {

template <LockRank kRank>
class FutexMutex {
 public:
  constexpr FutexMutex() = default;
  FutexMutex(const FutexMutex&) = delete;
  FutexMutex& operator=(const FutexMutex&) = delete;

  [[gnu::always_inline]] void lock() {
    check_lock_order_then_record(kRank);
    uint32_t expected = 0;
    if (word_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                      std::memory_order_relaxed))
      return;
    futex_mutex_lock_contended(&word_);
  }

  [[gnu::always_inline]] bool try_lock() {
    uint32_t expected = 0;
    bool taken = word_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                               std::memory_order_relaxed);
    if (taken) record_lock_taken_by_try(kRank);
    return taken;
  }

  [[gnu::always_inline]] void unlock() {
    record_lock_released(kRank);
    // Release: the critical section happens-before the next owner's acquire.
    if (word_.exchange(0, std::memory_order_release) == 2) futex_wake(&word_, 1);
  }

  bool is_locked() const { return word_.load(std::memory_order_relaxed) != 0; }

 private:
  std::atomic<uint32_t> word_{0};
};

template <LockRank kRank>
class FutexMutexGuard {
 public:
  explicit FutexMutexGuard(FutexMutex<kRank>& mutex) : mutex_(mutex) { mutex_.lock(); }
  ~FutexMutexGuard() { mutex_.unlock(); }
  FutexMutexGuard(const FutexMutexGuard&) = delete;
  FutexMutexGuard& operator=(const FutexMutexGuard&) = delete;

 private:
  FutexMutex<kRank>& mutex_;
};

}  // namespace usgc::kernel
