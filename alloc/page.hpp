// alloc/page.hpp — a page: a run of equal-sized blocks with three sharded free lists.
//
// The free lists (mimalloc's free-list sharding, kept per page so freeing never touches a
// global structure):
//   free_list   blocks malloc pops from.                         owner thread only
//   local_free  blocks the owner freed; swapped into free_list   owner thread only
//               when free_list runs dry, so the fast path has a single list to test.
//   thread_free blocks other threads freed ("remote frees"): an      any thread pushes (CAS),
//               atomic Treiber stack whose low bits hold the      the owner takes it whole
//               delayed-free state below (remote_free_queue.hpp)  (exchange) when it collects
//                                                                 the page; a helper, a full one
//
// Delayed-free state (how a remote free tells the owner that a full page has room again):
//   kNoDelayed       remote frees push onto thread_free.
//   kUseDelayed      the page sits in its heap's full queue: the next remote free pushes its block
//                    onto the heap's delayed_free list instead (one CAS on the owner's heap), so
//                    the owner (or a helper, remote_free_queue.hpp) notices, and sets the state
//                    to kFullNotified.
//   kDelayedFreeing  transient: a remote freer is pushing onto page->heap's list; the owner
//                    must not abandon or unfull the page (it waits) while this is set.
//   kFullNotified    still in the full queue, its owner told (a block of it went onto delayed_free,
//                    or a helper holds one): remote frees push onto thread_free, as kNoDelayed.
//                    Left only by the owner under help_lock (unfull: kNoDelayed; abandon) or by a
//                    helper under help_lock (collected: kUseDelayed again, or kEmptied). So a
//                    page in kUseDelayed or kFullNotified is a full page its owner's fast paths do
//                    not touch, whatever remote frees do meanwhile.
//   kNeverDelayed    the page's segment is abandoned (its thread exited): remote frees only
//                    push onto thread_free; the thread that reclaims the segment collects.
//   kEmptied         a full page whose every block another thread freed while its owner was
//                    idle: that thread emptied it for the owner and purged its memory (the
//                    "idle owner" help, remote_free_queue.hpp); the owner retires it. Any free of
//                    one of its blocks is a double free.
//
// Free blocks carry a marker in their second word: free_marker() (heap.hpp), one address for the
// whole process, inside usgc's segment map (the map's address + 8: the start or the end of nothing
// a program allocates or declares), "the free marker". It is written on every free and cleared on
// every allocation, so a free of a block whose marker is set is a double free. The free fast path
// has it in a register already (the base it reads the map byte through), so the test and the store
// are one instruction each and making it costs none. Not a segment's address (an earlier marker):
// that is also the end of the 4 MiB below it, and a program's end pointer (a vector's, in a
// block's second word) could equal it and read as a double free.
// "Handed out clean": no object malloc returns holds the marker in its second word. Small blocks
// are cleared by their pop (page_take_block); large and huge objects on reused memory, and the
// interior pointers aligned_alloc returns, by clear_free_marker_word: a large object's first page
// starts where a small page's first block did (an aligned pointer, where some block did), and that
// block's marker stays in the memory (realloc of such an object, unwritten, to a small size copied
// it into the new block's second word, which then read as a double free). realloc copies to the
// same offsets, so it never moves a marker into a second word either. A live block holds the
// marker only if the program put it there itself: by copying it from freed memory (use after
// free) or from uninitialized bytes of a block at an offset other than the second word; a free
// then reports it as a double free.
//
// The pop check (heap.hpp, "Validation"): the owner's free fast path does not test whether a
// pointer is exactly a block start. Malloc tests each block it takes from free_list instead
// (page_take_block: the block's offset in its 64 KiB page times block_magic, compared with
// pop_limit, four instructions, no load of the block), so a pointer the fast path let through is
// reported before it is handed out, whichever list it went through; a page about to be freed, trim,
// thread exit and the owner's statistics walk local_free (page_count_local_frees) and a freed
// page's free_list. Nothing walks a list to hand it to malloc.
//
// Accounting: `used` counts blocks handed out minus local frees; remote frees are subtracted
// when the owner collects thread_free. A page with used == 0 is returned to its segment. The
// fast path's frees are counted in the heap's counters later, without a walk when local_free
// becomes free_list: then every block of the page that is not in use is on local_free, so it holds
// capacity - used blocks, of which local_free_counted were counted already (page_collect).
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "alloc/layout.hpp"
#include "kernel_iface/address_sanitizer.hpp"
#include "kernel_iface/intrusive_list.hpp"

namespace usgc::alloc {

struct Heap;

// The two words of a free block. Unchecked: in the asan build a free block is poisoned, and only
// the allocator's own loads and stores of these words may touch it (alloc/asan_tracking.hpp).
struct Block {
  kernel::UncheckedWord<Block*> next;
  kernel::UncheckedWord<uintptr_t> free_marker;
};
static_assert(sizeof(Block) == 2 * sizeof(void*) && offsetof(Block, free_marker) == sizeof(void*));

// "Handed out clean" for an object that does not come from a free list (a large span or a huge
// object whose memory may hold a freed block's words, an aligned interior pointer): its second
// word is not the free marker.
inline void clear_free_marker_word(void* object) {
  static_cast<Block*>(object)->free_marker = 0;
}

enum DelayedState : uintptr_t {
  kNoDelayed = 0,
  kUseDelayed = 1,
  kDelayedFreeing = 2,
  kNeverDelayed = 3,
  // kNoDelayed and kFullNotified are the states a remote free pushes onto thread_free in: the two
  // values whose low two bits are clear (page_thread_free_push tests that, one instruction).
  kFullNotified = 4,
  kEmptied = 5
};
static_assert((kNoDelayed & 3) == 0 && (kFullNotified & 3) == 0 && (kUseDelayed & 3) != 0 &&
              (kDelayedFreeing & 3) != 0 && (kNeverDelayed & 3) != 0 && (kEmptied & 3) != 0);
inline constexpr uintptr_t kDelayedStateMask = 7;  // blocks are 16-byte aligned

// The thread_free word ("the counted list"): on 64-bit targets, the bits from
// kThreadFreeCountShift up count the blocks on the list, the bits below hold its first block (user
// addresses have kUserAddressBits bits; blocks are 16-byte aligned) and bits 0..2 the delayed-free
// state. Each push adds one to the count in the same CAS, so the owner's collect knows the list's
// length without reading its blocks: a walk of a list other cores wrote is one cache miss per
// block, each waiting for the previous one (2026-12-06: 21 % of producer_consumer's CPU samples
// were that walk). A state change keeps the count; taking the list (exchange to the state alone)
// resets it. On 32-bit targets (wasm32, one thread) there is no room: the count stays 0 and the
// collect walks.
inline constexpr bool kThreadFreeCounted = sizeof(uintptr_t) == 8;
inline constexpr unsigned kThreadFreeCountShift = 48;
static_assert(!kThreadFreeCounted || kUserAddressBits <= kThreadFreeCountShift,
              "the counted list: a block's address fits below the count");
static_assert((size_t{1} << kMediumPageShift) / kMinAlignment <
                  (size_t{1} << (64 - kThreadFreeCountShift)),
              "the counted list: the blocks of the largest page of blocks fit in the count");
inline constexpr uintptr_t kThreadFreeCountOne =
    kThreadFreeCounted ? static_cast<uintptr_t>(uint64_t{1} << kThreadFreeCountShift) : 0;
inline constexpr uintptr_t kThreadFreePointerMask =
    kThreadFreeCounted
        ? static_cast<uintptr_t>((uint64_t{1} << kThreadFreeCountShift) - 1) & ~kDelayedStateMask
        : ~kDelayedStateMask;

// The list's first block (null: empty), its length (the counted list; 0 on 32-bit targets) and the
// word after `block` is pushed onto the list `word` held, in `state`.
inline Block* thread_free_pointer(uintptr_t word) {
  return reinterpret_cast<Block*>(word & kThreadFreePointerMask);
}
inline uint32_t thread_free_count(uintptr_t word) {
  return kThreadFreeCounted
             ? static_cast<uint32_t>(static_cast<uint64_t>(word) >> kThreadFreeCountShift)
             : 0;
}
inline uintptr_t thread_free_pushed(uintptr_t word, const Block* block, uintptr_t state) {
  return (word & ~(kThreadFreePointerMask | kDelayedStateMask)) + kThreadFreeCountOne +
         reinterpret_cast<uintptr_t>(block) + state;
}
// The word after the chain first.. of `blocks` blocks (its last block linked to the list `word`
// held) is pushed, in the state `word` holds (page_free_batch.hpp).
inline uintptr_t thread_free_pushed_chain(uintptr_t word, const Block* first, uint32_t blocks) {
  return (word & ~kThreadFreePointerMask) + blocks * kThreadFreeCountOne +
         reinterpret_cast<uintptr_t>(first);
}

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
  // The "exact block" test (block_is_handed_out below): floor(2^64 / block size) + 1.
  uint64_t block_magic;
  // The pop check (page_take_block): block_magic * capacity's step (block_pop_step) for a page
  // whose blocks the free fast path may push (64 KiB pages other than a segment's first, whose
  // blocks start at offset 0 of their page), UINT64_MAX (no check) for the others. Owner only,
  // written with the capacity (set_capacity_and_pop_limit).
  uint64_t pop_limit;
  uint32_t used;
  // Blocks whose memory has been put on a free list (grows lazily). Written by the owner only;
  // atomic (relaxed) because remote freers read it to validate a pointer: a block they hold
  // was handed out after the capacity covering it was written, so they see at least that.
  std::atomic<uint32_t> capacity_blocks;
  // Blocks on local_free whose free is counted in the heap's counters already: pushed by a slow
  // path (which counts, or must not count: delayed remote frees), or counted by the last
  // page_count_local_frees. Owner only.
  uint32_t local_free_counted;
  uint8_t pop_checked;  // 1: pop_limit checks (the page may take fast-path frees)
  uint8_t bin;          // size class; kBinCount for large/huge pages
  // 1: the last collect that gave the page blocks took its owner's own frees (local_free), and the
  // page has not been turned to its queue's back since; a refill's walk that finds it dry turns it
  // to the back once instead of moving it to the full queue (heap_queue_find_free, "the turn").
  // Owner only; 0 on a new page.
  uint8_t local_refilled;
  uint8_t first_line_padding[1];

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

// The "exact block" test (Lemire, Kaser and Kurz's divisibility test by one multiplication,
// "Faster remainder by direct computation", 2019): for a block size d the magic is
// c = floor(2^64 / d) + 1, so d * c = 2^64 + e with 1 <= e <= d (the *step*, block_step_of). For an
// offset o = q * d + r (0 <= r < d) from the page's first block, o + d below 2^40 (every offset
// inside a page),
//   o * c  (mod 2^64)  =  q * e + r * c,
// which is q * e when o is the start of block q, and at least c (above 2^40) otherwise: r >= 1, and
// no wrap since (q + 1) * e <= o + d < c. So o is the start of a block the page has handed out
// exactly when o * c < capacity * e (<= the page's bytes < c): one multiply and one compare, no
// rotate and no division. The range and exact-block checks of every slow free path, of the
// local_free walks and of malloc's pop check (page_take_block, where the product of the block's
// offset in its 64 KiB page is compared with pop_limit = capacity * e).
constexpr uint64_t block_magic_of(uint64_t block_size) {
  // floor(2^64 / d): (2^64 - 1) / d, plus one when d divides 2^64 (a power of two).
  uint64_t floor = UINT64_MAX / block_size + (UINT64_MAX % block_size == block_size - 1 ? 1 : 0);
  return floor + 1;
}
constexpr uint64_t block_step_of(uint64_t block_size, uint64_t magic) {
  return block_size * magic;  // modulo 2^64: e
}

[[gnu::always_inline]] inline bool block_is_handed_out(const Page* page, uint64_t offset) {
  return offset * page->block_magic <
         uint64_t{page->capacity()} * block_step_of(page->block_size, page->block_magic);
}

// The capacity and, on a page whose blocks malloc checks as it takes them, the pop check's limit
// (owner only).
inline void set_capacity_and_pop_limit(Page* page, uint32_t blocks) {
  page->set_capacity(blocks);
  page->pop_limit = page->pop_checked
                        ? uint64_t{blocks} * block_step_of(page->block_size, page->block_magic)
                        : UINT64_MAX;
}

}  // namespace usgc::alloc
