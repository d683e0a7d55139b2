// alloc/heap_profile.hpp — the heap profile and the leak report of malloc mode (USGC_PROF,
// USGC_LEAKS): sampled allocations with their call stacks, what is still live, at exit or on
// demand.
//
// Sampling (tcmalloc's and Go's scheme). Allocated bytes are cut by a Poisson process of rate
// 1/R (R = USGC_PROF_SAMPLE, default 512 KiB): an allocation of s bytes is sampled with
// probability p(s) = 1 - exp(-s/R), independently of every other, and its sample stands for
// 1/p(s) allocations and s/p(s) bytes: the profile's figures are unbiased estimates. It is
// implemented with countdowns drawn from an exponential distribution of mean R (memoryless: a
// countdown may be redrawn or split by size class without changing the distribution):
//   - sizes above the direct table (> 1 KiB; these always take the generic path): the heap's
//     `sample_countdown_bytes`; each allocation subtracts its requested size s, the one that
//     takes it below zero is sampled, with s the size of p(s);
//   - the direct size classes (<= 1 KiB, the fast path's): one countdown per class, in
//     allocations: the next sampled allocation of class c (block size B) is the one whose index
//     (the heap's malloc_count_by_bin[c]) is `sample_at` = index + floor(X / B), X exponential of
//     mean R. Each allocation of the class is then sampled with probability p(B) (B, the block
//     size, stands for s in the weight; the bytes estimate still uses the requested size).
// R = 1 samples every allocation (countdowns are always 0): the exact mode the leak report uses
// unless USGC_PROF_SAMPLE says otherwise.
//
// Hot path: zero instructions, on or off. The malloc fast path pops the direct page's free list
// and takes the slow path only when the list is empty. With profiling on, the slow path cuts the
// current page's free list of each direct class in front of the block that allocation `sample_at`
// would take (HeapSampleCut, heap_profile_cut.cpp): the fast path runs dry exactly there, and the
// slow path (heap_malloc_profiled) joins the list again, samples that allocation, draws the next
// countdown and cuts again. Cutting walks at most `sample_at - index` blocks and only when the
// page may hold that many (capacity - used); so the cost when on is a walk per sample plus the
// slow path once per sample, per refill nothing but an index compare. When profiling is off no
// list is ever cut and the slow path checks one flag. Everything else is on slow paths too: the
// sampled allocation (heap_profile_sample, heap_profile_record) captures the stack (about 1 000
// instructions: alloc/stack_walk.hpp, cached unwind rules, libgcc's _Unwind_Backtrace as the
// fallback) and inserts the block into the table of sampled blocks; the generic free path removes
// a sampled block.
//
// Sample pages: a sampled small or medium block is allocated from a page of its class that holds
// only sampled blocks (heap_malloc_sample_page, the heap's sample_queues), flagged
// kPageHasSampled: the flag sends that page's frees, and only those, to the generic free path,
// where the block leaves the table. The pages the fast paths allocate from never hold a sample, so
// their frees stay on the free fast path. (Until 2026-12-05 the sampled block stayed on its
// ordinary page and flagged it: every free of that page's blocks took the generic path while the
// sample lived, about 3 % of churn's instructions with profiling on.) A class's sample pages are
// at most a few: a new one is formatted only when every one of them is full. Large objects always
// free through the generic path, so they need no page of their own.
//
// Invariants:
//   - a sampled small or medium block lies on a sample page of its heap (or of the heap that
//     reclaimed its segment, where the page, still flagged, may serve ordinary blocks too);
//   - the table of sampled blocks holds exactly the sampled blocks not yet freed (keyed by the
//     block's start: the page's block for small and medium, the object for large ones);
//   - the cut invariant (heap_profile_cut.cpp): a class's cut is on the first page of its queue
//     (the direct table's page) or nowhere; the fast path's pops are the only changes to that
//     page's free list while it is cut (every slow path that adds blocks to a page's free list, or
//     changes which page is first, joins the cut first and cuts again after);
//   - no code under the profile lock allocates, frees or takes another lock (rank kHeapProfile,
//     the highest): the unwinder runs before the lock is taken, with the thread's recursion
//     guard set so that allocations it makes are never sampled themselves.
// fork: the handlers hold the profile lock across fork (heap_lifecycle.cpp); the child keeps the
// parent's samples and writes its own profile (its own pid in the default name) if it exits.
// Threads: samples belong to the process, not the thread; a thread's exit changes nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "alloc/heap.hpp"

namespace usgc::alloc {

// Options, written once by heap_profile_initialize at process start (before any thread heap
// exists), read-only afterwards.
struct HeapProfileOptions {
  bool profile = false;                        // USGC_PROF
  bool leaks = false;                          // USGC_LEAKS
  uint64_t sample_interval_bytes = 512 << 10;  // USGC_PROF_SAMPLE (R above)
};
extern HeapProfileOptions g_heap_profile_options;

inline bool heap_profile_active() {
  // Both flags in one load and compare (on the path of every remote free).
  static_assert(sizeof(bool) == 1 &&
                offsetof(HeapProfileOptions, leaks) == offsetof(HeapProfileOptions, profile) + 1);
  uint16_t both;
  std::memcpy(&both, &g_heap_profile_options.profile, sizeof both);
  return both != 0;
}

// Reads USGC_PROF, USGC_LEAKS and USGC_PROF_SAMPLE (inside the first malloc: no allocation).
void heap_profile_initialize();

// A fresh countdown for the calling thread's heap: INT64_MAX when profiling is off.
int64_t heap_profile_next_countdown();

// Records `block` (the start of a small/medium block or of a large object, just allocated with
// `size` requested bytes) as a sample, and draws the heap's next byte countdown. A null block
// only draws the countdown.
[[gnu::noinline, gnu::cold]] void heap_profile_sample(Heap* heap, void* block, size_t size);
// Records `block` as a sample taken with probability p(sampled_bytes) (heap_profile_cut.cpp's
// direct classes: the block size). No countdown is drawn.
void heap_profile_record(void* block, size_t size, size_t sampled_bytes);

// ---- the direct classes' cuts (heap_profile_cut.cpp); owner thread, slow paths only ----
// The generic malloc path while profiling is on (heap_malloc_generic calls it).
[[gnu::noinline, gnu::cold]] void* heap_malloc_profiled(Heap* heap, size_t size);
// A new (or reused) heap for this thread: fresh countdowns, no cuts.
void heap_profile_heap_created(Heap* heap);
// `page` is about to get blocks on its free list other than by page_extend (collect, a remote
// block): its cut, if it has one, is joined (true).
bool heap_profile_uncut(Heap* heap, Page* page);
// A block returned to `page` (a remote free the owner drains): put behind the page's cut when it
// has one (true), so the fast path's part keeps its length; false: the caller adds it as usual.
bool heap_profile_free_into_cut(Heap* heap, Page* page, Block* block);
// After a drain of remote blocks: cuts the first page of each class marked in
// heap->sample_recut_bins again (their lists grew), and clears the marks.
void heap_profile_recut_marked(Heap* heap);
// Joins the class's cut and cuts the first page of its queue again (it may be another page now).
void heap_profile_cut_front(Heap* heap, uint32_t bin);
// Joins every cut (before the heap's pages are walked wholesale: trim, abandon); and back.
void heap_profile_uncut_all(Heap* heap);
void heap_profile_cut_all(Heap* heap);

// Counts an allocation made off the fast path (the generic path, calloc's large objects) against
// the countdown, sampling it when the countdown crosses zero.
inline void heap_profile_count(Heap* heap, void* block, size_t size) {
  if (__builtin_expect((heap->sample_countdown_bytes -= static_cast<int64_t>(size)) < 0, 0))
    heap_profile_sample(heap, block, size);
}

// The generic free path: `block` (of a sample page, or a large object) is being freed.
void heap_profile_forget(const void* block);
// realloc kept or moved a block without a new allocation: a sampled one follows it.
void heap_profile_moved(const void* old_block, const void* new_block, size_t size);

// A profile written on a watcher's request (the statistics block's profile_request, answered by
// stats_export.cpp): to the exit profile's path numbered with `number` ("usgc-<pid>.heap.<n>.pb.gz"
// by default), put into path (path_bytes, NUL-terminated). No stderr summary. 0 or an errno
// (ENOTSUP without USGC_PROF=1). Allocator context, no lock held by the caller.
int heap_profile_write_requested(uint32_t number, char* path, size_t path_bytes);

// fork(): taken before, released after (heap_lifecycle.cpp's handlers).
void heap_profile_before_fork();
void heap_profile_after_fork();

// ---- reading the samples (heap_profile_writer.cpp) ----
inline constexpr uint32_t kHeapProfileMaxFrames = 32;

// One call stack and what its samples estimate.
struct HeapProfileSite {
  uint32_t depth;
  uintptr_t frames[kHeapProfileMaxFrames];  // call addresses (return address - 1), innermost first
  uint64_t samples;                         // allocations sampled here
  double allocated_objects;                 // estimates of everything allocated here
  double allocated_bytes;
  double live_objects;  // estimates of what is still allocated
  double live_bytes;
  uint64_t live_samples;  // sampled blocks still allocated
  // usgc allocated it for itself (libnuma's topology at start, ...): the top frame is not the
  // program's and usgc's code comes before the program's below it. The leak report leaves it out.
  bool made_by_usgc;
};

// A copy of every site, taken under the profile lock, in memory of its own (no malloc).
struct HeapProfileSnapshot {
  HeapProfileSite* sites = nullptr;
  uint32_t count = 0;
  size_t mapped_bytes = 0;
  uint64_t sample_interval_bytes = 0;
};
bool heap_profile_take_snapshot(HeapProfileSnapshot* snapshot);
void heap_profile_release_snapshot(HeapProfileSnapshot* snapshot);

// Writes the pprof profile (gzip'd profile.proto) of a snapshot to `path`; 0 or an errno.
int heap_profile_write_file(const HeapProfileSnapshot& snapshot, const char* path);
// The stderr summary of the top sites (after a write to `path`), and the leak report.
void heap_profile_print_summary(const HeapProfileSnapshot& snapshot, const char* path);
void heap_profile_print_leaks(const HeapProfileSnapshot& snapshot);

}  // namespace usgc::alloc
