// gc/publication.hpp — publication: a private object and its private closure become shared, in
// place (Domani et al., ISMM 2002): the owning goroutine flips their headers (class SHARED or
// GLOBAL, owner 0, published flag) and sets their shared mark bits ("allocate black": a
// published object stays live until a shared mark finds it unreachable). No copying, no
// forwarding, no read barrier; the private collector skips them from then on and only shared
// collections may free them. A published object is born old (generations: docs/gc.md) and its
// card is dirtied, because its fields were written by the fast path, which marks no cards.
//
// Publication points (each keeps the private-heap invariant): the write barrier's slow path (a
// private value stored into a shared or global object), usgc_go_object, a send on a reference
// channel, global roots and global handles, and usgc_publish.
// Only the owner publishes its objects; the caller then makes the object reachable to others
// with a release store, which orders the header flips before any other goroutine can see them.
#pragma once

#include "gc/object_header.hpp"

namespace usgc::gc {

// Publishes `value` for a store into something of class `target` (kShared or kGlobal). A
// STACK_LOCAL value, or a private object of another goroutine, stops the process with a message
// naming `operation` (a compiler or API bug). Shared and global values need nothing.
void publish_for_store(void* value, Ownership target, const char* operation);

// Tests only (read when USGC_VERIFY is on; written before the goroutines that publish run):
// called at the start of every publication by the publishing goroutine, so a test can hold it
// there at a safepoint while a shared mark starts. Nothing in usgc stops a goroutine inside
// publication or inside the barrier's slow path; a stop there is what an asynchronous safepoint
// taken at a PLT stub did (docs/gc.md, "A stop inside the barrier"), and the barrier must not
// lose the reference it overwrites when one happens anyway.
extern void (*g_publication_test_hook)();

}  // namespace usgc::gc
