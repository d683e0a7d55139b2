// runtime/goroutine_stack.cpp — pooling and giving back goroutine stacks (see the .hpp); carving
// and making them ready is runtime/goroutine_stack_refill.cpp, the state runtime/
// goroutine_stack_pool.hpp.
//
// State: one StackPool, g_pool, every field under g_pool.lock (a FutexMutex; never held by a
// signal handler) except the relaxed statistics counters and the test hook.
// The no-call-under-the-lock rule: no system call is made under the lock (but the mmap of a new
// 1 GiB chunk). Above all no decommit: the queue's enqueue may send its batch, a process_madvise
// of up to 64 ranges (about 13 us each: under a millisecond), and a spawn needing the lock would
// wait behind it, and a stop behind the spawn. A stack whose decommit is being queued is "in
// flight": counted live in its chunk (so the trim rule keeps the chunk mapped) and in no list
// (nobody reuses it before its ticket is recorded under the lock). Who queues: an exiting
// goroutine's machine, whose P is then in the scheduler state (runtime/scheduler.cpp: a stop
// claims it instead of waiting), the scavenger's drain, rarely a refill.
//   chunks[]      the reservations; an entry with base == nullptr is unused. A chunk is carved
//                 front to back (carved slots so far); a carved slot is live (handed out, or in
//                 flight in a refill), warm, pending, fresh or cold. chunk.live counts live ones.
//   warm[]        FIFO ring of released stacks that keep their top kKeptResidentBytes. The oldest
//                 is reused first: its decommit ticket, 256 releases old, has usually completed.
//                 When it has not (its range still waits in the queue's batch), an acquire takes a
//                 pending or fresh stack first: waiting could make the batch's call on the
//                 spawning goroutine. A release joining warm[] reserves its place
//                 (warm_reserved) and queues its lower pages' decommit before it is pushed.
//   pending[]     released stacks beyond the warm ones, still resident, waiting to be decommitted
//                 together: when kDecommitBatch have gathered they are taken (a DecommitBatch, in
//                 flight) and, outside the lock, sorted by address, each run of adjacent slots
//                 queued as one MADV_DONTNEED (the guards between them survive it,
//                 guard_region.hpp: one TLB shoot-down per run instead of one per stack) and the
//                 queue flushed, so the cold slots' ticket is complete before a spawn wants them.
//                 Reused first of all the non-warm stacks (LIFO): they need neither a fault nor a
//                 ticket.
//   fresh[]       stacks ready to hand out: guard in place, decommit complete, top page populated
//                 and touched once from user space (on a VM the first user access to a page costs
//                 a shadow-page-table fill even after the kernel populated it).
//                 A refill (acquire with nothing pooled) takes up to kRefillBatch cold slots or
//                 carves new ones, and outside the lock installs the new guards and populates the
//                 top pages with one process_madvise each (kernel_iface/advise_batch.hpp): on a
//                 VM a first-touch fault costs tens of microseconds, the batched populate a few.
//                 A spawn's refill asks `interrupted` (a stop pending on its P) before each
//                 system call and each first touch, and never waits for a decommit: with the cold
//                 slots' ticket not known complete it carves new slots instead.
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
#include "runtime/goroutine_stack_pool.hpp"
#include "safepoint/stop_trace.hpp"

namespace usgc::runtime {
namespace stack_pool {

constinit StackPool g_pool;

namespace {

void report_mprotect_fallback_once() {
  static std::atomic<bool> reported{false};
  if (reported.exchange(true, std::memory_order_relaxed)) return;
  kernel::print_message(
      "goroutine stacks: this kernel has no MADV_GUARD_INSTALL (Linux 6.13+; probe errno %d): "
      "stack guards are PROT_NONE mappings, two mappings per goroutine, so sysctl "
      "vm.max_map_count limits live goroutines to about half its value",
      kernel::guard_regions_probe_error());
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

// Lock held. Moves every pending stack into batch (empty on entry), in flight.
void take_pending_locked(DecommitBatch& batch) {
  for (uint32_t i = 0; i < g_pool.pending_count; ++i) {
    batch.stacks[i] = g_pool.pending[i];
    ++g_pool.chunks[batch.stacks[i].chunk_index].live;
  }
  batch.count = g_pool.pending_count;
  g_pool.pending_count = 0;
}

}  // namespace

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

}  // namespace stack_pool

using namespace stack_pool;

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
  safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kPoolLock);
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
  if (ticket != 0 && !queue.is_complete(ticket)) {
    safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kDecommitWait);
    queue.wait(ticket);
  }
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
