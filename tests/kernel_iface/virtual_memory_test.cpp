// tests/kernel_iface/virtual_memory_test.cpp — reserve, map, commit, decommit and protect.
//
// Proves the contract of kernel_iface/virtual_memory.hpp: aligned mappings are aligned, exactly
// as long as asked and zero; decommit gives zero pages back; a reserved range works only after
// commit; protection is enforced; injected map failures surface as ENOMEM and then stop; bad
// arguments are EINVAL, never a crash.
#include "kernel_iface/virtual_memory.hpp"
#include "tests/support/death_test_support.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace usgc::kernel {
namespace {

using usgc_test::ThreadsafeDeathTests;

bool is_all_zero(const void* address, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(address);
  for (size_t i = 0; i < bytes; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

// True when [address, address+bytes) is mapped: mincore fails with ENOMEM on unmapped pages.
bool is_mapped(void* address, size_t bytes) {
  size_t pages = bytes / os_page_size();
  unsigned char residency[64];
  return pages <= sizeof(residency) && ::mincore(address, bytes, residency) == 0;
}

TEST(VirtualMemory, PageSizeIsTheKernelsPageSize) {
  EXPECT_EQ(os_page_size(), static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
}

// The process's mapped address space in KiB (VmSize), read with open/read into a stack buffer
// so that reading it maps nothing; -1 if it cannot be read.
long mapped_kib() {
  char text[4096];
  int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t length = ::read(fd, text, sizeof(text) - 1);
  ::close(fd);
  if (length <= 0) return -1;
  text[length] = '\0';
  const char* field = std::strstr(text, "VmSize:");
  return field == nullptr ? -1 : std::strtol(field + 7, nullptr, 10);
}

// Runs in a forked child: only one thread exists there, so nothing else maps or unmaps while
// it measures. "Keeps no extra address space": the process's mapped size grows by exactly
// the bytes asked for (the over-reservation's head and tail were returned), and shrinks back
// on unmap. (Looking at the neighbouring pages cannot tell: an older mapping may abut ours.)
int check_aligned_mappings_in_child() {
  const size_t page = os_page_size();
  const size_t alignments[] = {page, 16 * page, size_t{1} << 20, size_t{2} << 20, size_t{32} << 20};
  for (size_t alignment : alignments) {
    const size_t bytes = 4 * page;
    const long before_kib = mapped_kib();
    if (before_kib < 0) return 15;
    Result<void*> mapping = map_aligned(bytes, alignment);
    if (!mapping.ok()) return 10;
    auto start = reinterpret_cast<uintptr_t>(mapping.value());
    if (start % alignment != 0) return 11;
    if (!is_mapped(mapping.value(), bytes)) return 12;
    if (mapped_kib() != before_kib + static_cast<long>(bytes / 1024)) return 13;
    if (!unmap(mapping.value(), bytes).ok()) return 14;
    if (mapped_kib() != before_kib) return 16;
  }
  return 0;
}

TEST(VirtualMemory, MapAlignedHonoursEveryAlignmentAndKeepsNoExtraAddressSpace) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(check_aligned_mappings_in_child());
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 map failed, 11 misaligned, 12 not mapped, 13 extra "
                                       "address space kept, 14 unmap failed, "
                                       "15 VmSize unreadable, 16 unmap left address space";
}

TEST(VirtualMemory, FreshMappingIsZeroAndWritable) {
  const size_t bytes = 8 * os_page_size();
  Result<void*> mapping = map_aligned(bytes, os_page_size());
  ASSERT_TRUE(mapping.ok());
  EXPECT_TRUE(is_all_zero(mapping.value(), bytes));
  std::memset(mapping.value(), 0x5a, bytes);
  EXPECT_EQ(static_cast<unsigned char*>(mapping.value())[bytes - 1], 0x5a);
  EXPECT_TRUE(unmap(mapping.value(), bytes).ok());
}

TEST(VirtualMemory, DecommitGivesZeroPagesAfterAWrite) {
  const size_t bytes = 4 * os_page_size();
  Result<void*> mapping = map_aligned(bytes, os_page_size());
  ASSERT_TRUE(mapping.ok());
  std::memset(mapping.value(), 0xa5, bytes);
  VirtualMemoryCounters before = virtual_memory_counters();
  ASSERT_TRUE(decommit(mapping.value(), bytes).ok());
  VirtualMemoryCounters after = virtual_memory_counters();
  EXPECT_TRUE(is_all_zero(mapping.value(), bytes));
  EXPECT_EQ(after.decommits - before.decommits, 1u);
  EXPECT_EQ(after.bytes_decommitted - before.bytes_decommitted, bytes);
  // Still accessible after decommit.
  static_cast<unsigned char*>(mapping.value())[0] = 1;
  EXPECT_TRUE(unmap(mapping.value(), bytes).ok());
}

TEST(VirtualMemory, ReservedRangeIsUsableOnlyAfterCommitAndHonoursProtection) {
  const size_t page = os_page_size();
  const size_t bytes = 4 * page;
  ThreadsafeDeathTests style;
  Result<void*> reserved = reserve_aligned(bytes, size_t{1} << 20);
  ASSERT_TRUE(reserved.ok());
  auto* base = static_cast<unsigned char*>(reserved.value());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % (size_t{1} << 20), 0u);
  EXPECT_DEATH(base[0] = 1, "") << "a reserved (PROT_NONE) page must fault";

  ASSERT_TRUE(commit(base, bytes).ok());
  base[0] = 7;
  base[bytes - 1] = 9;
  EXPECT_EQ(base[0], 7);

  ASSERT_TRUE(protect(base, page, Access::kRead).ok());
  EXPECT_EQ(base[0], 7) << "read-only pages stay readable";
  EXPECT_DEATH(base[0] = 2, "") << "a read-only page must fault on write";
  base[page] = 3;  // the next page is still read-write

  ASSERT_TRUE(protect(base, page, Access::kNone).ok());
  EXPECT_DEATH((void)*static_cast<volatile unsigned char*>(base), "")
      << "PROT_NONE must fault on read";

  ASSERT_TRUE(protect(base, page, Access::kReadWrite).ok());
  base[0] = 4;
  EXPECT_EQ(base[0], 4);
  EXPECT_TRUE(unmap(base, bytes).ok());
}

TEST(VirtualMemory, InjectedMapFailuresGiveEnomemThenMappingWorksAgain) {
  const size_t page = os_page_size();
  VirtualMemoryCounters before = virtual_memory_counters();
  fail_next_maps(2);
  Result<void*> first = map_aligned(page, page);
  Result<void*> second = reserve_aligned(page, 4 * page);
  EXPECT_FALSE(first.ok());
  EXPECT_EQ(first.error(), ENOMEM);
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(second.error(), ENOMEM);
  Result<void*> third = map_aligned(page, page);
  ASSERT_TRUE(third.ok()) << "failure injection must stop after the requested count";
  VirtualMemoryCounters after = virtual_memory_counters();
  EXPECT_EQ(after.failures - before.failures, 2u);
  EXPECT_EQ(after.maps - before.maps, 1u);
  EXPECT_TRUE(unmap(third.value(), page).ok());
}

TEST(VirtualMemory, BadArgumentsAreEinval) {
  const size_t page = os_page_size();
  EXPECT_EQ(map_aligned(0, page).error(), EINVAL) << "zero bytes";
  EXPECT_EQ(map_aligned(page + 1, page).error(), EINVAL) << "bytes not a page multiple";
  EXPECT_EQ(map_aligned(page, 3 * page).error(), EINVAL) << "alignment not a power of two";
  EXPECT_EQ(map_aligned(page, page / 2).error(), EINVAL) << "alignment below the page size";
  EXPECT_EQ(map_aligned(page, 0).error(), EINVAL) << "zero alignment";
  EXPECT_EQ(reserve_aligned(0, page).error(), EINVAL);
  // Misaligned addresses are the kernel's EINVAL, passed through.
  Result<void*> mapping = map_aligned(2 * page, page);
  ASSERT_TRUE(mapping.ok());
  auto* misaligned = static_cast<unsigned char*>(mapping.value()) + 1;
  EXPECT_EQ(decommit(misaligned, page).error(), EINVAL);
  EXPECT_EQ(protect(misaligned, page, Access::kRead).error(), EINVAL);
  EXPECT_EQ(unmap(misaligned, page).error(), EINVAL);
  EXPECT_TRUE(unmap(mapping.value(), 2 * page).ok());
}

TEST(VirtualMemory, HugePageAdviceSucceedsOrReportsEinvalWithoutThp) {
  const size_t bytes = size_t{2} << 20;
  Result<void*> mapping = map_aligned(bytes, bytes);
  ASSERT_TRUE(mapping.ok());
  Status advice = advise_huge_pages(mapping.value(), bytes, true);
  EXPECT_TRUE(advice.ok() || advice.error() == EINVAL) << "errno " << advice.error();
  EXPECT_TRUE(unmap(mapping.value(), bytes).ok());
}

TEST(VirtualMemory, MoveMappingCarriesThePagesAndGrowsWithZeroPages) {
  const size_t page = os_page_size();
  Result<void*> source = map_aligned(4 * page, page);
  ASSERT_TRUE(source.ok());
  std::memset(source.value(), 0x7e, 4 * page);
  Result<void*> target = reserve_aligned(8 * page, 16 * page);
  ASSERT_TRUE(target.ok());
  ASSERT_TRUE(move_mapping(source.value(), 4 * page, 8 * page, target.value()).ok());
  const auto* moved = static_cast<const unsigned char*>(target.value());
  for (size_t i = 0; i < 4 * page; ++i) ASSERT_EQ(moved[i], 0x7e) << i;
  EXPECT_TRUE(is_all_zero(moved + 4 * page, 4 * page)) << "the grown part is fresh zero memory";
  EXPECT_FALSE(is_mapped(source.value(), page)) << "the old range is gone";
  EXPECT_TRUE(unmap(target.value(), 8 * page).ok());
}

TEST(VirtualMemory, MoveMappingOfAnUnmappedRangeFailsWithAnErrno) {
  const size_t page = os_page_size();
  Result<void*> target = reserve_aligned(2 * page, page);
  ASSERT_TRUE(target.ok());
  Status moved = move_mapping(reinterpret_cast<void*>(page), page, 2 * page, target.value());
  EXPECT_FALSE(moved.ok());
  EXPECT_NE(moved.error(), 0);
  EXPECT_TRUE(unmap(target.value(), 2 * page).ok());
}

}  // namespace
}  // namespace usgc::kernel
