// kernel_iface/thread_usage.cpp — see thread_usage.hpp. Raw system calls and a stack buffer.
#include "kernel_iface/thread_usage.hpp"

#include <sys/resource.h>
#include <time.h>

#include <cerrno>

#include "kernel_iface/process_info.hpp"

namespace usgc::kernel {
namespace {

uint64_t difference(uint64_t before, uint64_t after) {
  return after > before ? after - before : 0;
}

// The second decimal of "run_ns wait_ns timeslices\n"; 0 when absent.
uint64_t second_decimal(const char* text) {
  while (*text >= '0' && *text <= '9') ++text;
  while (*text == ' ') ++text;
  uint64_t value = 0;
  while (*text >= '0' && *text <= '9') value = value * 10 + static_cast<uint64_t>(*text++ - '0');
  return value;
}

}  // namespace

Result<ThreadUsage> read_thread_usage() {
  ThreadUsage usage;
  timespec cpu;
  if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) != 0)
    return Result<ThreadUsage>::failure(errno);
  usage.cpu_ns =
      static_cast<uint64_t>(cpu.tv_sec) * 1000000000u + static_cast<uint64_t>(cpu.tv_nsec);
  rusage counts;
  if (::getrusage(RUSAGE_THREAD, &counts) != 0) return Result<ThreadUsage>::failure(errno);
  usage.minor_faults = static_cast<uint64_t>(counts.ru_minflt);
  usage.major_faults = static_cast<uint64_t>(counts.ru_majflt);
  usage.voluntary_switches = static_cast<uint64_t>(counts.ru_nvcsw);
  usage.involuntary_switches = static_cast<uint64_t>(counts.ru_nivcsw);
  char text[96];
  Result<size_t> read = read_small_file("/proc/thread-self/schedstat", text, sizeof text);
  if (read.ok()) usage.run_queue_wait_ns = second_decimal(text);
  return Result<ThreadUsage>::success(usage);
}

ThreadUsage thread_usage_delta(const ThreadUsage& before, const ThreadUsage& after) {
  ThreadUsage delta;
  delta.cpu_ns = difference(before.cpu_ns, after.cpu_ns);
  delta.run_queue_wait_ns = difference(before.run_queue_wait_ns, after.run_queue_wait_ns);
  delta.minor_faults = difference(before.minor_faults, after.minor_faults);
  delta.major_faults = difference(before.major_faults, after.major_faults);
  delta.voluntary_switches = difference(before.voluntary_switches, after.voluntary_switches);
  delta.involuntary_switches = difference(before.involuntary_switches, after.involuntary_switches);
  return delta;
}

}  // namespace usgc::kernel
