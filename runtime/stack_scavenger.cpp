// runtime/stack_scavenger.cpp — the runtime's scavenger thread: gives back the memory of idle
// goroutine caches (Go's background scavenger and gfpurge, for goroutines: after a burst of
// goroutines has ended, the records and stacks kept for the next spawn are decommitted once nobody
// spawns for a while), and the pages of the GC block pool's free blocks once they stayed free for
// the decay (Go's background scavenger, for the collector's heap).
//
// What is kept for reuse, and so resident until trimmed: the dead goroutines with their stacks
// in the per-P caches (64 each) and the global one (1 024), one page each at least; the stack
// pool's warm (256, top 8 KiB each), pending (64) and fresh (64, one page each) stacks. That is a
// few megabytes: nothing beside a server's heap, but a burst of 500 000 goroutines in a small
// program would otherwise leave its RSS more than doubled. The trim (trim_idle_caches) takes
// the caches of the idle Ps and the global one (runtime/scheduler.cpp), returns their stacks to
// the pool, and drains the pool (runtime/goroutine_stack.cpp: everything decommitted, every chunk
// with no live stack unmapped, so its page tables and free bitmap go too). The caches of Ps that
// are running goroutines are left to them (only the holder touches a P's cache).
//
// When: a goroutine exit arms the scavenger (note_goroutine_cached: one relaxed load, a CAS and a
// futex wake only on the idle -> armed transition). Armed, it looks every kTickNs; a tick with no
// spawn and no stack taken from the pool (activity unchanged) trims and disarms. A program that
// keeps spawning keeps its caches; one that stops gets its memory back within two ticks. Idle,
// the thread sleeps on its futex without a timeout (no wake-ups in an idle runtime).
//
// The block pool's pages (gc/block.hpp, "returning free blocks' pages"): the monitor, which looks
// while goroutines run (every 250 us at most; runtime/monitor.cpp) and sleeps until the next
// deadline otherwise, asks the pool
// for its oldest resident free block; once that block has been free for the decay
// (USGC_DECAY_MS, the allocator's setting: no free page stays resident longer than it) it calls
// note_block_pages_due, which wakes this thread. The thread returns the due blocks' slot pages
// in passes of kPoolBlocksPerPass blocks (one process_madvise each), never while a stop of the
// world is in flight (it would take a CPU the stopping Ps need), and paces itself: after a pass
// it waits kPaceFactor times the pass's length before the next one, so returning a large heap
// takes at most about a tenth of a CPU. With USGC_DECAY_MS=0 a free block is due at once: its
// pages go back at the monitor's next look. Nothing of this runs in a pause or on a goroutine:
// sweeps and collections only put blocks on the pool's list (gc/block.cpp says why).
//
// State (g_scavenger):
//   state    kIdle / kArmed / kStop. kIdle -> kArmed by an exit (CAS, then a wake); kArmed ->
//            kIdle by the scavenger before it trims (so an exit during the trim re-arms it);
//            -> kStop by scavenger_stop. seq_cst: arming after caching a goroutine and the
//            scavenger's disarm-then-trim see each other (an exit that is not trimmed sees kIdle
//            and re-arms).
//   pool_pages_due   set by note_block_pages_due (exchange: only the first sets it and wakes),
//            cleared by the scavenger before a pass (acq_rel exchange).
//   wakeups  the futex word the thread sleeps on: every waker changes state or pool_pages_due
//            first, then bumps it (release) and wakes; the thread reads it (acquire) before it
//            looks at either, and sleeps only while it still holds that value, so no wake is lost.
//   thread, running   scavenger_start / scavenger_stop only (usgc_init / usgc_shutdown).
// Execution context: its own thread, never a goroutine; it takes g_scheduler.lock,
// free_goroutines_lock, the stack pool's lock and the GC block pool's lock one at a time, and
// holds none across a system call. Not on any hot path.
#include "runtime/stack_scavenger.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "alloc/heap.hpp"
#include "alloc/segment.hpp"
#include "gc/block.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/thread_control.hpp"
#include "runtime/goroutine_stack.hpp"
#include "runtime/scheduler.hpp"
#include "safepoint/stop_the_world.hpp"

namespace usgc::runtime {
namespace {

constexpr uint32_t kIdle = 0;
constexpr uint32_t kArmed = 1;
constexpr uint32_t kStop = 2;
constexpr uint64_t kTickNs = 100 * 1000 * 1000;  // 100 ms
// The pool's page return: after a pass (kScavengerBlocksPerPass blocks, stack_scavenger.hpp), no
// other before kPaceFactor times its length nor before kMinPassIntervalNs; a pass waits this long
// while a stop of the world is in flight; and the coarse clock's lag behind the monotonic one (a
// jiffy), added to a wait for a deadline in coarse milliseconds.
constexpr uint32_t kPoolBlocksPerPass = kScavengerBlocksPerPass;
constexpr uint64_t kPaceFactor = 9;
constexpr uint64_t kMinPassIntervalNs = 1000 * 1000;
constexpr uint64_t kStopRetryNs = 1000 * 1000;
constexpr uint64_t kCoarseClockSlackNs = 5 * 1000 * 1000;

struct Scavenger {
  std::atomic<uint32_t> state{kIdle};
  std::atomic<bool> pool_pages_due{false};
  std::atomic<uint32_t> wakeups{0};
  std::atomic<uint64_t> trims{0};  // relaxed: statistics
  pthread_t thread{};
  bool running = false;
};
Scavenger g_scavenger;

void wake_scavenger() {
  // Release: the state or flag the waker changed before the bump (pairs with scavenger_main's
  // acquire load of wakeups).
  g_scavenger.wakeups.fetch_add(1, std::memory_order_release);
  kernel::futex_wake(&g_scavenger.wakeups, 1);
}

uint64_t activity() {
  return stack_pool_activity() + g_scheduler.goroutines_created.load(std::memory_order_relaxed);
}

// When the pool's oldest resident free block will have been free for the decay, in monotonic ns
// (now_ns if it has been already); 0 when the pool has no resident free block.
uint64_t block_pages_due_ns(uint64_t now_ns) {
  const uint64_t oldest_ms = gc::oldest_resident_free_block_ms();
  if (oldest_ms == 0) return 0;
  const uint64_t due_ms = oldest_ms + alloc::g_decay_ms;
  const uint64_t now_ms = kernel::coarse_monotonic_ms();
  if (due_ms <= now_ms) return now_ns;
  return now_ns + (due_ms - now_ms) * 1000 * 1000 + kCoarseClockSlackNs;
}

// One pass of the pool's page return. Sets *not_before_ns (the pacing) and returns when the next
// pass is wanted: at once (paced) when this one was full, else at the next due time (0: none).
uint64_t return_pool_pages(uint64_t* not_before_ns) {
  const uint64_t start_ns = kernel::monotonic_ns();
  const uint64_t now_ms = kernel::coarse_monotonic_ms();
  const uint64_t decay_ms = alloc::g_decay_ms;
  gc::BlockPageReturn returned;
  if (now_ms >= decay_ms)
    returned = gc::return_free_block_pages(now_ms - decay_ms, kPoolBlocksPerPass);
  const uint64_t end_ns = kernel::monotonic_ns();
  const uint64_t paced_ns = (end_ns - start_ns) * kPaceFactor;
  *not_before_ns = end_ns + (paced_ns > kMinPassIntervalNs ? paced_ns : kMinPassIntervalNs);
  const uint64_t due_ns = returned.blocks + returned.failures >= kPoolBlocksPerPass
                              ? end_ns
                              : block_pages_due_ns(end_ns);
  if (due_ns == 0) return 0;
  return due_ns > *not_before_ns ? due_ns : *not_before_ns;
}

void* scavenger_main(void*) {
  (void)kernel::name_current_thread("usgc-scavenger");  // a name for ps, top and perf only
  uint64_t tick_end_ns = 0;         // armed: when the current quiet tick ends (0: not started)
  uint64_t activity_at_tick = 0;    // activity() when it started
  uint64_t pool_pass_at_ns = 0;     // the next pass of the pool's page return (0: none wanted)
  uint64_t pool_not_before_ns = 0;  // its pacing: no pass before this
  for (;;) {
    // Acquire: pairs with wake_scavenger's release bump (the waker's change is seen below).
    const uint32_t seen = g_scavenger.wakeups.load(std::memory_order_acquire);
    // Seq_cst (load and the disarm CAS below): pairs with note_goroutine_cached's seq_cst arming
    // CAS and scavenger_stop's store (file comment).
    const uint32_t state = g_scavenger.state.load(std::memory_order_seq_cst);
    if (state == kStop) return nullptr;
    uint64_t now_ns = kernel::monotonic_ns();
    // Acq_rel: pairs with note_block_pages_due's exchange. The flag is taken only when no pass is
    // scheduled, and stays set until the pass runs, so the monitor's looks meanwhile (every
    // 250 us while goroutines run) find it set and do not wake this thread again.
    if (pool_pass_at_ns == 0 &&
        g_scavenger.pool_pages_due.exchange(false, std::memory_order_acq_rel))
      pool_pass_at_ns = now_ns > pool_not_before_ns ? now_ns : pool_not_before_ns;
    if (pool_pass_at_ns != 0 && pool_pass_at_ns <= now_ns) {
      if (safepoint::stop_in_flight()) {
        pool_pass_at_ns = now_ns + kStopRetryNs;
      } else {
        // Cleared before the pass: a block due after it is noted again (and wakes us).
        g_scavenger.pool_pages_due.store(false, std::memory_order_relaxed);
        pool_pass_at_ns = return_pool_pages(&pool_not_before_ns);
      }
      continue;
    }
    // The earliest of the quiet tick's end and the next pool pass (0: no deadline).
    uint64_t wake_at_ns = pool_pass_at_ns;
    if (state == kArmed) {
      if (tick_end_ns == 0) {
        tick_end_ns = now_ns + kTickNs;
        activity_at_tick = activity();
      }
      if (now_ns >= tick_end_ns) {
        tick_end_ns = 0;
        if (activity() != activity_at_tick) continue;  // still spawning: the caches are in use
        uint32_t expected = kArmed;
        if (!g_scavenger.state.compare_exchange_strong(expected, kIdle, std::memory_order_seq_cst))
          continue;  // stopping
        trim_idle_caches();
        g_scavenger.trims.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (wake_at_ns == 0 || tick_end_ns < wake_at_ns) wake_at_ns = tick_end_ns;
    } else {
      tick_end_ns = 0;
    }
    // (wake_at_ns is later than now_ns: the deadlines that passed were handled above.)
    kernel::futex_wait(&g_scavenger.wakeups, seen, wake_at_ns == 0 ? 0 : wake_at_ns - now_ns);
  }
}

}  // namespace

void note_goroutine_cached() {
  if (g_scavenger.state.load(std::memory_order_relaxed) != kIdle) return;
  uint32_t expected = kIdle;
  // Seq_cst: pairs with the scavenger's disarm CAS (file comment: an exit is trimmed or re-arms).
  if (g_scavenger.state.compare_exchange_strong(expected, kArmed, std::memory_order_seq_cst))
    wake_scavenger();
}

void note_block_pages_due() {
  if (g_scavenger.pool_pages_due.load(std::memory_order_relaxed)) return;  // asked already
  // Acq_rel: pairs with the scavenger's exchange; only the first asker wakes it.
  if (!g_scavenger.pool_pages_due.exchange(true, std::memory_order_acq_rel)) wake_scavenger();
}

uint64_t watch_block_pool_pages(uint64_t now_ns) {
  const uint64_t due_ns = block_pages_due_ns(now_ns);
  if (due_ns == 0 || due_ns > now_ns) return due_ns;
  note_block_pages_due();
  return 0;
}

void trim_idle_caches() {
  release_cached_goroutines();
  stack_pool_drain();
}

uint64_t scavenger_trims() {
  return g_scavenger.trims.load(std::memory_order_relaxed);
}

void scavenger_start() {
  alloc::process_ensure_initialized();  // USGC_DECAY_MS is read there
  g_scavenger.state.store(kIdle, std::memory_order_relaxed);
  int error = pthread_create(&g_scavenger.thread, nullptr, scavenger_main, nullptr);
  USGC_CHECK(error == 0, "usgc_init: cannot start the stack scavenger thread (errno %d)", error);
  g_scavenger.running = true;
}

void scavenger_stop() {
  if (!g_scavenger.running) return;
  // Seq_cst: pairs with scavenger_main's seq_cst load and CAS (it sees kStop and returns).
  g_scavenger.state.store(kStop, std::memory_order_seq_cst);
  wake_scavenger();
  pthread_join(g_scavenger.thread, nullptr);
  g_scavenger.running = false;
}

}  // namespace usgc::runtime
