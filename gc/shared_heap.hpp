// gc/shared_heap.hpp — the shared heap: blocks owned by no goroutine, holding GOROUTINE_SHARED
// and GLOBAL_SHARED objects, per size class, plus shared large objects.
//
// Per class, under that class's lock: `swept` (every block swept since the last mark),
// `partial` (swept blocks with free runs, not held by a cache) and `unswept` (blocks the last
// mark has not been swept for yet). Allocation goes through caches (runs, like a TLAB): one per
// P for GOROUTINE_SHARED, used without a lock by the machine holding that P; one for
// GLOBAL_SHARED behind a lock ("allocation under heavy synchronization"). A cache takes a run
// from its current block, else a partial block, else sweeps an unswept block itself (lazy
// sweeping, as Go's mcentral), else a new block.
// A shared collection flushes every cache and moves every swept block to `unswept` while the
// world is stopped; the collecting goroutine sweeps them after the world restarts, racing only
// with allocators that sweep one on demand (a block is swept by whoever popped it).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gc/mutator.hpp"

namespace usgc::gc {

int shared_heap_initialize(uint32_t processor_count);
void shared_heap_shutdown();

// In the stopped world: empty every cache, turn every swept block into an unswept one (the end
// of a mark: allocation while marking is black, and the sweep follows).
void shared_heap_prepare_for_mark();
// At the start of a mark: the budget counts again from zero (what is allocated while marking
// counts towards the next collection).
void shared_heap_restart_budget();
// After the mark (world running or stopped): sweeps every unswept block and shared large object.
// Returns the bytes still live in the shared heap.
size_t shared_heap_sweep_all();

// A goroutine's exit: its blocks (whose private objects were freed) join the shared heap.
void shared_heap_adopt_block(Block* block);
void shared_heap_adopt_large(Block* block);

// Pacing of shared collections: bytes of shared runs taken and bytes published count alike.
bool shared_collection_due();
void shared_heap_count_published(size_t bytes);
// shared_collection_due() as last computed when the shared heap grew: one load.
bool shared_collection_flagged();
void shared_heap_set_live_bytes(size_t live_bytes);
size_t shared_heap_live_bytes();
size_t shared_heap_bytes_since_collection();

}  // namespace usgc::gc
