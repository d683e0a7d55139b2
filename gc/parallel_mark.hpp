// gc/parallel_mark.hpp — the shared collection's marking: one marker per P, work stealing.
//
// Runs only while the world is stopped. Marker 0 is the collecting thread; markers 1..N-1 are
// threads of their own (started by gc_initialize, parked on a futex between collections). Each
// marker claims goroutines one at a time (an atomic index) and marks from their roots; marker 0
// also marks from the global roots. Marking is the shared mark bit of the object's slot (atomic
// OR: each object is pushed by exactly one marker). A marker keeps a private stack and spills
// half of it to its public stack when it grows or when someone is idle; an idle marker takes
// from its own public stack, then steals half of another's — a marker on its own NUMA node first,
// other nodes' markers last. Termination: a marker with nothing
// counts itself idle; when all N are idle at once no stack holds work (a marker pushes only to
// its own stacks and goes idle only with both empty), so marking is complete.
// Traced: shared and global objects only. A goroutine contributes its roots, the fields of its
// young private objects and of its remembered old ones, and the objects it published while old
// (gc/private_generations.hpp); private objects are never marked nor followed. STACK_LOCAL
// objects are never marked (their arena is scanned as a root of its goroutine). A shared object
// is marked with its slot's bit.
//
// Full marks start from clear bitmaps. Minor marks (generational, sticky mark bits) keep them: a
// set bit is an old object (alive at the last collection, or published since), which is neither
// marked again nor traced; the old-to-young references are found through the dirty cards, whose
// old objects are traced (cards are cleared afterwards). Young = shared objects allocated since the
// last collection (allocation leaves the bit clear).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gc/mutator.hpp"

namespace usgc::gc {

int parallel_mark_initialize(uint32_t marker_count);
void parallel_mark_shutdown();

struct MarkResult {
  size_t objects_marked = 0;
  uint32_t markers = 0;
};
enum class MarkKind : uint8_t { kFull, kMinor };
// Marks everything reachable from `mutators[0..count)` and the global roots (minor: what is young
// and reachable). World stopped; a full mark expects cleared bitmaps.
MarkResult mark_shared_heap(Mutator* const* mutators, size_t count, MarkKind kind);

}  // namespace usgc::gc
