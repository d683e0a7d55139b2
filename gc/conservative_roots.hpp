// gc/conservative_roots.hpp — roots found conservatively in the stack of a goroutine stopped at
// an asynchronous safepoint.
//
// A signal can stop a goroutine anywhere in its own code (safepoint/async_safepoint.hpp), where
// an object it just allocated may live only in a register or an unrooted local: C code is not
// asked to root every pointer it holds across a stretch without usgc calls. So while it is
// stopped there, the words of its interrupted state — the registers the trampoline saved and its
// stack up to stack_top — are roots: every word that points into an allocated object (its header,
// its payload or one past a field) keeps that object alive, as Boehm GC treats a stack. Objects
// never move, so a false root costs only the memory it keeps; nothing is ever updated.
//
// Invariants: a scan runs while the goroutine is not running (stopped at the safepoint, or
// parked there by a preemption), in the stopped world or beside running goroutines (concurrent
// marking claims and scans parked goroutines). A word is an object only when it lies in a slot of
// a small block of a registered chunk (the block's format read before and after the slot's
// header, so a block formatted again meanwhile is skipped), or in a large object's mapping (looked
// up under the block pool's lock), whose header has the class SHARED or GLOBAL: what shared
// collections mark. A free slot's first word is 0, or a free run's end pointer, whose class bits
// are 0 (gc/block.hpp). Private objects are their goroutine's to collect, and arena (STACK_LOCAL)
// objects are scanned precisely as roots already. A shared object a scan finds cannot be freed
// while the mark runs (shared objects are swept only after it).
#pragma once

#include <cstdint>

#include "gc/mutator.hpp"

namespace usgc::gc {

// The SHARED or GLOBAL object (payload pointer) that `word` points into, or nullptr.
void* object_containing(uintptr_t word);

// visit(object) for every object a word of m's exposed interrupted state points into (nothing
// when m is not stopped at an asynchronous safepoint). m must not be running.
void for_each_conservative_root(const Mutator& m, void (*visit)(void* object, void* context),
                                void* context);

template <typename Visit>
void for_each_conservative_root(const Mutator& m, Visit&& visit) {
  for_each_conservative_root(
      m, [](void* object, void* context) { (*static_cast<Visit*>(context))(object); }, &visit);
}

}  // namespace usgc::gc
