// runtime/goroutine_stack_pool.hpp — the goroutine stack pool's state, and what its two files
// share: runtime/goroutine_stack.cpp (acquire, release, the decommits, the drain; its design
// comment describes every field and invariant named here) and runtime/goroutine_stack_refill.cpp
// (carving slots and making stacks ready). Included by those two files only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/result.hpp"
#include "runtime/goroutine_stack.hpp"

namespace usgc::runtime::stack_pool {

constexpr size_t kChunkTargetBytes = size_t{1} << 30;  // 1 GiB of address space per mapping
constexpr uint32_t kMaxChunks = 4096;                  // 4 TiB of stacks
constexpr uint32_t kNoChunk = ~uint32_t{0};
constexpr uint32_t kDecommitBatch = kPendingStacksMax;  // pending stacks decommitted together
constexpr uint32_t kRefillBatch = kFreshStacksMax / 2;  // stacks made ready per refill
constexpr uint32_t kPrepareGroup = 8;  // pages populated and touched between interruption checks

struct StackChunk {
  uint8_t* base = nullptr;  // nullptr: this entry is unused
  size_t bytes = 0;
  size_t guard_bytes = 0;
  size_t usable_bytes = 0;
  uint64_t* free_bits = nullptr;  // one bit per slot: 1 = cold
  size_t free_bits_bytes = 0;
  uint64_t last_ticket = 0;  // newest decommit ticket of a range in this chunk
  uint32_t slot_count = 0;
  uint32_t carved = 0;
  uint32_t live = 0;
  uint32_t cold = 0;
  bool retired = false;
  bool guard_regions = false;

  size_t slot_bytes() const { return guard_bytes + usable_bytes; }
  uint8_t* slot_base(uint32_t slot) const { return base + size_t{slot} * slot_bytes(); }
  uint32_t slot_of(const uint8_t* address) const {
    return static_cast<uint32_t>(static_cast<size_t>(address - base) / slot_bytes());
  }
};

struct WarmStack {
  uint8_t* base = nullptr;
  uint32_t chunk_index = 0;
  uint64_t ticket = 0;  // the decommit of its lower pages
};

struct PooledStack {
  uint8_t* base = nullptr;
  uint32_t chunk_index = 0;
};

struct StackPool {
  kernel::FutexMutex<kernel::LockRank::kGoroutineStacks> lock;
  size_t usable_bytes = 64 * 1024;
  size_t guard_bytes = 16 * 1024;
  bool guard_regions = false;
  StackChunk chunks[kMaxChunks];
  uint32_t chunk_limit = 0;  // entries [0, chunk_limit) may be in use
  uint32_t carving = kNoChunk;
  WarmStack warm[kMaxWarmStacks];
  uint32_t warm_head = 0;  // the oldest warm stack
  uint32_t warm_count = 0;
  uint32_t warm_reserved = 0;  // releases queueing their lower pages' decommit, to join warm[]
  PooledStack pending[kDecommitBatch];
  uint32_t pending_count = 0;
  PooledStack fresh[kFreshStacksMax];
  uint32_t fresh_count = 0;
  bool refilling_ahead = false;
  std::atomic<bool> refill_wanted{false};
  uint64_t cold_slots = 0;
  uint64_t cold_ticket = 0;
  uint64_t live = 0;
  uint64_t chunks_mapped = 0;
  std::atomic<uint64_t> carved{0};  // relaxed: statistics
  std::atomic<uint64_t> chunks_unmapped{0};
  std::atomic<uint64_t> acquires{0};         // relaxed: the scavenger's activity measure
  std::atomic<uint64_t> pages_populated{0};  // relaxed: statistics
  std::atomic<uint64_t> decommits{0};        // relaxed: statistics
  // Tests: called by every decommit the pool queues, right before the queue's enqueue (which may
  // send the batch: the slow system call). Nullptr in production.
  std::atomic<void (*)()> decommit_hook{nullptr};
};
extern StackPool g_pool;

// A chunk's mappings, taken out of the table to be unmapped outside the lock.
struct ChunkToUnmap {
  uint8_t* base = nullptr;
  size_t bytes = 0;
  uint64_t* free_bits = nullptr;
  size_t free_bits_bytes = 0;
  uint64_t last_ticket = 0;
};

// Pending stacks taken out of the pool to be decommitted outside its lock: in flight, each
// counted live in its chunk (so no trim unmaps the chunk meanwhile: the trim rule) and in no
// list (so nobody reuses it before its decommit is queued and its ticket recorded).
struct DecommitBatch {
  PooledStack stacks[kDecommitBatch];
  uint32_t count = 0;
  // One run of adjacent slots per decommit, recorded by decommit_taken for the lock's side.
  uint32_t run_first[kDecommitBatch];
  uint64_t run_ticket[kDecommitBatch];
  uint32_t runs = 0;
};

size_t round_to_pages(size_t bytes);
// The reason usgc_go returns ENOMEM, said once.
void report_acquire_failure_once(const char* operation, int error);
// Lock held. Clears the entry; the caller unmaps outside the lock.
ChunkToUnmap take_chunk_locked(uint32_t index);
// Waits for the chunk's last decommit ticket, then unmaps it (nothing if base is nullptr).
void unmap_chunk(const ChunkToUnmap& chunk);
// Lock held. A released (or drained) stack of a current chunk joins the pending ones; when they
// are a full batch already, they move to `full` (empty on entry) for decommit_taken after the
// lock is dropped.
void make_pending_locked(uint8_t* base, uint32_t chunk_index, DecommitBatch& full);
// Lock NOT held: decommits a taken batch, then makes its stacks cold (goroutine_stack.cpp).
void decommit_taken(DecommitBatch& batch);
// Lock held on entry and on return (released meanwhile): refills fresh[]; 0 or an errno
// (goroutine_stack_refill.cpp).
int refill_locked(bool (*interrupted)(), bool ahead);

}  // namespace usgc::runtime::stack_pool
