// safepoint/code_ranges.cpp — see code_ranges.hpp.
#include "safepoint/code_ranges.hpp"

#include <link.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "usgc/safepoint.h"

// Defined by the linker for the section the build moves usgc's code into (see the header).
extern "C" {
extern const char __start_usgc_text[] __attribute__((weak, visibility("hidden")));
extern const char __stop_usgc_text[] __attribute__((weak, visibility("hidden")));
}

namespace usgc::safepoint {
namespace {

struct Range {
  uintptr_t begin;
  uintptr_t end;
};

constexpr int kMaxSystemRanges = 32;
Range g_system_ranges[kMaxSystemRanges];  // written by initialize only, before publication
int g_system_range_count = 0;             // idem
std::atomic<bool> g_initialized{false};   // release by initialize, acquire by readers

constexpr const char* kSystemLibraryNames[] = {
    "libc.so",
    "ld-linux",
    "libstdc++.so",
    "libgcc_s.so",
    "libm.so",
    "libpthread",
    "linux-vdso.so",
    "linux-gate.so",
    "libdl.so",
    // Libraries usgc itself calls while it may hold its locks.
    "libnuma.so",
    "liburing.so",
    // Sanitizer runtimes intercept malloc and the blocking calls and hold locks of their own.
    "libasan.so",
    "libtsan.so",
    "libubsan.so",
    "liblsan.so",
};

bool is_system_library(const char* path) {
  if (path == nullptr) return false;
  const char* base = std::strrchr(path, '/');
  base = base != nullptr ? base + 1 : path;
  for (const char* name : kSystemLibraryNames) {
    if (std::strncmp(base, name, std::strlen(name)) == 0) return true;
  }
  return false;
}

// True when one of the object's executable segments holds address.
bool object_holds(const dl_phdr_info* info, uintptr_t address) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type != PT_LOAD || (header.p_flags & PF_X) == 0) continue;
    const uintptr_t begin = info->dlpi_addr + header.p_vaddr;
    if (address >= begin && address < begin + header.p_memsz) return true;
  }
  return false;
}

int add_object_ranges(dl_phdr_info* info, size_t, void* malloc_address) {
  // The object that provides malloc counts as a system library whatever its name (jemalloc or
  // tcmalloc preloaded, or linked into the program): stopping it inside malloc would stop it
  // holding the allocator's locks.
  if (!is_system_library(info->dlpi_name) &&
      !object_holds(info, reinterpret_cast<uintptr_t>(malloc_address)))
    return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type != PT_LOAD || (header.p_flags & PF_X) == 0) continue;
    if (g_system_range_count == kMaxSystemRanges) return 1;
    const uintptr_t begin = info->dlpi_addr + header.p_vaddr;
    g_system_ranges[g_system_range_count++] = Range{begin, begin + header.p_memsz};
  }
  return 0;
}

// Registered polling code (usgc_safepoint_register_polling_code): a slot is free while begin is
// 0, claimed by a registrant while begin is kClaimed, and published once begin holds the range's
// start (release, after end). The signal handler reads begin (acquire), then end; it scans only
// below the high-water mark. A slot being withdrawn shows end 0 first, so it matches nothing.
constexpr uintptr_t kClaimed = 1;
struct PollingRange {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
};
PollingRange g_polling_ranges[USGC_MAX_POLLING_CODE_RANGES];
std::atomic<int> g_polling_high_water{0};  // slots [0, high water) may be in use; only grows

bool in_polling_code(uintptr_t address) {
  // Acquire: pairs with the release that raised the mark after the slot was published.
  const int count = g_polling_high_water.load(std::memory_order_acquire);
  for (int i = 0; i < count; ++i) {
    // Acquire: pairs with the registrant's release store of begin (end was written before).
    const uintptr_t begin = g_polling_ranges[i].begin.load(std::memory_order_acquire);
    if (begin <= kClaimed) continue;
    const uintptr_t end = g_polling_ranges[i].end.load(std::memory_order_relaxed);
    if (address >= begin && address < end) return true;
  }
  return false;
}

}  // namespace

int register_polling_code(const void* code, size_t bytes) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(code);
  if (begin <= kClaimed || bytes == 0 || begin + bytes < begin) return EINVAL;
  for (int i = 0; i < USGC_MAX_POLLING_CODE_RANGES; ++i) {
    uintptr_t expected = 0;
    // Acquire on success: pairs with unregister_polling_code's release store of 0, so its
    // `end = 0` happens before our store of end below (relaxed, a stale 0 could otherwise be
    // ordered after it and the range would match nothing).
    if (!g_polling_ranges[i].begin.compare_exchange_strong(
            expected, kClaimed, std::memory_order_acquire, std::memory_order_relaxed))
      continue;
    g_polling_ranges[i].end.store(begin + bytes, std::memory_order_relaxed);
    // Release: end is visible to a reader that sees begin.
    g_polling_ranges[i].begin.store(begin, std::memory_order_release);
    int mark = g_polling_high_water.load(std::memory_order_relaxed);
    // Release: a reader that sees the new mark sees the published slot.
    while (mark < i + 1 && !g_polling_high_water.compare_exchange_weak(
                               mark, i + 1, std::memory_order_release, std::memory_order_relaxed)) {
    }
    return 0;
  }
  return ENOSPC;
}

int unregister_polling_code(const void* code) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(code);
  if (begin <= kClaimed) return EINVAL;
  // Acquire: pairs with register_polling_code's release CAS of the mark: the slots below it are
  // published.
  const int count = g_polling_high_water.load(std::memory_order_acquire);
  for (int i = 0; i < count; ++i) {
    uintptr_t expected = begin;
    if (!g_polling_ranges[i].begin.compare_exchange_strong(expected, kClaimed,
                                                           std::memory_order_relaxed))
      continue;
    g_polling_ranges[i].end.store(0, std::memory_order_relaxed);
    // Release: the slot is free only after its end was cleared (pairs with the claim CAS in
    // register_polling_code, and with the reader's acquire load of begin).
    g_polling_ranges[i].begin.store(0, std::memory_order_release);
    return 0;
  }
  return EINVAL;
}

void code_ranges_initialize() {
  // Acquire: pairs with the release store below (an earlier call's table is complete).
  if (g_initialized.load(std::memory_order_acquire)) return;
  g_system_range_count = 0;
  void* (*malloc_function)(size_t) = &std::malloc;
  dl_iterate_phdr(add_object_ranges, reinterpret_cast<void*>(malloc_function));
  // Release: the table before the flag; the signal handler is installed after this returns
  // (pairs with the acquire loads in classify_code_address and above).
  g_initialized.store(true, std::memory_order_release);
}

uintptr_t usgc_code_begin() {
  return reinterpret_cast<uintptr_t>(__start_usgc_text);
}
uintptr_t usgc_code_end() {
  return reinterpret_cast<uintptr_t>(__stop_usgc_text);
}

CodeOwner classify_code_address(uintptr_t address) {
  const uintptr_t begin = usgc_code_begin();
  const uintptr_t end = usgc_code_end();
  if (begin == 0 || end == 0) return CodeOwner::kUsgc;  // no section: assume the worst
  if (address >= begin && address < end) return CodeOwner::kUsgc;
  if (in_polling_code(address)) return CodeOwner::kPollingCode;
  // Acquire: pairs with code_ranges_initialize's release store: the system ranges are complete.
  if (!g_initialized.load(std::memory_order_acquire)) return CodeOwner::kSystemLibrary;
  for (int i = 0; i < g_system_range_count; ++i) {
    if (address >= g_system_ranges[i].begin && address < g_system_ranges[i].end)
      return CodeOwner::kSystemLibrary;
  }
  return CodeOwner::kOther;
}

}  // namespace usgc::safepoint

extern "C" USGC_SAFEPOINT_API int usgc_safepoint_register_polling_code(const void* begin,
                                                                       size_t bytes) {
  return usgc::safepoint::register_polling_code(begin, bytes);
}

extern "C" USGC_SAFEPOINT_API int usgc_safepoint_unregister_polling_code(const void* begin) {
  return usgc::safepoint::unregister_polling_code(begin);
}
