// tests/kernel_iface/decommit_test_support.hpp — what the decommit queue's tests share: page
// mappings to fill and check, and the death-test child's check macro.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "kernel_iface/decommit_queue.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {

inline DecommitQueue& queue() {
  return DecommitQueue::process();
}

// A private anonymous mapping of whole pages, unmapped at scope exit.
class Pages {
 public:
  explicit Pages(size_t count) : count_(count), bytes_(count * os_page_size()) {
    Result<void*> mapping = map_aligned(bytes_, os_page_size());
    if (mapping.ok()) base_ = static_cast<unsigned char*>(mapping.value());
  }
  ~Pages() {
    if (base_ != nullptr) {
      EXPECT_TRUE(unmap(base_, bytes_).ok());
    }
  }
  Pages(const Pages&) = delete;
  Pages& operator=(const Pages&) = delete;

  bool ok() const { return base_ != nullptr; }
  unsigned char* page(size_t index) const { return base_ + index * os_page_size(); }
  size_t count() const { return count_; }
  size_t bytes() const { return bytes_; }

 private:
  size_t count_;
  size_t bytes_;
  unsigned char* base_ = nullptr;
};

inline void fill(void* address, size_t bytes, unsigned char value) {
  std::memset(address, value, bytes);
}

inline bool is_all_zero(const void* address, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(address);
  return std::all_of(p, p + bytes, [](unsigned char c) { return c == 0; });
}

}  // namespace usgc::kernel

// Child helper: prints why and exits non-zero when a check fails.
#define CHILD_REQUIRE(condition)                                                        \
  do {                                                                                  \
    if (!(condition)) {                                                                 \
      std::fprintf(stderr, "child check failed: %s (line %d)\n", #condition, __LINE__); \
      std::fflush(stderr);                                                              \
      std::_Exit(1);                                                                    \
    }                                                                                   \
  } while (0)
