// kernel_iface/virtual_memory.hpp — reserve, commit, decommit and protect address ranges.
//
// The only place in usgc that calls mmap, munmap, mprotect and madvise on heap memory.
// Every call returns a Status/Result the caller must look at.
//
// Model (the Linux one, as mimalloc's prim layer uses it):
//   reserve  : address space with no access (PROT_NONE, MAP_NORESERVE); costs no memory.
//   map      : address space readable and writable; pages become resident when first touched,
//              so "commit" of a fresh mapping is free. Contents of a fresh mapping are zero.
//   commit   : make a reserved range readable and writable (mprotect).
//   decommit : give the physical pages back (MADV_DONTNEED) and keep the range accessible; the
//              next touch gets zero pages. Synchronous; see decommit_queue.hpp for the batched
//              asynchronous form used off the allocator's path.
//   protect  : change access (poll pages, guard pages).
//
// Aligned mappings: map_aligned over-reserves by the alignment and trims both ends, so the
// result is aligned and exactly `bytes` long, with no extra address space kept.
//
// Failure injection (tests only, never on in normal runs): fail_next_maps(n) makes the next n
// map/reserve calls fail with ENOMEM, to prove that callers turn it into a clean error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

enum class Access { kNone, kRead, kReadWrite };

// The OS page size (4096 here); read once from the auxiliary vector.
size_t os_page_size();

// A readable, writable mapping of `bytes` aligned to `alignment` (a power of two, at least the
// OS page size). Both must be multiples of the OS page size.
Result<void*> map_aligned(size_t bytes, size_t alignment);

// Address space only (PROT_NONE); commit() before use.
Result<void*> reserve_aligned(size_t bytes, size_t alignment);

Status unmap(void* address, size_t bytes);
Status commit(void* address, size_t bytes);
Status decommit(void* address, size_t bytes);
Status protect(void* address, size_t bytes, Access access);

// Moves the pages of [address, address+old_bytes) to `target` (which must be a mapping of at
// least new_bytes that this call replaces) and grows the mapping to new_bytes (zero pages).
// No copy: the kernel moves page-table entries (mremap MREMAP_MAYMOVE|MREMAP_FIXED).
Status move_mapping(void* address, size_t old_bytes, size_t new_bytes, void* target);

// Transparent huge pages for a range (MADV_HUGEPAGE / MADV_NOHUGEPAGE). EINVAL when the kernel
// has no THP is an error the caller may ignore knowingly.
Status advise_huge_pages(void* address, size_t bytes, bool enable);

// Tests only: the next `count` map/reserve calls fail with ENOMEM.
void fail_next_maps(uint32_t count);

// Counters since process start (relaxed; for statistics).
struct VirtualMemoryCounters {
  uint64_t maps;
  uint64_t unmaps;
  uint64_t decommits;
  uint64_t bytes_decommitted;
  uint64_t failures;
};
VirtualMemoryCounters virtual_memory_counters();

}  // namespace usgc::kernel
