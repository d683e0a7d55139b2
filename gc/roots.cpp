// gc/roots.cpp — global roots, global handles and local handles (the C API), and the walk over
// the process's roots (roots.hpp).
//
// Global root slots and global handles live in growable arrays under
// g_global_roots.global_roots_lock; a shared collection reads them in the stopped world with the
// lock held (a thread that is not a goroutine may be adding one: it is not stopped, so it must be
// excluded). Everything stored in them is published first (GLOBAL_SHARED): the private-heap
// invariant. Local handles belong to one goroutine (its HandleTable, no lock): they may hold its
// private objects, and are roots of its private collections. A handle value encodes the slot index:
// local handles are 2*index + 2 (even), global ones 2*index + 1 (odd), so 0 is never a handle.
#include <cerrno>

#include "gc/gc_state.hpp"
#include "gc/publication.hpp"
#include "gc/roots.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "safepoint/fork_child.hpp"
#include "usgc/usgc.h"

namespace usgc::gc {
namespace {

// Registered global root slots and global handles; every field under global_roots_lock (a
// shared mark reads them in its start stop, under the lock too).
struct GlobalRoots {
  kernel::FutexMutex<kernel::LockRank::kGlobalRoots> global_roots_lock;
  void*** root_slots = nullptr;  // registered slots
  size_t root_count = 0;
  size_t root_capacity = 0;
  void** global_handles = nullptr;  // a free entry holds (next free index << 1) | 1, odd
  size_t global_handle_used = 0;
  size_t global_handle_capacity = 0;
  size_t global_handle_free = 0;  // 1 + index, 0 = none
};
constinit GlobalRoots g_global_roots;

bool grow(void*** array, size_t* capacity, size_t element_bytes) {
  size_t new_capacity = *capacity == 0 ? 64 : *capacity * 2;
  void* grown = usgc_realloc(*array, new_capacity * element_bytes);
  if (grown == nullptr) return false;
  *array = static_cast<void**>(grown);
  *capacity = new_capacity;
  return true;
}

inline void* encode_free(size_t next_free) {
  return reinterpret_cast<void*>((next_free << 1) | 1);
}
inline size_t decode_free(void* value) {
  return reinterpret_cast<uintptr_t>(value) >> 1;
}

// The slot of `handle`, a live local handle of goroutine `m` (a live slot holds an object, even;
// a free one its odd link); any other value stops the process naming `operation`, the message
// ending in `hint`.
uint64_t live_local_handle_slot(const Mutator* m, usgc_handle handle, const char* operation,
                                const char* hint) {
  const uint64_t index = handle / 2 - 1;
  USGC_CHECK(m != nullptr && handle != 0 && (handle & 1) == 0 && index < m->handles.used &&
                 !(reinterpret_cast<uintptr_t>(m->handles.slots[index]) & 1),
             "%s: %lu is not a live local handle of the calling goroutine%s", operation,
             static_cast<unsigned long>(handle), hint);
  return index;
}

// The same for a global handle; global_roots_lock held.
size_t live_global_handle_slot_locked(usgc_handle handle, const char* operation, const char* hint) {
  const size_t index = handle / 2;
  USGC_CHECK((handle & 1) == 1 && index < g_global_roots.global_handle_used &&
                 !(reinterpret_cast<uintptr_t>(g_global_roots.global_handles[index]) & 1),
             "%s: %lu is not a live global handle%s", operation, static_cast<unsigned long>(handle),
             hint);
  return index;
}

}  // namespace

void for_each_global_root(void (*visit)(void** slot, void* context), void* context) {
  for_each_global_slot_and_handle(visit, context);
  for_each_runtime_root(visit, context);
}

void for_each_global_slot_and_handle(void (*visit)(void** slot, void* context), void* context) {
  kernel::FutexMutexGuard guard(g_global_roots.global_roots_lock);
  for (size_t i = 0; i < g_global_roots.root_count; ++i)
    visit(g_global_roots.root_slots[i], context);
  for (size_t i = 0; i < g_global_roots.global_handle_used; ++i)
    visit(&g_global_roots.global_handles[i], context);
}

void for_each_runtime_root(void (*visit)(void** slot, void* context), void* context) {
  if (g_hooks.visit_runtime_roots != nullptr) g_hooks.visit_runtime_roots(visit, context);
}

}  // namespace usgc::gc

using namespace usgc::gc;

extern "C" {

USGC_GC_API int usgc_global_root_add(void** slot) {
  if (slot == nullptr) return EINVAL;
  if (usgc::safepoint::in_fork_child()) return error_in_fork_child("usgc_global_root_add");
  if (is_object_pointer(*slot))
    publish_for_store(*slot, Ownership::kGlobal, "usgc_global_root_add");
  usgc::kernel::FutexMutexGuard guard(g_global_roots.global_roots_lock);
  if (g_global_roots.root_count == g_global_roots.root_capacity &&
      !grow(reinterpret_cast<void***>(&g_global_roots.root_slots), &g_global_roots.root_capacity,
            sizeof(void**))) {
    return ENOMEM;
  }
  g_global_roots.root_slots[g_global_roots.root_count++] = slot;
  return 0;
}

USGC_GC_API int usgc_global_root_remove(void** slot) {
  if (usgc::safepoint::in_fork_child()) return error_in_fork_child("usgc_global_root_remove");
  usgc::kernel::FutexMutexGuard guard(g_global_roots.global_roots_lock);
  for (size_t i = 0; i < g_global_roots.root_count; ++i) {
    if (g_global_roots.root_slots[i] == slot) {
      g_global_roots.root_slots[i] = g_global_roots.root_slots[--g_global_roots.root_count];
      return 0;
    }
  }
  return EINVAL;
}

USGC_GC_API void usgc_global_store(void** slot, void* value) {
  USGC_CHECK(slot != nullptr, "usgc_global_store: the slot is NULL (value %p)", value);
  // A fork() child never collects (safepoint/fork_child.hpp): nothing to publish for.
  if (is_object_pointer(value) && !usgc::safepoint::in_fork_child())
    publish_for_store(value, Ownership::kGlobal, "usgc_global_store");
  // Release: the value's publication (header flips) happens-before any reader that loads it
  // (pairs with usgc_read's acquire load, or the embedder's own acquire of the slot).
  __atomic_store_n(slot, value, __ATOMIC_RELEASE);
}

USGC_GC_API usgc_handle usgc_handle_new(void* object) {
  Mutator* m = current_mutator();
  if (m == nullptr) {
    fail(EPERM, "usgc_handle_new: the calling thread is not a goroutine");
    return 0;
  }
  HandleTable& table = m->handles;
  uint32_t index;
  if (table.free_head != 0) {
    index = table.free_head - 1;
    table.free_head = static_cast<uint32_t>(decode_free(table.slots[index]));
  } else {
    if (table.used == table.capacity) {
      uint32_t capacity = table.capacity == 0 ? 16 : table.capacity * 2;
      auto* slots = static_cast<void**>(usgc_realloc(table.slots, capacity * sizeof(void*)));
      if (slots == nullptr) {
        fail(ENOMEM, "usgc_handle_new: out of memory for %u handles", capacity);
        return 0;
      }
      table.slots = slots;
      table.capacity = capacity;
    }
    index = table.used++;
  }
  table.slots[index] = object;
  return usgc_handle{index} * 2 + 2;
}

USGC_GC_API void* usgc_handle_get(usgc_handle handle) {
  Mutator* m = current_mutator();
  return m->handles.slots[live_local_handle_slot(m, handle, "usgc_handle_get", "")];
}

USGC_GC_API void usgc_handle_delete(usgc_handle handle) {
  Mutator* m = current_mutator();
  const uint64_t index =
      live_local_handle_slot(m, handle, "usgc_handle_delete", " (deleted twice?)");
  m->handles.slots[index] = encode_free(m->handles.free_head);
  m->handles.free_head = static_cast<uint32_t>(index + 1);
}

USGC_GC_API usgc_handle usgc_global_handle_new(void* object) {
  if (usgc::safepoint::in_fork_child()) {
    fail_in_fork_child("usgc_global_handle_new");
    return 0;
  }
  if (is_object_pointer(object))
    publish_for_store(object, Ownership::kGlobal, "usgc_global_handle_new");
  usgc::kernel::FutexMutexGuard guard(g_global_roots.global_roots_lock);
  size_t index;
  if (g_global_roots.global_handle_free != 0) {
    index = g_global_roots.global_handle_free - 1;
    g_global_roots.global_handle_free = decode_free(g_global_roots.global_handles[index]);
  } else {
    if (g_global_roots.global_handle_used == g_global_roots.global_handle_capacity &&
        !grow(&g_global_roots.global_handles, &g_global_roots.global_handle_capacity,
              sizeof(void*))) {
      fail(ENOMEM, "usgc_global_handle_new: out of memory");
      return 0;
    }
    index = g_global_roots.global_handle_used++;
  }
  // Release, like usgc_global_store's: the publication before the handle's value; readers take
  // global_roots_lock too, which already orders it (pairs with that lock's acquire).
  __atomic_store_n(&g_global_roots.global_handles[index], object, __ATOMIC_RELEASE);
  return usgc_handle{index} * 2 + 1;
}

USGC_GC_API void* usgc_global_handle_get(usgc_handle handle) {
  if (usgc::safepoint::in_fork_child()) return fail_in_fork_child("usgc_global_handle_get");
  usgc::kernel::FutexMutexGuard guard(g_global_roots.global_roots_lock);
  const size_t index = live_global_handle_slot_locked(handle, "usgc_global_handle_get", "");
  return g_global_roots.global_handles[index];
}

USGC_GC_API void usgc_global_handle_delete(usgc_handle handle) {
  if (usgc::safepoint::in_fork_child()) return;  // the table's lock may be a missing thread's
  usgc::kernel::FutexMutexGuard guard(g_global_roots.global_roots_lock);
  const size_t index =
      live_global_handle_slot_locked(handle, "usgc_global_handle_delete", " (deleted twice?)");
  g_global_roots.global_handles[index] = encode_free(g_global_roots.global_handle_free);
  g_global_roots.global_handle_free = index + 1;
}

}  // extern "C"
