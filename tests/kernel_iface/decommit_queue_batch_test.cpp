// tests/kernel_iface/decommit_queue_batch_test.cpp — the decommit queue's process_madvise batches
// (decommit_queue.hpp, "process_madvise").
//
// Proves: queued ranges keep their data until the batch goes to the kernel (the batching is
// real) and read zero once their ticket completes; a flush, a poll of is_complete, a wait or the
// 64th range each send the whole batch in one system call; a batch the kernel refuses (one bad
// range) is redone range by range, so only the bad range fails and every ticket completes; auto
// mode picks batches where the kernel allows them; USGC_DECOMMIT=process_madvise selects them;
// a fork child starts with every ticket complete and batches again; a re-init finishes the batch.
// Skipped, with the errno, on kernels that refuse MADV_DONTNEED through process_madvise (before
// Linux 6.13).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_iface/decommit_queue.hpp"
#include "tests/kernel_iface/decommit_test_support.hpp"
#include "tests/support/death_test_support.hpp"

namespace usgc::kernel {
namespace {

constexpr size_t kBatchRanges = 64;  // decommit_queue.cpp's batch (the ring's SQ size)

// Switches the process queue to batches; returns 0 or the errno that keeps them out.
int use_batches() {
  Status status = queue().init(DecommitMode::kProcessMadvise);
  return status.ok() ? 0 : status.error();
}

std::string batch_skip_reason(int error) {
  return std::string("process_madvise(MADV_DONTNEED) is refused here (errno ") +
         std::to_string(error) + ", " + std::strerror(error) + "): Linux 6.13 or later needed";
}

TEST(DecommitQueueBatch, QueuedRangesKeepTheirDataUntilAFlushSendsThemInOneCall) {
  if (int error = use_batches(); error != 0) GTEST_SKIP() << batch_skip_reason(error);
  EXPECT_EQ(queue().active_mode(), DecommitMode::kProcessMadvise);
  EXPECT_EQ(queue().fallback_reason(), 0);
  constexpr size_t kRanges = 10;
  Pages pages(2 * kRanges);  // every other page: ten separate ranges
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0xcd);
  DecommitCounters before = queue().counters();
  std::vector<uint64_t> tickets;
  for (size_t i = 0; i < kRanges; ++i)
    tickets.push_back(queue().enqueue(pages.page(2 * i), os_page_size()));
  EXPECT_EQ(pages.page(0)[0], 0xcd) << "a queued range waits for its batch";
  EXPECT_EQ(queue().counters().batch_calls, before.batch_calls);
  queue().flush();
  for (uint64_t ticket : tickets) EXPECT_TRUE(queue().is_complete(ticket));
  for (size_t i = 0; i < kRanges; ++i) {
    EXPECT_TRUE(is_all_zero(pages.page(2 * i), os_page_size())) << "range " << i;
    EXPECT_EQ(pages.page(2 * i + 1)[0], 0xcd) << "the page between ranges " << i;
  }
  DecommitCounters after = queue().counters();
  EXPECT_EQ(after.batch_calls - before.batch_calls, 1u);
  EXPECT_EQ(after.batched_operations - before.batched_operations, kRanges);
  EXPECT_EQ(after.bytes_decommitted - before.bytes_decommitted, kRanges * os_page_size());
  EXPECT_EQ(after.madvise_calls, before.madvise_calls);
  EXPECT_EQ(after.io_uring_operations, before.io_uring_operations);
  EXPECT_EQ(after.failures, before.failures);
}

TEST(DecommitQueueBatch, PollingOrWaitingAloneSendsTheBatch) {
  if (int error = use_batches(); error != 0) GTEST_SKIP() << batch_skip_reason(error);
  Pages pages(4);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0x42);
  uint64_t polled = queue().enqueue(pages.page(0), os_page_size());
  EXPECT_TRUE(queue().is_complete(polled)) << "polling submits a ticket still queued";
  EXPECT_TRUE(is_all_zero(pages.page(0), os_page_size()));
  uint64_t waited = queue().enqueue(pages.page(2), os_page_size());
  queue().wait(waited);
  EXPECT_TRUE(is_all_zero(pages.page(2), os_page_size()));
  EXPECT_EQ(pages.page(1)[0], 0x42);
}

TEST(DecommitQueueBatch, TheRangeThatFillsTheBatchSendsItAndEveryTicketCompletes) {
  if (int error = use_batches(); error != 0) GTEST_SKIP() << batch_skip_reason(error);
  constexpr size_t kOperations = 5 * kBatchRanges + 3;  // > the 128-ticket window too
  Pages pages(2 * kOperations);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0x99);
  DecommitCounters before = queue().counters();
  std::vector<uint64_t> tickets;
  for (size_t i = 0; i < kOperations; ++i)
    tickets.push_back(queue().enqueue(pages.page(2 * i), os_page_size()));
  // Five full batches went at their 64th range, without a flush; the last three still wait.
  for (size_t i = 0; i < 5 * kBatchRanges; ++i) {
    ASSERT_TRUE(queue().is_complete(tickets[i])) << "ticket " << i;
    ASSERT_TRUE(is_all_zero(pages.page(2 * i), os_page_size())) << "range " << i;
  }
  EXPECT_EQ(pages.page(2 * (kOperations - 1))[0], 0x99);
  EXPECT_EQ(queue().counters().batch_calls - before.batch_calls, 5u);
  queue().wait(tickets.back());
  for (size_t i = 0; i < kOperations; ++i)
    ASSERT_TRUE(is_all_zero(pages.page(2 * i), os_page_size())) << "range " << i;
  DecommitCounters after = queue().counters();
  EXPECT_EQ(after.batch_calls - before.batch_calls, 6u);
  EXPECT_EQ(after.batched_operations - before.batched_operations, kOperations);
  EXPECT_EQ(after.madvise_calls, before.madvise_calls) << "nothing fell back";
}

TEST(DecommitQueueBatch, ARefusedRangeFailsAloneAndEveryTicketCompletes) {
  if (int error = use_batches(); error != 0) GTEST_SKIP() << batch_skip_reason(error);
  Pages pages(6);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0x22);
  DecommitCounters before = queue().counters();
  uint64_t fine_before = queue().enqueue(pages.page(0), os_page_size());
  uint64_t refused = queue().enqueue(pages.page(2) + 1, os_page_size());  // misaligned: EINVAL
  uint64_t fine_after = queue().enqueue(pages.page(4), os_page_size());
  queue().wait(fine_after);
  EXPECT_TRUE(queue().is_complete(fine_before));
  EXPECT_TRUE(queue().is_complete(refused));
  EXPECT_TRUE(is_all_zero(pages.page(0), os_page_size()));
  EXPECT_TRUE(is_all_zero(pages.page(4), os_page_size()));
  EXPECT_EQ(pages.page(2)[0], 0x22) << "a refused range stays committed";
  DecommitCounters after = queue().counters();
  EXPECT_EQ(after.failures - before.failures, 1u);
  EXPECT_EQ(after.madvise_calls - before.madvise_calls, 3u) << "the batch redone range by range";
  EXPECT_EQ(after.batch_calls, before.batch_calls);
  EXPECT_EQ(after.bytes_decommitted - before.bytes_decommitted, 2 * os_page_size());
}

TEST(DecommitQueueBatch, ReinitFinishesTheQueuedBatchFirst) {
  if (int error = use_batches(); error != 0) GTEST_SKIP() << batch_skip_reason(error);
  Pages pages(2);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0x5a);
  uint64_t ticket = queue().enqueue(pages.page(0), os_page_size());
  ASSERT_TRUE(queue().init(DecommitMode::kMadvise).ok());
  EXPECT_TRUE(queue().is_complete(ticket));
  EXPECT_TRUE(is_all_zero(pages.page(0), os_page_size()));
}

TEST(DecommitQueueBatch, AutoModeAndTheEnvironmentPickBatchesWhereTheKernelAllowsThem) {
  if (int error = use_batches(); error != 0) GTEST_SKIP() << batch_skip_reason(error);
  ASSERT_TRUE(queue().init(DecommitMode::kAuto).ok());
  EXPECT_EQ(queue().active_mode(), DecommitMode::kProcessMadvise);
  EXPECT_EQ(queue().fallback_reason(), 0);
  usgc_test::ThreadsafeDeathTests style;
  EXPECT_EXIT(
      {
        ::setenv("USGC_DECOMMIT", "process_madvise", 1);
        CHILD_REQUIRE(queue().active_mode() == DecommitMode::kProcessMadvise);
        std::_Exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(DecommitQueueBatch, AForkChildFindsEveryTicketCompleteAndBatchesAgain) {
  if (int error = use_batches(); error != 0) GTEST_SKIP() << batch_skip_reason(error);
  Pages pages(8);
  ASSERT_TRUE(pages.ok());
  fill(pages.page(0), pages.bytes(), 0x61);
  uint64_t queued = 0;
  for (size_t i = 0; i < 4; ++i) queued = queue().enqueue(pages.page(2 * i), os_page_size());
  pid_t child = ::fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    queue().reset_after_fork();
    // The parent's batch is the parent's business: the child's copy keeps its data.
    CHILD_REQUIRE(queue().is_complete(queued));
    CHILD_REQUIRE(pages.page(0)[0] == 0x61);
    uint64_t ticket = queue().enqueue(pages.page(1), os_page_size());
    queue().wait(ticket);
    CHILD_REQUIRE(is_all_zero(pages.page(1), os_page_size()));
    CHILD_REQUIRE(queue().active_mode() == DecommitMode::kProcessMadvise);
    std::_Exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  queue().wait(queued);  // the parent's batch is still its own to send
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(is_all_zero(pages.page(2 * i), os_page_size()));
  EXPECT_EQ(pages.page(1)[0], 0x61) << "the child's decommit stayed in the child";
}

}  // namespace
}  // namespace usgc::kernel
