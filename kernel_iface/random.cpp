// kernel_iface/random.cpp — see random.hpp.
#include "kernel_iface/random.hpp"

#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "kernel_iface/clock.hpp"

namespace usgc::kernel {

uint64_t random_u64() {
  uint64_t value = 0;
  // The system call, not libc's getrandom: that one is a cancellation point, and a heap's first
  // malloc on a thread draws its key here (kernel_iface/uncancellable_io.hpp says why).
  if (::syscall(SYS_getrandom, &value, sizeof(value), GRND_NONBLOCK) ==
      static_cast<long>(sizeof(value)))
    return value;
  // Fallback: the 16 random bytes the kernel gives every process, stirred with the clock
  // (splitmix64 finalizer) so two calls differ.
  static uint64_t counter = 0;
  uint64_t auxv_random = 0;
  if (const void* bytes = reinterpret_cast<const void*>(::getauxval(AT_RANDOM))) {
    std::memcpy(&auxv_random, bytes, sizeof(auxv_random));
  }
  uint64_t z = auxv_random ^ monotonic_ns() ^ (++counter * 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace usgc::kernel
