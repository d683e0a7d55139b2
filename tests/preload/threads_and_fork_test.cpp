// tests/preload/threads_and_fork_test.cpp — malloc across thread exit and fork() under LD_PRELOAD.
//
// The preload library must stay correct when a thread that allocated is gone (its cache handed
// back; its blocks freed later by another thread) and in the child of a fork() taken while other
// threads were inside malloc (pthread_atfork: the child can allocate at once, no lock left held).
// Every test here holds on glibc as well.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>
#include "tests/support/child_process.hpp"
#include "tests/support/memory_patterns.hpp"

namespace {

using usgc_test::fill_pattern;
using usgc_test::pattern_byte;

inline void escape(void* pointer) {
  asm volatile("" : : "g"(pointer) : "memory");
}

bool has_pattern(const void* pointer, size_t bytes, uint64_t tag) {
  const auto* p = static_cast<const uint8_t*>(pointer);
  for (size_t i = 0; i < bytes; ++i)
    if (p[i] != pattern_byte(tag, i)) return false;
  return true;
}

struct Block {
  void* pointer;
  size_t size;
  uint64_t tag;
};

// Mostly small sizes, with a medium and a large block now and then (bounded memory use).
size_t size_for(size_t index) {
  static const size_t kSizes[] = {8, 24, 64, 100, 256, 777, 2048, 5000, 30000};
  if (index % 499 == 0) return size_t{1} << 20;
  if (index % 53 == 0) return 150000;
  return kSizes[index % (sizeof kSizes / sizeof kSizes[0])];
}

using usgc_test::wait_for_child;

// The child's work right after fork: allocate and free at once (small, medium, large, huge),
// with content checks; the exit status says which step failed.
[[noreturn]] void child_allocates_and_exits() {
  void* blocks[64];
  for (int i = 0; i < 64; ++i) {
    size_t size = size_for(static_cast<size_t>(i));
    blocks[i] = malloc(size);
    if (blocks[i] == nullptr) _exit(10);
    fill_pattern(blocks[i], size, static_cast<uint64_t>(i));
  }
  void* huge = malloc(size_t{12} << 20);
  if (huge == nullptr) _exit(11);
  memset(huge, 0x77, size_t{12} << 20);
  void* grown = realloc(blocks[0], 100000);
  if (grown == nullptr) _exit(12);
  blocks[0] = grown;
  for (int i = 1; i < 64; ++i)
    if (!has_pattern(blocks[i], size_for(static_cast<size_t>(i)), static_cast<uint64_t>(i)))
      _exit(13);
  for (void* p : blocks) free(p);
  free(huge);
// A thread in the child, but not under TSan (it forbids threads after a multi-threaded fork)
// or ASan (its own allocator, used by pthread_create, is not fork-safe and may be locked).
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  std::thread worker([] {  // a thread created in the child allocates too
    for (int i = 0; i < 1000; ++i) {
      void* p = malloc(size_for(static_cast<size_t>(i)));
      if (p == nullptr) _exit(14);
      escape(p);
      free(p);
    }
  });
  worker.join();
#endif
  _exit(0);
}

}  // namespace

TEST(PreloadThreads, BlocksOfAnExitedThreadAreFreedByAnotherThread) {
  for (int round = 0; round < 8; ++round) {
    std::vector<Block> left_behind;
    std::thread allocator([&] {
      for (size_t i = 0; i < 2000; ++i) {
        size_t size = size_for(i);
        void* p = malloc(size);
        if (p == nullptr) continue;
        uint64_t tag = static_cast<uint64_t>(round) * 100000 + i;
        fill_pattern(p, size, tag);
        if (i % 3 == 0) {
          free(p);  // some freed by the owner, the rest left to the main thread
        } else {
          left_behind.push_back({p, size, tag});
        }
      }
    });
    allocator.join();
    ASSERT_GT(left_behind.size(), 1000u);
    // New threads allocate while the exited thread's blocks are still live: they must not be
    // handed out again.
    std::vector<std::thread> churners;
    for (int t = 0; t < 2; ++t)
      churners.emplace_back([] {
        std::vector<void*> mine;
        for (size_t i = 0; i < 3000; ++i) {
          void* p = malloc(size_for(i));
          if (p != nullptr) memset(p, 0xEE, size_for(i));
          mine.push_back(p);
        }
        for (void* p : mine) free(p);
      });
    for (auto& churner : churners) churner.join();
    for (const Block& block : left_behind) {
      EXPECT_TRUE(has_pattern(block.pointer, block.size, block.tag))
          << "block of an exited thread was overwritten: size " << block.size;
      free(block.pointer);
    }
  }
}

TEST(PreloadThreads, ConcurrentAllocationAndCrossThreadFreeKeepContents) {
  constexpr int kThreads = 4;
  std::vector<std::vector<Block>> produced(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([t, &produced] {
      for (size_t i = 0; i < 5000; ++i) {
        size_t size = size_for(i * 7 + static_cast<size_t>(t));
        void* p = malloc(size);
        if (p == nullptr) continue;
        uint64_t tag = static_cast<uint64_t>(t) << 32 | i;
        fill_pattern(p, size, tag);
        produced[static_cast<size_t>(t)].push_back({p, size, tag});
      }
    });
  for (auto& thread : threads) thread.join();
  threads.clear();
  std::atomic<int> corrupted{0};
  for (int t = 0; t < kThreads; ++t)  // thread t frees what thread t+1 allocated
    threads.emplace_back([t, &produced, &corrupted] {
      for (const Block& block : produced[static_cast<size_t>((t + 1) % kThreads)]) {
        if (!has_pattern(block.pointer, block.size, block.tag))
          corrupted.fetch_add(1, std::memory_order_relaxed);
        free(block.pointer);
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(corrupted.load(), 0);
}

TEST(PreloadFork, ChildAllocatesRightAfterForkFromMultiThreadedParent) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  struct StopAndJoin {  // also when an assertion leaves the test early
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~StopAndJoin() {
      stop = true;
      for (auto& thread : threads) thread.join();
    }
  } stop_and_join{stop, busy};
  for (int t = 0; t < 3; ++t)
    busy.emplace_back([t, &stop] {
      size_t i = static_cast<size_t>(t);
      while (!stop.load(std::memory_order_relaxed)) {
        void* a = malloc(size_for(i++));
        void* b = malloc(size_for(i++));
        escape(a);
        free(a);
        void* c = realloc(b, size_for(i++));
        free(c);
      }
    });
  for (int round = 0; round < 20; ++round) {
    pid_t child = fork();
    ASSERT_GE(child, 0) << "fork failed";
    if (child == 0) child_allocates_and_exits();
    int status = wait_for_child(child);
    ASSERT_NE(status, -2) << "round " << round
                          << ": the child hung (a malloc lock held across fork?)";
    ASSERT_TRUE(WIFEXITED(status)) << "round " << round << ": child died, status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "round " << round << ": child step failed";
  }
}
