// kernel_iface/guard_region.hpp — guard pages that do not split a mapping (MADV_GUARD_INSTALL).
//
// Linux 6.13 added madvise(MADV_GUARD_INSTALL): the pages of a range inside an ordinary
// read/write anonymous mapping become guard pages (any access raises SIGSEGV with si_addr at the
// faulting address) without creating a new VMA. A PROT_NONE guard made with mprotect splits the
// mapping in three instead, and the kernel caps mappings per process (vm.max_map_count, 65530 by
// default), so one PROT_NONE guard per goroutine stack caps goroutines at about 32 000.
//
// Guard markers live in the page tables: they survive MADV_DONTNEED/MADV_FREE of a range that
// covers them and are removed by MADV_GUARD_REMOVE or munmap.
//
// guard_regions_supported() probes once (a two-page scratch mapping, a guard installed on one
// page, unmapped again) and caches the answer; the probe's errno is kept for the caller to report
// (EINVAL: the kernel predates 6.13). Nothing here allocates. Not on a hot path: stacks install
// their guard once, when carved.
#pragma once

#include <cstddef>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

// True when this kernel installs guard regions (probed on first call, thread safe).
bool guard_regions_supported();

// errno of the failed probe (EINVAL on kernels before 6.13), 0 when supported or not yet probed.
int guard_regions_probe_error();

// Makes [address, address+bytes) (page aligned, inside a private anonymous read/write mapping)
// guard pages: MADV_GUARD_INSTALL. Any resident page in the range is dropped.
[[nodiscard]] Status install_guard_region(void* address, size_t bytes);

// Removes guard markers from [address, address+bytes): MADV_GUARD_REMOVE (the pages read as zero).
[[nodiscard]] Status remove_guard_region(void* address, size_t bytes);

}  // namespace usgc::kernel
