// tests/jitgen/executable_code_blob.hpp — a tiny hand-assembled x86-64 function placed in
// executable memory through kernel_iface/code_memory (written while read-write, then sealed
// read+execute: never writable and executable at once), for tests that need code no compiler
// produced.
//
// The function is `int call_and_add_one(int (*callback)(int), int value)`: a frame-pointer frame
// that calls callback(value) and returns its result + 1. Its return address into the blob lets
// the callback see (and a debugger name) the announced code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernel_iface/code_memory.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::test {

inline constexpr uint8_t kCallAndAddOneCode[] = {
    0x55,              // push %rbp
    0x48, 0x89, 0xe5,  // mov %rsp,%rbp
    0x48, 0x89, 0xf8,  // mov %rdi,%rax
    0x89, 0xf7,        // mov %esi,%edi
    0xff, 0xd0,        // call *%rax
    0x83, 0xc0, 0x01,  // add $1,%eax
    0x5d,              // pop %rbp
    0xc3,              // ret
};

using CallAndAddOne = int (*)(int (*callback)(int), int value);

class ExecutableCodeBlob {
 public:
  // Copies `copies` instances of the function, `stride` bytes apart, into one fresh page.
  // ok() tells whether the mapping and protection worked.
  explicit ExecutableCodeBlob(size_t copies = 1, size_t stride = 32) {
    page_bytes_ = kernel::os_page_size();
    if (copies * stride > page_bytes_ || stride < sizeof(kCallAndAddOneCode)) return;
    kernel::Result<void*> mapped = kernel::map_code_writable(page_bytes_);
    if (!mapped.ok()) return;
    page_ = static_cast<uint8_t*>(mapped.value());
    std::memset(page_, 0xcc, page_bytes_);  // int3 between the functions
    for (size_t i = 0; i < copies; ++i) {
      std::memcpy(page_ + i * stride, kCallAndAddOneCode, sizeof(kCallAndAddOneCode));
    }
    stride_ = stride;
    ok_ = kernel::seal_code_executable(page_, page_bytes_).ok();
  }
  ~ExecutableCodeBlob() {
    if (page_ != nullptr) (void)kernel::unmap_code(page_, page_bytes_);
  }
  ExecutableCodeBlob(const ExecutableCodeBlob&) = delete;
  ExecutableCodeBlob& operator=(const ExecutableCodeBlob&) = delete;

  bool ok() const { return ok_; }
  const void* start(size_t copy = 0) const { return page_ + copy * stride_; }
  static constexpr size_t size_bytes() { return sizeof(kCallAndAddOneCode); }
  CallAndAddOne function(size_t copy = 0) const {
    return reinterpret_cast<CallAndAddOne>(const_cast<uint8_t*>(page_ + copy * stride_));
  }

 private:
  uint8_t* page_ = nullptr;
  size_t page_bytes_ = 0;
  size_t stride_ = 0;
  bool ok_ = false;
};

}  // namespace usgc::test
