// runtime/stack_scavenger.hpp — the thread that gives idle goroutine caches' memory back, and the
// pages of the GC block pool's long-free blocks (the design and its state are in
// runtime/stack_scavenger.cpp). Not on a hot path: the exit path calls note_goroutine_cached, one
// relaxed load while the scavenger is already armed.
#pragma once

#include <cstdint>

namespace usgc::runtime {

// usgc_init / usgc_shutdown (before the machines are joined).
void scavenger_start();
void scavenger_stop();

// A goroutine's record and stack were cached for reuse: look at the caches after a quiet tick.
void note_goroutine_cached();

// The GC block pool has free blocks that stayed free for the decay: return their pages now. Any
// thread; one relaxed load while a request is pending.
void note_block_pages_due();
// The monitor's look at the pool, every round it works (outside any pause): notifies the
// scavenger when the oldest resident free block has been free for the decay (returns 0), else
// returns when it will have been (monotonic ns; 0: no resident free block), for the monitor's
// sleep.
uint64_t watch_block_pool_pages(uint64_t now_ns);

// The trim itself: the idle Ps' and the global goroutine caches, then the stack pool. Any thread
// that is not running a goroutine while holding a P's cache (the scavenger, tests).
void trim_idle_caches();

// Blocks whose pages one pass of the pool's page return gives back at most (one process_madvise).
// A pass holds a CPU for its whole length, and the scavenger's wake-up preempts whatever ran there
// (a goroutine's thread, maybe in a pause): at 15-30 us a block on the 2-vCPU VM of
// docs/benchmarks.md, passes of 256 blocks (3-8 ms) made the worst private pauses of a
// binary-trees run with two goroutines on two CPUs. 16 keep a pass well under the 1 ms pause
// target; the pacing (9 times a pass's length between passes, at least 1 ms) keeps the rate.
inline constexpr uint32_t kScavengerBlocksPerPass = 16;

// Trims done since start (tests, statistics).
uint64_t scavenger_trims();

}  // namespace usgc::runtime
