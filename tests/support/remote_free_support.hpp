// tests/support/remote_free_support.hpp — cross-thread frees the alloc tests of remote frees share
// (tests/alloc/remote_free_batch_test.cpp, tests/alloc/remote_free_onto_page_test.cpp).
#pragma once

#include <atomic>
#include <thread>

#include "tests/support/death_test_support.hpp"
#include "usgc/usgc.h"

namespace usgc_test {

// Gives the calling thread a heap of its own (16-byte class), so its remote frees take the paths
// of a thread with a heap (onto the page, or batched).
inline void take_a_heap() {
  usgc_free(usgc_malloc(16));
}

// Another thread, with a heap of its own, frees `before` (if not null) and `p` (blocks of the
// calling thread's heap); then, while that thread still lives (its batches unposted), the calling
// thread frees `p` again: a double free, which must be reported on this second call.
inline void free_on_another_thread_then_here(void* p, void* before = nullptr) {
  std::atomic<bool> freed{false}, done{false};
  std::thread freer([&] {
    take_a_heap();
    if (before != nullptr) usgc_free(before);
    usgc_free(p);
    freed.store(true);
    while (!done.load()) std::this_thread::yield();
  });
  while (!freed.load()) std::this_thread::yield();
  usgc_free(launder(p));
  done.store(true);
  freer.join();
}

}  // namespace usgc_test
