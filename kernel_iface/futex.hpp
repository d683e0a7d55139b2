// kernel_iface/futex.hpp — the futex(2) wait/wake pair every blocking primitive of the runtime
// (parked worker threads, safepoint waits, the timer thread) is built on.
//
// Semantics (Linux FUTEX_WAIT_PRIVATE / FUTEX_WAKE_PRIVATE on a 32-bit word):
//   futex_wait(word, expected[, timeout]) sleeps only while *word == expected; it may return
//   early (spurious wake-up, EINTR, EAGAIN when the word already differs), so every caller loops
//   on its own condition. futex_wake(word, n) wakes up to n sleepers of that word.
// The word must be a std::atomic<uint32_t> (lock-free, same object representation as uint32_t,
// which the static_assert below checks). Private futexes: never shared between processes.
// Signal-safe: futex_wake may be called from a signal handler.
#pragma once

#include <atomic>
#include <cstdint>

namespace usgc::kernel {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "futex words are plain 32-bit words");

// Sleeps while *word == expected. Returns 0 when woken (or the word differed / spurious),
// ETIMEDOUT when timeout_ns (relative, CLOCK_MONOTONIC; 0 = forever) passed.
int futex_wait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ns = 0);

// Wakes up to `count` threads sleeping on word; returns how many were woken.
int futex_wake(std::atomic<uint32_t>* word, int count);

// FutexMutex's contended acquisition (futex_mutex.hpp): spins briefly, then sleeps in state 2
// until it takes the word. Out of line and not a template, so it lies in usgc's code range.
void futex_mutex_lock_contended(std::atomic<uint32_t>* word);

inline int futex_wake_all(std::atomic<uint32_t>* word) {
  return futex_wake(word, 0x7fffffff);
}

}  // namespace usgc::kernel
