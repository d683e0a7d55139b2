// gc/mark_stack.hpp — a growable stack of object pointers for marking and publication.
//
// Storage comes from usgc_malloc (the allocator layer below), never from the GC heap, and is
// kept between uses: a collection that marks as many objects as the previous one allocates
// nothing. Owned by one thread at a time; no synchronization.
#pragma once

#include <cstddef>

namespace usgc::gc {

class MarkStack {
 public:
  MarkStack() = default;
  MarkStack(const MarkStack&) = delete;
  MarkStack& operator=(const MarkStack&) = delete;
  ~MarkStack() { release(); }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  void push(void* object) {
    if (__builtin_expect(size_ == capacity_, 0)) grow();
    items_[size_++] = object;
  }
  void* pop() { return items_[--size_]; }
  // As a log (remembered sets, run logs): entries in push order.
  void* at(size_t index) const { return items_[index]; }
  void set(size_t index, void* object) { items_[index] = object; }
  // Moves up to `count` entries from the bottom into `target` (work stealing); returns how many.
  size_t take_bottom(MarkStack& target, size_t count);
  void clear() { size_ = 0; }
  void release();

 private:
  [[gnu::noinline]] void grow();
  void** items_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace usgc::gc
