// runtime/goroutine_cache.cpp — goroutine records: made with their stacks, cached when they die,
// reused by the next spawn, given back when the stack scavenger trims (scheduler.hpp, "Goroutine
// records").
//
// A goroutine with a stack keeps its record in the top bytes of that stack (kRecordBytesInStack),
// so a record never outlives its stack and needs no malloc; an attached thread's record (no
// stack) comes from the heap and is never cached. Dead goroutines move between a P's cache
// (Processor::free_goroutines: touched by the P's holder only, or under g_scheduler.lock while
// the P is idle) and the global cache (g_scheduler.free_goroutines, under free_goroutines_lock,
// a leaf) in batches of kFreeGoroutineBatch (Go's gfget/gfput), so a spawn storm on one P and the
// exits on another take the global lock once per batch, not once per goroutine. A P keeps at most
// kMaxFreeGoroutinesPerProcessor, the global cache at most kMaxFreeGoroutinesGlobal; the excess is
// destroyed outside the lock. A reused record is a fresh Goroutine but for its stack and fiber.
// A spawn that misses both caches makes its record on a stack from the pool (runtime/
// goroutine_stack.cpp): that stack work runs with the spawner's P claimable by a stop
// (scheduler.hpp, SpawnStackWork; the claim's rules in safepoint/stop_the_world.hpp).
#include <new>

#include "kernel_iface/futex_mutex.hpp"
#include "runtime/context_switch.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/stack_scavenger.hpp"

namespace usgc::runtime {

namespace {

constexpr uint32_t kMaxFreeGoroutinesPerProcessor = 64;
constexpr uint32_t kFreeGoroutineBatch = 32;
constexpr uint32_t kMaxFreeGoroutinesGlobal = 1024;
constexpr size_t kRecordBytesInStack = (sizeof(Goroutine) + 63) & ~size_t{63};

}  // namespace

bool fill_processor_cache(Processor* processor) {
  if (processor->free_goroutines == nullptr) {
    kernel::FutexMutexGuard guard(g_scheduler.free_goroutines_lock);
    for (uint32_t i = 0; i < kFreeGoroutineBatch && g_scheduler.free_goroutines != nullptr; ++i) {
      Goroutine* goroutine = g_scheduler.free_goroutines;
      g_scheduler.free_goroutines = goroutine->next_in_queue;
      --g_scheduler.free_goroutine_count;
      goroutine->next_in_queue = processor->free_goroutines;
      processor->free_goroutines = goroutine;
      ++processor->free_goroutine_count;
    }
  }
  return processor->free_goroutines != nullptr;
}

namespace {

Goroutine* take_free_goroutine(Processor* processor) {
  if (processor != nullptr && fill_processor_cache(processor)) {
    Goroutine* goroutine = processor->free_goroutines;
    processor->free_goroutines = goroutine->next_in_queue;
    --processor->free_goroutine_count;
    return goroutine;
  }
  if (processor != nullptr) return nullptr;
  kernel::FutexMutexGuard guard(g_scheduler.free_goroutines_lock);  // a thread with no P
  Goroutine* goroutine = g_scheduler.free_goroutines;
  if (goroutine != nullptr) {
    g_scheduler.free_goroutines = goroutine->next_in_queue;
    --g_scheduler.free_goroutine_count;
  }
  return goroutine;
}

// A spawn's stack refill asks this between its system calls (runtime/goroutine_stack.hpp): a
// stop requested on its P, or one that claimed it (the spawn's stack work: then the world is
// stopped, and pages prepared now only take CPU from the stop's work; the spawn's own first touch
// of the record's page is the one left).
bool stop_pending_on_my_processor() {
  Machine* machine = current_machine();
  return machine != nullptr && machine->processor != nullptr &&
         safepoint::scheduler_stop_pending(machine->processor->slot);
}

// Tests only (relaxed: set between tests): set_spawn_stack_work_hook_for_testing.
std::atomic<void (*)(SpawnStackWorkPoint)> g_stack_work_hook{nullptr};

void stack_work_hook(SpawnStackWorkPoint point) {
  if (void (*hook)(SpawnStackWorkPoint) = g_stack_work_hook.load(std::memory_order_relaxed))
    hook(point);
}

// A new record at the top of a stack from the pool (nullptr: ENOMEM). The record lives at the top
// of its own stack: it shares the page the goroutine's first frames touch, and goes back to the OS
// with the stack (no malloc'ed record left behind).
Goroutine* goroutine_from_the_stack_pool() {
  kernel::Result<GoroutineStack> stack = stack_acquire(stop_pending_on_my_processor);
  if (!stack.ok()) return nullptr;
  stack_work_hook(SpawnStackWorkPoint::kStackTaken);
  safepoint::stop_trace::spawn_step(safepoint::SpawnStep::kRecord);
  GoroutineStack usable = stack.value();
  usable.usable_bytes -= kRecordBytesInStack;
  Goroutine* goroutine = new (usable.top()) Goroutine();
  goroutine->stack = usable;
  goroutine->sanitizer_fiber =
      sanitizer_fiber_create(usable.top() - usable.usable_bytes, usable.usable_bytes);
  return goroutine;
}

}  // namespace

Goroutine* goroutine_allocate(bool with_stack, SpawnStackWork work) {
  Goroutine* goroutine = nullptr;
  Machine* machine = current_machine();
  if (with_stack)
    goroutine = take_free_goroutine(machine != nullptr ? machine->processor : nullptr);
  if (goroutine != nullptr) {
    GoroutineStack stack = goroutine->stack;
    void* fiber = goroutine->sanitizer_fiber;
    goroutine->~Goroutine();
    new (goroutine) Goroutine();
    goroutine->stack = stack;
    goroutine->sanitizer_fiber = fiber;
  } else if (with_stack) {
    // The spawn's stack work (scheduler.hpp, SpawnStackWork): the pool's lock, its refill's system
    // calls and first touches, the record's page. With kClaimable the P's slot is in the scheduler
    // state meanwhile, so a stop claims the P instead of waiting for this thread.
    // Only from a Running slot (a goroutine's), and not with the claim off (USGC_SAFEPOINT_CLAIM=0:
    // the protocol before, for comparison).
    safepoint::SafepointSlot* slot =
        work == SpawnStackWork::kClaimable && machine != nullptr && machine->processor != nullptr
            ? machine->processor->slot
            : nullptr;
    if (slot != nullptr &&
        (!safepoint::scheduler_claim_enabled() ||
         slot->status.load(std::memory_order_relaxed) != safepoint::SlotStatus::kRunning))
      slot = nullptr;
    stack_work_hook(SpawnStackWorkPoint::kBegin);
    if (slot != nullptr) {
      safepoint::slot_enter_scheduler(slot);
      g_scheduler.spawn_claimable_stack_works.fetch_add(1, std::memory_order_relaxed);
      // A stop requested before the slot entered the scheduler state (its requester found it
      // Running and waits for it): acknowledged here, by the claim's CAS, rather than after the
      // work. Acquire: pairs with the request's seq_cst store of requested_epoch.
      const uint32_t requested = slot->requested_epoch.load(std::memory_order_acquire);
      if (requested != slot->acked_epoch.load(std::memory_order_relaxed) &&
          safepoint::holder_claim_scheduling_slot(slot, requested,
                                                  safepoint::AckKind::kSchedulerPoint))
        g_scheduler.spawn_stack_work_acknowledgements.fetch_add(1, std::memory_order_relaxed);
    }
    goroutine = goroutine_from_the_stack_pool();
    if (slot != nullptr) {
      // Waits out a stop that claimed the P, serves one requested meanwhile (a scheduling point:
      // the spawner may be preempted here and go on on another machine); then, as after any stop,
      // the spawner is scanned for a concurrent mark begun in it before it runs on.
      safepoint::slot_leave_scheduler(slot);
      resumed_from_stop();
    }
    if (goroutine == nullptr) return nullptr;
  } else {
    goroutine = new (std::nothrow) Goroutine();
    if (goroutine == nullptr) return nullptr;
  }
  goroutine->id = g_scheduler.next_goroutine_id.fetch_add(1, std::memory_order_relaxed);
  return goroutine;
}

void set_spawn_stack_work_hook_for_testing(void (*hook)(SpawnStackWorkPoint)) {
  g_stack_work_hook.store(hook, std::memory_order_relaxed);
}

void goroutine_destroy(Goroutine* goroutine) {
  if (goroutine->stack.empty()) {  // an attached thread's record: from the heap
    sanitizer_fiber_destroy(goroutine->sanitizer_fiber, true);
    delete goroutine;
    return;
  }
  GoroutineStack whole = goroutine->stack;  // with the record's bytes at its top
  whole.usable_bytes += kRecordBytesInStack;
  void* fiber = goroutine->sanitizer_fiber;
  goroutine->~Goroutine();
  sanitizer_fiber_destroy(fiber);
  stack_release(whole);
}

void goroutine_recycle(Goroutine* goroutine) {
  if (goroutine->stack.empty()) {
    sanitizer_fiber_destroy(goroutine->sanitizer_fiber, true);
    delete goroutine;
    return;
  }
  note_goroutine_cached();  // the scavenger gives the caches back once spawning stops
  Machine* machine = current_machine();
  Processor* processor = machine != nullptr ? machine->processor : nullptr;
  Goroutine* overflow = nullptr;  // goroutines for the global cache
  if (processor != nullptr) {
    goroutine->next_in_queue = processor->free_goroutines;
    processor->free_goroutines = goroutine;
    if (++processor->free_goroutine_count <= kMaxFreeGoroutinesPerProcessor) return;
    for (uint32_t i = 0; i < kFreeGoroutineBatch; ++i) {
      Goroutine* moved = processor->free_goroutines;
      processor->free_goroutines = moved->next_in_queue;
      --processor->free_goroutine_count;
      moved->next_in_queue = overflow;
      overflow = moved;
    }
  } else {
    goroutine->next_in_queue = nullptr;
    overflow = goroutine;
  }
  Goroutine* excess = nullptr;  // beyond the global cache's bound: freed outside the lock
  {
    kernel::FutexMutexGuard guard(g_scheduler.free_goroutines_lock);
    while (overflow != nullptr) {
      Goroutine* next = overflow->next_in_queue;
      if (g_scheduler.free_goroutine_count < kMaxFreeGoroutinesGlobal) {
        overflow->next_in_queue = g_scheduler.free_goroutines;
        g_scheduler.free_goroutines = overflow;
        ++g_scheduler.free_goroutine_count;
      } else {
        overflow->next_in_queue = excess;
        excess = overflow;
      }
      overflow = next;
    }
  }
  while (excess != nullptr) {
    Goroutine* next = excess->next_in_queue;
    goroutine_destroy(excess);
    excess = next;
  }
}

void release_cached_goroutines() {
  Goroutine* taken = nullptr;
  {
    // An idle P's cache is touched by nobody while the P is on the idle list: whoever takes the
    // P off it does so under this lock, after us.
    kernel::FutexMutexGuard guard(g_scheduler.lock);
    for (Processor* idle = g_scheduler.idle_processors; idle != nullptr; idle = idle->next_idle) {
      while (Goroutine* goroutine = idle->free_goroutines) {
        idle->free_goroutines = goroutine->next_in_queue;
        goroutine->next_in_queue = taken;
        taken = goroutine;
      }
      idle->free_goroutine_count = 0;
    }
  }
  {
    kernel::FutexMutexGuard guard(g_scheduler.free_goroutines_lock);
    while (Goroutine* goroutine = g_scheduler.free_goroutines) {
      g_scheduler.free_goroutines = goroutine->next_in_queue;
      goroutine->next_in_queue = taken;
      taken = goroutine;
    }
    g_scheduler.free_goroutine_count = 0;
  }
  while (taken != nullptr) {
    Goroutine* next = taken->next_in_queue;
    goroutine_destroy(taken);
    taken = next;
  }
}

}  // namespace usgc::runtime
