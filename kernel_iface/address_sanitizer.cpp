// kernel_iface/address_sanitizer.cpp — the hook that adds usgc's view of an address to an
// AddressSanitizer report (address_sanitizer.hpp), and the large unpoison of asan_shadow.hpp. Only
// the asan build has code here.
#include "kernel_iface/address_sanitizer.hpp"
#include "kernel_iface/asan_shadow.hpp"

#include <atomic>
#include <cstdint>

#if USGC_ASAN
#include <sys/mman.h>
#endif

namespace usgc::kernel {

namespace {

// Written once at startup, read (relaxed) only while ASan reports: a plain pointer would do, but
// the report may come from any thread.
std::atomic<AsanReportDescriber> g_describer{nullptr};

#if USGC_ASAN
// ASan calls this with its report's text, after printing it and before it stops the process.
void describe_reported_address(const char*) {
  AsanReportDescriber describer = g_describer.load(std::memory_order_relaxed);
  void* address = __asan_get_report_address();
  if (describer != nullptr && address != nullptr) describer(address);
}
#endif

}  // namespace

#if USGC_ASAN
// See asan_shadow.hpp. The shadow of [address, address + bytes) is (a >> scale) + offset for each
// address a. The
// whole shadow pages inside it are dropped (MADV_DONTNEED on private anonymous memory: they read
// as zero again, and a zero shadow byte is an addressable granule); the partial pages at both ends
// are cleared by ASan's own call, which also keeps its rule for a range that ends inside a
// granule. Nothing else writes this shadow meanwhile: the range is the caller's (memory being
// unmapped, or a block being handed out).
void asan_unpoison_dropping_shadow(const void* address, size_t bytes) {
  if (bytes < kAsanShadowReleaseBytes) {
    __asan_unpoison_memory_region(address, bytes);
    return;
  }
  size_t scale = 0;
  size_t offset = 0;
  __asan_get_shadow_mapping(&scale, &offset);
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  const uintptr_t end = begin + bytes;
  // Application bytes per shadow page: a range aligned to this has a page-aligned shadow.
  const uintptr_t span = uintptr_t{4096} << scale;
  const uintptr_t inner_begin = (begin + span - 1) & ~(span - 1);
  const uintptr_t inner_end = end & ~(span - 1);
  if (inner_begin >= inner_end) {
    __asan_unpoison_memory_region(address, bytes);
    return;
  }
  if (inner_begin > begin) __asan_unpoison_memory_region(address, inner_begin - begin);
  void* shadow = reinterpret_cast<void*>((inner_begin >> scale) + offset);
  if (::madvise(shadow, (inner_end - inner_begin) >> scale, MADV_DONTNEED) != 0) {
    // Not expected (the shadow is one private anonymous mapping); clear it the slow way.
    __asan_unpoison_memory_region(reinterpret_cast<const void*>(inner_begin),
                                  inner_end - inner_begin);
  }
  if (end > inner_end)
    __asan_unpoison_memory_region(reinterpret_cast<const void*>(inner_end), end - inner_end);
}
#endif

void set_asan_report_describer(AsanReportDescriber describer) {
  g_describer.store(describer, std::memory_order_relaxed);
#if USGC_ASAN
  __asan_set_error_report_callback(describe_reported_address);
#endif
}

}  // namespace usgc::kernel
