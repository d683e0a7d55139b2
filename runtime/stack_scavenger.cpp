// runtime/stack_scavenger.cpp — gives the memory of idle goroutine caches back to the OS (Go's
// background scavenger and gfpurge, for goroutines: after a burst of goroutines has ended, the
// records and stacks kept for the next spawn are decommitted once nobody spawns for a while).
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
// State (g_scavenger):
//   state    futex word: kIdle / kArmed / kStop. kIdle -> kArmed by an exit (CAS, then wake);
//            kArmed -> kIdle by the scavenger before it trims (so an exit during the trim
//            re-arms it); -> kStop by scavenger_stop. seq_cst: arming after caching a goroutine
//            and the scavenger's disarm-then-trim see each other (an exit that is not trimmed
//            sees kIdle and re-arms).
//   thread, running   scavenger_start / scavenger_stop only (usgc_init / usgc_shutdown).
// Execution context: its own thread, never a goroutine; it takes g_scheduler.lock,
// free_goroutines_lock and the stack pool's lock one at a time. Not on any hot path.
#include "runtime/stack_scavenger.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "runtime/goroutine_stack.hpp"
#include "runtime/scheduler.hpp"

namespace usgc::runtime {
namespace {

constexpr uint32_t kIdle = 0;
constexpr uint32_t kArmed = 1;
constexpr uint32_t kStop = 2;
constexpr uint64_t kTickNs = 100 * 1000 * 1000;  // 100 ms

struct Scavenger {
  std::atomic<uint32_t> state{kIdle};
  std::atomic<uint64_t> trims{0};  // relaxed: statistics
  pthread_t thread{};
  bool running = false;
};
Scavenger g_scavenger;

uint64_t activity() {
  return stack_pool_activity() + g_scheduler.goroutines_created.load(std::memory_order_relaxed);
}

void* scavenger_main(void*) {
  for (;;) {
    // Seq_cst (load and the disarm CAS below): pairs with note_goroutine_cached's seq_cst arming
    // CAS and scavenger_stop's store (file comment).
    const uint32_t state = g_scavenger.state.load(std::memory_order_seq_cst);
    if (state == kStop) return nullptr;
    if (state == kIdle) {
      kernel::futex_wait(&g_scavenger.state, kIdle);
      continue;
    }
    const uint64_t before = activity();
    kernel::futex_wait(&g_scavenger.state, kArmed, kTickNs);
    if (activity() != before) continue;  // still spawning: the caches are in use
    uint32_t expected = kArmed;
    if (!g_scavenger.state.compare_exchange_strong(expected, kIdle, std::memory_order_seq_cst))
      continue;  // stopping
    trim_idle_caches();
    g_scavenger.trims.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace

void note_goroutine_cached() {
  if (g_scavenger.state.load(std::memory_order_relaxed) != kIdle) return;
  uint32_t expected = kIdle;
  // Seq_cst: pairs with the scavenger's disarm CAS (file comment: an exit is trimmed or re-arms).
  if (g_scavenger.state.compare_exchange_strong(expected, kArmed, std::memory_order_seq_cst))
    kernel::futex_wake(&g_scavenger.state, 1);
}

void trim_idle_caches() {
  release_cached_goroutines();
  stack_pool_drain();
}

uint64_t scavenger_trims() {
  return g_scavenger.trims.load(std::memory_order_relaxed);
}

void scavenger_start() {
  g_scavenger.state.store(kIdle, std::memory_order_relaxed);
  int error = pthread_create(&g_scavenger.thread, nullptr, scavenger_main, nullptr);
  USGC_CHECK(error == 0, "usgc_init: cannot start the stack scavenger thread (errno %d)", error);
  g_scavenger.running = true;
}

void scavenger_stop() {
  if (!g_scavenger.running) return;
  // Seq_cst: pairs with scavenger_main's seq_cst load and CAS (it sees kStop and returns).
  g_scavenger.state.store(kStop, std::memory_order_seq_cst);
  kernel::futex_wake(&g_scavenger.state, 1);
  pthread_join(g_scavenger.thread, nullptr);
  g_scavenger.running = false;
}

}  // namespace usgc::runtime
