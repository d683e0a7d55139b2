// gc/stack_arena.cpp — STACK_LOCAL allocation: a LIFO bump region per goroutine.
//
// The arena is one block (kArena) taken at the goroutine's first stack-local allocation. Objects
// are laid out back to back ([header][payload rounded to 8]); abi.arena_top is the bump pointer.
// A shadow-stack frame records arena_top when pushed and restores it when popped (usgc/gc.h),
// which frees everything the frame allocated: LIFO, no collection involved. Memory above the top
// is not zero (a popped frame's objects stay), so an allocation zeroes its object.
// Escape analysis gives STACK_LOCAL only to objects of bounded size; when the arena is full the
// object is made GOROUTINE_PRIVATE instead (still invisible to other goroutines, freed by the
// next private collection after it is unreachable), with the stack-substitute bit: code compiled
// for a STACK_LOCAL object stores the goroutine's other STACK_LOCAL objects into it, and the
// barrier lets those stores through (a substitute lives no longer than its frame, by the same
// decision). Its references into the arena are never followed after the frame pops: nothing
// reaches it any more, and sweeping does not trace.
// Collectors treat every object between the arena's base and arena_top as a root: its
// references are traced, the objects themselves are never marked or swept.
#include <cerrno>
#include <cstring>

#include "gc/allocation.hpp"
#include "gc/gc_state.hpp"
#include "safepoint/fork_child.hpp"

namespace usgc::gc {

void* allocate_stack_local(Mutator& m, uint64_t header, size_t bytes) {
  bytes = (bytes + 7) & ~size_t{7};
  if (m.arena == nullptr) {
    AcquireFailure failure = AcquireFailure::kNone;
    Block* arena = acquire_block(BlockKind::kArena, 0, m.abi.heap_id, &failure);
    if (arena != nullptr) {
      m.arena = arena;
      if (m.abi.arena_top == nullptr) m.abi.arena_top = arena->slots_begin();
      m.abi.arena_limit = reinterpret_cast<char*>(arena) + kBlockBytes;
    }
  }
  if (m.arena != nullptr && m.abi.arena_top == nullptr) m.abi.arena_top = m.arena->slots_begin();
  char* top = m.abi.arena_top;
  if (m.arena == nullptr || static_cast<size_t>(m.abi.arena_limit - top) < bytes) {
    // Full (or no arena to be had): a private object is the safe substitute.
    uint64_t private_header =
        (header & ~kClassMask) | static_cast<uint64_t>(Ownership::kPrivate) | kStackSubstituteFlag;
    return allocate_private(m, private_header, bytes, size_class_of(bytes));
  }
  std::memset(top, 0, bytes);
  *reinterpret_cast<uint64_t*>(top) = header | (m.abi.heap_id << kOwnerShift);
  m.abi.arena_top = top + bytes;
  count_add(g_counters.objects_allocated[USGC_STACK_LOCAL], 1);
  return top + kHeaderBytes;
}

}  // namespace usgc::gc

// The inline fast path's slow path (usgc/gc.h).
extern "C" __attribute__((visibility("default"))) void* usgc_alloc_stack_slow(
    const usgc_type_layout* layout) {
  using namespace usgc::gc;
  if (usgc::safepoint::in_fork_child()) return fail_in_fork_child("usgc_alloc_stack_slow");
  Mutator* m = current_mutator();
  if (m == nullptr)
    return fail(EPERM,
                "usgc_alloc: the calling thread is not a goroutine (use usgc_run_main, usgc_go or "
                "usgc_attach_thread)");
  if (layout == nullptr || layout->slot_bytes < kHeaderBytes)
    return fail(EINVAL, "usgc_alloc_stack_slow: bad layout");
  return allocate_stack_local(*m, layout->header_bits & ~kClassMask, layout->slot_bytes);
}
