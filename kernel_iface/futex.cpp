// kernel_iface/futex.cpp — futex(2) through syscall(2); see futex.hpp.
#include "kernel_iface/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace usgc::kernel {

int futex_wait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ns) {
  struct timespec timeout;
  struct timespec* timeout_pointer = nullptr;
  if (timeout_ns != 0) {
    timeout.tv_sec = static_cast<time_t>(timeout_ns / 1000000000u);
    timeout.tv_nsec = static_cast<long>(timeout_ns % 1000000000u);
    timeout_pointer = &timeout;
  }
  int saved_errno = errno;
  long result = syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
                        timeout_pointer, nullptr, 0);
  int error = result == 0 ? 0 : errno;
  errno = saved_errno;
  return error == ETIMEDOUT ? ETIMEDOUT : 0;
}

int futex_wake(std::atomic<uint32_t>* word, int count) {
  int saved_errno = errno;
  long result = syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count,
                        nullptr, nullptr, 0);
  errno = saved_errno;
  return result < 0 ? 0 : static_cast<int>(result);
}

void futex_mutex_lock_contended(std::atomic<uint32_t>* word) {
  for (int spin = 0; spin < 100; ++spin) {
    __builtin_ia32_pause();
    uint32_t expected = 0;
    if (word->load(std::memory_order_relaxed) == 0 &&
        word->compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                      std::memory_order_relaxed))
      return;
  }
  // Mark "maybe sleepers" and sleep until we take it in state 2.
  while (word->exchange(2, std::memory_order_acquire) != 0) futex_wait(word, 2);
}

}  // namespace usgc::kernel
