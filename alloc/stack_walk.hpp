// alloc/stack_walk.hpp — the heap profile's stack walk: the call stack of the current thread,
// from cached unwind rules, with libgcc's _Unwind_Backtrace as the fallback.
//
// Why: a sample's stack used to cost about 7 700 instructions in _Unwind_Backtrace, which finds
// the FDE of every frame and interprets its CIE and FDE programs each time. Programs under
// LD_PRELOAD are built without frame pointers (Debian's default), so a frame-pointer chain is no
// answer. As Linux's ORC unwinder, async-profiler and Go's frame tables do, the walk applies a
// precomputed rule per return address (alloc/unwind_rules.hpp: CFA = rsp or rbp + offset, return
// address at CFA - 8, rbp saved at CFA - 8k or unchanged), from a cache filled on a miss from the
// object's .eh_frame_hdr/.eh_frame. A hit costs a hash, a seqlock read and two loads.
//
// Equivalence: the frames are exactly what _Unwind_Backtrace would report (call addresses, i.e.
// return address - 1, innermost first; usgc's own frames at the top left out; at most max_frames)
// whenever every frame's rule is cached-expressible. When one is not (kFallback: a realigned
// stack, a signal frame, a PLT stub), or when the stack is not one whose bounds the thread knows,
// the whole walk is done again by _Unwind_Backtrace. Code in an object but without CFI ends the
// walk at its frame, as libgcc does (alloc/unwind_rules.hpp, kEnd).
// Robustness: the walk reads only the stack, and only words in [the captured rsp, the top of the
// mapping that holds it) (kernel_iface/mapping_lookup.hpp, /proc/self/maps: looked up once per
// thread for the thread's own stack, which stays mapped while the thread runs; a walk on another
// stack — a goroutine's, a coroutine's, a signal stack — looks its mapping up for that walk only,
// a few times per thread, then leaves such walks to libgcc), at 8-byte aligned addresses, each
// frame's CFA strictly above the last. A pc in no loaded object (JIT code, a stray value), a
// malformed FDE, an out-of-bounds CFA, or 256 steps end the walk cleanly at that frame, never a
// fault: the result then differs from libgcc's only where libgcc would read what is not there.
//
// Invariants:
//   - a cache entry holds the rule libgcc's CFI gives at its key address, for the loaded objects
//     as they were at the entry's generation (dlpi_adds + dlpi_subs); an entry of another
//     generation than the walk's is a miss, so a dlclose/dlopen never leaves a stale rule in use;
//   - entries are written under their own seqlock (odd while written; a writer claims it with a
//     CAS and a loser simply does not cache): any thread reads and fills them, no lock, no malloc.
// Execution context: any thread, inside malloc's slow path (heap_profile_record) with the
// profile's recursion guard set. Neither the walk nor a miss allocates or takes a lock malloc
// takes; a miss and the per-walk generation read take the loader's list lock (dl_iterate_phdr).
// The libgcc fallback may allocate (its registered-frame tables): the recursion guard covers it.
#pragma once

#include <cstdint>

namespace usgc::alloc {

enum class StackWalkMethod : uint8_t {
  kCachedRules,  // the cached rules, _Unwind_Backtrace as the fallback
  kLibgcc,       // _Unwind_Backtrace only (the reference)
};

// The calling thread's stack into frames[0..max_frames): call addresses, innermost first, usgc's
// own frames at the top left out. Returns how many.
[[gnu::noinline]] uint32_t stack_walk_capture(uintptr_t* frames, uint32_t max_frames,
                                              StackWalkMethod method);

// Process-wide counts (relaxed; for tests and benchmarks).
struct StackWalkCounters {
  uint64_t walks;          // stack_walk_capture calls with kCachedRules
  uint64_t fallbacks;      // ... done again by _Unwind_Backtrace
  uint64_t rule_misses;    // rules computed from the CFI (cache misses)
  uint64_t ended_early;    // walks ended by a bad frame (no object, bad FDE, out of bounds, depth)
  uint64_t stack_lookups;  // /proc/self/maps lookups of a thread's stack bounds
};
StackWalkCounters stack_walk_counters();

// A walk from a given state, within [stack_low, stack_high), without the fallback: for tests of
// the walk's robustness (a made-up stack) and the profile's own capture.
enum class StackWalkEnd : uint8_t {
  kOutermost,    // a frame whose return address is undefined or 0 (the stack's first frame)
  kMaxFrames,    // max_frames recorded
  kNoObject,     // a pc in no object, in code without CFI, or with a malformed FDE: the last frame
  kOutOfBounds,  // a CFA or saved-rbp slot outside the bounds
  kMaxSteps,     // 256 frames unwound
  kFallback,     // a frame whose rule the cache cannot express
};
struct StackWalkRegisters {
  uintptr_t pc;  // the first frame's pc (its rule is looked up at pc itself, not pc - 1)
  uintptr_t sp;
  uintptr_t fp;  // rbp
};
uint32_t stack_walk_from(const StackWalkRegisters& registers, uintptr_t stack_low,
                         uintptr_t stack_high, uintptr_t* frames, uint32_t max_frames,
                         StackWalkEnd* end);

// True for an address in usgc's own code (the usgc_text section).
bool is_usgc_code_address(uintptr_t address);

}  // namespace usgc::alloc
