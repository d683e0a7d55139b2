// alloc/heap.hpp — the thread heap and the malloc/free fast paths.
//
// Each thread that allocates has a Heap (found through one initial-exec TLS load). A heap owns
// small and medium segments, keeps a queue of pages per size class, and a "direct table"
// mapping (size+15)/16 to the current page of that size class for sizes up to 1 KiB.
//
// Hot paths (inline here, counted in tests/alloc/fast_path_instructions_test.cpp):
//   heap_malloc_fast  : direct-table load, the pop check (the block is one the page handed out:
//                       one multiply of its address, one compare), free-list pop, marker clear,
//                       one counter. No lock,
//                       no atomic read-modify-write, no system call. The heap profile adds
//                       nothing (it cuts free lists on the slow path: heap_profile.hpp).
//   heap_free         : address check (user space, aligned), segment-map check (a segment of
//                       64 KiB pages), owner check, double-free marker check, push onto
//                       local_free, the used count. Whether the pointer is exactly a block start is
//                       checked by malloc's pop check when it takes the pointer ("Validation").
// Everything else — refills, remote frees, full pages, large objects, errors — is in the
// [[gnu::noinline, gnu::cold]] or noinline generic functions of heap.cpp/large_objects.cpp.
//
// Concurrency: every field of Heap is owner-thread only except delayed_free and remote_inbox
// (any thread pushes, CAS with release; the owner takes the list with an acquire exchange), the
// idle-owner help's fields beside the inbox (see each), and the counters (the owner writes with
// one plain add, counter_increment; anyone reads relaxed for statistics). The pages of the full
// queue are the owner's only while it holds help_lock (remote_free_queue.hpp, "Idle owner help").
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "alloc/foreign_block_cache.hpp"
#include "alloc/page.hpp"
#include "alloc/page_free_batch.hpp"
#include "alloc/remote_free_queue.hpp"
#include "alloc/segment.hpp"
#include "alloc/size_classes.hpp"
#include "kernel_iface/spin_lock.hpp"

namespace usgc::alloc {

struct PageQueue {
  Page* first;
  Page* last;
};

// The name of the public call, for error messages ("free(): pointer 0x... ...").
enum class Caller : uint8_t { kFree, kRealloc, kUsableSize, kDelete, kFreeSized };
const char* caller_name(Caller caller);

inline constexpr uint32_t kHeapCachedSegments = 2;

struct HeapCounters {
  std::atomic<uint64_t> malloc_count_by_bin[kBinCount];
  std::atomic<uint64_t> free_count_by_bin[kBinCount];
  std::atomic<uint64_t> remote_free_count;
};

inline void counter_increment(std::atomic<uint64_t>& counter) {
  // Owner-only writer, so no lock prefix is needed. Readers on other threads load it relaxed: an
  // aligned 8-byte add to memory is a single store of the new value for them, as a relaxed
  // load+store would be; but the compiler does not fold an atomic's load+store into one
  // read-modify-write instruction, so it is written out (3 instructions fewer on malloc).
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
  static_assert(sizeof(counter) == sizeof(uint64_t));
  __asm__("addq $1, %0" : "+m"(counter));
#else
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
#endif
}

// A page with no free block: what the direct table points to when a size class has no page.
extern Page g_empty_page;

// The size classes served through the direct table: bins 0 .. kDirectBinCount - 1.
inline constexpr uint32_t kDirectBinCount = bin_of_size(kDirectMaxSize) + 1;
static_assert(class_size_of_bin(kDirectBinCount - 1) == kDirectMaxSize);
static_assert(kDirectBinCount <= 64, "Heap::sample_recut_bins has a bit per direct class");

// The direct-table slots of each class served through the table: first .. last (a table, so that
// pointing a class's slots elsewhere, which the foreign block cache does often, computes nothing).
struct DirectSlotRange {
  uint8_t first;
  uint8_t last;
};
inline constexpr std::array<DirectSlotRange, kDirectBinCount> kDirectSlotRanges = [] {
  std::array<DirectSlotRange, kDirectBinCount> ranges{};
  for (uint32_t bin = 0; bin < kDirectBinCount; ++bin) {
    ranges[bin].first =
        static_cast<uint8_t>(bin == 0 ? 0 : direct_slot_of_size(class_size_of_bin(bin - 1) + 1));
    ranges[bin].last = static_cast<uint8_t>(direct_slot_of_size(class_size_of_bin(bin)));
  }
  return ranges;
}();
static_assert(kDirectSlots <= UINT8_MAX + 1 &&
              kDirectSlotRanges[kDirectBinCount - 1].last + 1 == kDirectSlots);

// The heap profile's cut of one direct size class (heap_profile_cut.cpp): while `page` is set,
// that page's free list ends at `tail` (the fast path's last block before the sample; null when
// the cut is at the list's head) and the blocks after it wait in `rest`, so the allocation with
// index `sample_at` (the class's malloc_count_by_bin) takes the slow path and is sampled.
struct HeapSampleCut {
  Page* page;
  Block* tail;
  Block* rest;
  uint64_t sample_at;
};

struct Heap {
  // constexpr so that g_empty_heap is constant-initialized (valid before any constructor).
  constexpr Heap() {
    for (Page*& slot : direct_pages) slot = &g_empty_page;
  }
  // Clears the queues and segment lists (not the counters, which stay monotonic across reuse).
  void reset_queues();

  Page* direct_pages[kDirectSlots] = {};  // never null: g_empty_page when the queue is empty
  PageQueue queues[kBinCount] = {};
  PageQueue full_queue = {};
  uintptr_t thread_id = 0;
  int node = 0;
  // Blocks of full pages freed by other threads (see page.hpp "Delayed-free state").
  std::atomic<Block*> delayed_free{nullptr};
  Segment* available_segments[2] = {};  // [small, medium] owned segments with a free page
  Segment* owned_segments = nullptr;    // every owned segment (for purge and abandon)
  Segment* cached_segments[kHeapCachedSegments] = {};  // empty 4 MiB segments kept for reuse
  uint32_t cached_segment_count = 0;
  uint64_t next_purge_ms = 0;  // 0: nothing waits for the decay
  HeapCounters counters = {};
  // Registry of all heaps ever made (never freed; reused after their thread exits).
  // Written once before the heap is published (release), read by statistics (acquire).
  Heap* registry_next = nullptr;
  Heap* pool_next = nullptr;       // in the pool of unused heaps (under the pool lock)
  std::atomic<uint8_t> in_use{0};  // 1 while a thread owns it; read by statistics
  // Remote frees this thread made, batched per destination heap (owner thread only; see
  // remote_free_queue.hpp).
  RemoteBatch remote_batches[kRemoteBatchSlots] = {};
  // Remote frees this thread made that the foreign block cache turned away, gathered per page
  // (owner thread only; page_free_batch.hpp).
  PageFreeBatch page_free_batches[kPageFreeBatchSlots] = {};
  PageFreeBatchWindow page_free_batch_window = {};
  // This heap's inbox: kInboxLanes Treiber stacks of blocks other threads freed, spliced in whole
  // batches (any thread: release CAS; the owner takes each with an acquire exchange), or
  // kInboxClosed. On a cache line of their own, so posts do not disturb the owner's fields.
  alignas(64) std::atomic<uintptr_t> remote_inbox[kInboxLanes] = {};
  // Blocks a helper took from the inbox and gave back (pages that are not full): a stack like a
  // lane, drained and closed with them, but never taken by a helper, so no helper walks the same
  // blocks twice ("Idle owner help", remote_free_queue.hpp).
  std::atomic<uintptr_t> inbox_held_back{0};
  // When the owner last drained (coarse ms; owner: relaxed store; helpers: relaxed load).
  std::atomic<uint64_t> last_drain_ms{0};
  // Batches posted since the owner last drained (posters: relaxed fetch_add; the owner's drain
  // and a helper: relaxed store of 0). With kHelpAfterPosts of them and no drain for the decay,
  // the owner is taken to be idle and a poster helps it.
  std::atomic<uint32_t> inbox_posts{0};
  // Set by a helper (under help_lock) when it emptied or freed into full pages; the owner looks
  // at its full queue on its next refill (relaxed: a hint, the lock orders the page writes).
  std::atomic<uint8_t> helped_pages{0};
  // Excludes a helper from the owner's operations on its full pages (page.hpp, kUseDelayed):
  // the helper only try-locks; the owner locks around its inbox drain, frees into full pages,
  // trim, statistics and thread exit. Rank "heap help".
  kernel::SpinLock help_lock{kernel::LockRank::kHeapHelp};
  uint8_t inbox_line_padding[64 - kInboxLanes * sizeof(std::atomic<uintptr_t>) -
                             sizeof(std::atomic<uintptr_t>) - sizeof(std::atomic<uint64_t>) -
                             sizeof(std::atomic<uint32_t>) - sizeof(std::atomic<uint8_t>) -
                             sizeof(kernel::SpinLock)] = {};

  // ---- the heap profile (heap_profile.hpp, "Sampling"); owner thread only, slow paths only,
  // untouched while profiling is off ----
  // Sizes above the direct table: bytes this thread may still allocate before the next sample;
  // the allocation that takes it below zero is sampled. INT64_MAX while profiling is off.
  int64_t sample_countdown_bytes = INT64_MAX;
  // Direct size classes: the next sampled allocation and the free-list cut that stops the fast
  // path in front of it (heap_profile_cut.cpp).
  HeapSampleCut sample_cuts[kDirectBinCount] = {};
  uint32_t sample_cut_busy_bin = kBinCount;  // the class heap_malloc_profiled is serving
  uint64_t sample_recut_bins = 0;  // classes that got blocks back since the last drain ended
  // The sample pages of each class (kPageHasSampled): sampled blocks are allocated from the first
  // (heap_malloc_sample_page), so no other page's frees leave the fast path.
  PageQueue sample_queues[kBinCount] = {};

  // Other heaps' blocks this thread freed, kept for its own allocations (owner thread only;
  // foreign_block_cache.hpp).
  ForeignBlockCache foreign_blocks = {};
};

// A heap with no pages: every thread starts with it, so its first malloc takes the slow path.
extern Heap g_empty_heap;
// constinit: no dynamic initializer, so no TLS wrapper call on the fast path.
extern constinit thread_local Heap* t_heap __attribute__((tls_model("initial-exec")));
// Set once the calling thread's heap was handed back at its exit (no new heap for a free then).
extern constinit thread_local bool t_thread_heap_exited __attribute__((tls_model("initial-exec")));
// Per-process random key for the markers of aligned_alloc's interior pointers (written once at
// process start). Hidden: loaded with one RIP-relative instruction, not through the GOT.
extern uintptr_t g_free_marker_key __attribute__((visibility("hidden")));

#if defined(__x86_64__)
// The calling thread's id: glibc's thread pointer (%fs:0 holds the TCB's own address).
inline uintptr_t current_thread_id() {
  uintptr_t id;
  __asm__("mov %%fs:0, %0" : "=r"(id));
  return id;
}

// id == current_thread_id(), compared against %fs:0 directly (one instruction, no load first).
inline bool is_current_thread(uintptr_t id) {
  bool equal;
  __asm__("cmp %%fs:0, %1" : "=@cce"(equal) : "r"(id));
  return equal;
}
#else
// wasm32 (one thread, no thread pointer): the address of the thread's own t_heap slot, which is
// distinct per thread wherever thread_local is, and never 0.
inline uintptr_t current_thread_id() {
  return reinterpret_cast<uintptr_t>(&t_heap);
}

inline bool is_current_thread(uintptr_t id) {
  return id == current_thread_id();
}
#endif

// The free marker (page.hpp): what the second word of every free block holds, one address for the
// whole process: the segment map's address + kFreeMarkerOffset. The free fast path reads the map
// byte through that address (the map index minus kFreeMarkerOffset), so the marker is in a register
// there without an instruction of its own. An address inside usgc's own map is neither the start
// nor the end of anything a program allocates or declares, so no program value equals it unless
// copied from a freed block. (The segment's address, an earlier marker, is also where the 4 MiB
// below it end: a vector's end pointer in a block's second word equalled it and read as a double
// free.)
inline constexpr uintptr_t kFreeMarkerOffset = 8;
inline uintptr_t free_marker() {
  return reinterpret_cast<uintptr_t>(g_segment_map) + kFreeMarkerOffset;
}
inline uintptr_t free_marker_of(const Page*) {
  return free_marker();
}

// Aligned allocations that needed over-allocation return a pointer inside their block; the
// word just before it holds this marker, so free can tell that pointer from any other
// interior pointer of the block (which is a bad free).
inline uintptr_t aligned_marker_of(const void* aligned_pointer) {
  return ~(g_free_marker_key ^ reinterpret_cast<uintptr_t>(aligned_pointer));
}

// ---- slow paths (heap.cpp, large_objects.cpp) ----
// Those the fast paths call are gnu::nothrow (nothing in the allocator throws): operator delete and
// glibc's malloc and free are noexcept, and may jump to a slow path only if it cannot throw.
// The size comes first: it is malloc's argument register, so the fast path's jump here moves none.
[[gnu::noinline, gnu::nothrow]] void* heap_malloc_generic(size_t size, Heap* heap);
// heap_malloc_generic without the heap profile (its sampling path allocates with it).
void* heap_malloc_unsampled(Heap* heap, size_t size);
// The pointer comes first: the free fast path keeps it in its argument register.
[[gnu::noinline, gnu::nothrow]] void heap_free_generic(void* pointer, Segment* segment,
                                                       Caller caller);
// Where the free fast path goes when it does not push the block itself (a segment of 64 KiB pages,
// the map byte checked): another heap's block this thread keeps in its foreign block cache, on a
// short path of its own (foreign_block_cache.cpp, "The keeping free"); anything else
// heap_free_generic. `page_bytes`: the page's offset in the segment's page array, as the fast path
// has it (page_at), so that the keeping free need not find the page again.
[[gnu::noinline, gnu::nothrow]] void heap_free_foreign_or_generic(void* pointer, Segment* segment,
                                                                  Caller caller,
                                                                  uintptr_t page_bytes);
// A validated block of a page another thread owns (or nobody: abandoned), not yet marked: onto its
// page (the first into a full page onto its owner's delayed list, counted for the idle-owner help,
// for which a thread that only frees gets a heap here on its first remote free; batched while the
// heap profile is on: remote_free_queue.hpp). The remote half of heap_free_generic, and of the
// keeping free for a block its cache turns away when this thread has no heap yet.
void remote_free_block(Page* page, Block* block, uint32_t bin);
[[gnu::noinline]] void heap_page_retire(Heap* heap, Page* page);
// heap_page_retire of the owner's page holding `pointer` (the free fast path passes what it has in
// registers, so that the page's address is never a value of its own there; the pointer first: it
// stays in its argument register).
[[gnu::noinline, gnu::nothrow]] void heap_page_retire_of(void* pointer, Segment* segment);
[[gnu::noinline, gnu::cold]] void free_outside_segment(void* pointer, Caller caller);
void* heap_malloc_aligned(Heap* heap, size_t size, size_t alignment);
void* heap_calloc(Heap* heap, size_t size);
void* heap_realloc(Heap* heap, void* pointer, size_t size);
// The unbatched remote free: pushes a marked block onto its page's thread_free list (or the
// owner's delayed_free list for a full page, kUseDelayed: then returns true, "the owner was told").
bool page_remote_free(Page* page, Block* block);
// Points the direct-table slots of `bin` (a class up to kDirectMaxSize) at `page`.
inline void set_direct_slots(Heap* heap, uint32_t bin, Page* page) {
  DirectSlotRange range = kDirectSlotRanges[bin];
  for (size_t slot = range.first; slot <= range.last; ++slot) heap->direct_pages[slot] = page;
}
// Usable bytes at pointer; reports bad pointers like free does.
size_t heap_usable_size(const void* pointer, Caller caller);
// Returns empty memory of the calling thread's heap and the caches to the OS now, and waits
// until the kernel has taken it back.
bool heap_trim();

// ---- shared between heap.cpp, large_objects.cpp and heap_lifecycle.cpp ----
[[noreturn, gnu::cold]] void report_invalid_pointer(Caller caller, const void* pointer);
[[noreturn, gnu::cold]] void report_double_free(Caller caller, const void* pointer);
// An invalid pointer the owner's free fast path let through, found by the local_free check.
[[noreturn, gnu::cold]] void report_invalid_pointer_found_later(const void* pointer);
// The block a pointer into an in-use page belongs to (interior pointers allowed only on pages
// holding aligned allocations); reports and aborts on anything else.
Block* page_block_of(Page* page, const void* pointer, Caller caller);
void* large_malloc(Heap* heap, size_t size, bool zero);
void large_free(Segment* segment, void* pointer, Caller caller);
// Resizes a large/huge object without copying: in place, or by moving its pages to a larger
// mapping. Returns the (possibly new) pointer, or nullptr if it cannot (the object is intact).
void* large_resize(Segment* segment, void* pointer, size_t size);
// A block of class `bin` from the heap's sample pages (heap_profile.hpp, "Sample pages"), or
// nullptr when no page can be had (the caller allocates unsampled).
void* heap_malloc_sample_page(Heap* heap, uint32_t bin);
// Frees one block of a page owned by heap; count_free is false for delayed frees (already counted).
void page_local_free(Heap* heap, Page* page, Block* block, bool count_free);
// An owner's free of a block another thread freed and validated (drained from its inbox). Like
// page_collect, it leaves a page whose last block came back in its queue.
void page_free_remote_block(Heap* heap, Page* page, Block* block);
// Gathers local_free and thread_free into free_list (owner only).
void page_collect(Page* page);
// The local_free check (page.hpp): checks that every block pushed onto local_free since the last
// check is a block start the page handed out (reports the first that is not, as an invalid free)
// and adds the fast path's frees among them to the heap's counters (owner only).
void page_count_local_frees(Heap* heap, Page* page);
// page_count_local_frees of `count` pages, their lists walked side by side (each walk is a chain of
// dependent loads of blocks freed long ago: side by side, their cache misses overlap).
void pages_count_local_frees(Heap* heap, Page* const* pages, uint32_t count);
// page_count_local_frees of every in-use page of an owned segment (side by side).
// `walk_every_list` false (thread exit): a page whose free_list is empty is counted without the
// walk (its local_free holds capacity - used blocks, as page_collect counts); its blocks are
// checked by malloc's pop check or the walk when the page is freed, whoever takes the segment.
void segment_count_local_frees(Heap* heap, Segment* segment, bool walk_every_list);
// The owner's statistics are exact: counts every page's uncounted frees (owner only).
void heap_count_local_frees(Heap* heap);
// Gives a page with used == 0 back to its segment; returns true if the segment was released.
bool page_free_to_segment(Heap* heap, Page* page);
// The page fields of a free page (not its memory state nor the segment's counts).
void page_reset_to_free(Page* page);
void heap_drain_delayed_frees(Heap* heap);
// A full page a helper emptied and purged (page.hpp, kEmptied).
inline bool page_was_emptied(const Page* page) {
  return (page->thread_free.load(std::memory_order_relaxed) & kDelayedStateMask) == kEmptied;
}
// Owner, holding help_lock: retires the pages helpers emptied and takes those they freed blocks
// into off the full queue (remote_free_queue.hpp, "Idle owner help").
void heap_take_help_results(Heap* heap);
// The heap's segment lists: "available" (owned, with a free page, per kind) and "owned" (all).
void heap_available_push(Heap* heap, Segment* segment);
void heap_available_remove(Heap* heap, Segment* segment);
void heap_owned_push(Heap* heap, Segment* segment);
void heap_queue_push_back(Heap* heap, Page* page);
// The segment cache of the heap, then the process cache.
void heap_release_empty_segment(Heap* heap, Segment* segment);
Segment* heap_take_empty_segment(Heap* heap);
void heap_purge(Heap* heap, uint64_t now_ms, bool force);
// Lifecycle (heap_lifecycle.cpp).
Heap* thread_heap_create();
void heap_abandon(Heap* heap);
void heap_reclaim_segment(Heap* heap, Segment* segment);
void process_ensure_initialized();
// The first heap of the registry (acquire); follow registry_next.
Heap* heap_registry_first();
// Frees counted for threads without a heap (e.g. during their exit).
extern std::atomic<uint64_t> g_heapless_free_count_by_bin[kBinCount];
extern std::atomic<uint64_t> g_heapless_remote_free_count;
// Large and huge objects (any thread; fetch_add on a slow path).
struct LargeCounters {
  std::atomic<uint64_t> malloc_count{0};
  std::atomic<uint64_t> free_count{0};
  std::atomic<uint64_t> bytes_in_use{0};
};
extern LargeCounters g_large_counters;

// ---- fast paths ----
// Hands out `block`, the first block of the page's non-empty free list (the one pop every
// allocation path shares).
// Malloc's pop check (page.hpp): the block's offset in its 64 KiB page times the page's magic is
// below pop_limit exactly when it is the start of a block the page handed out (pop_limit is
// UINT64_MAX on pages whose lists only validated blocks reach). Four instructions on the block's
// address, not its memory; what fails is a pointer the owner's free fast path let through.
[[gnu::always_inline]] inline void page_pop_check(const Page* page, const Block* block) {
  uint64_t offset = static_cast<uint16_t>(reinterpret_cast<uintptr_t>(block));
  static_assert(kSmallPageShift == 16, "the offset in a 64 KiB page is the low 16 bits");
  if (__builtin_expect(offset * page->block_magic >= page->pop_limit, 0))
    report_invalid_pointer_found_later(block);
}

// Hands out `block`, the first block of the page's non-empty free list (the one pop every
// allocation path shares).
[[gnu::always_inline]] inline void* page_take_block(Heap* heap, Page* page, Block* block) {
  page_pop_check(page, block);
  page->free_list = block->next;
  page->used++;
  block->free_marker = 0;
  counter_increment(heap->counters.malloc_count_by_bin[page->bin]);
  return block;
}

// The fast path of malloc (its whole work, less the call of the slow path): a block of `size`
// bytes, or nullptr when the size is above the direct table or its page has no free block; the
// caller then calls its slow path (heap_malloc_generic, or operator new's, which also retries).
[[gnu::always_inline]] inline void* heap_malloc_fast(Heap* heap, size_t size) {
  if (__builtin_expect(size > kDirectMaxSize, 0)) return nullptr;
  Page* page = heap->direct_pages[direct_slot_of_size(size)];
  Block* block = page->free_list;
  // The heap profile costs nothing here: a sampled allocation finds its page's free list cut
  // in front of it and takes this branch (heap_profile.hpp, "Sampling").
  if (__builtin_expect(block == nullptr, 0)) return nullptr;
  return page_take_block(heap, page, block);
}

[[gnu::always_inline]] inline void* heap_malloc(Heap* heap, size_t size) {
  void* block = heap_malloc_fast(heap, size);
  if (__builtin_expect(block == nullptr, 0)) return heap_malloc_generic(size, heap);
  return block;
}

// The segment-map byte of a segment of 64 KiB pages (small, and large spans): the only one whose
// pointers may take the free fast path (see heap_free).
inline constexpr uint8_t kMapSmallPageSegment = kMapSegment | kSmallPageShift;

// *entry == value, a relaxed load compared in one instruction (the compiler does not fold an
// atomic load into a compare).
[[gnu::always_inline]] inline bool segment_map_entry_is(const std::atomic<uint8_t>* entry,
                                                        uint8_t value) {
#if defined(__x86_64__)
  bool equal;
  // "iq": an immediate once inlined with optimization, a byte register at -O0 (debug builds).
  __asm__("cmpb %b2, %1" : "=@cce"(equal) : "m"(*entry), "iq"(value));
  return equal;
#else
  return entry->load(std::memory_order_relaxed) == value;
#endif
}

// The owner's free fast path ("Validation", the checks and when each is made):
//   on the call   the pointer is a user-space address (bits 47..63 clear: the map index below
//                 drops them) and 16-byte aligned: one rotate puts those 21 bits at the bottom,
//                 one test; its chunk is a segment of 64 KiB pages (map byte, one compare: medium,
//                 huge, foreign and freed chunks go to heap_free_slow); the page (bits 16..21) is
//                 in use by this thread with no slow-free flag (fast-free owner, one compare; page
//                 0 of a segment, which holds the segment header, never has one); the block does
//                 not carry the free marker (double free, one compare).
//   cost          24 instructions and the call (tests/alloc/fast_path_instructions_test.cpp): the
//                 page's address is never formed: each page field is addressed as segment +
//                 page_bytes + offset (page_at, page_used_decrement_is_zero), and the marker is
//                 the register the map byte is read through, so neither needs an instruction of
//                 its own.
//   later         whether the pointer is exactly the start of a block the page has handed out: a
//                 16-byte aligned pointer into a block (or into the not yet handed-out part of the
//                 page) is pushed like a block, writing 16 bytes inside the memory it points to,
//                 and reported (same one-line message) by malloc's pop check as it takes it from
//                 the list (page_pop_check), or by the walk of the lists when the page is freed,
//                 trimmed, abandoned at thread exit or counted for the owner's statistics.
// Every other pointer takes heap_free_slow, which makes every check at once.
[[gnu::noinline, gnu::nothrow]] void heap_free_slow(void* pointer, Caller caller);

// --segment->pages[page_bytes / sizeof(Page)].used == 0 in one instruction, the address as
// segment + page_bytes + offset (the compiler folds a decrement and its test into one instruction
// only when the address has at most two parts, and would add the two registers first).
[[gnu::always_inline]] inline bool page_used_decrement_is_zero(Segment* segment,
                                                               uintptr_t page_bytes) {
#if defined(__x86_64__)
  bool zero;
  __asm__("subl $1, %c[offset](%[segment], %[page_bytes])"
          : "=@ccz"(zero)
          : [segment] "r"(segment), [page_bytes] "r"(page_bytes),
            [offset] "i"(offsetof(Segment, pages) + offsetof(Page, used))
          : "memory");
  return zero;
#else
  Page* page = reinterpret_cast<Page*>(reinterpret_cast<uintptr_t>(segment->pages) + page_bytes);
  return --page->used == 0;
#endif
}

// &segment->pages[page_bytes / sizeof(Page)], computed anew at each use: the free fast path
// addresses each page field as segment + page_bytes + offset in the instruction itself. (With one
// page pointer the compiler spends an instruction on adding the two first.)
[[gnu::always_inline]] inline Page* page_at(Segment* segment, uintptr_t& page_bytes) {
#if defined(__x86_64__)
  __asm__("" : "+r"(page_bytes));  // a new value to the compiler: no sum to share between uses
#endif
  return reinterpret_cast<Page*>(reinterpret_cast<uintptr_t>(segment) + page_bytes +
                                 offsetof(Segment, pages));
}

[[gnu::always_inline]] inline void heap_free(void* pointer, Caller caller) {
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
#if defined(__x86_64__)
  // Bits 47..63 go to 0..16, bits 0..3 to 17..20, bits 22..46 (the chunk) to 39..63.
  uintptr_t rotated = std::rotl(address, 64 - 47);
  if (__builtin_expect((rotated & ((uintptr_t{1} << 21) - 1)) != 0, 0))
    return heap_free_slow(pointer, caller);
  uintptr_t chunk = rotated >> (64 - 47 + kSegmentShift);
  static_assert(kSegmentMapEntries == uintptr_t{1} << (47 - kSegmentShift));
  // The map byte is read through the free marker's address, which stays in its register for the
  // marker test and store below (the empty asm: the compiler would otherwise form the two
  // addresses apart).
  uintptr_t marker = free_marker();
  __asm__("" : "+r"(marker));
  if (__builtin_expect(!segment_map_entry_is(reinterpret_cast<const std::atomic<uint8_t>*>(
                                                 marker + chunk - kFreeMarkerOffset),
                                             kMapSmallPageSegment),
                       0))
    return heap_free_slow(pointer, caller);
  // segment->page_of(address) for 64 KiB pages: the segment (chunk << kSegmentShift) and the
  // page's offset in it, which every page field below adds in its addressing mode.
  static_assert(sizeof(Page) == 128 && kSmallPagesPerSegment == 64);
  Segment* segment = reinterpret_cast<Segment*>(chunk << kSegmentShift);
  uintptr_t page_bytes = (address >> (kSmallPageShift - 7)) & ((kSmallPagesPerSegment - 1) << 7);
#else
  // wasm32: every 32-bit address has a map byte (kUserAddressBits), so the checks are the
  // alignment, the map byte and the page's index, without the rotation.
  if (__builtin_expect((address & (kMinAlignment - 1)) != 0, 0))
    return heap_free_slow(pointer, caller);
  uintptr_t chunk = address >> kSegmentShift;
  static_assert(kSegmentMapEntries == uintptr_t{1} << (32 - kSegmentShift));
  if (__builtin_expect(!segment_map_entry_is(&g_segment_map[chunk], kMapSmallPageSegment), 0))
    return heap_free_slow(pointer, caller);
  Segment* segment = reinterpret_cast<Segment*>(chunk << kSegmentShift);
  uintptr_t page_bytes =
      ((address >> kSmallPageShift) & (kSmallPagesPerSegment - 1)) * sizeof(Page);
  uintptr_t marker = free_marker();
#endif
  Block* block = static_cast<Block*>(pointer);
  // Only the owner reads the page's fields below (local_free, used).
  if (__builtin_expect(
          is_current_thread(
              page_at(segment, page_bytes)->fast_free_owner.load(std::memory_order_relaxed)),
          1)) {
    if (__builtin_expect(block->free_marker != marker, 1)) {
      block->next = page_at(segment, page_bytes)->local_free;
      block->free_marker = marker;
      page_at(segment, page_bytes)->local_free = block;
      if (__builtin_expect(page_used_decrement_is_zero(segment, page_bytes), 0))
        heap_page_retire_of(pointer, segment);
      return;
    }
  }
  // Another thread's block, a page with a slow-free flag, or a marked block: the address and the
  // map are checked already.
  heap_free_foreign_or_generic(pointer, segment, caller, page_bytes);
}

}  // namespace usgc::alloc
