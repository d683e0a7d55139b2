// tests/safepoint/poll_page_test.cpp — the poll page mapping (safepoint/poll_page.hpp).
//
// Proves: the layout (always-readable page, global page, one bad page per slot, consecutive, in
// one mapping of 2 + capacity pages); pages 0 and 1 read as zero and the bad pages cannot be read;
// repeated initialization keeps the mapping and only raises the slot count, up to the capacity;
// is_poll_page_address is exactly the mapping's range; arming the global page makes it
// unreadable (seen through EFAULT and by a child that dies reading it) and disarming makes it
// readable again, a thousand times over; nothing works before initialization.
#include "safepoint/poll_page.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>

#include "kernel_iface/virtual_memory.hpp"
#include "tests/safepoint/safepoint_test_support.hpp"
#include "tests/support/child_process.hpp"

namespace usgc::safepoint {
namespace {

using usgc_test::FreshProcessChecks;
using usgc_test::readable_without_fault;

const uint8_t* address_of(const volatile uint8_t* page) {
  return const_cast<const uint8_t*>(page);
}

TEST(PollPage, LayoutIsOneMappingOfConsecutivePages) {
  ASSERT_TRUE(poll_pages_initialize(4).ok());
  const size_t page = kernel::os_page_size();
  const PollPageRange range = poll_page_range();
  ASSERT_NE(range.first, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(range.first) % page, 0u);
  EXPECT_GE(poll_slot_count(), 4u);
  EXPECT_GE(poll_slot_capacity(), kMinPollSlotCapacity);
  EXPECT_EQ(range.bytes, (2 + size_t{poll_slot_capacity()}) * page);
  EXPECT_EQ(address_of(always_readable_page()), address_of(range.first));
  EXPECT_EQ(address_of(global_poll_page()), address_of(range.first) + page);
  for (uint32_t slot = 0; slot < 4; ++slot) {
    EXPECT_EQ(address_of(slot_bad_page(slot)), address_of(range.first) + (2 + slot) * page)
        << "slot " << slot;
  }
}

TEST(PollPage, ReadablePagesReadZeroAndBadPagesCannotBeRead) {
  ASSERT_TRUE(poll_pages_initialize(4).ok());
  EXPECT_TRUE(readable_without_fault(always_readable_page()));
  EXPECT_EQ(always_readable_page()[0], 0);
  EXPECT_EQ(always_readable_page()[kernel::os_page_size() - 1], 0);
  // The global page is disarmed unless a stop is in progress, and no test in this process arms it.
  EXPECT_TRUE(readable_without_fault(global_poll_page()));
  EXPECT_EQ(global_poll_page()[0], 0);
  for (uint32_t slot = 0; slot < 4; ++slot) {
    EXPECT_FALSE(readable_without_fault(slot_bad_page(slot))) << "slot " << slot;
  }
  // The slots of the capacity not handed out yet are just as unreadable.
  const PollPageRange range = poll_page_range();
  EXPECT_FALSE(readable_without_fault(range.first + range.bytes - 1));
}

TEST(PollPage, InitializingAgainKeepsTheMappingAndOnlyRaisesTheSlotCount) {
  ASSERT_TRUE(poll_pages_initialize(4).ok());
  const PollPageRange before = poll_page_range();
  const uint32_t count = poll_slot_count();
  ASSERT_TRUE(poll_pages_initialize(1).ok());
  EXPECT_EQ(poll_slot_count(), count) << "a smaller count never lowers it";
  ASSERT_TRUE(poll_pages_initialize(count + 3).ok());
  EXPECT_EQ(poll_slot_count(), count + 3);
  EXPECT_EQ(address_of(slot_bad_page(count + 2)),
            address_of(before.first) + (2 + size_t{count} + 2) * kernel::os_page_size());
  const PollPageRange after = poll_page_range();
  EXPECT_EQ(address_of(after.first), address_of(before.first));
  EXPECT_EQ(after.bytes, before.bytes);
  const kernel::Status beyond = poll_pages_initialize(poll_slot_capacity() + 1);
  EXPECT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.error(), EINVAL);
  EXPECT_EQ(address_of(poll_page_range().first), address_of(before.first));
}

TEST(PollPage, IsPollPageAddressIsExactlyTheMappingsRange) {
  ASSERT_TRUE(poll_pages_initialize(4).ok());
  const PollPageRange range = poll_page_range();
  const uint8_t* first = address_of(range.first);
  EXPECT_FALSE(is_poll_page_address(first - 1));
  EXPECT_TRUE(is_poll_page_address(first));
  EXPECT_TRUE(is_poll_page_address(address_of(global_poll_page()) + 17));
  EXPECT_TRUE(is_poll_page_address(address_of(slot_bad_page(3)) + kernel::os_page_size() - 1));
  EXPECT_TRUE(is_poll_page_address(first + range.bytes - 1));
  EXPECT_FALSE(is_poll_page_address(first + range.bytes));
  EXPECT_FALSE(is_poll_page_address(nullptr));
  EXPECT_FALSE(is_poll_page_address(reinterpret_cast<const void*>(UINTPTR_MAX)));
  int on_stack = 0;
  EXPECT_FALSE(is_poll_page_address(&on_stack));
}

TEST(PollPageDeathTest, BadPageOfAnUninitializedSlotIsAnError) {
  ASSERT_TRUE(poll_pages_initialize(4).ok());
  usgc_test::ThreadsafeDeathTests threadsafe;
  EXPECT_DEATH((void)slot_bad_page(poll_slot_count()),
               "usgc: slot_bad_page\\([0-9]+\\): no such poll slot");
}

// Fresh process: the global page is the runtime's too, and nothing may be initialized yet.
int nothing_before_initialization_then_arm_and_disarm_toggle_readability() {
  FreshProcessChecks checks;
  checks.expect(global_poll_page() == nullptr, "global_poll_page() before initialization");
  checks.expect(always_readable_page() == nullptr, "always_readable_page() before initialization");
  checks.expect(poll_page_range().first == nullptr && poll_page_range().bytes == 0,
                "range before initialization");
  checks.expect(!is_poll_page_address(reinterpret_cast<const void*>(4096)),
                "is_poll_page_address before init");
  const kernel::Status early = arm_global_poll_page();
  checks.expect(!early.ok() && early.error() == EPERM, "arm before initialization: error %d",
                early.error());
  if (!poll_pages_initialize(2).ok()) checks.abandon("poll_pages_initialize(2)");

  const volatile uint8_t* global = global_poll_page();
  for (int round = 0; round < 1000; ++round) {
    if (!arm_global_poll_page().ok()) checks.abandon("arm_global_poll_page");
    checks.expect(!readable_without_fault(global), "round %d: armed global page is readable",
                  round);
    checks.expect(readable_without_fault(always_readable_page()),
                  "round %d: always-readable page armed", round);
    if (!disarm_global_poll_page().ok()) checks.abandon("disarm_global_poll_page");
    checks.expect(readable_without_fault(global), "round %d: disarmed global page is not readable",
                  round);
    if (checks.failures() > 10) break;
  }

  // By a fault, too: a child that loads from the armed page dies by SIGSEGV (no handler here).
  if (!arm_global_poll_page().ok()) checks.abandon("arm_global_poll_page");
  const pid_t child = fork();
  if (child == 0) {
    signal(SIGSEGV, SIG_DFL);  // sanitizer runtimes handle it otherwise
    usgc_test::no_core_dumps();
    usgc_test::poll(global);
    _exit(0);
  }
  const int status = usgc_test::wait_for_child(child);
  checks.expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                "child polling the armed page: status %#x", status);
  if (!disarm_global_poll_page().ok()) checks.abandon("disarm_global_poll_page");
  usgc_test::poll(global);  // and it is readable again here
  return checks.failures();
}

TEST(PollPage, ArmAndDisarmToggleReadabilityOfTheGlobalPage) {
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(
      nothing_before_initialization_then_arm_and_disarm_toggle_readability());
}

}  // namespace
}  // namespace usgc::safepoint
