// kernel_iface/mapping_lookup.hpp — which mapping of this process holds an address: the kernel's
// own answer (/proc/self/maps), read without allocating.
//
// Used by the heap profile's stack walk (alloc/stack_walk.hpp) to learn, once per thread, the
// bounds of the stack it walks: every read of the walk is checked against them.
//
// Execution context: normal (open, read, close into a stack buffer of 1 KiB); no allocation, no
// lock, so it may run inside malloc. Not on a hot path: a few microseconds to a few hundred for a
// process with many mappings.
#pragma once

#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

struct MappingRange {
  uintptr_t start = 0;  // the first byte
  uintptr_t end = 0;    // one past the last
  bool readable = false;
  bool process_stack = false;  // the main thread's stack (the line's path is "[stack]")
};

// The mapping (one line of /proc/self/maps) that contains `address`. ENOENT when none does,
// EPROTO when a line cannot be parsed, other errno values from open/read.
Result<MappingRange> find_mapping_containing(uintptr_t address);

}  // namespace usgc::kernel
