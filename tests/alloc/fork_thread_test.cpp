// tests/alloc/fork_thread_test.cpp — usgc across fork() and thread exit.
//
// fork: the child of a process whose other threads are inside usgc_malloc/usgc_free at the
// moment of the fork must be able to allocate at once (no lock left held, no heap half-updated;
// usgc registers pthread_atfork handlers). A child that hangs is killed after a grace period so
// the test fails instead of hanging; nothing asserts on time. A thread the child creates may get
// the thread id of a parent thread the child does not have (glibc hands it that thread's cached
// stack and TCB): it must not act as the owner of that thread's heap.
//
// thread exit: a thread's heap is handed back when it exits. Its still-live blocks stay intact
// and can be freed later by other threads (remote frees into an exited thread's pages); the
// `threads` statistic falls back; and threads that keep being created and exiting reuse the
// memory of earlier ones instead of reserving more address space each time.
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tests/support/child_process.hpp"
#include "tests/support/memory_patterns.hpp"
#include "tests/support/usgc_stats.hpp"
#include "usgc/usgc.h"

namespace {

using usgc_test::fill_pattern;
using usgc_test::pattern_byte;
using usgc_test::read_stats;

bool has_pattern(const void* pointer, size_t bytes, uint64_t tag) {
  const auto* p = static_cast<const uint8_t*>(pointer);
  for (size_t i = 0; i < bytes; ++i)
    if (p[i] != pattern_byte(tag, i)) return false;
  return true;
}

// Mostly small sizes, a medium block now and then and a rare large one (bounded memory use).
size_t size_for(size_t index) {
  static const size_t kSizes[] = {8, 24, 48, 64, 100, 256, 520, 1000, 2048, 5000, 12000};
  if (index % 499 == 0) return size_t{1} << 20;
  if (index % 61 == 0) return 100000;
  return kSizes[index % (sizeof kSizes / sizeof kSizes[0])];
}

struct Block {
  void* pointer;
  size_t size;
  uint64_t tag;
};

using usgc_test::wait_for_child;

// The child right after fork: allocate and free at once — small, medium, large, huge, aligned,
// realloc, calloc, from the forking thread and from a new thread. Exit status 0, or the step
// that failed.
[[noreturn]] void child_allocates_and_exits() {
  void* blocks[100];
  for (size_t i = 0; i < 100; ++i) {
    blocks[i] = usgc_malloc(size_for(i));
    if (blocks[i] == nullptr) _exit(10);
    fill_pattern(blocks[i], size_for(i), i);
  }
  void* large = usgc_malloc(size_t{2} << 20);
  void* huge = usgc_malloc(size_t{12} << 20);
  void* aligned = usgc_aligned_alloc(4096, 10000);
  void* zeroed = usgc_calloc(1000, 100);
  if (large == nullptr || huge == nullptr || aligned == nullptr || zeroed == nullptr) _exit(11);
  memset(large, 0x12, size_t{2} << 20);
  memset(huge, 0x13, size_t{12} << 20);
  memset(aligned, 0x14, 10000);
  for (size_t i = 0; i < 100000; ++i)
    if (static_cast<unsigned char*>(zeroed)[i] != 0) _exit(12);
  void* grown = usgc_realloc(blocks[1], 300000);
  if (grown == nullptr) _exit(13);
  blocks[1] = grown;
  for (size_t i = 2; i < 100; ++i)
    if (!has_pattern(blocks[i], size_for(i), i)) _exit(14);
  for (void* p : blocks) usgc_free(p);
  usgc_free(large);
  usgc_free(huge);
  usgc_free(aligned);
  usgc_free(zeroed);
// A thread in the child, but not under TSan (it forbids threads after a multi-threaded fork)
// or ASan (its own allocator, used by pthread_create, is not fork-safe and may be locked).
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  std::atomic<bool> thread_ok{true};
  std::thread worker([&thread_ok] {
    for (size_t i = 0; i < 2000; ++i) {
      void* p = usgc_malloc(size_for(i));
      if (p == nullptr) {
        thread_ok = false;
        return;
      }
      memset(p, 1, size_for(i));
      usgc_free(p);
    }
  });
  worker.join();
  if (!thread_ok) _exit(15);
#endif
  _exit(0);
}

// A thread that allocates `count` blocks, frees every third, and returns the rest (the caller
// frees them after the thread has exited).
std::vector<Block> allocate_and_exit(uint64_t first_tag, size_t count) {
  std::vector<Block> left;
  std::thread thread([&] {
    for (size_t i = 0; i < count; ++i) {
      const size_t size = size_for(i);
      void* p = usgc_malloc(size);
      if (p == nullptr) continue;
      fill_pattern(p, size, first_tag + i);
      if (i % 3 == 1) {
        usgc_free(p);
      } else {
        left.push_back({p, size, first_tag + i});
      }
    }
  });
  thread.join();
  return left;
}

}  // namespace

TEST(UsgcFork, ChildAllocatesAtOnceWhileParentThreadsAreAllocating) {
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
      size_t i = static_cast<size_t>(t) * 1000;
      std::vector<void*> live;
      while (!stop.load(std::memory_order_relaxed)) {
        live.push_back(usgc_malloc(size_for(i++)));
        if (i % 7 == 0) live.push_back(usgc_aligned_alloc(256, size_for(i++)));
        if (i % 11 == 0) live.back() = usgc_realloc(live.back(), size_for(i++));
        if (live.size() > 200) {
          for (void* p : live) usgc_free(p);
          live.clear();
        }
      }
      for (void* p : live) usgc_free(p);
    });
  for (int round = 0; round < 20; ++round) {
    const pid_t child = fork();
    ASSERT_GE(child, 0) << "fork failed";
    if (child == 0) child_allocates_and_exits();
    const int status = wait_for_child(child);
    ASSERT_NE(status, -2) << "round " << round
                          << ": the child hung after fork (a usgc lock held across fork?)";
    ASSERT_TRUE(WIFEXITED(status)) << "round " << round << ": the child died, status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "round " << round << ": failed step in the child (see child_allocates_and_exits)";
  }
  void* p = usgc_malloc(1000);  // the parent is fine too
  ASSERT_NE(p, nullptr);
  usgc_free(p);
}

// The parent's other thread holds its heap's help lock much of the time (malloc_trim in a loop),
// so the child often inherits it held by a thread it does not have. The child's first new thread
// gets that thread's id (its TCB address, from glibc's stack cache) and frees a block of the
// thread's full page: as the page's owner it would wait for the inherited lock forever.
TEST(UsgcFork, ChildThreadWithAParentThreadsIdDoesNotActAsThatThreadsHeapOwner) {
  std::atomic<void*> full_page_block{nullptr};
  std::atomic<uintptr_t> trimmer_id{0};
  std::atomic<bool> stop{false};
  std::thread trimmer([&] {
    std::vector<void*> blocks;
    for (int i = 0; i < 4096; ++i) blocks.push_back(usgc_malloc(64));  // the first pages fill
    trimmer_id = reinterpret_cast<uintptr_t>(pthread_self());
    full_page_block = blocks[0];
    while (!stop.load(std::memory_order_relaxed)) usgc_malloc_trim(0);
    for (void* p : blocks) usgc_free(p);
  });
  struct StopAndJoin {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~StopAndJoin() {
      stop = true;
      thread.join();
    }
  } stop_and_join{stop, trimmer};
  while (full_page_block.load() == nullptr) std::this_thread::yield();
  int same_id_rounds = 0;
  for (int round = 0; round < 40; ++round) {
    const pid_t child = fork();
    ASSERT_GE(child, 0) << "fork failed";
    if (child == 0) {
      uintptr_t id = 0;
      std::thread thread([&id, &full_page_block] {
        id = reinterpret_cast<uintptr_t>(pthread_self());
        usgc_free(full_page_block.load());
        void* p = usgc_malloc(64);  // and it has a heap of its own
        usgc_free(p);
      });
      thread.join();
      _exit(id == trimmer_id.load() ? 0 : 1);
    }
    const int status = wait_for_child(child);
    ASSERT_NE(status, -2) << "round " << round
                          << ": the child's thread hung freeing a block of a parent thread's page";
    ASSERT_TRUE(WIFEXITED(status)) << "round " << round << ": the child died, status " << status;
    if (WEXITSTATUS(status) == 0) ++same_id_rounds;
  }
  if (same_id_rounds == 0)
    GTEST_SKIP() << "no child thread got the parent thread's id (this libc does not reuse it)";
}

TEST(UsgcThreadExit, BlocksLeftByExitedThreadsStayIntactAndAreFreedByMain) {
  constexpr int kThreads = 16;
  const usgc_malloc_stats start = read_stats();
  for (int round = 0; round < 3; ++round) {
    std::vector<std::vector<Block>> left(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&left, t, round] {
        left[static_cast<size_t>(t)] = allocate_and_exit(
            (static_cast<uint64_t>(round) << 40) | (static_cast<uint64_t>(t) << 20), 1500);
      });
    for (auto& thread : threads) thread.join();
    threads.clear();
    // New threads allocate (and may adopt the exited threads' pages) while those blocks live.
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([] {
        std::vector<void*> mine;
        for (size_t i = 0; i < 2000; ++i) {
          void* p = usgc_malloc(size_for(i));
          if (p != nullptr) memset(p, 0xEE, size_for(i));
          mine.push_back(p);
        }
        for (void* p : mine) usgc_free(p);
      });
    for (auto& thread : threads) thread.join();
    size_t damaged = 0, freed = 0;
    for (const auto& blocks : left)
      for (const Block& block : blocks) {
        if (!has_pattern(block.pointer, block.size, block.tag)) {
          ++damaged;
          continue;
        }
        usgc_free(block.pointer);
        ++freed;
      }
    EXPECT_EQ(damaged, 0u) << "round " << round
                           << ": live blocks of exited threads were overwritten";
    EXPECT_GT(freed, 0u);
    const usgc_malloc_stats after = read_stats();
    EXPECT_LE(after.threads, start.threads + 4)
        << "round " << round << ": heaps of exited threads are still counted as live";
  }
}

TEST(UsgcThreadExit, ThreadsCountFollowsLiveThreads) {
  constexpr int kThreads = 8;
  const usgc_malloc_stats start = read_stats();
  std::atomic<int> ready{0};
  std::atomic<bool> release{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      void* p = usgc_malloc(64);
      ready.fetch_add(1);
      while (!release.load()) std::this_thread::yield();
      usgc_free(p);
    });
  while (ready.load() < kThreads) std::this_thread::yield();
  const usgc_malloc_stats during = read_stats();
  release = true;
  for (auto& thread : threads) thread.join();
  const usgc_malloc_stats after = read_stats();
  EXPECT_GE(during.threads, static_cast<uint64_t>(kThreads))
      << "each thread that allocated has a live heap";
  EXPECT_LE(after.threads, start.threads + 4) << "heaps of joined threads must be handed back";
}

TEST(UsgcThreadExit, ThreadsThatAllocateAndExit200TimesDoNotGrowReservedWithoutBound) {
  uint64_t reserved_after_round_20 = 0;
  for (int round = 1; round <= 200; ++round) {
    // The thread only allocates (about 1.5 MB, never frees) and exits; main frees its blocks.
    std::vector<Block> left;
    std::thread thread([&left, round] {
      for (size_t i = 0; i < 600; ++i) {
        const size_t size = size_for(i + static_cast<size_t>(round));
        void* p = usgc_malloc(size);
        if (p == nullptr) continue;
        memset(p, 0x5C, size);
        left.push_back({p, size, 0});
      }
    });
    thread.join();
    ASSERT_EQ(left.size(), 600u) << "round " << round;
    for (const Block& block : left) usgc_free(block.pointer);
    if (round == 20) reserved_after_round_20 = read_stats().bytes_reserved;
  }
  const uint64_t reserved_after_round_200 = read_stats().bytes_reserved;
  EXPECT_LT(reserved_after_round_200, reserved_after_round_20 + (uint64_t{64} << 20))
      << "after round 20: " << reserved_after_round_20
      << " bytes reserved; after round 200: " << reserved_after_round_200;
}

TEST(UsgcThreadExit, ThreadsThatLeaveOneSmallBlockEach200TimesDoNotGrowReservedWithoutBound) {
  uint64_t reserved_after_round_20 = 0;
  std::vector<void*> left;
  for (int round = 1; round <= 200; ++round) {
    std::thread thread([&left] { left.push_back(usgc_malloc(48)); });
    thread.join();
    if (round % 10 == 0) {  // the blocks of exited threads are freed in batches by main
      for (void* p : left) usgc_free(p);
      left.clear();
    }
    if (round == 20) reserved_after_round_20 = read_stats().bytes_reserved;
  }
  const uint64_t reserved_after_round_200 = read_stats().bytes_reserved;
  EXPECT_LT(reserved_after_round_200, reserved_after_round_20 + (uint64_t{64} << 20))
      << "after round 20: " << reserved_after_round_20
      << "; after round 200: " << reserved_after_round_200;
}
