// tests/kernel_iface/decommit_queue_test.cpp — the batched decommit queue (decommit_queue.hpp).
//
// Proves: each mode zeroes the ranges it is given by the time their ticket completes (the
// "decommit ticket" rule); counters move; tickets complete in any wait order, and a completed
// ticket implies every earlier one; a batch larger than the ring is neither dropped nor
// reordered into failure; refused operations count as failures and still complete; auto mode
// picks process_madvise batches where the kernel allows them, io_uring where a seccomp filter
// forbids those, and madvise where it forbids both or the ring fd disappears; USGC_DECOMMIT
// selects the mode; a fork child can use the queue at once; concurrent threads can share it.
// The process_madvise batch itself: decommit_queue_batch_test.cpp.
//
// The queue is process-wide, so every test starts with init(mode). Tests that need a pristine
// process (environment, seccomp, a closed ring fd) run in a re-executed child (gtest's
// "threadsafe" death-test style) and report through the exit code and stderr.
#include "kernel_iface/decommit_queue.hpp"
#include "tests/kernel_iface/decommit_test_support.hpp"
#include "tests/support/death_test_support.hpp"

#include <dirent.h>
#include <gtest/gtest.h>
#include <seccomp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

// Switches the process queue to io_uring; returns 0 or the errno that keeps io_uring out.
int use_io_uring() {
  Status status = queue().init(DecommitMode::kIoUring);
  return status.ok() ? 0 : status.error();
}

std::string io_uring_skip_reason(int error) {
  return std::string("io_uring is unavailable on this kernel/sandbox (errno ") +
         std::to_string(error) + ", " + std::strerror(error) +
         "); the madvise path is tested separately";
}

using usgc_test::ThreadsafeDeathTests;

// ---- madvise mode ----------------------------------------------------------------------------

TEST(DecommitQueueMadvise, ForcedMadviseModeZeroesDataBeforeEnqueueReturns) {
  ASSERT_TRUE(queue().init(DecommitMode::kMadvise).ok());
  EXPECT_EQ(queue().active_mode(), DecommitMode::kMadvise);
  EXPECT_EQ(queue().fallback_reason(), 0);
  Pages pages(8);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0xab);
  DecommitCounters before = queue().counters();
  uint64_t ticket = queue().enqueue(pages.page(0), pages.bytes());
  EXPECT_TRUE(queue().is_complete(ticket)) << "madvise mode completes before returning";
  EXPECT_TRUE(is_all_zero(pages.page(0), pages.bytes()));
  DecommitCounters after = queue().counters();
  EXPECT_EQ(after.madvise_calls - before.madvise_calls, 1u);
  EXPECT_EQ(after.bytes_decommitted - before.bytes_decommitted, pages.bytes());
  EXPECT_EQ(after.io_uring_operations, before.io_uring_operations);
  EXPECT_EQ(after.submissions, before.submissions);
  EXPECT_EQ(after.failures, before.failures);
}

TEST(DecommitQueueMadvise, TicketsIncreaseAndTicketZeroIsAlwaysComplete) {
  ASSERT_TRUE(queue().init(DecommitMode::kMadvise).ok());
  EXPECT_TRUE(queue().is_complete(0));
  queue().wait(0);  // returns at once
  Pages pages(2);
  ASSERT_TRUE(pages.ok());
  uint64_t first = queue().enqueue(pages.page(0), os_page_size());
  uint64_t second = queue().enqueue(pages.page(1), os_page_size());
  EXPECT_GT(first, 0u);
  EXPECT_GT(second, first);
}

TEST(DecommitQueueMadvise, RefusedRangeCountsAFailureAndStillCompletes) {
  ASSERT_TRUE(queue().init(DecommitMode::kMadvise).ok());
  Pages pages(2);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0x11);
  DecommitCounters before = queue().counters();
  uint64_t ticket = queue().enqueue(pages.page(0) + 1, os_page_size());  // misaligned: EINVAL
  EXPECT_TRUE(queue().is_complete(ticket));
  DecommitCounters after = queue().counters();
  EXPECT_EQ(after.failures - before.failures, 1u);
  EXPECT_EQ(after.bytes_decommitted, before.bytes_decommitted);
  EXPECT_EQ(pages.page(0)[0], 0x11) << "a refused range stays committed";
}

TEST(DecommitQueueApi, WaitingForATicketNeverIssuedAbortsWithAMessage) {
  ThreadsafeDeathTests style;  // io_uring's io-wq workers may be threads of this process
  EXPECT_DEATH(queue().wait(uint64_t{1} << 60),
               "usgc: DecommitQueue::wait\\(\\): ticket [0-9]+ was never issued");
}

// ---- io_uring mode ---------------------------------------------------------------------------

TEST(DecommitQueueIoUring, ForcedIoUringModeZeroesDataAfterWait) {
  if (int error = use_io_uring(); error != 0) GTEST_SKIP() << io_uring_skip_reason(error);
  EXPECT_EQ(queue().active_mode(), DecommitMode::kIoUring);
  EXPECT_EQ(queue().fallback_reason(), 0);
  Pages pages(16);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0xcd);
  DecommitCounters before = queue().counters();
  uint64_t ticket = queue().enqueue(pages.page(0), pages.bytes());
  queue().wait(ticket);
  EXPECT_TRUE(queue().is_complete(ticket));
  EXPECT_TRUE(is_all_zero(pages.page(0), pages.bytes()));
  DecommitCounters after = queue().counters();
  EXPECT_EQ(after.io_uring_operations - before.io_uring_operations, 1u);
  EXPECT_GE(after.submissions - before.submissions, 1u);
  EXPECT_EQ(after.bytes_decommitted - before.bytes_decommitted, pages.bytes());
  EXPECT_EQ(after.madvise_calls, before.madvise_calls);
  EXPECT_EQ(after.failures, before.failures);
}

TEST(DecommitQueueIoUring, PollingIsCompleteAloneSubmitsAndFinishes) {
  if (int error = use_io_uring(); error != 0) GTEST_SKIP() << io_uring_skip_reason(error);
  Pages pages(1);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0x42);
  uint64_t ticket = queue().enqueue(pages.page(0), pages.bytes());
  while (!queue().is_complete(ticket)) std::this_thread::yield();  // no flush(), no wait()
  EXPECT_TRUE(is_all_zero(pages.page(0), pages.bytes()));
}

TEST(DecommitQueueIoUring, ManyTicketsCompleteInAnyWaitOrder) {
  if (int error = use_io_uring(); error != 0) GTEST_SKIP() << io_uring_skip_reason(error);
  constexpr size_t kRanges = 100;
  const unsigned seed = static_cast<unsigned>(std::random_device{}());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  // Ranges of 1..32 pages, so the kernel finishes them in varying order.
  std::vector<size_t> range_pages(kRanges);
  size_t total_pages = 0;
  for (size_t& count : range_pages) total_pages += count = 1 + random() % 32;
  Pages pages(total_pages);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0x77);

  std::vector<uint64_t> tickets;
  std::vector<std::pair<unsigned char*, size_t>> ranges;
  size_t next_page = 0;
  for (size_t count : range_pages) {
    ranges.emplace_back(pages.page(next_page), count * os_page_size());
    tickets.push_back(queue().enqueue(pages.page(next_page), count * os_page_size()));
    next_page += count;
  }
  ASSERT_TRUE(std::is_sorted(tickets.begin(), tickets.end()));

  std::vector<size_t> order(kRanges);
  for (size_t i = 0; i < kRanges; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), random);
  for (size_t index : order) {
    queue().wait(tickets[index]);
    ASSERT_TRUE(is_all_zero(ranges[index].first, ranges[index].second)) << "range " << index;
    // The ticket rule: every earlier ticket is complete too.
    for (size_t earlier = 0; earlier <= index; ++earlier) {
      ASSERT_TRUE(queue().is_complete(tickets[earlier]))
          << "ticket " << tickets[earlier] << " after wait(" << tickets[index] << ")";
    }
  }
  EXPECT_TRUE(is_all_zero(pages.page(0), pages.bytes()));
}

TEST(DecommitQueueIoUring, BatchLargerThanTheRingIsSubmittedWithoutDroppingAnything) {
  if (int error = use_io_uring(); error != 0) GTEST_SKIP() << io_uring_skip_reason(error);
  constexpr size_t kOperations = 300;  // > 64 SQEs and > the 128-ticket window
  Pages pages(kOperations);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0x99);
  DecommitCounters before = queue().counters();
  uint64_t last = 0;
  for (size_t i = 0; i < kOperations; ++i) last = queue().enqueue(pages.page(i), os_page_size());
  queue().wait(last);  // only the last one: every earlier one must be done too
  EXPECT_TRUE(is_all_zero(pages.page(0), pages.bytes()));
  DecommitCounters after = queue().counters();
  EXPECT_EQ(after.io_uring_operations - before.io_uring_operations, kOperations);
  EXPECT_GE(after.submissions - before.submissions, kOperations / 64);
  EXPECT_EQ(after.madvise_calls, before.madvise_calls) << "nothing fell back";
  EXPECT_EQ(after.failures, before.failures);
}

TEST(DecommitQueueIoUring, RefusedOperationCountsAFailureAndStillCompletes) {
  if (int error = use_io_uring(); error != 0) GTEST_SKIP() << io_uring_skip_reason(error);
  Pages pages(2);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0x22);
  DecommitCounters before = queue().counters();
  uint64_t refused = queue().enqueue(pages.page(0) + 1, os_page_size());  // misaligned: -EINVAL CQE
  uint64_t fine = queue().enqueue(pages.page(1), os_page_size());
  queue().wait(fine);
  EXPECT_TRUE(queue().is_complete(refused));
  DecommitCounters after = queue().counters();
  EXPECT_EQ(after.failures - before.failures, 1u);
  EXPECT_EQ(after.io_uring_operations - before.io_uring_operations, 1u);
  EXPECT_EQ(pages.page(0)[0], 0x22) << "a refused range stays committed";
  EXPECT_TRUE(is_all_zero(pages.page(1), os_page_size()));
}

TEST(DecommitQueueIoUring, RangeTooLongForAnSqeUsesMadvise) {
  if (int error = use_io_uring(); error != 0) GTEST_SKIP() << io_uring_skip_reason(error);
  // An SQE's length is 32 bits; 1 GiB + 1 page goes through madvise(2) (address space only).
  const size_t bytes = (size_t{1} << 30) + os_page_size();
  Result<void*> mapping = map_aligned(bytes, os_page_size());
  ASSERT_TRUE(mapping.ok());
  auto* base = static_cast<unsigned char*>(mapping.value());
  base[0] = 1;
  base[bytes - 1] = 1;
  DecommitCounters before = queue().counters();
  uint64_t ticket = queue().enqueue(base, bytes);
  EXPECT_TRUE(queue().is_complete(ticket));
  EXPECT_EQ(base[0], 0);
  EXPECT_EQ(base[bytes - 1], 0);
  EXPECT_EQ(queue().counters().madvise_calls - before.madvise_calls, 1u);
  EXPECT_TRUE(unmap(base, bytes).ok());
}

TEST(DecommitQueueIoUring, ClosedRingFdFallsBackToMadviseAndStillZeroes) {
  if (int error = use_io_uring(); error != 0) GTEST_SKIP() << io_uring_skip_reason(error);
  ThreadsafeDeathTests style;
  EXPECT_EXIT(
      {
        CHILD_REQUIRE(queue().init(DecommitMode::kIoUring).ok());
        Pages pages(12);
        CHILD_REQUIRE(pages.ok());
        fill(pages.page(0), pages.bytes(), 0x5c);
        uint64_t in_flight = queue().enqueue(pages.page(0), os_page_size());
        queue().flush();
        for (size_t i = 1; i < 6; ++i)
          queue().enqueue(pages.page(i), os_page_size());  // still queued
        // A program that closes every fd it does not know (daemons do) takes our ring's fd.
        int ring_fd = -1;
        DIR* fds = ::opendir("/proc/self/fd");
        CHILD_REQUIRE(fds != nullptr);
        while (dirent* entry = ::readdir(fds)) {
          char link[64] = {};
          std::string path = std::string("/proc/self/fd/") + entry->d_name;
          if (::readlink(path.c_str(), link, sizeof(link) - 1) > 0 &&
              std::strcmp(link, "anon_inode:[io_uring]") == 0) {
            ring_fd = std::atoi(entry->d_name);
          }
        }
        ::closedir(fds);
        CHILD_REQUIRE(ring_fd >= 0);
        CHILD_REQUIRE(::close(ring_fd) == 0);
        uint64_t last = 0;
        for (size_t i = 6; i < 12; ++i) last = queue().enqueue(pages.page(i), os_page_size());
        queue().wait(last);
        CHILD_REQUIRE(queue().is_complete(in_flight));
        CHILD_REQUIRE(is_all_zero(pages.page(0), pages.bytes()));
        CHILD_REQUIRE(queue().active_mode() == DecommitMode::kMadvise);
        CHILD_REQUIRE(queue().fallback_reason() == EBADF);
        std::_Exit(0);
      },
      testing::ExitedWithCode(0), "io_uring failed \\(errno 9\\)");
}

// ---- auto mode and the environment -----------------------------------------------------------

// A child's seccomp filter: each listed system call fails with EPERM.
void forbid_in_child(std::initializer_list<int> calls) {
  scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ALLOW);
  CHILD_REQUIRE(filter != nullptr);
  for (int call : calls)
    CHILD_REQUIRE(seccomp_rule_add(filter, SCMP_ACT_ERRNO(EPERM), call, 0) == 0);
  CHILD_REQUIRE(seccomp_load(filter) == 0);
  seccomp_release(filter);
}

TEST(DecommitQueueAuto, AutoModeUsesIoUringWhenSeccompForbidsProcessMadvise) {
  if (int error = use_io_uring(); error != 0) GTEST_SKIP() << io_uring_skip_reason(error);
  ThreadsafeDeathTests style;
  EXPECT_EXIT(
      {
        forbid_in_child({SCMP_SYS(process_madvise), SCMP_SYS(pidfd_open)});
        // The re-executed child made the io_uring check above: auto is asked for again here.
        CHILD_REQUIRE(queue().init(DecommitMode::kAuto).ok());
        CHILD_REQUIRE(queue().active_mode() == DecommitMode::kIoUring);
        CHILD_REQUIRE(queue().fallback_reason() == EPERM);  // why not the first choice
        Pages pages(4);
        CHILD_REQUIRE(pages.ok());
        fill(pages.page(0), pages.bytes(), 0x3d);
        queue().wait(queue().enqueue(pages.page(0), pages.bytes()));
        CHILD_REQUIRE(is_all_zero(pages.page(0), pages.bytes()));
        std::_Exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(DecommitQueueAuto, AutoModeFallsBackToMadviseWhenSeccompForbidsBatchesAndIoUring) {
  ThreadsafeDeathTests style;
  EXPECT_EXIT(
      {
        forbid_in_child(
            {SCMP_SYS(process_madvise), SCMP_SYS(pidfd_open), SCMP_SYS(io_uring_setup)});
        ::unsetenv("USGC_DECOMMIT");
        // The lazy default (auto) is the path a preloaded program takes.
        CHILD_REQUIRE(queue().active_mode() == DecommitMode::kMadvise);
        CHILD_REQUIRE(queue().fallback_reason() == EPERM);
        Pages pages(4);
        CHILD_REQUIRE(pages.ok());
        fill(pages.page(0), pages.bytes(), 0x3e);
        uint64_t ticket = queue().enqueue(pages.page(0), pages.bytes());
        CHILD_REQUIRE(queue().is_complete(ticket));
        CHILD_REQUIRE(is_all_zero(pages.page(0), pages.bytes()));
        // Forcing either reports the errno and leaves madvise in charge.
        Status forced = queue().init(DecommitMode::kIoUring);
        CHILD_REQUIRE(!forced.ok() && forced.error() == EPERM);
        CHILD_REQUIRE(queue().active_mode() == DecommitMode::kMadvise);
        forced = queue().init(DecommitMode::kProcessMadvise);
        CHILD_REQUIRE(!forced.ok() && forced.error() == EPERM);
        CHILD_REQUIRE(queue().active_mode() == DecommitMode::kMadvise);
        std::_Exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(DecommitQueueEnvironment, MadviseValueSelectsMadvise) {
  ThreadsafeDeathTests style;
  EXPECT_EXIT(
      {
        ::setenv("USGC_DECOMMIT", "madvise", 1);
        CHILD_REQUIRE(queue().active_mode() == DecommitMode::kMadvise);
        CHILD_REQUIRE(queue().fallback_reason() == 0);
        std::_Exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(DecommitQueueEnvironment, IoUringValueSelectsIoUring) {
  if (int error = use_io_uring(); error != 0) GTEST_SKIP() << io_uring_skip_reason(error);
  ThreadsafeDeathTests style;
  EXPECT_EXIT(
      {
        ::setenv("USGC_DECOMMIT", "io_uring", 1);
        CHILD_REQUIRE(queue().active_mode() == DecommitMode::kIoUring);
        std::_Exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(DecommitQueueEnvironment, UnknownValueWarnsAndUsesAuto) {
  ThreadsafeDeathTests style;
  EXPECT_EXIT(
      {
        ::setenv("USGC_DECOMMIT", "sometimes", 1);
        DecommitMode mode = queue().active_mode();
        CHILD_REQUIRE(mode == DecommitMode::kProcessMadvise || mode == DecommitMode::kIoUring ||
                      mode == DecommitMode::kMadvise);
        // Auto: process_madvise batches unless the kernel refused them.
        CHILD_REQUIRE((mode == DecommitMode::kProcessMadvise) == (queue().fallback_reason() == 0));
        std::_Exit(0);
      },
      testing::ExitedWithCode(0),
      "usgc: USGC_DECOMMIT=\"sometimes\" refused: want one of auto, io_uring, madvise, "
      "process_madvise; using the "
      "default \\(auto\\)");
}

// ---- fork ------------------------------------------------------------------------------------

TEST(DecommitQueueFork, ChildCanEnqueueAndWaitRightAfterFork) {
  int io_uring_error = use_io_uring();
  if (io_uring_error != 0) {
    ASSERT_TRUE(queue().init(DecommitMode::kAuto).ok());
  }
  const DecommitMode parent_mode = queue().active_mode();
  Pages parent_pages(16);
  Pages child_pages(4);
  ASSERT_TRUE(parent_pages.ok() && child_pages.ok());
  fill(parent_pages.page(0), parent_pages.bytes(), 0x61);
  uint64_t parent_last = 0;
  for (size_t i = 0; i < 8; ++i)
    parent_last = queue().enqueue(parent_pages.page(i), os_page_size());
  queue().flush();  // 8 in flight
  for (size_t i = 8; i < 16; ++i)
    parent_last = queue().enqueue(parent_pages.page(i), os_page_size());  // 8 queued

  pid_t child = ::fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    queue().reset_after_fork();
    // The parent's operations are the parent's business: every ticket is complete here.
    CHILD_REQUIRE(queue().is_complete(parent_last));
    fill(child_pages.page(0), child_pages.bytes(), 0x62);
    uint64_t ticket = queue().enqueue(child_pages.page(0), child_pages.bytes());
    queue().wait(ticket);
    CHILD_REQUIRE(is_all_zero(child_pages.page(0), child_pages.bytes()));
    CHILD_REQUIRE(queue().active_mode() == parent_mode);  // re-initialized with the same mode
    // A second fork-and-reset in the child works too.
    pid_t grandchild = ::fork();
    CHILD_REQUIRE(grandchild >= 0);
    if (grandchild == 0) {
      queue().reset_after_fork();
      fill(child_pages.page(1), os_page_size(), 0x63);
      queue().wait(queue().enqueue(child_pages.page(1), os_page_size()));
      std::_Exit(is_all_zero(child_pages.page(1), os_page_size()) ? 0 : 3);
    }
    int grandchild_status = 0;
    CHILD_REQUIRE(::waitpid(grandchild, &grandchild_status, 0) == grandchild);
    CHILD_REQUIRE(WIFEXITED(grandchild_status) && WEXITSTATUS(grandchild_status) == 0);
    std::_Exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;

  // The parent's ring is untouched by the child's reset: its operations finish, new ones work.
  queue().wait(parent_last);
  EXPECT_TRUE(is_all_zero(parent_pages.page(0), parent_pages.bytes()));
  EXPECT_EQ(queue().active_mode(), parent_mode);
  fill(parent_pages.page(0), os_page_size(), 0x64);
  queue().wait(queue().enqueue(parent_pages.page(0), os_page_size()));
  EXPECT_TRUE(is_all_zero(parent_pages.page(0), os_page_size()));
}

// ---- threads ---------------------------------------------------------------------------------

// Each thread recycles its own pages, obeying the ticket rule (wait before rewriting a page).
void run_concurrent_enqueues(DecommitMode mode) {
  constexpr int kThreads = 4;
  constexpr size_t kPagesPerThread = 16;
  constexpr int kRounds = 200;
  std::vector<Pages*> pages;
  for (int t = 0; t < kThreads; ++t) pages.push_back(new Pages(kPagesPerThread));
  for (Pages* p : pages) ASSERT_TRUE(p->ok());
  std::vector<std::vector<uint64_t>> tickets(kThreads, std::vector<uint64_t>(kPagesPerThread, 0));
  std::atomic<int> violations{0};
  DecommitCounters before = queue().counters();

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        size_t index = static_cast<size_t>(round) % kPagesPerThread;
        unsigned char* page = pages[t]->page(index);
        queue().wait(tickets[t][index]);
        if (!is_all_zero(page, os_page_size())) violations.fetch_add(1);
        fill(page, os_page_size(), static_cast<unsigned char>(1 + t));
        tickets[t][index] = queue().enqueue(page, os_page_size());
        if (round % 3 == 0) {
          queue().flush();
          while (!queue().is_complete(tickets[t][index])) std::this_thread::yield();
          if (!is_all_zero(page, os_page_size())) violations.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    for (size_t index = 0; index < kPagesPerThread; ++index) {
      queue().wait(tickets[t][index]);
      EXPECT_TRUE(is_all_zero(pages[t]->page(index), os_page_size()))
          << "thread " << t << " page " << index;
    }
  }
  EXPECT_EQ(violations.load(), 0);
  DecommitCounters after = queue().counters();
  const uint64_t operations = static_cast<uint64_t>(kThreads) * kRounds;
  if (mode == DecommitMode::kIoUring) {
    EXPECT_EQ(after.io_uring_operations - before.io_uring_operations, operations);
  } else if (mode == DecommitMode::kProcessMadvise) {
    EXPECT_EQ(after.batched_operations - before.batched_operations, operations);
    EXPECT_LT(after.batch_calls - before.batch_calls, operations) << "ranges shared calls";
  } else {
    EXPECT_EQ(after.madvise_calls - before.madvise_calls, operations);
  }
  EXPECT_EQ(after.failures, before.failures);
  EXPECT_EQ(after.bytes_decommitted - before.bytes_decommitted, operations * os_page_size());
  for (Pages* p : pages) delete p;
}

TEST(DecommitQueueThreads, ConcurrentEnqueuesThroughIoUringZeroEveryRange) {
  if (int error = use_io_uring(); error != 0) GTEST_SKIP() << io_uring_skip_reason(error);
  run_concurrent_enqueues(DecommitMode::kIoUring);
}

TEST(DecommitQueueThreads, ConcurrentEnqueuesThroughMadviseZeroEveryRange) {
  ASSERT_TRUE(queue().init(DecommitMode::kMadvise).ok());
  run_concurrent_enqueues(DecommitMode::kMadvise);
}

TEST(DecommitQueueThreads, ConcurrentEnqueuesThroughProcessMadviseZeroEveryRange) {
  Status status = queue().init(DecommitMode::kProcessMadvise);
  if (!status.ok())
    GTEST_SKIP() << "process_madvise(MADV_DONTNEED) refused: errno " << status.error();
  run_concurrent_enqueues(DecommitMode::kProcessMadvise);
}

TEST(DecommitQueueThreads, ConcurrentInitAndEnqueueNeverLoseAnOperation) {
  int io_uring_error = use_io_uring();
  Pages pages(64);
  ASSERT_TRUE(pages.ok());
  std::atomic<bool> stop{false};
  std::thread switcher([&] {
    // Every switch: madvise, io_uring (where it works), process_madvise batches (ditto), auto.
    const DecommitMode modes[] = {DecommitMode::kMadvise, DecommitMode::kIoUring,
                                  DecommitMode::kProcessMadvise, DecommitMode::kAuto};
    for (int i = 0; i < 20; ++i) {
      const DecommitMode mode = modes[i % 4];
      (void)queue().init(
          mode == DecommitMode::kIoUring && io_uring_error != 0 ? DecommitMode::kMadvise : mode);
    }
    stop.store(true);
  });
  std::vector<uint64_t> tickets(pages.count(), 0);
  size_t round = 0;
  while (!stop.load() || round < pages.count()) {
    size_t index = round++ % pages.count();
    queue().wait(tickets[index]);
    ASSERT_TRUE(is_all_zero(pages.page(index), os_page_size()))
        << "page " << index << " round " << round;
    fill(pages.page(index), os_page_size(), 0x7a);
    tickets[index] = queue().enqueue(pages.page(index), os_page_size());
  }
  switcher.join();
  for (size_t index = 0; index < pages.count(); ++index) {
    queue().wait(tickets[index]);
    EXPECT_TRUE(is_all_zero(pages.page(index), os_page_size())) << "page " << index;
  }
}

}  // namespace
}  // namespace usgc::kernel
