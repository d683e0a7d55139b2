// gc/block.hpp — GC blocks: 64 KiB units of the collected heap, carved from 4 MiB chunks, and
// large objects (one object per mapping).
//
// A block is aligned to kBlockBytes, so the block of any small object is `object & ~kBlockMask`
// (one AND). Its first kBlockHeaderBytes hold this header; slots of one size class follow.
// A large object's mapping starts with the same header (kind kLarge, one slot), so the same AND
// finds it: the object starts within the first block of its mapping.
//
// Ownership of a block (owner_heap_id): a goroutine's heap id while the block belongs to that
// goroutine's private heap (it may then also hold objects that goroutine published in place), or
// 0 when it belongs to the shared heap. Only the owner allocates in it and sweeps it; the shared
// collector reads it while the world is stopped. When a goroutine exits its blocks pass to the
// shared heap (owner -> 0) after its private objects are freed (gc/mutator.cpp).
//
// Slot states, by the header word at the slot's start: 0 = free (the slot is all zero, except
// the first 16 bytes of the first slot of a free run while that run is on free_runs, and every
// slot of a dirty run: see FreeRun); otherwise an object. Sweepers zero a slot when they free it
// (the bitmap sweep leaves its runs dirty instead, zeroed in bulk when handed out), so a new
// object is zero without a memset on the allocation path.
//
// The shared mark bitmap (one bit per slot, for shared and global objects) belongs to shared
// collections: logically cleared for every block by a full collection, set by the parallel
// markers (atomic OR), and set by a publication for the object it makes shared ("allocate black":
// a published object stays live until a full shared mark finds it unreachable). Minor marks keep
// the bits (sticky: set = old). Hence the shared-liveness rule every sweeper uses: an object of
// class SHARED or GLOBAL whose bit is clear is dead (and every live one has its bit once a
// collection saw it).
//
// Lazy clearing by mark epoch. A full collection does not touch the blocks in its stop: it bumps
// g_shared_mark_epoch (even numbers, O(1)). A block whose mark_epoch differs is *stale*: its
// bitmap reads as all clear (shared_marked is false), and the first set_shared_mark of the new
// epoch clears its words and its cards (renew_shared_marks) before setting a bit, so the cost of
// clearing moves from the stop to the markers and publishers, block by block, and blocks that
// hold nothing live (garbage, private blocks without published objects) are never cleared at all
// (the sweep frees the first, the second have nothing to clear that anyone reads). Renewing takes
// the block's mark_epoch to an odd value (epoch + 1) with a CAS, clears, then stores the epoch
// (release); a marker that meets an odd value waits, so no bit is set in words being cleared.
// Why clearing the cards with the bits is right: after a full mark every live object is marked
// (old) and the young generation is empty, so no card dirtied before a block's renewal (during
// the full mark) is needed; a block holding a live shared object is renewed during the full mark
// (that object is marked then), so no card dirtied after the mark is ever lost to a renewal.
//
// Home node (`node`): the NUMA node whose pool the block (or large mapping) belongs to, written
// once when its chunk is mapped (large: when mapped) and kept across reuse; release_block returns
// a block to that node's pool. See "NUMA placement" below.
//
// Cards (one byte per 512 bytes) are dirtied by the write barrier's slow path for stores into
// shared and global objects; a minor shared collection traces the old objects on dirty cards
// (the old-to-young references) and clears them; a full one clears them all (docs/gc.md).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gc/size_classes.hpp"

namespace usgc::gc {

inline constexpr size_t kBlockBytes = 64 * 1024;
inline constexpr uintptr_t kBlockMask = kBlockBytes - 1;
inline constexpr size_t kBlockHeaderBytes = 1280;  // the header and its two bitmaps
inline constexpr size_t kChunkBytes = 4 * 1024 * 1024;
inline constexpr uint32_t kBlocksPerChunk = kChunkBytes / kBlockBytes;
inline constexpr size_t kCardBytes = 512;
inline constexpr uint32_t kCardsPerBlock = kBlockBytes / kCardBytes;
inline constexpr uint32_t kMaxSlotsPerBlock = (kBlockBytes - kBlockHeaderBytes) / 16;

// The current shared mark epoch (even; starts at 2, +2 per full shared collection). Written only
// in the start stop of a full collection; read relaxed anywhere: the stop orders the write before
// any goroutine or marker runs again. (Wraps after 2^31 full collections; a block left stale for
// that long would read as current, which only its own renewal could have made true.)
extern std::atomic<uint32_t> g_shared_mark_epoch;

enum class BlockKind : uint8_t { kFree, kSmall, kLarge, kArena };

// Where a block's slot pages are (the pool's field, kept across formats; gc/block.cpp).
enum class SlotPages : uint8_t {
  kTouched,    // may be resident: every block in use, and free blocks on the resident list
  kReturned,   // given back by the return pass (MADV_DONTNEED): they read zero, none resident
  kUntouched,  // a fresh chunk's block: never touched since the chunk was mapped
};

// A run of free slots on a block's free_runs list, stored in its first slot. A *dirty* run (the
// low bit of `end` set) may still hold the bytes of dead objects: the bitmap sweep of a private
// old-generation cycle (gc/private_old_cycle.hpp) frees slots without touching them, and the run
// is zeroed in bulk when it is handed out (RunCache::take_run) or forgotten (forget_free_runs).
// Every other run is all zero but its first 16 bytes.
inline constexpr uintptr_t kDirtyRunTag = 1;
struct FreeRun {
  char* end;  // tagged: use run_end / run_is_dirty
  FreeRun* next;
};
inline char* run_end(const FreeRun* run) {
  return reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(run->end) & ~kDirtyRunTag);
}
inline bool run_is_dirty(const FreeRun* run) {
  return (reinterpret_cast<uintptr_t>(run->end) & kDirtyRunTag) != 0;
}
inline char* dirty_run_end(char* end) {
  return reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(end) | kDirtyRunTag);
}

struct Block {
  // Written by format (the taker: a release atomic store, after the rest of the
  // format) and by release_block (relaxed, under the pool lock). Read plainly by the block's owner
  // and in the stopped world; read with an acquire atomic load by the scans that run
  // while goroutines format blocks (the minor mark's card scan, gc/parallel_mark.cpp; the
  // conservative scan), which pairs with format's release: a scan that sees the new kind sees the
  // format's size class, bitmap and cards. Such a scan re-reads kind and size_class before it
  // trusts a slot it located with them (a seqlock's read side).
  BlockKind kind = BlockKind::kFree;
  // The pool's fields, kept when the block is formatted (the pool lock's, or the taker's while
  // the block is in use; the returner's while a return has it off the lists): its home node, and
  // where its slot pages are (taking a block whose pages are not resident adds them to
  // bytes_committed again).
  uint8_t node = 0;
  SlotPages slot_pages = SlotPages::kTouched;
  uint32_t size_class = kNoSizeClass;  // as `kind` (format stores it relaxed before kind's release)
  uint32_t slot_bytes = 0;
  uint32_t slot_count = 0;
  uint64_t slot_reciprocal = 0;  // slot index = (offset * reciprocal) >> 32, exact here
  // Owner heap id (0 = shared). Written by the owner (or, at its exit, by the exiting goroutine)
  // and by the shared heap under its class lock; read by the shared collector in the stopped world
  // and by markers while a mark runs (try_mark_shared): the exit's hand-over (owner -> 0) may
  // happen then, so both sides use relaxed atomic loads and stores.
  uint64_t owner_heap_id = 0;
  Block* next_in_heap = nullptr;  // the owner's list of its blocks of this class; the pool's, free
  // A free block whose slot pages may be resident (the pool's list of them, under the pool lock):
  // the previous (newer) one on that list, and when it was released (coarse ms). Dead otherwise.
  Block* previous_free = nullptr;
  uint64_t free_since_ms = 0;
  Block* next_partial = nullptr;  // the owner's list of blocks with free runs
  FreeRun* free_runs = nullptr;   // owner only
  uint32_t live_slots = 0;        // after the last sweep (owner only)
  bool on_partial_list = false;   // private blocks: on the owner's partial list (owner only)
  // Private blocks, owner only: an object in the block was published in place since its last
  // sweep found none (set by publication, recomputed by private sweeps). The bitmap sweep of an
  // old-generation cycle frees a block without reading its slots only when this is clear.
  bool holds_published = false;
  // Private blocks, owner only: how many of the block's objects the old-generation cycle tagged
  // `cycle_epoch` marked (traced, shaded, or promoted black); a count of another epoch is 0
  // (gc/private_old_cycle.hpp). May over-count (a marked object published since), never under.
  uint32_t cycle_epoch = 0;
  uint32_t cycle_marked_slots = 0;
  // Private blocks, owner only: the marks of the old-generation cycle tagged cycle_epoch, one bit
  // per slot (a large object: bit 0); of another epoch, all clear. The cycle marks old objects
  // here, not in their headers, so its sweep reads this and never a slot.
  uint64_t cycle_mark_bits[kMaxSlotsPerBlock / 64 + 1];
  size_t mapping_bytes = 0;         // large: the whole mapping
  Block* large_previous = nullptr;  // large: the registry of large objects (its lock)
  Block* large_next = nullptr;
  // The epoch the bitmap and the cards belong to (see "Lazy clearing by mark epoch"); odd while a
  // renewal clears them. Written by format (the block's taker) and by renew_shared_marks (CAS,
  // then a release store); read with acquire by every reader of the bitmap. Format writes these
  // three with atomic stores, never a memset: a card scan may still read a block's previous format.
  std::atomic<uint32_t> mark_epoch{0};
  std::atomic<uint64_t> mark_bits[kMaxSlotsPerBlock / 64 + 1];
  std::atomic<uint8_t> cards[kCardsPerBlock];

  char* slots_begin() { return reinterpret_cast<char*>(this) + kBlockHeaderBytes; }
  char* slots_end() { return slots_begin() + size_t{slot_count} * slot_bytes; }
  char* slot_at(uint32_t index) { return slots_begin() + size_t{index} * slot_bytes; }
  uint32_t slot_index_of(const void* slot_or_object) const {
    uint64_t offset =
        static_cast<uint64_t>(static_cast<const char*>(slot_or_object) -
                              (reinterpret_cast<const char*>(this) + kBlockHeaderBytes));
    return static_cast<uint32_t>((offset * slot_reciprocal) >> 32);
  }
  // The bitmap belongs to the current epoch (else it reads as all clear).
  bool shared_marks_current() const {
    // Acquire: pairs with renew_shared_marks' release store (the cleared words are seen).
    return mark_epoch.load(std::memory_order_acquire) ==
           g_shared_mark_epoch.load(std::memory_order_relaxed);
  }
  bool shared_marked(uint32_t index) const {
    if (!shared_marks_current()) return false;
    return (mark_bits[index / 64].load(std::memory_order_relaxed) >> (index % 64)) & 1;
  }
  // True when this call set the bit (it was clear).
  bool set_shared_mark(uint32_t index) {
    if (__builtin_expect(!shared_marks_current(), 0)) renew_shared_marks();
    uint64_t bit = uint64_t{1} << (index % 64);
    if (mark_bits[index / 64].load(std::memory_order_relaxed) & bit) return false;
    return (mark_bits[index / 64].fetch_or(bit, std::memory_order_relaxed) & bit) == 0;
  }
  // A stale block: clears its bitmap and cards for the current epoch (gc/block.cpp). Returns once
  // the block is current (whoever cleared it).
  [[gnu::cold, gnu::noinline]] void renew_shared_marks();
  // A large object's mapping has cards only for its first block: stores beyond it dirty the last
  // card (a large object with any dirty card is scanned whole).
  void dirty_card(const void* field) {
    size_t card =
        static_cast<size_t>(static_cast<const char*>(field) - reinterpret_cast<const char*>(this)) /
        kCardBytes;
    if (card >= kCardsPerBlock) card = kCardsPerBlock - 1;
    if (cards[card].load(std::memory_order_relaxed) == 0)
      cards[card].store(1, std::memory_order_relaxed);
  }
};
static_assert(sizeof(Block) <= kBlockHeaderBytes, "the block header fits before the first slot");

inline Block* block_of(const void* object) {
  return reinterpret_cast<Block*>(reinterpret_cast<uintptr_t>(object) & ~kBlockMask);
}

// ---- the block pool (gc/block.cpp) ----
//
// NUMA placement: one pool of free blocks per node. A block is taken from the pool of the node
// of the CPU the taker runs on at that moment (the P's worker: HotSpot's NUMA-aware eden asks
// the same question at each TLAB refill), so a goroutine's private blocks, its stack arena and a
// P's shared-cache blocks come from the node it runs on when it needs them; a goroutine that
// settles on another node gets its new blocks there (objects never move). A chunk is bound to
// its node (numa::bind_to_node, MPOL_PREFERRED) before its first touch when there is more than
// one node; where the kernel refuses, first touch places it (the taker runs on that node).
// One node is the ordinary case: the node is resolved here, on the block slow path, with one
// load of the topology's node count, and nothing on the allocation fast path knows about nodes.

// Result of taking memory: the block, or nullptr with the reason.
enum class AcquireFailure : uint8_t { kNone, kHeapLimit, kOutOfMemory };

// The node whose pool serves the calling thread now: 0 with one node, else the node of its CPU.
int block_node_of_caller();

// A zeroed block, formatted for `size_class` (kSmall) or as an arena (kArena, size_class unused),
// owned by owner_heap_id, from the pool of block_node_of_caller() (another node's free block only
// when that node's pool cannot grow). nullptr when the heap limit or the OS refuses (*failure
// says which).
Block* acquire_block(BlockKind kind, uint32_t size_class, uint64_t owner_heap_id,
                     AcquireFailure* failure);
// The same from the pool of `node` (0 <= node < numa::kMaxNodes).
Block* acquire_block_on_node(int node, BlockKind kind, uint32_t size_class, uint64_t owner_heap_id,
                             AcquireFailure* failure);
// Gives an empty block back to the pool of its home node (its slots must be zero; arena blocks
// are zeroed here).
void release_block(Block* block);
// A large object of `bytes` (header included) as its own mapping on block_node_of_caller()'s
// node; zeroed.
Block* acquire_large(size_t object_bytes, uint64_t owner_heap_id, AcquireFailure* failure);
void release_large(Block* block);

// Per-node figures of the pool (relaxed counters: each is exact when nothing is in flight).
struct NodePoolBytes {
  size_t bytes_committed = 0;  // chunks and large mappings of the node, less the slot pages of
                               // free blocks that are not resident (returned, or never touched)
  size_t bytes_in_use = 0;     // blocks taken and large mappings (the node's share of
                               // heap_bytes_in_use())
  size_t free_blocks = 0;      // blocks in the node's pool (resident or not)
  size_t returned_blocks = 0;  // of those, blocks whose slot pages are not resident
};

// ---- returning free blocks' pages to the OS (gc/block.cpp, "Returning pages") ----
//
// A free block keeps its pages while it waits in the pool: taking it again costs no fault.
// One that stayed free longer than the decay has its slot pages (from the first page boundary
// after its header to its end) returned with MADV_DONTNEED by return_free_block_pages, which runs
// on the runtime's scavenger thread — never inside a pause, never on a goroutine. The caller owns
// the policy (the decay: USGC_DECAY_MS, runtime/stack_scavenger.cpp); the pool only knows when
// each block was released.

// The release time (kernel::coarse_monotonic_ms) of the oldest free block whose slot pages may be
// resident, over every node; 0 when there is none. One relaxed load per node: the monitor asks.
uint64_t oldest_resident_free_block_ms();

struct BlockPageReturn {
  uint32_t blocks = 0;        // blocks whose slot pages went back
  uint32_t system_calls = 0;  // process_madvise / madvise calls made for them
  uint32_t failures = 0;      // blocks the kernel refused (kept resident, released again now)
};
// Returns the slot pages of up to max_blocks free blocks released at or before cutoff_ms, oldest
// first, in batches of up to 256 blocks per system call (process_madvise: one TLB flush per
// batch; madvise per block where the kernel refuses it). The pool lock is held only to unlink
// a few blocks at a time and to splice the batch back; the system call runs without it, with the
// batch off every list (a taker meanwhile gets another block, or a new chunk). Any thread that
// is not a goroutine: the scavenger, tests.
BlockPageReturn return_free_block_pages(uint64_t cutoff_ms, uint32_t max_blocks);

// Totals since start (relaxed; statistics and tests): blocks whose pages went back, the calls
// made for them, and how many return passes ran on a goroutine's thread (which may be inside a
// pause: none should, by design).
struct BlockPageReturnTotals {
  uint64_t blocks_returned = 0;
  uint64_t bytes_returned = 0;
  uint64_t system_calls = 0;
  uint64_t passes = 0;
  uint64_t passes_on_goroutines = 0;
  // blocks taken whose slot pages were not resident (returned, or a fresh chunk's): each one's
  // pages fault in again as it fills
  uint64_t blocks_taken_not_resident = 0;
};
BlockPageReturnTotals block_page_return_totals();
NodePoolBytes node_pool_bytes(int node);
// 1 + the highest node that ever had a chunk or a large mapping (at least 1).
int node_pool_span();

// Calls fn(block) for every block in use (small, arena and large). Only while the world is
// stopped or with no other thread changing the pool (tests).
template <typename Fn>
void for_each_block_in_use(Fn&& fn);

// Bytes of blocks and large mappings in use (what USGC_HEAP_MAX limits).
size_t heap_bytes_in_use();
size_t heap_limit_bytes();
void set_heap_limit_bytes(size_t bytes);  // 0 = none
// The limit minus what is in use, or SIZE_MAX without a limit.
size_t heap_headroom_bytes();

// Registry access for for_each_block_in_use (block.cpp).
uint32_t chunk_count();
char* chunk_at(uint32_t index);
Block* first_large_object();
// Calls fn(block, context) for every large object under the pool lock, so it may run while the
// world runs (a minor mark's card scan): no mapping on the list is unmapped meanwhile. fn takes no
// lock of a lower rank (the pool lock is nearly a leaf) and allocates only through usgc_malloc.
void for_each_large_object_locked(void (*fn)(Block* large, void* context), void* context);
// The SHARED or GLOBAL large object whose mapping holds `address` (past its block header), or
// nullptr. Under the pool lock, so it may run while the world runs (conservative roots): a mapping
// on the list is mapped while the lock is held.
void* large_shared_object_containing(uintptr_t address);

template <typename Fn>
void for_each_block_in_use(Fn&& fn) {
  uint32_t chunks = chunk_count();
  for (uint32_t c = 0; c < chunks; ++c) {
    char* chunk = chunk_at(c);
    for (uint32_t b = 0; b < kBlocksPerChunk; ++b) {
      auto* block = reinterpret_cast<Block*>(chunk + size_t{b} * kBlockBytes);
      if (block->kind != BlockKind::kFree) fn(block);
    }
  }
  for (Block* large = first_large_object(); large != nullptr; large = large->large_next) fn(large);
}

}  // namespace usgc::gc
