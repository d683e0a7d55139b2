// kernel_iface/cpu.cpp — CPU counts and yielding (see cpu.hpp).
#include "kernel_iface/cpu.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/rseq.h>
#include <unistd.h>

#include <atomic>

#include "kernel_iface/uncancellable_io.hpp"

namespace usgc::kernel {

namespace {
uint32_t cpus_or_one(long count) {
  return count > 0 ? static_cast<uint32_t>(count) : 1;
}
}  // namespace

uint32_t online_cpu_count() {
  return cpus_or_one(::sysconf(_SC_NPROCESSORS_ONLN));
}

uint32_t configured_cpu_count() {
  return cpus_or_one(::sysconf(_SC_NPROCESSORS_CONF));
}

uint32_t runnable_thread_count() {
  // The descriptor: opened once (a racing opener closes its own and uses the winner's), kept for
  // the process's life (close-on-exec). -1: not opened yet; -2: cannot be opened.
  static std::atomic<int> loadavg_fd{-1};
  int fd = loadavg_fd.load(std::memory_order_acquire);  // pairs with the CAS below
  if (fd == -2) return 0;
  if (fd == -1) {
    int opened = sys_open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    int expected = -1;
    // Acq_rel: publishes the descriptor to the acquire load above.
    if (!loadavg_fd.compare_exchange_strong(expected, opened >= 0 ? opened : -2,
                                            std::memory_order_acq_rel)) {
      if (opened >= 0) sys_close(opened);
      fd = expected;
    } else {
      fd = opened >= 0 ? opened : -2;
    }
    if (fd < 0) return 0;
  }
  char text[128];
  ssize_t length = sys_pread(fd, text, sizeof text - 1, 0);
  if (length <= 0) return 0;
  text[length] = '\0';
  // "0.50 0.40 0.30 3/456 789": the number before the slash.
  const char* slash = nullptr;
  for (ssize_t i = 0; i < length; ++i) {
    if (text[i] == '/') {
      slash = text + i;
      break;
    }
  }
  if (slash == nullptr) return 0;
  const char* digits = slash;
  while (digits > text && digits[-1] >= '0' && digits[-1] <= '9') --digits;
  uint32_t count = 0;
  for (const char* c = digits; c < slash; ++c) count = count * 10 + static_cast<uint32_t>(*c - '0');
  return count;
}

const uint32_t* current_thread_cpu_word() {
  if (__rseq_size == 0) return nullptr;  // glibc registered no area (tunable off, old kernel)
  const auto* area = reinterpret_cast<const struct rseq*>(
      static_cast<const char*>(__builtin_thread_pointer()) + __rseq_offset);
  // Negative while unregistered (RSEQ_CPU_ID_UNINITIALIZED, RSEQ_CPU_ID_REGISTRATION_FAILED).
  if (static_cast<int32_t>(cpu_word_value(&area->cpu_id)) < 0) return nullptr;
  return &area->cpu_id;
}

uint32_t current_cpu() {
  if (const uint32_t* word = current_thread_cpu_word()) return cpu_word_value(word);
  const int cpu = ::sched_getcpu();
  return cpu >= 0 ? static_cast<uint32_t>(cpu) : 0;
}

void yield_cpu() {
  ::sched_yield();
}

}  // namespace usgc::kernel
