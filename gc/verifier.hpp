// gc/verifier.hpp — USGC_VERIFY=1 (always on in debug builds): after each collection, walk what
// is reachable and check it.
//
// After a private collection of G (G's own thread; other goroutines keep running, so only G's
// private and stack-local objects are walked): every object reachable from G's roots has a
// well-formed header (known bits, a registered type, a class), is not a freed slot, carries no
// private mark any more, and if PRIVATE or STACK_LOCAL belongs to G; no private object refers to
// a STACK_LOCAL object; a reference into G's stack arena is to one of its live STACK_LOCAL
// objects (one to a popped frame's object is named as such: the mutator kept it past its frame).
// After a shared collection (in the stopped world, after sweeping): the same for everything
// reachable from every goroutine and the global roots, plus the private-heap invariant itself:
// no SHARED/GLOBAL object refers to a PRIVATE or STACK_LOCAL one, a private object reached from
// G's roots belongs to G, and every reachable object in a block has its shared mark.
// A violation prints what was found where and aborts: continuing would corrupt memory.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gc/mutator.hpp"

namespace usgc::gc {

// What a verification walked (usgc_heap_validate reports it).
struct VerifyCounts {
  uint64_t objects = 0;     // distinct private and shared objects walked
  uint64_t bytes = 0;       // their sizes (header included)
  uint64_t references = 0;  // references checked (roots and fields)
  uint64_t roots = 0;       // root slots holding an object (goroutines' and global)
  uint64_t goroutines = 0;  // mutators whose roots were walked
};

VerifyCounts verify_private_heap(Mutator& mutator);
VerifyCounts verify_shared_heap(Mutator* const* mutators, size_t count);

}  // namespace usgc::gc
