// tests/kernel_iface/lock_rank_test.cpp — the lock order of kernel_iface/lock_rank.hpp, checked
// on both kinds of lock: taking locks in rank order works; taking a lower rank while holding a
// higher one stops the process naming both locks (debug builds, where the check is compiled
// in); a nesting rank (channels) may be held several times; try_lock never trips the check.
#include <gtest/gtest.h>

#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/spin_lock.hpp"
#include "tests/support/death_test_support.hpp"

namespace usgc::kernel {
namespace {

#if defined(USGC_DEBUG) && USGC_DEBUG
constexpr bool kOrderChecked = true;
#else
constexpr bool kOrderChecked = false;
#endif

TEST(LockRank, EveryRankHasANameAndTheTableIsOrdered) {
  for (unsigned r = 1; r < static_cast<unsigned>(LockRank::kCount); ++r)
    EXPECT_STRNE(lock_rank_name(static_cast<LockRank>(r)), "") << r;
  // The allocator's locks are the leaves of the whole order: any code may call malloc.
  EXPECT_GT(static_cast<unsigned>(LockRank::kHeapPool),
            static_cast<unsigned>(LockRank::kBlockPool));
  EXPECT_GT(static_cast<unsigned>(LockRank::kDecommitQueue),
            static_cast<unsigned>(LockRank::kSegmentCache));
}

TEST(LockRank, LocksTakenInRankOrderAndNestingChannels) {
  FutexMutex<LockRank::kScheduler> scheduler;
  FutexMutex<LockRank::kChannel> first_channel;
  FutexMutex<LockRank::kChannel> second_channel;
  SpinLock heap_pool{LockRank::kHeapPool};
  first_channel.lock();
  second_channel.lock();  // select locks several channels, in address order
  scheduler.lock();
  heap_pool.lock();
  heap_pool.unlock();
  scheduler.unlock();
  second_channel.unlock();
  first_channel.unlock();
  // Released in another order than taken: still consistent afterwards.
  scheduler.lock();
  heap_pool.lock();
  scheduler.unlock();
  heap_pool.unlock();
  scheduler.lock();
  scheduler.unlock();
}

TEST(LockRank, TryLockOutOfOrderIsRecordedNotChecked) {
  FutexMutex<LockRank::kScheduler> scheduler;
  FutexMutex<LockRank::kChannel> channel;
  scheduler.lock();
  ASSERT_TRUE(channel.try_lock());
  channel.unlock();
  scheduler.unlock();
}

TEST(LockRankDeathTest, LowerRankWhileHoldingHigherStopsNamingBothLocks) {
  if (!kOrderChecked) GTEST_SKIP() << "the lock-order check is compiled into debug builds only";
  usgc_test::ThreadsafeDeathTests threadsafe;
  EXPECT_DEATH(
      {
        FutexMutex<LockRank::kScheduler> scheduler;
        FutexMutex<LockRank::kChannel> channel;
        scheduler.lock();
        channel.lock();
      },
      "lock order: taking the channel lock \\(rank 7\\) while holding the scheduler lock "
      "\\(rank 10\\)");
  EXPECT_DEATH(
      {
        SpinLock segment_cache{LockRank::kSegmentCache};
        FutexMutex<LockRank::kBlockPool> block_pool;
        segment_cache.lock();
        block_pool.lock();
      },
      "taking the block pool lock .* while holding the segment cache lock");
  EXPECT_DEATH(
      {
        FutexMutex<LockRank::kScheduler> scheduler;
        scheduler.lock();
        scheduler.lock();  // the same non-nesting lock twice: a self-deadlock
      },
      "taking the scheduler lock .* while holding the scheduler lock");
}

}  // namespace
}  // namespace usgc::kernel
