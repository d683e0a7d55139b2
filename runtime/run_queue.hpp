// runtime/run_queue.hpp — a P's local run queue: a bounded lock-free ring (Go's runq).
//
// Invariants:
//   - only the owning P pushes (it stores `tail`); the owner and thieves take from `head` by CAS;
//   - tail - head is in [0, kCapacity]; slots in [head, tail) hold runnable goroutines;
//   - a slot is written by the owner before the release store of tail that publishes it, and
//     read by a consumer after an acquire load of tail; the consumer's CAS on head (release)
//     tells the owner the slot may be reused (the owner's acquire load of head).
// Hot path: push and pop are a few instructions, no lock; overflow is the caller's slow path.
#pragma once

#include <atomic>
#include <cstdint>

namespace usgc::runtime {

struct Goroutine;

class LocalRunQueue {
 public:
  static constexpr uint32_t kCapacity = 256;

  // Owner only. False when full (the caller moves half to the global queue).
  bool push(Goroutine* goroutine) {
    // Acquire: pairs with a consumer's release CAS of head (the slot may be reused).
    uint32_t head = head_.load(std::memory_order_acquire);
    uint32_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head >= kCapacity) return false;
    slots_[tail % kCapacity].store(goroutine, std::memory_order_relaxed);
    // Release: pairs with a thief's acquire load of tail (steal_from, size, empty).
    tail_.store(tail + 1, std::memory_order_release);  // publishes the slot
    return true;
  }

  // Owner only.
  Goroutine* pop() {
    for (;;) {
      // Acquire: pairs with a thief's acq_rel CAS of head (steal_from).
      uint32_t head = head_.load(std::memory_order_acquire);
      uint32_t tail = tail_.load(std::memory_order_relaxed);
      if (tail == head) return nullptr;
      Goroutine* goroutine = slots_[head % kCapacity].load(std::memory_order_relaxed);
      // Release: the slot was read before head moves past it (pairs with push's acquire load).
      if (head_.compare_exchange_weak(head, head + 1, std::memory_order_release,
                                      std::memory_order_relaxed))
        return goroutine;
    }
  }

  // Owner only: takes up to half of the queue out (for the global queue on overflow). Returns
  // how many were written to out (at most kCapacity / 2).
  uint32_t take_half(Goroutine** out) {
    for (;;) {
      // Acquire: pairs with a thief's acq_rel CAS of head (steal_from).
      uint32_t head = head_.load(std::memory_order_acquire);
      uint32_t tail = tail_.load(std::memory_order_relaxed);
      uint32_t count = (tail - head) / 2;
      if (count == 0) return 0;
      for (uint32_t i = 0; i < count; ++i)
        out[i] = slots_[(head + i) % kCapacity].load(std::memory_order_relaxed);
      // Release: the slots were read before head moves past them (pairs with push's acquire load).
      if (head_.compare_exchange_weak(head, head + count, std::memory_order_release,
                                      std::memory_order_relaxed))
        return count;
    }
  }

  // Called by the owner of *this (a thief with an empty queue): moves half of victim's goroutines
  // here and returns one of them to run (nullptr when there was nothing to steal).
  Goroutine* steal_from(LocalRunQueue& victim) {
    uint32_t my_tail = tail_.load(std::memory_order_relaxed);
    for (;;) {
      // Acquire: head pairs with the victim's and other thieves' release CASes; tail with the
      // victim's release store in push (the slots below it are written).
      uint32_t head = victim.head_.load(std::memory_order_acquire);
      uint32_t tail = victim.tail_.load(std::memory_order_acquire);
      uint32_t count = tail - head;
      count -= count / 2;
      if (count == 0) return nullptr;
      if (count > kCapacity / 2) continue;  // inconsistent snapshot (head moved); retry
      for (uint32_t i = 0; i < count; ++i) {
        Goroutine* goroutine =
            victim.slots_[(head + i) % kCapacity].load(std::memory_order_relaxed);
        slots_[(my_tail + i) % kCapacity].store(goroutine, std::memory_order_relaxed);
      }
      // acq_rel: the copies above are read before the victim may reuse the slots.
      if (victim.head_.compare_exchange_weak(head, head + count, std::memory_order_acq_rel,
                                             std::memory_order_relaxed)) {
        Goroutine* run_now =
            slots_[(my_tail + count - 1) % kCapacity].load(std::memory_order_relaxed);
        // Release: the copied slots before the new tail (pairs with thieves' acquire load of tail).
        if (count > 1) tail_.store(my_tail + count - 1, std::memory_order_release);
        return run_now;
      }
    }
  }

  bool empty() const {
    // Acquire, both: pair with push's release store of tail and consumers' release CASes of head
    // (a snapshot; callers treat it as a hint or re-check under the protocol in scheduler.cpp).
    return tail_.load(std::memory_order_acquire) == head_.load(std::memory_order_acquire);
  }
  uint32_t size() const {
    // Acquire, both: as empty() (a snapshot).
    return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
  }

 private:
  alignas(64) std::atomic<uint32_t> head_{0};
  std::atomic<uint32_t> tail_{0};
  std::atomic<Goroutine*> slots_[kCapacity]{};
};

}  // namespace usgc::runtime
