// tests/kernel_iface/asan_shadow_test.cpp — kernel_iface/asan_shadow.hpp in the asan build:
// unpoisoning a large range gives its shadow pages back instead of writing zeros over them, with
// the same result as ASan's own unpoisoning.
//
// What is proved:
//   - unmapping a 1 GiB mapping whose shadow was never touched (a goroutine-stack chunk, which
//     the stack scavenger of an idle runtime gives back) leaves no resident shadow page behind.
//     Before, unmap's unpoison was ASan's memset of the whole shadow: 128 MiB of zero pages
//     faulted in and kept resident (and 100-400 ms of CPU: Scheduler.IdleRuntimeUsesNoCpu saw an
//     idle runtime use 70-260 ms in half a second);
//   - a large unpoison of a poisoned range, from an aligned start to an end inside a granule,
//   leaves
//     exactly the bytes asked for addressable, as __asan_unpoison_memory_region does (the start,
//     the middle, the partial granule at the end, and the byte after it).
// In other builds there is no shadow: each test skips and says so.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernel_iface/address_sanitizer.hpp"
#include "kernel_iface/asan_shadow.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

#define SKIP_UNLESS_ASAN()                                                                   \
  do {                                                                                       \
    if (!kAsanTracking)                                                                      \
      GTEST_SKIP() << "ASan's shadow memory exists only in the asan build (make asan-test)"; \
  } while (0)

#if USGC_ASAN
// Resident pages of the shadow of [address, address + bytes) (mincore on the shadow mapping).
size_t resident_shadow_pages(const void* address, size_t bytes) {
  size_t scale = 0;
  size_t offset = 0;
  __asan_get_shadow_mapping(&scale, &offset);
  const uintptr_t page = 4096;
  uintptr_t begin = ((reinterpret_cast<uintptr_t>(address) >> scale) + offset) & ~(page - 1);
  uintptr_t end = ((reinterpret_cast<uintptr_t>(address) + bytes) >> scale) + offset;
  std::vector<unsigned char> residency((end - begin + page - 1) / page);
  if (::mincore(reinterpret_cast<void*>(begin), end - begin, residency.data()) != 0) return 0;
  size_t resident = 0;
  for (unsigned char r : residency) resident += r & 1;
  return resident;
}

bool poisoned(const void* address) {
  return __asan_address_is_poisoned(address) != 0;
}
#endif

TEST(AddressSanitizerShadow, UnmappingAGigabyteLeavesNoResidentShadow) {
  SKIP_UNLESS_ASAN();
#if USGC_ASAN
  constexpr size_t kBytes = size_t{1} << 30;  // a goroutine-stack chunk
  Result<void*> mapped = map_aligned(kBytes, size_t{1} << 21);
  ASSERT_TRUE(mapped.ok());
  char* chunk = static_cast<char*>(mapped.value());
  // A few poisoned spots, as a stack's redzones or a freed block leave them.
  for (size_t at : {size_t{0}, kBytes / 2 + 24, kBytes - 64}) asan_poison(chunk + at, 64);
  const size_t shadow_pages = (kBytes >> 3) / 4096;
  ASSERT_TRUE(unmap(chunk, kBytes).ok());
  // At most the pages at the two ends (cleared by ASan's memset) stay resident.
  EXPECT_LE(resident_shadow_pages(chunk, kBytes), 2u)
      << "of the " << shadow_pages << " shadow pages of the unmapped gigabyte";
#endif
}

TEST(AddressSanitizerShadow, ALargeUnpoisonLeavesExactlyTheBytesAskedForAddressable) {
  SKIP_UNLESS_ASAN();
#if USGC_ASAN
  constexpr size_t kBytes = size_t{8} << 20;
  Result<void*> mapped = map_aligned(kBytes, size_t{1} << 21);
  ASSERT_TRUE(mapped.ok());
  char* region = static_cast<char*>(mapped.value());
  // Unaligned to a shadow page at both ends (the start 16-aligned, as usgc's blocks), the end
  // three bytes into a granule.
  char* start = region + 4096 + 16;
  const size_t length = kBytes / 2 + 8 * 1000 + 3;
  ASSERT_GE(length, kAsanShadowReleaseBytes);
  asan_poison(region, kBytes);
  asan_unpoison_dropping_shadow(start, length);
  EXPECT_TRUE(poisoned(start - 1));
  EXPECT_EQ(__asan_region_is_poisoned(start, length), nullptr);
  EXPECT_TRUE(poisoned(start + length)) << "the byte after the range, inside its last granule";
  EXPECT_TRUE(poisoned(start + length + 8));
  // The same range through ASan's own call gives the same shadow around both ends and inside.
  const std::vector<ptrdiff_t> points = {-4096 - 16,
                                         -1,
                                         0,
                                         7,
                                         8,
                                         static_cast<ptrdiff_t>(length / 2),
                                         static_cast<ptrdiff_t>(length) - 3,
                                         static_cast<ptrdiff_t>(length) - 1,
                                         static_cast<ptrdiff_t>(length),
                                         static_cast<ptrdiff_t>(length) + 5,
                                         static_cast<ptrdiff_t>(length) + 4096};
  std::vector<bool> large;
  for (ptrdiff_t at : points) large.push_back(poisoned(start + at));
  asan_poison(region, kBytes);
  __asan_unpoison_memory_region(start, length);
  std::vector<bool> reference;
  for (ptrdiff_t at : points) reference.push_back(poisoned(start + at));
  EXPECT_EQ(large, reference);
  ASSERT_TRUE(unmap(region, kBytes).ok());
#endif
}

}  // namespace
}  // namespace usgc::kernel
