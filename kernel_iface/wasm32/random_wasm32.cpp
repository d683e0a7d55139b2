// kernel_iface/wasm32/random_wasm32.cpp — random.hpp on the WebAssembly back end (wasm32-wasi,
// built only by tools/build-wasm-runtime.sh): WASI's random_get through wasi-libc's
// getentropy; where the host refuses it, the clock stirred with a counter (splitmix64's
// finalizer), as the native fallback does. Not on a hot path (process start, profile sampling).
#include <unistd.h>

#include "kernel_iface/clock.hpp"
#include "kernel_iface/random.hpp"

namespace usgc::kernel {

uint64_t random_u64() {
  uint64_t value = 0;
  if (::getentropy(&value, sizeof(value)) == 0) return value;
  static uint64_t counter = 0;
  uint64_t z = monotonic_ns() ^ (++counter * 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace usgc::kernel
