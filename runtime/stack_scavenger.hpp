// runtime/stack_scavenger.hpp — the thread that gives idle goroutine caches' memory back (the
// design and its state are in runtime/stack_scavenger.cpp). Not on a hot path: the exit path
// calls note_goroutine_cached, one relaxed load while the scavenger is already armed.
#pragma once

#include <cstdint>

namespace usgc::runtime {

// usgc_init / usgc_shutdown (before the machines are joined).
void scavenger_start();
void scavenger_stop();

// A goroutine's record and stack were cached for reuse: look at the caches after a quiet tick.
void note_goroutine_cached();

// The trim itself: the idle Ps' and the global goroutine caches, then the stack pool. Any thread
// that is not running a goroutine while holding a P's cache (the scavenger, tests).
void trim_idle_caches();

// Trims done since start (tests, statistics).
uint64_t scavenger_trims();

}  // namespace usgc::runtime
