// tests/preload/cancellation_test.cpp — malloc and free under LD_PRELOAD are no cancellation
// points, as glibc's are not: a deferred cancel pending on a thread acts at the program's own
// cancellation point, never inside the allocator (kernel_iface/uncancellable_io.hpp).
//
// usgc's slow paths read /proc and create the statistics block's shared-memory file about every
// 100 ms, from whichever thread allocates; through libc's open/read/close those were cancellation
// points, and a thread cancelled while it allocated ended inside malloc (unwound from the
// statistics block's open of /dev/shm, under its lock). Holds on glibc as well.
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

namespace {

struct Allocator {
  std::atomic<bool> go{false};
  std::atomic<bool> allocated_to_the_end{false};
};

uint64_t monotonic_ms() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000 + static_cast<uint64_t>(now.tv_nsec) / 1000000;
}

// Waits for the cancel to be pending, then allocates and frees mixed sizes for half a second (the
// slow paths' periodic duties come due several times), and only then reaches a cancellation
// point of its own.
void* allocate_with_a_cancel_pending(void* argument) {
  auto* allocator = static_cast<Allocator*>(argument);
  while (!allocator->go.load()) {
  }
  void* kept[64] = {};
  uint32_t x = 1;
  const uint64_t end_ms = monotonic_ms() + 500;
  while (monotonic_ms() < end_ms) {
    for (int i = 0; i < 1000; ++i) {
      x = x * 1103515245u + 12345u;
      const uint32_t slot = (x >> 8) % 64;
      free(kept[slot]);
      kept[slot] = malloc(16 + (x >> 16) % 4000);
    }
  }
  for (void* block : kept) free(block);
  allocator->allocated_to_the_end.store(true);
  pthread_testcancel();
  return nullptr;  // not cancelled: the test fails on the return value
}

TEST(Cancellation, APendingCancelActsAtTheProgramsCancellationPointNotInsideMalloc) {
  Allocator allocator;
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, nullptr, allocate_with_a_cancel_pending, &allocator), 0);
  ASSERT_EQ(pthread_cancel(thread), 0);
  allocator.go.store(true);
  void* result = nullptr;
  ASSERT_EQ(pthread_join(thread, &result), 0);
  EXPECT_EQ(result, PTHREAD_CANCELED);
  EXPECT_TRUE(allocator.allocated_to_the_end.load())
      << "the thread was cancelled inside malloc or free";
  void* after = malloc(100);  // and the allocator still works
  EXPECT_NE(after, nullptr);
  free(after);
}

}  // namespace
