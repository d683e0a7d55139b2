// runtime/goroutine_stack_refill.cpp — making goroutine stacks ready (the pool's state and its
// invariants: runtime/goroutine_stack.cpp's design comment): mapping chunks, carving slots,
// taking cold slots back, installing guards and populating top pages outside the pool's lock,
// and the refills ahead that an idle P makes for a spawner.
#include <algorithm>
#include <atomic>

#include "kernel_iface/advise_batch.hpp"
#include "kernel_iface/decommit_queue.hpp"
#include "kernel_iface/guard_region.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "runtime/goroutine_stack.hpp"
#include "runtime/goroutine_stack_pool.hpp"
#include "safepoint/stop_trace.hpp"

namespace usgc::runtime {
namespace stack_pool {
namespace {

// Lock held. A new chunk for the current configuration, or an errno.
kernel::Result<uint32_t> map_chunk_locked() {
  uint32_t index = 0;
  while (index < kMaxChunks && g_pool.chunks[index].base != nullptr) ++index;
  if (index == kMaxChunks) return kernel::Result<uint32_t>::failure(ENOMEM);
  const size_t slot_bytes = g_pool.guard_bytes + g_pool.usable_bytes;
  size_t slot_count = kChunkTargetBytes / slot_bytes;
  if (slot_count == 0) slot_count = 1;
  const size_t bytes = slot_count * slot_bytes;
  const size_t bits_bytes = round_to_pages((slot_count + 63) / 64 * sizeof(uint64_t));
  safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kChunkMap);
  kernel::Result<void*> mapping = kernel::map_aligned(bytes, kernel::os_page_size());
  if (!mapping.ok()) return kernel::Result<uint32_t>::failure(mapping.error());
  kernel::Result<void*> bits = kernel::map_aligned(bits_bytes, kernel::os_page_size());
  if (!bits.ok()) {
    (void)kernel::unmap(mapping.value(), bytes);
    return kernel::Result<uint32_t>::failure(bits.error());
  }
  // Stacks touch a page or two each: a transparent huge page would make that 2 MiB. An error
  // (kernel without THP) changes nothing.
  (void)kernel::advise_huge_pages(mapping.value(), bytes, false);
  safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kPoolLock);
  StackChunk& chunk = g_pool.chunks[index];
  chunk = StackChunk{};
  chunk.base = static_cast<uint8_t*>(mapping.value());
  chunk.bytes = bytes;
  chunk.guard_bytes = g_pool.guard_bytes;
  chunk.usable_bytes = g_pool.usable_bytes;
  chunk.free_bits = static_cast<uint64_t*>(bits.value());
  chunk.free_bits_bytes = bits_bytes;
  chunk.slot_count = static_cast<uint32_t>(slot_count);
  chunk.guard_regions = g_pool.guard_regions;
  if (index >= g_pool.chunk_limit) g_pool.chunk_limit = index + 1;
  ++g_pool.chunks_mapped;
  return kernel::Result<uint32_t>::success(index);
}

// Lock held. Up to max cold slots of current chunks into out; returns how many.
uint32_t take_cold_locked(PooledStack* out, uint32_t max) {
  uint32_t taken = 0;
  for (uint32_t index = 0; index < g_pool.chunk_limit && taken < max && g_pool.cold_slots != 0;
       ++index) {
    StackChunk& chunk = g_pool.chunks[index];
    if (chunk.base == nullptr || chunk.retired || chunk.cold == 0) continue;
    for (uint32_t word = 0; chunk.cold != 0 && taken < max && word * 64 < chunk.slot_count;
         ++word) {
      while (chunk.free_bits[word] != 0 && taken < max) {
        const uint32_t bit = static_cast<uint32_t>(__builtin_ctzll(chunk.free_bits[word]));
        chunk.free_bits[word] &= chunk.free_bits[word] - 1;
        --chunk.cold;
        --g_pool.cold_slots;
        out[taken++] = PooledStack{chunk.slot_base(word * 64 + bit), index};
      }
    }
  }
  return taken;
}

// Lock held. Reserves up to max new slots of the carving chunk (mapping one if needed); their
// guards are not installed yet (the caller does, outside the lock). Returns how many, or an errno.
kernel::Result<uint32_t> reserve_new_slots_locked(PooledStack* out, uint32_t max) {
  if (g_pool.carving == kNoChunk ||
      g_pool.chunks[g_pool.carving].carved == g_pool.chunks[g_pool.carving].slot_count) {
    g_pool.carving = kNoChunk;
    kernel::Result<uint32_t> chunk = map_chunk_locked();
    if (!chunk.ok()) {
      report_acquire_failure_once("mapping a chunk of stacks", chunk.error());
      return chunk;
    }
    g_pool.carving = chunk.value();
  }
  StackChunk& chunk = g_pool.chunks[g_pool.carving];
  uint32_t count = std::min(max, chunk.slot_count - chunk.carved);
  for (uint32_t i = 0; i < count; ++i)
    out[i] = PooledStack{chunk.slot_base(chunk.carved + i), g_pool.carving};
  chunk.carved += count;
  return kernel::Result<uint32_t>::success(count);
}

// Installs the guards of new slots (the guard invariant) and populates the top page of every
// slot, outside the lock. Returns how many of `slots` (a prefix) are usable; on a guard failure
// the rest are given up (their address space stays carved but unused until the chunk goes).
// All slots are of one configuration (guard_bytes, slot_bytes); new ones are of one chunk.
// `interrupted` (may be nullptr) is asked before each group of kPrepareGroup pages is populated
// and before each page's first touch: once it says yes the remaining slots are handed out
// unpopulated or untouched (their guards are in place).
uint32_t prepare_slots(const PooledStack* slots, uint32_t count, uint32_t new_from,
                       size_t guard_bytes, size_t slot_bytes, bool regions, bool (*interrupted)()) {
  kernel::AdviseRange ranges[kRefillBatch];
  uint32_t usable = count;
  if (new_from < count) {
    safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kGuardInstall);
    for (uint32_t i = new_from; i < count; ++i)
      ranges[i - new_from] = kernel::AdviseRange{slots[i].base, guard_bytes};
    bool done =
        regions &&
        kernel::advise_batch({ranges, count - new_from}, kernel::BatchAdvice::kGuardInstall).ok();
    for (uint32_t i = new_from; i < count && !done; ++i) {
      kernel::Status guard =
          regions ? kernel::install_guard_region(slots[i].base, guard_bytes)
                  : kernel::protect(slots[i].base, guard_bytes, kernel::Access::kNone);
      if (!guard.ok()) {
        report_acquire_failure_once(
            regions ? "installing a stack guard region" : "protecting a stack guard",
            guard.error());
        usable = i;
        break;
      }
    }
  }
  // The first-touch fault spared: the top page holds the goroutine record and the first frames.
  // A failure (old kernel, no memory now) only means the fault happens later.
  const size_t page = kernel::os_page_size();
  for (uint32_t i = 0; i < usable; ++i)
    ranges[i] = kernel::AdviseRange{slots[i].base + slot_bytes - page, page};
  for (uint32_t group = 0; group < usable; group += kPrepareGroup) {
    if (interrupted != nullptr && interrupted()) break;
    const uint32_t pages = std::min(kPrepareGroup, usable - group);
    safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kPopulate);
    if (!kernel::advise_batch({ranges + group, pages}, kernel::BatchAdvice::kPopulateWrite).ok())
      break;
    g_pool.pages_populated.fetch_add(pages, std::memory_order_relaxed);
    // The first user access, here rather than in the spawn: the slots are still ours (in
    // flight), and the top byte is the goroutine record's, constructed later. Each costs the VM's
    // shadow-page fill (tens of microseconds: most of a refill's time in the churn benchmark), so
    // `interrupted` is asked before each; an untouched page only takes its fill later.
    safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kFirstTouch);
    for (uint32_t i = group; i < group + pages; ++i) {
      if (interrupted != nullptr && i != group && interrupted()) return usable;
      *reinterpret_cast<volatile uint8_t*>(slots[i].base + slot_bytes - 1) = 0;
    }
  }
  return usable;
}

}  // namespace

// Refills g_pool.fresh (lock held on entry and on return; released meanwhile). Returns 0 or an
// errno when nothing could be made ready.
// With `interrupted` (a P that must answer a stop quickly) pages are prepared in small groups
// and the rest left unprepared once it says yes (prepare_slots), and no decommit is waited for:
// a refill ahead returns EAGAIN instead, a spawning goroutine's refill carves new slots instead
// of taking cold ones whose decommit is not known done (its batch may be in its system call on
// another thread, holding the queue's lock; a stop would wait for the spawner meanwhile).
int refill_locked(bool (*interrupted)(), bool ahead) {
  PooledStack slots[kRefillBatch];
  kernel::DecommitQueue& queue = kernel::DecommitQueue::process();
  if (ahead && g_pool.cold_slots != 0 && !queue.is_complete(g_pool.cold_ticket)) return EAGAIN;
  const bool take_cold =
      interrupted == nullptr || ahead || queue.is_known_complete(g_pool.cold_ticket);
  uint32_t count = take_cold ? take_cold_locked(slots, kRefillBatch) : 0;
  const uint64_t ticket = count != 0 ? g_pool.cold_ticket : 0;
  const uint32_t new_from = count;
  if (count == 0) {
    kernel::Result<uint32_t> reserved = reserve_new_slots_locked(slots, kRefillBatch);
    if (!reserved.ok()) return reserved.error();
    count = reserved.value();
  }
  // In flight: counted live, so no trim unmaps their chunk meanwhile (the trim rule).
  for (uint32_t i = 0; i < count; ++i) ++g_pool.chunks[slots[i].chunk_index].live;
  const StackChunk& first = g_pool.chunks[slots[0].chunk_index];  // count > 0 here
  const size_t guard_bytes = first.guard_bytes;
  const size_t slot_bytes = first.slot_bytes();
  const bool regions = g_pool.chunks[slots[count - 1].chunk_index].guard_regions;
  g_pool.lock.unlock();
  // The decommit ticket rule, outside the lock: cold slots' MADV_DONTNEED must be done before
  // their pages are populated (it would zap them again) or used.
  if (ticket != 0 && !queue.is_complete(ticket)) {
    safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kDecommitWait);
    queue.wait(ticket);
  }
  const uint32_t usable =
      prepare_slots(slots, count, new_from, guard_bytes, slot_bytes, regions, interrupted);
  safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kPoolLock);
  if (new_from == 0) g_pool.carved.fetch_add(usable, std::memory_order_relaxed);
  g_pool.lock.lock();
  ChunkToUnmap unused;  // a retired chunk emptied meanwhile (a reconfiguration): never by a trim
  DecommitBatch full;   // pending filled up (kRefillBatch < kDecommitBatch: at most once)
  for (uint32_t i = 0; i < count; ++i) {
    StackChunk& chunk = g_pool.chunks[slots[i].chunk_index];
    --chunk.live;
    if (i >= usable) continue;  // a slot without its guard is never handed out
    if (chunk.retired || g_pool.fresh_count == kFreshStacksMax) {
      if (chunk.retired && chunk.live == 0) unused = take_chunk_locked(slots[i].chunk_index);
      if (!chunk.retired) make_pending_locked(slots[i].base, slots[i].chunk_index, full);
      continue;
    }
    g_pool.fresh[g_pool.fresh_count++] = slots[i];
  }
  if (unused.base != nullptr || full.count != 0) {
    g_pool.lock.unlock();
    decommit_taken(full);
    unmap_chunk(unused);
    g_pool.lock.lock();
  }
  return usable != 0 ? 0 : ENOMEM;
}

}  // namespace stack_pool

using namespace stack_pool;

bool stack_pool_refill_ahead(bool (*interrupted)()) {
  if (!g_pool.refill_wanted.load(std::memory_order_relaxed)) return false;
  kernel::FutexMutexGuard guard(g_pool.lock);
  g_pool.refill_wanted.store(false, std::memory_order_relaxed);
  if (g_pool.refilling_ahead || g_pool.fresh_count > kRefillBatch) return false;
  g_pool.refilling_ahead = true;
  const int error = refill_locked(interrupted, true);  // releases the lock meanwhile
  g_pool.refilling_ahead = false;
  return error == 0;
}

}  // namespace usgc::runtime
