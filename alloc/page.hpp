// alloc/page.hpp — a page: a run of equal-sized blocks with three sharded free lists.
//
// The free lists (mimalloc's free-list sharding, kept per page so freeing never touches a
// global structure):
//   free_list   blocks malloc pops from.                         owner thread only
//   local_free  blocks the owner freed; swapped into free_list   owner thread only
//               when free_list runs dry, so the fast path has a single list to test.
//   thread_free blocks other threads freed ("remote frees"):    any thread pushes (CAS),
//               an atomic Treiber stack whose two low bits hold  the owner takes it whole
//               the delayed-free state below.                     (exchange)
//
// Delayed-free state (how a remote free tells the owner that a full page has room again):
//   kNoDelayed       remote frees push onto thread_free.
//   kUseDelayed      the page sits in its heap's full queue; the next remote free pushes its
//                    block onto the heap's delayed_free list instead, so the owner notices,
//                    and sets the state back to kNoDelayed.
//   kDelayedFreeing  transient: a remote freer is pushing onto page->heap's list; the owner
//                    must not abandon the page (it waits) while this is set.
//   kNeverDelayed    the page's segment is abandoned (its thread exited): remote frees only
//                    push onto thread_free; the thread that reclaims the segment collects.
//   kEmptied         a full page whose every block another thread freed while its owner was
//                    idle: that thread emptied it for the owner and purged its memory (the
//                    "idle owner" help, remote_free_queue.hpp); the owner retires it. Any free of
//                    one of its blocks is a double free.
//
// Free blocks carry a marker in their second word: free_marker == an address inside their
// segment's header (where this Page lies), "the free marker" (free_marker_of, heap.hpp). It is
// written on every free and cleared on every allocation, so a free of a block whose marker is set
// is a double free. The free fast path derives it from the segment's address, which it has in a
// register already (it addresses the page's fields from it): one instruction, then the test and
// the store are one each (glibc's tcache key costs a load and an xor more). Not the segment's
// address itself: that is also the end of the 4 MiB below it, and a program's end pointer (a
// vector's, in a block's second word) could equal it and read as a double free. A live block can
// hold the marker only if the program wrote a pointer into a usgc segment header into its second
// word (a use-after-free copy of a freed block of the same segment would): then a free reports it
// as a double free.
//
// The local_free check (heap.hpp, "Validation"): the owner's free fast path does not test whether
// a pointer is exactly a block start. Each block on local_free is checked once (block_test_index)
// before the list is handed to malloc, before the page is freed and when the owner counts its
// frees (page_check_local_free, heap.cpp); `local_free_checked` is the head of local_free at the
// last check, so each check walks only the blocks pushed since.
//
// Accounting: `used` counts blocks handed out minus local frees; remote frees are subtracted
// when the owner collects thread_free. A page with used == 0 is returned to its segment.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "alloc/layout.hpp"
#include "kernel_iface/intrusive_list.hpp"

namespace usgc::alloc {

struct Heap;

struct Block {
  Block* next;
  uintptr_t free_marker;
};

enum DelayedState : uintptr_t {
  kNoDelayed = 0,
  kUseDelayed = 1,
  kDelayedFreeing = 2,
  kNeverDelayed = 3,
  kEmptied = 4
};
inline constexpr uintptr_t kDelayedStateMask = 7;  // blocks are 16-byte aligned

// Memory state of a page not in use, for returning memory to the OS (the decay).
enum class PageMemory : uint8_t {
  kFresh,   // never touched since the segment was mapped: zero, not resident
  kDirty,   // touched; resident until purged
  kPurged,  // MADV_DONTNEED queued with decommit_ticket (see decommit_queue.hpp ticket rule)
};

// Bits of Page::slow_free_flags; any set bit sends a free of the owner to the generic path.
inline constexpr uint8_t kPageInFullQueue = 1;
inline constexpr uint8_t kPageHasAligned = 2;  // holds interior pointers from aligned_alloc
// A sample page: holds only heap-profile samples, in its heap's sample queue, never in a class
// queue (heap_profile.hpp, "Sample pages").
inline constexpr uint8_t kPageHasSampled = 4;
// Page 0 of a segment: the segment header lies in its 64 KiB, and the free fast path, which
// finds the page from the pointer's bits 16..21 alone, would let a pointer into the header through.
inline constexpr uint8_t kPageHoldsSegmentHeader = 8;

struct Page {
  // ---- malloc/free fast paths: the first cache line (owner thread only, except as noted) ----
  Block* free_list;
  Block* local_free;
  uint8_t* start;  // first block
  // The thread whose frees may take the free fast path: the owner's id while the page is in use
  // and no slow_free_flags bit is set, 0 otherwise ("fast-free owner"). Written by the owner
  // (and at reclaim) through page_refresh_fast_free_owner; read relaxed by every free fast path,
  // which proceeds only on its own id (only that thread ever wrote its id here).
  std::atomic<uintptr_t> fast_free_owner;
  // The "exact block" test (block_test_index below): the inverse modulo 2^64 of the block size's
  // odd part, and the number of trailing zero bits of the block size.
  uint64_t block_inverse;
  // local_free's head when page_check_local_free last walked it: the blocks from local_free up to
  // (not including) this one are not checked nor counted yet. Owner only.
  Block* local_free_checked;
  uint32_t used;
  // Blocks whose memory has been put on a free list (grows lazily). Written by the owner only;
  // atomic (relaxed) because remote freers read it to validate a pointer: a block they hold
  // was handed out after the capacity covering it was written, so they see at least that.
  std::atomic<uint32_t> capacity_blocks;
  // Blocks the slow paths pushed onto local_free since its last check, already counted in the
  // heap's free counters (or not to be counted: delayed remote frees). Owner only.
  uint32_t local_free_precounted;
  uint8_t block_rotate;
  uint8_t bin;  // size class; kBinCount for large/huge pages
  uint8_t first_line_padding[2];

  // ---- second cache line: slow paths ----
  size_t block_size;  // bytes; 0 while the page is not in use

  // ---- remote frees (any thread) ----
  std::atomic<uintptr_t> thread_free;  // Block* | DelayedState
  // The owning heap; read by a remote freer to pick the inbox its batch goes to (any value is
  // safe there, see remote_free_queue.hpp) and, in kDelayedFreeing state, to push (see above).
  std::atomic<Heap*> heap;

  // ---- heap queues and the decay (owner thread only) ----
  Page* next;
  Page* prev;
  uint64_t purge_deadline_ms;  // when a free, dirty page is purged
  uint64_t decommit_ticket;    // valid while memory == kPurged
  uint32_t reserved;           // blocks that fit in the page
  // The first page of a large object's span: the span's length in pages (large_arena.hpp).
  uint8_t span_pages;
  // kPageInFullQueue | kPageHasAligned | kPageHasSampled. Written by the owner (and by the
  // allocating thread of a large object) with relaxed load+store; read by remote freers, hence
  // atomic.
  std::atomic<uint8_t> slow_free_flags;
  uint8_t in_use;  // 1 while handed to a heap (or holding a large object)
  PageMemory memory;

  uint32_t capacity() const { return capacity_blocks.load(std::memory_order_relaxed); }
  void set_capacity(uint32_t blocks) { capacity_blocks.store(blocks, std::memory_order_relaxed); }
  uint8_t flags() const { return slow_free_flags.load(std::memory_order_relaxed); }
  bool has_flag(uint8_t flag) const { return (flags() & flag) != 0; }
  void set_flag(uint8_t flag) { slow_free_flags.store(flags() | flag, std::memory_order_relaxed); }
  void clear_flag(uint8_t flag) {
    slow_free_flags.store(flags() & static_cast<uint8_t>(~flag), std::memory_order_relaxed);
  }
  void clear_flags() { slow_free_flags.store(0, std::memory_order_relaxed); }
};
// (wasm32 has 4-byte pointers and its own free fast path: alloc/wasm32/free_fast_path_wasm32.hpp)
static_assert(sizeof(void*) != 8 || sizeof(Page) == 128,
              "the free fast path scales the page index by 128 (heap.hpp)");
static_assert(offsetof(Page, used) < 64, "the free fast path's fields share a line");
// A heap's page queues (PageQueue's first/last), through next/prev: owner thread only.
using PageQueueList = kernel::IntrusiveList<Page, &Page::next, &Page::prev>;

// The "exact block" test (Granlund-Montgomery's divisibility test, with the rotation that folds in
// the power-of-two part): a block size d = m * 2^k with m odd; inv * m == 1 modulo 2^64. The map
//   offset -> rotate_right(offset * inv, k)   (modulo 2^64)
// is a bijection of 64-bit values that sends q * d to q for every q < 2^(64-k). So its value is
// below a page's capacity exactly when offset is the start of a block the page has handed out:
// any other offset (inside a block, beyond the capacity, or "negative" because the pointer lies
// below the page's first block) maps to something else, hence to a value >= the capacity.
// One multiply, one rotate, one compare: the range and exact-block checks of every slow free path
// and of the local_free check.
constexpr void compute_block_test(uint64_t block_size, uint64_t* inverse, uint8_t* rotate) {
  unsigned k = 0;
  while (((block_size >> k) & 1) == 0) ++k;
  uint64_t odd = block_size >> k;
  uint64_t inv = odd;  // Newton's iteration: each step doubles the correct low bits (3 -> 96)
  for (int i = 0; i < 5; ++i) inv *= 2 - odd * inv;
  *inverse = inv;
  *rotate = static_cast<uint8_t>(k);
}

[[gnu::always_inline]] inline uint64_t block_test_index(const Page* page, uint64_t offset) {
  return std::rotr(offset * page->block_inverse, page->block_rotate);
}

}  // namespace usgc::alloc
