// kernel_iface/random.hpp — secret random numbers for the allocator (free-block marker key).
// getrandom(2) without blocking; falls back to the kernel's AT_RANDOM bytes mixed with the
// clock when getrandom is unavailable (seccomp, very old kernel). Never allocates.
#pragma once

#include <cstdint>

namespace usgc::kernel {

uint64_t random_u64();

}  // namespace usgc::kernel
