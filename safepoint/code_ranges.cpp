// safepoint/code_ranges.cpp — see code_ranges.hpp.
#include "safepoint/code_ranges.hpp"

#include <link.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

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

}  // namespace

void code_ranges_initialize() {
  if (g_initialized.load(std::memory_order_acquire)) return;
  g_system_range_count = 0;
  void* (*malloc_function)(size_t) = &std::malloc;
  dl_iterate_phdr(add_object_ranges, reinterpret_cast<void*>(malloc_function));
  // Release: the table before the flag; the signal handler is installed after this returns.
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
  if (!g_initialized.load(std::memory_order_acquire)) return CodeOwner::kSystemLibrary;
  for (int i = 0; i < g_system_range_count; ++i) {
    if (address >= g_system_ranges[i].begin && address < g_system_ranges[i].end)
      return CodeOwner::kSystemLibrary;
  }
  return CodeOwner::kOther;
}

}  // namespace usgc::safepoint
