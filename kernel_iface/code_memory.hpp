// kernel_iface/code_memory.hpp — memory for JIT-compiled code, never writable and executable at
// once (W^X).
//
// Life of a code mapping:
//   map_code_writable(bytes)   a fresh private anonymous mapping, PROT_READ|PROT_WRITE (zero);
//   seal_code_executable(...)  mprotect PROT_READ|PROT_EXEC: from here on nothing writes it;
//   unmap_code(...)            munmap, when the module that owns the code is unloaded.
// There is no way back from executable to writable: a module is compiled once, then sealed.
// Not on any hot path (compilation and unloading only).
#pragma once

#include <cstddef>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

// `bytes` is rounded up to whole OS pages by the caller (os_page_size()); EINVAL for 0.
Result<void*> map_code_writable(size_t bytes);
Status seal_code_executable(void* address, size_t bytes);
Status unmap_code(void* address, size_t bytes);

}  // namespace usgc::kernel
