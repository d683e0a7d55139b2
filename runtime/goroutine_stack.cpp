// runtime/goroutine_stack.cpp — carving, pooling and giving back goroutine stacks (see the .hpp).
//
// State: one StackPool, g_pool, every field under g_pool.lock (a FutexMutex; never held by a
// signal handler) except the relaxed statistics counters. No system call is made under the lock
// except the queueing of decommits: the release that fills the queue's batch makes its
// process_madvise (about 13 us per range, up to 64 ranges: under a millisecond, once per 64
// decommits), or an io_uring submission, or one madvise in the fallback mode
// (kernel_iface/decommit_queue.hpp).
//   chunks[]      the reservations; an entry with base == nullptr is unused. A chunk is carved
//                 front to back (carved slots so far); a carved slot is live (handed out, or in
//                 flight in a refill), warm, pending, fresh or cold. chunk.live counts live ones.
//   warm[]        FIFO ring of released stacks that keep their top kKeptResidentBytes. The oldest
//                 is reused first: its decommit ticket, 256 releases old, has completed, so a
//                 spawn does not wait for the kernel (the newest one's usually has not).
//   pending[]     released stacks beyond the warm ones, still resident, waiting to be decommitted
//                 together: when kDecommitBatch have gathered they are sorted by address and each
//                 run of adjacent slots is one MADV_DONTNEED (the guards between them survive it,
//                 guard_region.hpp), one TLB shoot-down per run instead of one per stack. Reused
//                 first of all the non-warm stacks (LIFO): they need neither a fault nor a ticket.
//   fresh[]       stacks ready to hand out: guard in place, decommit complete, top page populated
//                 and touched once from user space (on a VM the first user access to a page costs
//                 a shadow-page-table fill even after the kernel populated it).
//                 A refill (acquire with nothing pooled) takes up to kRefillBatch cold slots or
//                 carves new ones, and outside the lock installs the new guards and populates the
//                 top pages with one process_madvise each (kernel_iface/advise_batch.hpp): on a
//                 VM a first-touch fault costs tens of microseconds, the batched populate a few.
//                 Refills ahead: a spinning machine with nothing to run (scheduler.cpp) calls
//                 stack_pool_refill_ahead, which refills while a spawner is draining fresh[], so
//                 the spawner finds its stacks ready and the idle P pays for making them so.
//   refill_wanted an acquire left fresh[] at most half full (relaxed: a hint; a lost one only
//                 means the spawner refills itself). refilling_ahead: one ahead refill at a time.
//   free_bits     per chunk, one bit per cold slot (released, nothing resident). A bitmap rather
//                 than a list, so a million pooled stacks cost 128 KiB of bits, not their pages.
// Invariants:
//   the guard invariant: every carved slot has its guard (installed once when carved; guard
//     regions and PROT_NONE both survive MADV_DONTNEED), until its chunk is unmapped.
//   the decommit ticket rule (decommit_queue.hpp): a slot handed out again has its ticket
//     complete: warm entries carry theirs, cold slots are covered by cold_ticket (the newest cold
//     release's), and a chunk is unmapped only after its last_ticket completes (a late
//     MADV_DONTNEED must not land on whatever is mapped there next).
//   the retirement rule: a reconfiguration retires every chunk; retired chunks hand out nothing
//     and are unmapped when their last live stack comes back.
//   the trim rule: stack_pool_drain (the scavenger's trim, runtime/stack_scavenger.cpp, and
//     shutdown) decommits every warm, pending and fresh stack and unmaps each chunk with no live
//     slot; slots in flight in a refill count as live, so their chunk stays.
#include "runtime/goroutine_stack.hpp"

#include <algorithm>
#include <atomic>

#include "kernel_iface/advise_batch.hpp"
#include "kernel_iface/decommit_queue.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/guard_region.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::runtime {
namespace {

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
constinit StackPool g_pool;

size_t round_to_pages(size_t bytes) {
  size_t page = kernel::os_page_size();
  return (bytes + page - 1) & ~(page - 1);
}

// The reason usgc_go returns ENOMEM, said once.
void report_acquire_failure_once(const char* operation, int error) {
  static std::atomic<bool> reported{false};
  if (reported.exchange(true, std::memory_order_relaxed)) return;
  if (g_pool.guard_regions) {
    kernel::print_message(
        "goroutine stacks: %s failed (errno %d) with %lu stacks live: out of memory or address "
        "space; keep fewer goroutines alive at once or give them smaller stacks "
        "(USGC_STACK_SIZE)",
        operation, error, static_cast<unsigned long>(g_pool.live));
  } else {
    kernel::print_message(
        "goroutine stacks: %s failed (errno %d) with %lu stacks live; without guard regions "
        "(Linux 6.13+) each stack's guard takes two of the process's mappings (sysctl "
        "vm.max_map_count, 65530 by default): raise that limit, or keep fewer goroutines alive at "
        "once",
        operation, error, static_cast<unsigned long>(g_pool.live));
  }
}

void report_mprotect_fallback_once() {
  static std::atomic<bool> reported{false};
  if (reported.exchange(true, std::memory_order_relaxed)) return;
  kernel::print_message(
      "goroutine stacks: this kernel has no MADV_GUARD_INSTALL (Linux 6.13+; probe errno %d): "
      "stack guards are PROT_NONE mappings, two mappings per goroutine, so sysctl "
      "vm.max_map_count limits live goroutines to about half its value",
      kernel::guard_regions_probe_error());
}

// A chunk's mappings, taken out of the table to be unmapped outside the lock.
struct ChunkToUnmap {
  uint8_t* base = nullptr;
  size_t bytes = 0;
  uint64_t* free_bits = nullptr;
  size_t free_bits_bytes = 0;
  uint64_t last_ticket = 0;
};

// Lock held. Clears the entry; the caller unmaps outside the lock.
ChunkToUnmap take_chunk_locked(uint32_t index) {
  StackChunk& chunk = g_pool.chunks[index];
  ChunkToUnmap taken{chunk.base, chunk.bytes, chunk.free_bits, chunk.free_bits_bytes,
                     chunk.last_ticket};
  g_pool.cold_slots -= chunk.retired ? 0 : chunk.cold;
  chunk = StackChunk{};
  if (g_pool.carving == index) g_pool.carving = kNoChunk;
  --g_pool.chunks_mapped;
  while (g_pool.chunk_limit > 0 && g_pool.chunks[g_pool.chunk_limit - 1].base == nullptr)
    --g_pool.chunk_limit;
  return taken;
}

void unmap_chunk(const ChunkToUnmap& chunk) {
  if (chunk.base == nullptr) return;
  // The decommit ticket rule: no MADV_DONTNEED of ours may still be pending on this range.
  kernel::DecommitQueue::process().wait(chunk.last_ticket);
  // Unmapping our own mappings cannot fail; nothing to do if it did.
  (void)kernel::unmap(chunk.base, chunk.bytes);
  (void)kernel::unmap(chunk.free_bits, chunk.free_bits_bytes);
  g_pool.chunks_unmapped.fetch_add(1, std::memory_order_relaxed);
}

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

GoroutineStack stack_in(uint32_t chunk_index, uint8_t* base) {
  const StackChunk& chunk = g_pool.chunks[chunk_index];
  GoroutineStack stack;
  stack.base = base;
  stack.guard_bytes = chunk.guard_bytes;
  stack.usable_bytes = chunk.usable_bytes;
  stack.chunk_index = chunk_index;
  return stack;
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

// Lock NOT held (the no-call-under-the-lock rule). Queues MADV_DONTNEED of [begin, end), a
// range of stacks the caller keeps from reuse and from unmapping (counted live in their chunk);
// returns the ticket, which the caller records in the chunk's last_ticket under the lock.
uint64_t queue_decommit(uint8_t* begin, uint8_t* end) {
  if (end <= begin) return 0;
  g_pool.decommits.fetch_add(1, std::memory_order_relaxed);
  if (void (*hook)() = g_pool.decommit_hook.load(std::memory_order_relaxed)) hook();
  return kernel::DecommitQueue::process().enqueue(begin, static_cast<size_t>(end - begin));
}

// Lock held. Takes the oldest warm stack (warm_count > 0).
WarmStack take_warm_locked() {
  WarmStack warm = g_pool.warm[g_pool.warm_head];
  g_pool.warm_head = (g_pool.warm_head + 1) % kMaxWarmStacks;
  --g_pool.warm_count;
  return warm;
}

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

// Lock held. Moves every pending stack into batch (empty on entry), in flight.
void take_pending_locked(DecommitBatch& batch) {
  for (uint32_t i = 0; i < g_pool.pending_count; ++i) {
    batch.stacks[i] = g_pool.pending[i];
    ++g_pool.chunks[batch.stacks[i].chunk_index].live;
  }
  batch.count = g_pool.pending_count;
  g_pool.pending_count = 0;
}

// Lock held. A released (or drained) stack of a current chunk joins the pending ones; when they
// are a full batch already, they move to `full` (empty on entry) for decommit_taken after the
// lock is dropped.
void make_pending_locked(uint8_t* base, uint32_t chunk_index, DecommitBatch& full) {
  if (g_pool.pending_count == kDecommitBatch) {
    USGC_ASSERT(full.count == 0, "goroutine stacks: two pending batches taken in one call");
    take_pending_locked(full);
  }
  g_pool.pending[g_pool.pending_count++] = PooledStack{base, chunk_index};
}

// Lock NOT held on entry; taken and dropped here. Decommits a taken batch, one MADV_DONTNEED per
// run of adjacent slots (in guard-region chunks: a PROT_NONE guard is a mapping of its own, so
// there each slot is one), then makes its stacks cold. The chunk fields read outside the lock
// (base, guard and slot sizes, guard_regions) do not change while the chunk has a live slot.
void decommit_taken(DecommitBatch& batch) {
  if (batch.count == 0) return;
  PooledStack* stacks = batch.stacks;
  const uint32_t count = batch.count;
  std::sort(stacks, stacks + count, [](const PooledStack& a, const PooledStack& b) {
    return a.chunk_index != b.chunk_index ? a.chunk_index < b.chunk_index : a.base < b.base;
  });
  batch.runs = 0;
  for (uint32_t first = 0; first < count;) {
    const StackChunk& chunk = g_pool.chunks[stacks[first].chunk_index];
    uint32_t last = first;
    while (chunk.guard_regions && last + 1 < count &&
           stacks[last + 1].chunk_index == stacks[first].chunk_index &&
           stacks[last + 1].base == stacks[last].base + chunk.slot_bytes())
      ++last;
    batch.run_first[batch.runs] = first;
    batch.run_ticket[batch.runs++] = queue_decommit(stacks[first].base + chunk.guard_bytes,
                                                    stacks[last].base + chunk.slot_bytes());
    first = last + 1;
  }
  // Sent now, by this thread (an exiting goroutine's P in the scheduler state, the scavenger):
  // the cold slots' tickets are then complete when a spawn wants them, and a spawn never waits.
  kernel::DecommitQueue::process().flush();
  ChunkToUnmap unused[kDecommitBatch];  // chunks retired meanwhile, their last slot back
  uint32_t unused_count = 0;
  {
    kernel::FutexMutexGuard guard(g_pool.lock);
    for (uint32_t run = 0, i = 0; i < count; ++i) {
      if (run + 1 < batch.runs && batch.run_first[run + 1] == i) ++run;
      const uint64_t ticket = batch.run_ticket[run];
      StackChunk& chunk = g_pool.chunks[stacks[i].chunk_index];
      if (ticket > chunk.last_ticket) chunk.last_ticket = ticket;
      --chunk.live;
      if (chunk.retired) {  // the retirement rule: nothing handed out; unmapped when empty
        if (chunk.live == 0) unused[unused_count++] = take_chunk_locked(stacks[i].chunk_index);
        continue;
      }
      if (ticket > g_pool.cold_ticket) g_pool.cold_ticket = ticket;
      const uint32_t slot = chunk.slot_of(stacks[i].base);
      chunk.free_bits[slot / 64] |= uint64_t{1} << (slot % 64);
      ++chunk.cold;
      ++g_pool.cold_slots;
    }
  }
  batch.count = 0;
  for (uint32_t i = 0; i < unused_count; ++i) unmap_chunk(unused[i]);
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
    if (!kernel::advise_batch({ranges + group, pages}, kernel::BatchAdvice::kPopulateWrite).ok())
      break;
    g_pool.pages_populated.fetch_add(pages, std::memory_order_relaxed);
    // The first user access, here rather than in the spawn: the slots are still ours (in
    // flight), and the top byte is the goroutine record's, constructed later. Each costs the VM's
    // shadow-page fill (tens of microseconds: most of a refill's time in the churn benchmark), so
    // `interrupted` is asked before each; an untouched page only takes its fill later.
    for (uint32_t i = group; i < group + pages; ++i) {
      if (interrupted != nullptr && i != group && interrupted()) return usable;
      *reinterpret_cast<volatile uint8_t*>(slots[i].base + slot_bytes - 1) = 0;
    }
  }
  return usable;
}

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
  if (ticket != 0) queue.wait(ticket);
  const uint32_t usable =
      prepare_slots(slots, count, new_from, guard_bytes, slot_bytes, regions, interrupted);
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

}  // namespace

void stack_pool_configure(size_t usable_bytes, size_t guard_bytes, StackGuardMode mode) {
  stack_pool_drain();
  const bool regions = mode != StackGuardMode::kMprotect && kernel::guard_regions_supported();
  if (!regions && mode != StackGuardMode::kMprotect) report_mprotect_fallback_once();
  kernel::FutexMutexGuard guard(g_pool.lock);
  // The retirement rule: stacks of the old configuration come back to their retired chunk.
  for (uint32_t index = 0; index < g_pool.chunk_limit; ++index) {
    StackChunk& chunk = g_pool.chunks[index];
    if (chunk.base == nullptr || chunk.retired) continue;
    chunk.retired = true;
    g_pool.cold_slots -= chunk.cold;
  }
  g_pool.carving = kNoChunk;
  g_pool.usable_bytes = round_to_pages(usable_bytes);
  g_pool.guard_bytes = round_to_pages(guard_bytes == 0 ? kernel::os_page_size() : guard_bytes);
  g_pool.guard_regions = regions;
}

kernel::Result<GoroutineStack> stack_acquire(bool (*interrupted)()) {
  GoroutineStack stack;
  uint64_t ticket = 0;
  g_pool.acquires.fetch_add(1, std::memory_order_relaxed);
  {
    kernel::FutexMutexGuard guard(g_pool.lock);
    kernel::DecommitQueue& queue = kernel::DecommitQueue::process();
    for (;;) {
      // A warm stack whose decommit is not known to be done yet comes after pending and fresh
      // ones: waiting for its ticket could make the queue's batch call (the spawn path makes no
      // system call it can avoid: a stop waits for a spawning goroutine).
      if (g_pool.warm_count > 0 && (queue.is_known_complete(g_pool.warm[g_pool.warm_head].ticket) ||
                                    (g_pool.pending_count == 0 && g_pool.fresh_count == 0))) {
        const WarmStack warm = take_warm_locked();
        stack = stack_in(warm.chunk_index, warm.base);
        ticket = warm.ticket;
      } else if (g_pool.pending_count > 0) {
        const PooledStack pending = g_pool.pending[--g_pool.pending_count];
        stack = stack_in(pending.chunk_index, pending.base);
      } else if (g_pool.fresh_count > 0) {
        const PooledStack fresh = g_pool.fresh[--g_pool.fresh_count];
        stack = stack_in(fresh.chunk_index, fresh.base);
        if (g_pool.fresh_count <= kRefillBatch && !g_pool.refilling_ahead)
          g_pool.refill_wanted.store(true, std::memory_order_relaxed);
      } else {
        int error = refill_locked(interrupted, false);
        if (error != 0) return kernel::Result<GoroutineStack>::failure(error);
        continue;  // the lock was released: look again from the top
      }
      break;
    }
    ++g_pool.chunks[stack.chunk_index].live;
    ++g_pool.live;
  }
  // The decommit ticket rule, outside the lock: usually complete already.
  kernel::DecommitQueue& queue = kernel::DecommitQueue::process();
  if (ticket != 0 && !queue.is_complete(ticket)) queue.wait(ticket);
  return kernel::Result<GoroutineStack>::success(stack);
}

void stack_release(GoroutineStack stack) {
  if (stack.empty()) return;
  ChunkToUnmap to_unmap;
  DecommitBatch full;
  bool to_warm = false;
  {
    kernel::FutexMutexGuard guard(g_pool.lock);
    StackChunk& chunk = g_pool.chunks[stack.chunk_index];
    USGC_CHECK(chunk.base != nullptr && stack.base >= chunk.base &&
                   stack.base < chunk.base + chunk.bytes && chunk.live > 0,
               "goroutine stacks: released stack is not a live stack of its chunk");
    if (!chunk.retired && g_pool.warm_count + g_pool.warm_reserved < kMaxWarmStacks) {
      ++g_pool.warm_reserved;  // still live: its lower pages' decommit is queued first, below
      to_warm = true;
    } else {
      --chunk.live;
      --g_pool.live;
      if (chunk.retired) {
        if (chunk.live == 0) to_unmap = take_chunk_locked(stack.chunk_index);
      } else {
        make_pending_locked(stack.base, stack.chunk_index, full);
      }
    }
  }
  if (to_warm) {
    // The few-pages invariant: only the top pages stay. Queued outside the lock (the queue may
    // send its batch here: the no-call-under-the-lock rule); the stack, still counted live, is
    // neither reused nor unmapped meanwhile.
    uint8_t* kept = stack.usable_bytes > kKeptResidentBytes ? stack.top() - kKeptResidentBytes
                                                            : stack.base + stack.guard_bytes;
    const uint64_t ticket = queue_decommit(stack.base + stack.guard_bytes, kept);
    kernel::FutexMutexGuard guard(g_pool.lock);
    StackChunk& chunk = g_pool.chunks[stack.chunk_index];
    if (ticket > chunk.last_ticket) chunk.last_ticket = ticket;
    --g_pool.warm_reserved;
    --chunk.live;
    --g_pool.live;
    if (chunk.retired) {  // a reconfiguration meanwhile: the retirement rule
      if (chunk.live == 0) to_unmap = take_chunk_locked(stack.chunk_index);
    } else {
      g_pool.warm[(g_pool.warm_head + g_pool.warm_count++) % kMaxWarmStacks] =
          WarmStack{stack.base, stack.chunk_index, ticket};
    }
  }
  decommit_taken(full);
  unmap_chunk(to_unmap);
}

void stack_pool_drain() {
  // Every warm, fresh and pending stack decommitted, a batch at a time outside the lock.
  for (;;) {
    DecommitBatch batch;
    {
      kernel::FutexMutexGuard guard(g_pool.lock);
      while (batch.count == 0 && g_pool.warm_count > 0) {
        const WarmStack warm = take_warm_locked();
        if (!g_pool.chunks[warm.chunk_index].retired)
          make_pending_locked(warm.base, warm.chunk_index, batch);
      }
      while (batch.count == 0 && g_pool.fresh_count > 0) {
        const PooledStack fresh = g_pool.fresh[--g_pool.fresh_count];
        if (!g_pool.chunks[fresh.chunk_index].retired)
          make_pending_locked(fresh.base, fresh.chunk_index, batch);
      }
      if (batch.count == 0) take_pending_locked(batch);  // the last, partial batch
    }
    if (batch.count == 0) break;
    decommit_taken(batch);
  }
  ChunkToUnmap to_unmap[64];  // unmapped in batches of 64 chunks, outside the lock
  for (;;) {
    uint32_t taken = 0;
    bool more = false;
    {
      kernel::FutexMutexGuard guard(g_pool.lock);
      for (uint32_t index = 0; index < g_pool.chunk_limit; ++index) {
        const StackChunk& chunk = g_pool.chunks[index];
        if (chunk.base == nullptr || chunk.live != 0) continue;
        if (taken == sizeof(to_unmap) / sizeof(to_unmap[0])) {
          more = true;
          break;
        }
        to_unmap[taken++] = take_chunk_locked(index);
      }
    }
    kernel::DecommitQueue::process().flush();
    for (uint32_t i = 0; i < taken; ++i) unmap_chunk(to_unmap[i]);
    if (!more) return;
  }
}

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

void stack_pool_set_decommit_hook_for_testing(void (*hook)()) {
  g_pool.decommit_hook.store(hook, std::memory_order_relaxed);
}

bool stack_pool_lock_held_for_testing() {
  return g_pool.lock.is_locked();
}

uint64_t stack_pool_activity() {
  return g_pool.acquires.load(std::memory_order_relaxed);
}

StackPoolCounters stack_pool_counters() {
  StackPoolCounters counters{};
  counters.carved = g_pool.carved.load(std::memory_order_relaxed);
  counters.chunks_unmapped = g_pool.chunks_unmapped.load(std::memory_order_relaxed);
  counters.pages_populated = g_pool.pages_populated.load(std::memory_order_relaxed);
  counters.decommits = g_pool.decommits.load(std::memory_order_relaxed);
  kernel::FutexMutexGuard guard(g_pool.lock);
  counters.live = g_pool.live;
  counters.warm = g_pool.warm_count;
  counters.pending = g_pool.pending_count;
  counters.fresh = g_pool.fresh_count;
  counters.cold = g_pool.cold_slots;
  counters.chunks = g_pool.chunks_mapped;
  counters.guard_regions = g_pool.guard_regions;
  return counters;
}

}  // namespace usgc::runtime
