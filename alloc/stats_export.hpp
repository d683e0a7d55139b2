// alloc/stats_export.hpp — the publisher of this process's live statistics block
// (/dev/shm/usgc-<uid>-<pid>, layout in include/usgc/stats_block.h; usgc-top reads it).
//
// When: from the allocator's refill slow path (heap_malloc_refill calls
// stats_export_maybe_publish() first thing), at most every USGC_STATS_INTERVAL_MS (default
// 100 ms). The check is one relaxed load of the next deadline and, only when that is not
// "never", one coarse-clock read (vDSO, no system call); system calls happen only when due.
// Nothing is added to the malloc/free fast paths: the figures are the relaxed counters that
// usgc_malloc_get_stats already folds.
//
// Lifecycle:
//   - lazy: nothing happens in a constructor (the allocator may run before constructors). The
//     first due check reads USGC_STATS / USGC_STATS_INTERVAL_MS and sets the first deadline one
//     interval later, so a process living less than one interval never creates a file; the next
//     due check creates the block ("complete on appearance": see kernel_iface/shared_memory.hpp).
//   - fork child: the child inherits the parent's mapping (MAP_SHARED: the parent's file). The
//     first due check in the child sees the pid change, unmaps the inherited mapping without
//     touching the file, and publishes its own block one interval later (a fork+exec child never
//     creates one).
//   - exit: a destructor function (not atexit: registering an atexit handler from inside malloc
//     could call calloc once glibc's 32 static entries are used) unlinks the block if this
//     process created it, and stops all later publication. A process killed by a signal leaves
//     its file; readers recognize it by its dead pid (alloc/stats_reader.hpp) and remove it.
//   - USGC_STATS=0 (or off/false/no): no file, and the check stays one load (deadline "never").
//
// Heap-profile requests (include/usgc/stats_block.h): with USGC_PROF=1 the block carries
// USGC_STATS_FLAG_HEAP_PROFILE, and each due publication looks at the request word a watcher
// (usgc-top --heap-profile) may have written. A new request (at most one a second) is answered by
// the publishing thread after it let go of the writer lock: heap_profile_write_requested writes
// the profile under a name of this process's choosing, then the answer (error, path) is published
// under the lock and the seqlock. So a request is answered from the allocator's slow path of a
// thread that allocates, within about one interval; never from a signal handler.
//
// Execution context: allocator (inside malloc, possibly before constructors). The publisher
// never allocates, keeps errno intact, and takes no lock of kernel_iface/spin_lock.hpp's table:
// writers are serialized by a try-only lock word holding the writer's pid (a thread that fails to
// take it skips this round), so it can neither deadlock nor need ordering with the allocator's
// locks, and a fork child takes it over when the holder was a thread of its parent.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/size_classes.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/result.hpp"
#include "usgc/stats_block.h"

struct usgc_malloc_stats;

namespace usgc::alloc {

// usgc_malloc_get_stats (alloc/malloc_stats.cpp), whose figures for the calling thread are exact:
// it walks the local free lists of every page of the caller to count its fast-path frees. The
// publisher passes count_callers_frees = false: its own figures may lag like every other
// thread's (by the frees still on its pages' local free lists), and it does not walk them every
// interval.
int malloc_stats_read(usgc_malloc_stats* stats, bool count_callers_frees);

// The heaps' counters summed (relaxed reads, a moment's figures): per size-class bin the mallocs
// and the frees (those of threads without a heap included), remote frees, heaps in use, and the
// bytes of small and medium blocks handed out and not freed (a bin's remote frees may be read
// before the mallocs they free: such a bin counts 0).
struct HeapCountTotals {
  uint64_t mallocs[kBinCount] = {};
  uint64_t frees[kBinCount] = {};
  uint64_t remote_frees = 0;
  uint64_t heaps_in_use = 0;
  uint64_t live_block_bytes = 0;
};
HeapCountTotals sum_heap_counts();

inline constexpr uint64_t kStatsPublishNever = ~uint64_t{0};
inline constexpr uint32_t kStatsDefaultIntervalMs = 100;

// Coarse-monotonic milliseconds of the next publication; 0 before the first check,
// kStatsPublishNever when off or after exit. Written by the elected publisher (relaxed: it is a
// hint; the writer lock orders everything that matters), read relaxed by every refill.
extern std::atomic<uint64_t> g_stats_next_publish_ms;

// The slow part of stats_export_maybe_publish: elects one thread per deadline and publishes.
[[gnu::noinline, gnu::cold]] void stats_export_publish_due(uint64_t deadline_seen, uint64_t now_ms);

// Called at the top of heap_malloc_refill. No system call unless due.
inline void stats_export_maybe_publish() {
  uint64_t deadline = g_stats_next_publish_ms.load(std::memory_order_relaxed);
  if (deadline == kStatsPublishNever) return;
  uint64_t now_ms = kernel::coarse_monotonic_ms();
  if (now_ms < deadline) return;
  stats_export_publish_due(deadline, now_ms);
}

// Publishes now, ignoring the interval (tests; creates the block if needed). ECANCELED when
// USGC_STATS turns publication off or after exit; EBUSY when another thread is publishing;
// otherwise the errno of the failed create/map.
kernel::Status stats_export_publish_now();

// Removes this process's block (if this process created it) and stops all later publication.
// What the exit destructor does.
void stats_export_unpublish();

// The layers above alloc (the goroutine runtime, the collector) add their figures through one
// contributor, called at every publication while the seqlock is odd. It runs in the allocator
// context: it may only read atomics and write the block (no allocation, no lock). nullptr
// removes it. Set by usgc_init, removed by usgc_shutdown.
using StatsContributor = void (*)(usgc_stats_block* block);
void stats_export_set_contributor(StatsContributor contributor);

// Tests: unmaps the block (unlinking it only if this process created it) and forgets the
// configuration, so the next check re-reads the environment and starts over.
void stats_export_reset_for_testing();

}  // namespace usgc::alloc
