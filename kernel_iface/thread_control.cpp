// kernel_iface/thread_control.cpp — see thread_control.hpp.
#include "kernel_iface/thread_control.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernel_iface/uncancellable_io.hpp"

namespace usgc::kernel {
namespace {

// Reads a small procfs file into buffer (NUL-terminated). Returns bytes read or -errno.
long read_proc_file(const char* path, char* buffer, size_t capacity) {
  const int fd = sys_open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  long total = 0;
  while (static_cast<size_t>(total) + 1 < capacity) {
    const ssize_t got = sys_read(fd, buffer + total, capacity - 1 - static_cast<size_t>(total));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int error = errno;
      sys_close(fd);
      return -error;
    }
    if (got == 0) break;
    total += got;
  }
  sys_close(fd);
  buffer[total] = '\0';
  return total;
}

}  // namespace

int thread_id() {
  return static_cast<int>(::syscall(SYS_gettid));
}

int process_id() {
  return static_cast<int>(::getpid());
}

Status name_current_thread(const char* name) {
  char comm[16];
  std::snprintf(comm, sizeof comm, "%s", name);
  if (::prctl(PR_SET_NAME, reinterpret_cast<unsigned long>(comm), 0, 0, 0) != 0)
    return Status::failure(errno);
  return Status::success();
}

uintptr_t current_thread_stack_top() {
  uintptr_t low = 0;
  size_t bytes = 0;
  return current_thread_stack(&low, &bytes) ? low + bytes : 0;
}

bool current_thread_stack(uintptr_t* lowest, size_t* bytes) {
  pthread_attr_t attributes;
  if (pthread_getattr_np(pthread_self(), &attributes) != 0) return false;
  void* low = nullptr;
  size_t size = 0;
  int error = pthread_attr_getstack(&attributes, &low, &size);
  pthread_attr_destroy(&attributes);
  if (error != 0) return false;
  *lowest = reinterpret_cast<uintptr_t>(low);
  *bytes = size;
  return true;
}

Status send_signal_to_thread(int tid, int signal_number) {
  if (::syscall(SYS_tgkill, ::getpid(), tid, signal_number) != 0) return Status::failure(errno);
  return Status::success();
}

Result<uint64_t> thread_cpu_time_ns(int tid) {
  // Thread ids are below 2^22 (the kernel's PID_MAX_LIMIT); larger ones do not fit the encoding.
  if (tid <= 0 || tid >= (1 << 28)) return Result<uint64_t>::failure(EINVAL);
  // The kernel's per-thread CPU clock id (what pthread_getcpuclockid builds): the thread id
  // complemented, shifted left by 3, with CPUCLOCK_PERTHREAD (4) and CPUCLOCK_SCHED (2).
  const auto clock = static_cast<clockid_t>((~static_cast<uint32_t>(tid)) << 3 | 6u);
  timespec now{};
  if (clock_gettime(clock, &now) != 0) return Result<uint64_t>::failure(errno);
  return Result<uint64_t>::success(static_cast<uint64_t>(now.tv_sec) * 1'000'000'000u +
                                   static_cast<uint64_t>(now.tv_nsec));
}

Result<ThreadProbe> probe_thread(int tid, ProbeDetail detail) {
  ThreadProbe probe;
  char path[64];
  char text[512];

  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  long got = read_proc_file(path, text, sizeof text);
  if (got < 0) return Result<ThreadProbe>::failure(static_cast<int>(-got));
  // "tid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'.
  const char* close = std::strrchr(text, ')');
  if (close != nullptr && close[1] == ' ' && close[2] != '\0') probe.state = close[2];
  const bool full = detail == ProbeDetail::kFull;
  if (!full && probe.state == 'R') return Result<ThreadProbe>::success(probe);

  if (full) {
    std::snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    got = read_proc_file(path, text, sizeof text);
  }
  if (full && got > 0) {
    size_t length = 0;
    while (length + 1 < sizeof probe.name && text[length] != '\0' && text[length] != '\n') {
      probe.name[length] = text[length];
      ++length;
    }
    probe.name[length] = '\0';
  }

  // "nr a1 .. a6 sp pc" in a system call, "-1 sp pc" blocked elsewhere, "running" otherwise.
  // Needs ptrace access to the thread (always granted within a thread group); left unknown
  // where it is refused.
  std::snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
  got = read_proc_file(path, text, sizeof text);
  if (got > 0 && text[0] != 'r') {
    char* cursor = text;
    const long number = std::strtol(cursor, &cursor, 10);
    uint64_t words[8] = {};
    int count = 0;
    while (count < 8 && *cursor == ' ') {
      words[count++] = std::strtoull(cursor, &cursor, 16);
    }
    if (number >= 0 && count == 8) {
      probe.in_system_call = true;
      probe.system_call = number;
      for (int i = 0; i < 6; ++i) probe.system_call_arguments[i] = words[i];
      probe.instruction_pointer = static_cast<uintptr_t>(words[7]);
    } else if (number < 0 && count >= 2) {
      probe.instruction_pointer = static_cast<uintptr_t>(words[count - 1]);
    }
  }
  return Result<ThreadProbe>::success(probe);
}

long raw_system_call(long number, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                     uint64_t a6) {
  long result;
  register uint64_t r10 __asm__("r10") = a4;
  register uint64_t r8 __asm__("r8") = a5;
  register uint64_t r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(result)
                   : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return result;
}

}  // namespace usgc::kernel
