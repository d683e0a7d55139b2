// gc/parallel_mark.hpp — the shared collection's marking: one marker per P, work stealing.
//
// Runs only while the world is stopped. Marker 0 is the collecting thread; markers 1..N-1 are
// threads of their own (started by gc_initialize, parked on a futex between collections). Each
// marker claims goroutines one at a time (an atomic index) and marks from their roots; marker 0
// also marks from the global roots. Marking is the shared mark bit of the object's slot (atomic
// OR: each object is pushed by exactly one marker). A marker keeps a private stack and spills
// half of it to its public stack when it grows or when someone is idle; an idle marker takes
// from its own public stack, then steals half of another's. Termination: a marker with nothing
// counts itself idle; when all N are idle at once no stack holds work (a marker pushes only to
// its own stacks and goes idle only with both empty), so marking is complete.
// Traced: private objects of every goroutine (they may hold the only reference to a shared
// object), shared and global objects; STACK_LOCAL objects are never marked (their arena is
// scanned as a root of its goroutine).
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
// Marks everything reachable from `mutators[0..count)` and the global roots. World stopped.
MarkResult mark_shared_heap(Mutator* const* mutators, size_t count);

}  // namespace usgc::gc
