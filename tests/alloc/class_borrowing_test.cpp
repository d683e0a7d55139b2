// tests/alloc/class_borrowing_test.cpp — size classes above the direct table borrow a free block of
// a slightly larger class before they touch new memory, and never lose natural alignment.
//
// From the public header only (usgc/usgc.h), as an embedder sees it: which block a request gets is
// read from its address and usgc_malloc_usable_size. Each case runs on a new thread of a forked
// child: a thread heap of its own, new and empty (the forking thread's heap comes into the child
// with the free blocks the tests before left in it, which a request may borrow), in a process with
// no exited threads' segments a refill could reclaim, so the blocks a request can get are exactly
// those the case made.
//   - a request of class c whose pages have no free block takes a free block of class c + 1 to
//     c + 3 (at most 37.5 % larger) of the same heap; it used to extend or format a page of class c
//     (new memory) while the larger class's free blocks stayed resident and idle;
//   - a class never borrows from a class whose blocks are aligned less well (aligned_alloc(4096,
//     20480) is served from class 20480, 4 KiB-aligned blocks, never from 22528's 2 KiB-aligned
//     ones).
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <set>
#include <thread>
#include <vector>

#include "usgc/usgc.h"

namespace {

// Runs `child` on a new thread of a forked child; its return value is the exit status (0: passed).
// Failures print on the child's stderr.
template <typename Child>
int run_in_child(Child child) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int result = 1;
    std::thread([&result, &child] { result = child(); }).join();
    ::_exit(result);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

constexpr int kBlocks = 8;

TEST(ClassBorrowing, ARequestTakesAFreeBlockOfALargerClassBeforeNewMemory) {
  int status = run_in_child([] {
    // Class 28672 (4 KiB-aligned blocks): eight blocks, seven of them freed again.
    std::vector<void*> larger;
    std::set<uintptr_t> freed;
    for (int i = 0; i < kBlocks; ++i) larger.push_back(usgc_malloc(28000));
    for (int i = 0; i + 1 < kBlocks; ++i) {
      if (usgc_malloc_usable_size(larger[i]) != 28672) {
        std::fprintf(stderr, "block %d of 28000 bytes has %zu usable\n", i,
                     usgc_malloc_usable_size(larger[i]));
        return 2;
      }
      freed.insert(reinterpret_cast<uintptr_t>(larger[i]));
      usgc_free(larger[i]);
    }
    // Class 26624 has no page yet: its first seven requests take the freed 28672 blocks.
    std::vector<void*> smaller;
    int borrowed = 0;
    for (int i = 0; i < kBlocks; ++i) {
      void* block = usgc_malloc(26000);
      smaller.push_back(block);
      bool reused = freed.count(reinterpret_cast<uintptr_t>(block)) != 0;
      borrowed += reused;
      if (reused != (usgc_malloc_usable_size(block) == 28672)) {
        std::fprintf(stderr, "request %d: usable %zu, reused %d\n", i,
                     usgc_malloc_usable_size(block), reused);
        return 3;
      }
    }
    if (borrowed != kBlocks - 1) {
      std::fprintf(stderr, "%d of %d requests of class 26624 took a freed 28672 block\n", borrowed,
                   kBlocks);
      return 4;
    }
    // The eighth found no free block of either class: new memory of its own class.
    if (usgc_malloc_usable_size(smaller.back()) != 26624) return 5;
    for (void* block : smaller) usgc_free(block);
    usgc_free(larger.back());
    return 0;
  });
  EXPECT_EQ(status, 0);
}

TEST(ClassBorrowing, AlignedRequestsNeverBorrowLessAlignedBlocks) {
  int status = run_in_child([] {
    // Class 22528 (blocks 2 KiB-aligned: every other one is not 4 KiB-aligned), freed again.
    std::vector<void*> less_aligned;
    for (int i = 0; i < kBlocks; ++i) less_aligned.push_back(usgc_malloc(22000));
    for (int i = 0; i + 1 < kBlocks; ++i) usgc_free(less_aligned[i]);
    // Class 20480 (4 KiB-aligned): its requests must not take them.
    std::vector<void*> aligned;
    for (int i = 0; i < kBlocks; ++i) {
      void* block = usgc_aligned_alloc(4096, 20480);
      aligned.push_back(block);
      if (block == nullptr || (reinterpret_cast<uintptr_t>(block) & 4095) != 0 ||
          usgc_malloc_usable_size(block) != 20480) {
        std::fprintf(stderr, "aligned_alloc(4096, 20480) %d: %p, %zu usable\n", i, block,
                     block == nullptr ? 0 : usgc_malloc_usable_size(block));
        return 2;
      }
    }
    for (void* block : aligned) usgc_free(block);
    usgc_free(less_aligned.back());
    return 0;
  });
  EXPECT_EQ(status, 0);
}

}  // namespace
