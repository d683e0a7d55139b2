// tests/kernel_iface/advise_batch_test.cpp — one process_madvise for many scattered ranges.
//
// Proves the contract of kernel_iface/advise_batch.hpp: a batched MADV_POPULATE_WRITE makes
// exactly the listed pages resident; a batched MADV_GUARD_INSTALL makes exactly the listed pages
// guards (the kernel refuses to copy from them: EFAULT) and they survive a MADV_DONTNEED that
// spans them; more ranges than one call takes are split; bad ranges are an errno, never a crash;
// advise_one does the same for one range; a batched MADV_DONTNEED returns exactly the listed
// pages, which read zero afterwards.
#include "kernel_iface/advise_batch.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "kernel_iface/guard_region.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

constexpr size_t kPages = 1200;  // more than one process_madvise call takes (512)

class AdviseBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    page_ = os_page_size();
    Result<void*> mapping = map_aligned(kPages * page_, page_);
    ASSERT_TRUE(mapping.ok()) << "errno " << mapping.error();
    base_ = static_cast<uint8_t*>(mapping.value());
    (void)advise_huge_pages(base_, kPages * page_, false);  // one page, not 2 MiB, per fault
  }
  void TearDown() override { EXPECT_TRUE(unmap(base_, kPages * page_).ok()); }

  // Every third page, as stacks are a slot apart.
  std::vector<AdviseRange> every_third_page() const {
    std::vector<AdviseRange> ranges;
    for (size_t i = 0; i < kPages; i += 3) ranges.push_back(AdviseRange{base_ + i * page_, page_});
    return ranges;
  }
  bool resident(size_t index) const {
    unsigned char vector = 0;
    EXPECT_EQ(mincore(base_ + index * page_, page_, &vector), 0);
    return (vector & 1) != 0;
  }
  // True when the kernel can read the page (a guard page reads as EFAULT): written to a pipe,
  // which copies (/dev/null would not even look).
  bool readable(size_t index) const {
    int pipe_ends[2];
    EXPECT_EQ(pipe(pipe_ends), 0);
    ssize_t written = write(pipe_ends[1], base_ + index * page_, 1);
    int error = errno;
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    EXPECT_TRUE(written == 1 || error == EFAULT) << "errno " << error;
    return written == 1;
  }

  size_t page_ = 0;
  uint8_t* base_ = nullptr;
};

bool batch_supported(Status status) {
  return status.ok() || (status.error() != ENOSYS && status.error() != EINVAL &&
                         status.error() != EPERM && status.error() != EBADF);
}

TEST_F(AdviseBatchTest, PopulateWriteMakesExactlyTheListedPagesResident) {
  std::vector<AdviseRange> ranges = every_third_page();
  Status status = advise_batch(ranges, BatchAdvice::kPopulateWrite);
  if (!batch_supported(status)) GTEST_SKIP() << "no process_madvise on self: " << status.error();
  ASSERT_TRUE(status.ok()) << "errno " << status.error();
  for (size_t i = 0; i < kPages; ++i) ASSERT_EQ(resident(i), i % 3 == 0) << "page " << i;
}

TEST_F(AdviseBatchTest, GuardInstallMakesExactlyTheListedPagesGuardsAndTheySurviveDontneed) {
  if (!guard_regions_supported()) GTEST_SKIP() << "kernel without MADV_GUARD_INSTALL";
  std::vector<AdviseRange> ranges = every_third_page();
  Status status = advise_batch(ranges, BatchAdvice::kGuardInstall);
  if (!batch_supported(status)) GTEST_SKIP() << "no process_madvise on self: " << status.error();
  ASSERT_TRUE(status.ok()) << "errno " << status.error();
  for (size_t i = 0; i < 30; ++i) EXPECT_EQ(readable(i), i % 3 != 0) << "page " << i;
  EXPECT_FALSE(readable(kPages - 1 - (kPages - 1) % 3)) << "the last call's ranges too";
  base_[page_] = 7;  // a page between two guards works
  ASSERT_EQ(madvise(base_, kPages * page_, MADV_DONTNEED), 0);
  EXPECT_EQ(base_[page_], 0) << "decommitted";
  for (size_t i = 0; i < 30; ++i) EXPECT_EQ(readable(i), i % 3 != 0) << "page " << i;
}

TEST_F(AdviseBatchTest, DontNeedReturnsExactlyTheListedPagesAndTheyReadZero) {
  for (size_t i = 0; i < kPages; ++i) base_[i * page_ + 9] = static_cast<uint8_t>(i | 1);
  std::vector<AdviseRange> ranges = every_third_page();
  Status status = advise_batch(ranges, BatchAdvice::kDontNeed);
  if (!batch_supported(status)) GTEST_SKIP() << "no process_madvise on self: " << status.error();
  ASSERT_TRUE(status.ok()) << "errno " << status.error();
  for (size_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(resident(i), i % 3 != 0) << "page " << i;
    ASSERT_EQ(base_[i * page_ + 9], i % 3 == 0 ? 0 : static_cast<uint8_t>(i | 1)) << "page " << i;
  }
  base_[1] = 5;
  ASSERT_TRUE(advise_one(AdviseRange{base_, page_}, BatchAdvice::kDontNeed).ok());
  EXPECT_FALSE(resident(0));
  EXPECT_EQ(base_[1], 0) << "one range: zero after the advice too";
}

TEST_F(AdviseBatchTest, BadRangesAreAnErrnoNotACrash) {
  AdviseRange unaligned{base_ + 1, page_};
  Status status = advise_batch({&unaligned, 1}, BatchAdvice::kPopulateWrite);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.error(), EINVAL);
  EXPECT_EQ(advise_one(unaligned, BatchAdvice::kPopulateWrite).error(), EINVAL);
  EXPECT_TRUE(advise_batch({}, BatchAdvice::kPopulateWrite).ok()) << "nothing to do";
}

// process_madvise stops at the first range it refuses and reports only the bytes before it (no
// errno): advise_batch must not take that for success.
TEST_F(AdviseBatchTest, ABadRangeAfterGoodOnesIsAnErrnoNotASilentPartialSuccess) {
  for (size_t i = 0; i < kPages; ++i) base_[i * page_ + 9] = static_cast<uint8_t>(i | 1);
  const AdviseRange good{base_ + 6 * page_, page_};
  Status supported = advise_batch({&good, 1}, BatchAdvice::kDontNeed);
  if (!batch_supported(supported))
    GTEST_SKIP() << "no process_madvise on self: " << supported.error();
  const AdviseRange ranges[] = {
      {base_, page_}, {base_ + 2 * page_ + 1, page_}, {base_ + 4 * page_, page_}};
  Status status = advise_batch(ranges, BatchAdvice::kDontNeed);
  ASSERT_FALSE(status.ok()) << "the misaligned second range was not advised";
  EXPECT_EQ(status.error(), EINVAL);
  EXPECT_EQ(base_[9], 0) << "the range before the bad one was advised";
  EXPECT_EQ(base_[2 * page_ + 9], 3) << "the bad range was not";
}

TEST_F(AdviseBatchTest, AdviseOnePopulatesOneRange) {
  ASSERT_TRUE(
      advise_one(AdviseRange{base_ + 5 * page_, 2 * page_}, BatchAdvice::kPopulateWrite).ok());
  EXPECT_FALSE(resident(4));
  EXPECT_TRUE(resident(5));
  EXPECT_TRUE(resident(6));
  EXPECT_FALSE(resident(7));
}

}  // namespace
}  // namespace usgc::kernel
