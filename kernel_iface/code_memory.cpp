// kernel_iface/code_memory.cpp — the W^X code mappings of code_memory.hpp.
#include "kernel_iface/code_memory.hpp"

#include <sys/mman.h>

namespace usgc::kernel {

Result<void*> map_code_writable(size_t bytes) {
  if (bytes == 0) return Result<void*>::failure(EINVAL);
  void* address =
      ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (address == MAP_FAILED) return Result<void*>::failure(errno);
  return Result<void*>::success(address);
}

Status seal_code_executable(void* address, size_t bytes) {
  if (::mprotect(address, bytes, PROT_READ | PROT_EXEC) != 0) return Status::failure(errno);
  return Status::success();
}

Status unmap_code(void* address, size_t bytes) {
  if (::munmap(address, bytes) != 0) return Status::failure(errno);
  return Status::success();
}

}  // namespace usgc::kernel
