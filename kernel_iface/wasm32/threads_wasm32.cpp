// kernel_iface/wasm32/threads_wasm32.cpp — futex.hpp and cpu.hpp on the WebAssembly back end
// (wasm32-wasi, built only by tools/build-wasm-runtime.sh).
//
// One instance, one thread, one CPU: there is nobody to wait for and nobody to wake.
//   futex_wait             returns at once when the word already differs; a wait on a word
//                          that still holds `expected` could never end (no other thread can
//                          change it), so it stops the program with the word's address instead
//                          of hanging: it means a lock or a handshake was left held;
//   futex_wake             wakes nobody (0);
//   futex_mutex_lock_contended  the mutex is taken by this same thread: the same fatal stop
//                          (FutexMutex is not recursive), since a single thread cannot ever
//                          see it released;
//   online/configured_cpu_count 1; yield_cpu nothing; name_current_thread nothing
//                          (thread_control.hpp);
//   pthread keys                the values of pthread.h's keys (their one thread).
// So the layers above run unchanged with one P, one marker and every lock uncontended; a lock
// costs its uncontended atomic exchange (an ordinary load/store pair in wasm without threads).
#include <cerrno>

#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/thread_control.hpp"
#include "pthread.h"

namespace usgc::kernel {

int futex_wait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ns) {
  if (word->load(std::memory_order_relaxed) != expected) return 0;
  if (timeout_ns != 0) return ETIMEDOUT;  // nobody can change it meanwhile
  fatal(
      "usgc (wasm32): futex_wait on %p would wait forever: one thread, and the word still "
      "holds %u",
      static_cast<void*>(word), expected);
}

int futex_wake(std::atomic<uint32_t>* word, int count) {
  (void)word;
  (void)count;
  return 0;
}

void futex_mutex_lock_contended(std::atomic<uint32_t>* word) {
  uint32_t free_word = 0;
  if (word->compare_exchange_strong(free_word, 1, std::memory_order_acquire)) return;
  fatal("usgc (wasm32): the lock at %p is already held by the only thread (a lock taken twice)",
        static_cast<void*>(word));
}

uint32_t online_cpu_count() {
  return 1;
}

uint32_t configured_cpu_count() {
  return 1;
}

void yield_cpu() {}

Status name_current_thread(const char*) {
  return Status::success();
}

}  // namespace usgc::kernel

// pthread.h's thread-specific keys (kernel_iface/wasm32/include/pthread.h): one thread's values.
extern "C" {
void* usgc_wasm32_pthread_key_values[USGC_WASM32_PTHREAD_KEYS];
unsigned usgc_wasm32_pthread_key_count = 0;
}
