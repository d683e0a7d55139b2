// gc/mutator.cpp — the current-mutator TLS pointer, the registry of mutators, and a goroutine's
// GC birth and death (see mutator.hpp).
//
// Registry: a doubly linked list under g_mutator_registry.registry_lock, which a shared collection
// holds for the whole stopped world (so no goroutine is added or removed while it marks: a spawn
// from a thread that is not stopped waits for the lock). Lock order: registry -> shared class locks
// -> pool.
//
// A goroutine's exit (mutator_unregister, on the goroutine itself, before its last switch): by
// the private-heap invariant nothing else refers to its private objects and its roots are gone,
// so every PRIVATE object it owns is dead. They are freed, the shared objects it published in
// place stay, and its blocks join the shared heap ("when a goroutine exits, its blocks pass to
// the shared heap"). This does not poll, so no shared mark can see a half-handed-over heap.
#include "gc/mutator.hpp"

#include <cstring>

#include "gc/allocation.hpp"
#include "gc/block_sweep.hpp"
#include "gc/concurrent_mark.hpp"
#include "gc/gc_state.hpp"
#include "gc/private_old_cycle.hpp"
#include "gc/shared_heap.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/intrusive_list.hpp"
#include "usgc/usgc.h"

namespace usgc::gc {

// The record of threads that run no goroutine: heap id UINT64_MAX is never an owner (owners are
// 32 bits), so every barrier takes the slow path and every allocation fails cleanly with EPERM.
usgc_mutator g_no_goroutine_mutator = {UINT64_MAX, nullptr, nullptr, nullptr, {}, kNoOldPrivateKey};

namespace {

// The registry of goroutines' mutators: a list linked through registry_next/registry_previous.
struct MutatorRegistry {
  kernel::FutexMutex<kernel::LockRank::kMutatorRegistry> registry_lock;
  Mutator* registry_first = nullptr;  // under registry_lock
  uint64_t registry_count = 0;        // under registry_lock
  // Heap ids handed out: fetch_add by registering goroutines (relaxed: only uniqueness matters).
  std::atomic<uint32_t> next_heap_id{0};
};
constinit MutatorRegistry g_mutator_registry;
using RegistryList =
    kernel::IntrusiveList<Mutator, &Mutator::registry_next, &Mutator::registry_previous>;

// Even and nonzero: id | 1 is the goroutine's old id (gc/private_generations.hpp).
uint64_t next_heap_id() {
  for (;;) {
    uint32_t id = (g_mutator_registry.next_heap_id.fetch_add(1, std::memory_order_relaxed) + 1) * 2;
    if (id != 0) return id;
  }
}

// Frees every PRIVATE object of an exiting goroutine's block and files the block with the
// shared heap, which sweeps it (dead shared objects go too) or takes it back when empty.
void hand_over_block(Block* b) {
  forget_free_runs(b);  // the run heads are not headers
  size_t freed = 0;
  for (uint32_t i = 0; i < b->slot_count; ++i) {
    char* slot = b->slot_at(i);
    uint64_t header = *reinterpret_cast<uint64_t*>(slot);
    if (header != 0 && class_of(header) == Ownership::kPrivate) {  // dead: the invariant
      std::memset(slot, 0, b->slot_bytes);
      freed += b->slot_bytes;
    }
  }
  count_sub(g_counters.bytes_in_use[USGC_GOROUTINE_PRIVATE], freed);
  count_add(g_counters.bytes_freed_private, freed);
  b->next_in_heap = nullptr;
  b->next_partial = nullptr;
  shared_heap_adopt_block(b);
}

}  // namespace

}  // namespace usgc::gc

extern "C" {
__attribute__((visibility("default"))) __thread usgc_mutator* usgc_current_mutator
    __attribute__((tls_model("initial-exec"))) = &usgc::gc::g_no_goroutine_mutator;
}

namespace usgc::gc {

void set_current_mutator(Mutator* mutator) {
  // A goroutine whose roots a running shared mark has not scanned yet is scanned before it runs.
  if (mutator != nullptr) ensure_scanned(*mutator);
  usgc_current_mutator = mutator != nullptr ? &mutator->abi : &g_no_goroutine_mutator;
}

void lock_mutator_registry() {
  g_mutator_registry.registry_lock.lock();
}
void unlock_mutator_registry() {
  g_mutator_registry.registry_lock.unlock();
}
Mutator* first_registered_mutator() {
  return g_mutator_registry.registry_first;
}
uint64_t registered_mutator_count() {
  return g_mutator_registry.registry_count;
}

void mutator_register(Mutator* m, uint64_t goroutine_id, void* start_object) {
  USGC_ASSERT(!m->registered, "goroutine %lu registered twice",
              static_cast<unsigned long>(goroutine_id));
  m->abi.heap_id = next_heap_id();
  m->abi.old_private_key =
      old_private_key_of(m->abi.heap_id, old_cycle_phase(*m) == OldCyclePhase::kMarking);
  m->abi.frames = nullptr;
  m->abi.arena_top = nullptr;
  m->abi.arena_limit = nullptr;
  for (auto& run : m->abi.runs) run = usgc_alloc_run{nullptr, nullptr};
  m->goroutine_id = goroutine_id;
  m->bytes_since_collection = 0;
  m->live_bytes_after_collection = 0;
  m->collection_budget_bytes = g_config.min_private_budget_bytes;
  m->old_bytes_after_full = 0;
  m->full_budget_bytes = g_config.min_private_budget_bytes;
  m->young_large = nullptr;
  m->start_object = start_object;
  kernel::FutexMutexGuard guard(g_mutator_registry.registry_lock);
  note_mutator_registered_locked(*m);
  RegistryList::push_front(g_mutator_registry.registry_first, m);
  ++g_mutator_registry.registry_count;
  m->registered = true;
}

void mutator_unregister(Mutator* m) {
  if (!m->registered) return;
  {
    kernel::FutexMutexGuard guard(g_mutator_registry.registry_lock);
    note_mutator_unregistered_locked(*m);
    RegistryList::remove(g_mutator_registry.registry_first, m);
    --g_mutator_registry.registry_count;
    m->registered = false;
  }
  retire_all_private_runs(*m);
  old_cycle_abandon(*m);  // unswept blocks back on blocks[c]: every private object dies here
  for (uint32_t c = 0; c < kSizeClassCount; ++c) {
    Block* b = m->blocks[c];
    while (b != nullptr) {
      Block* next = b->next_in_heap;
      hand_over_block(b);
      b = next;
    }
    m->blocks[c] = m->partial[c] = m->current[c] = nullptr;
  }
  m->small_blocks = 0;
  // Young large objects join the old ones: the same rule frees them all.
  while (Block* b = m->young_large) {
    m->young_large = b->next_in_heap;
    b->next_in_heap = m->large_objects;
    m->large_objects = b;
  }
  for (Block* b = m->large_objects; b != nullptr;) {
    Block* next = b->next_in_heap;
    uint64_t header = *reinterpret_cast<uint64_t*>(b->slots_begin());
    // While a shared mark runs an unmarked shared object may be live (gc/concurrent_mark.hpp).
    if (class_of(header) == Ownership::kPrivate ||
        (!b->shared_marked(0) && !shared_mark_in_progress())) {
      count_sub(
          g_counters.bytes_in_use[class_of(header) == Ownership::kPrivate ? USGC_GOROUTINE_PRIVATE
                                                                          : USGC_GOROUTINE_SHARED],
          b->mapping_bytes);
      release_large(b);
    } else {
      shared_heap_adopt_large(b);
    }
    b = next;
  }
  m->large_objects = nullptr;
  m->young_large = nullptr;
  m->young_runs.release();
  m->remembered_young.release();
  m->remembered_shared.release();
  m->published_old.release();
  if (m->arena != nullptr) {
    release_block(m->arena);
    m->arena = nullptr;
  }
  usgc_free(m->handles.slots);
  m->handles = HandleTable{};
  m->start_object = nullptr;
  m->mark_stack.release();
  m->abi.frames = nullptr;
  m->abi.arena_top = m->abi.arena_limit = nullptr;
}

}  // namespace usgc::gc
