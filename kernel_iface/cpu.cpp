// kernel_iface/cpu.cpp — CPU counts and yielding (see cpu.hpp).
#include "kernel_iface/cpu.hpp"

#include <sched.h>
#include <unistd.h>

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

void yield_cpu() {
  ::sched_yield();
}

}  // namespace usgc::kernel
