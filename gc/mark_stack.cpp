// gc/mark_stack.cpp — see mark_stack.hpp.
#include "gc/mark_stack.hpp"

#include <cstring>

#include "kernel_iface/fatal.hpp"
#include "usgc/usgc.h"

namespace usgc::gc {

void MarkStack::grow() {
  size_t capacity = capacity_ == 0 ? 1024 : capacity_ * 2;
  auto* items = static_cast<void**>(usgc_realloc(items_, capacity * sizeof(void*)));
  USGC_CHECK(items != nullptr, "gc: out of memory growing a mark stack to %zu entries", capacity);
  items_ = items;
  capacity_ = capacity;
}

size_t MarkStack::take_bottom(MarkStack& target, size_t count) {
  if (count > size_) count = size_;
  for (size_t i = 0; i < count; ++i) target.push(items_[i]);
  std::memmove(items_, items_ + count, (size_ - count) * sizeof(void*));
  size_ -= count;
  return count;
}

void MarkStack::release() {
  usgc_free(items_);
  items_ = nullptr;
  size_ = capacity_ = 0;
}

}  // namespace usgc::gc
