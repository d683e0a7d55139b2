// jitgen/x86_64/jit_runtime.hpp — what compiled code reaches at run time: the per-goroutine
// context in R13 (JitGoroutine), the tables a compiled module keeps for its out-of-line calls
// (operations, runtime errors), and those calls themselves.
//
// Compiled code does the frequent things inline (locals, arithmetic, field and element access,
// the allocation, barrier, poll and frame stubs: stubs.hpp) and calls these for the rest:
// channels, `go`, unknown code (jit_operation), runtime errors (jit_runtime_error), the stack
// arena's slow path (jit_alloc_stack_slow) and --gc-stress (jit_gc_stress). They reuse the
// interpreter's run (jitgen/interpreter/run_state.hpp: globals, channels, the unknown world, the
// stop protocol, the counters), so a compiled run and an interpreted one of the same program
// report the same results, allocation counts per site and positioned runtime errors.
//
// JitGoroutine: one per goroutine running compiled code, made by its C++ entry (the run's entry
// goroutine or a spawned one), on that goroutine only — compiled code writes its counters with
// plain increments, no atomics — and added into the RunState totals when the goroutine leaves
// compiled code (merge_counters), as the interpreter's Executor does.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "jitgen/interpreter/run_state.hpp"
#include "usgc/gc.h"

namespace usgc::jitgen::x86_64 {

class CompiledModule;

struct JitGoroutine;

// The run a compiled module is executing (lives for the whole run_program_with call, so spawned
// goroutines that outlive the entry function still find it).
struct JitRun {
  interpreter::RunState* run = nullptr;
  const CompiledModule* module = nullptr;
  // The goroutines in compiled code (a list through JitGoroutine::next_live), and whether the
  // run's stop hook ran; both under `lock` (registration, finish, the hook). The hook
  // (RunState::stop_hook, installed by run_compiled_entry) moves every listed goroutine's stack
  // limit to kStoppedStackLimit; one registered after it starts with that limit.
  mutable std::mutex lock;
  mutable JitGoroutine* live = nullptr;
  mutable bool stopped = false;
  interpreter::RunState::StopHook stop_hook;
};

// A stack limit above every stack: the next prologue's stack check fails, and its report, seeing
// the run stopping, reports nothing more and unwinds. How a stop reaches compiled code at calls
// with no instruction of its own (V8's stack guard does the same for interrupts).
inline char* const kStoppedStackLimit = reinterpret_cast<char*>(UINTPTR_MAX);

struct JitGoroutine {
  usgc_mutator* mutator;              // +0   R15 at entry
  const std::atomic<bool>* stopping;  // +8   R12 at entry
  // +16  compiled prologues compare RSP with it (a plain load). Written by create_jit_goroutine
  // and by the run's stop hook on any thread (release, after `stopping`: kStoppedStackLimit).
  std::atomic<char*> stack_limit;
  uint64_t unwound;                      // +24  set by the unwind stub: the run stopped under it
  void** reference_globals;              // +32  the run's globals (RunState)
  std::atomic<int64_t>* scalar_globals;  // +40
  interpreter::RunState* run;            // +48
  const JitRun* jit;                     // +56
  uint64_t substitutes;                  // +64  STACK_LOCAL sites placed as private substitutes
  uint32_t since_stress;                 // +72
  uint32_t stress_turn;                  // +76
  // +80  the innermost entry thunk's frame on this goroutine (its RBP; the thunk's saved state
  // below it: compiler.cpp, "the entry thunk"), or null outside compiled code. Written by the
  // thunk (entry and exit) and read by the unwind stub, all on this goroutine: no atomics.
  char* entry_frame;
  JitGoroutine* next_live;      // +88  JitRun::live, under JitRun::lock
  JitGoroutine* previous_live;  // +96
  uint64_t counters[1];         // +104 [site] decided class; [sites + site] caller frame
};
inline constexpr int32_t kGoroutineStackLimit = 16;
inline constexpr int32_t kGoroutineUnwound = 24;
inline constexpr int32_t kGoroutineReferenceGlobals = 32;
inline constexpr int32_t kGoroutineScalarGlobals = 40;
inline constexpr int32_t kGoroutineEntryFrame = 80;
inline constexpr int32_t kGoroutineCounters = 104;

// Allocates a context with 2 * site_count counters for the calling goroutine (usgc_current_mutator
// must be its record). Stack limit: `stack_bytes` below `stack_top`, less a reserve.
JitGoroutine* create_jit_goroutine(const JitRun& jit, char* stack_top, size_t stack_bytes);
// Adds the goroutine's counts into the run's totals and frees the context.
void finish_jit_goroutine(JitGoroutine* goroutine);

// The entry goroutine of a compiled run: interpreter::run_program_with's runner, `context` a
// JitRun whose `module` is set (it sets `run`). run_compiled passes it; a test or an embedder
// that needs the RunState while the run goes on wraps it.
void run_compiled_entry(interpreter::RunState& run, void* context);

// An out-of-line operation of compiled code: the instruction it is, and what the compiler knew.
struct OperationSite {
  uint32_t function = 0;
  uint32_t block = 0;
  uint32_t instruction = 0;
  uint32_t site = UINT32_MAX;                         // MakeChan: the allocation site
  uint32_t counter = 0;                               // MakeChan: index into JitGoroutine::counters
  usgc_ownership ownership = USGC_GOROUTINE_PRIVATE;  // MakeChan: the class it is made in
  int32_t reference_base = 0;                         // RBP-relative offset of reference slot 0
  int32_t scalar_base = 0;                            // RBP-relative offset of scalar slot 0
};

enum class ErrorKind : uint8_t {
  kNilField,  // a: -
  kIndex,     // a: index, b: the array (null or not)
  kDivideByZero,
  kNegativeLength,  // a: the length
  kOutOfMemory,
  kStackOverflow,  // the prologue's stack check
};

struct ErrorSite {
  ErrorKind kind = ErrorKind::kOutOfMemory;
  uint32_t function = 0;
  uint32_t block = 0;
  uint32_t instruction = 0;
};

}  // namespace usgc::jitgen::x86_64

// The calls compiled code makes (C ABI; jit_runtime.cpp). 0 = go on, 1 = the run is stopping:
// compiled code unwinds to its entry thunk (the unwind stub, compiler.cpp). usgc_jit_runtime_error
// stops the run; compiled code then unwinds the same way.
extern "C" {
uint32_t usgc_jit_operation(usgc::jitgen::x86_64::JitGoroutine* goroutine, uint32_t operation,
                            char* frame);
void usgc_jit_runtime_error(usgc::jitgen::x86_64::JitGoroutine* goroutine, uint32_t error,
                            int64_t a, uint64_t b);
void* usgc_jit_alloc_stack_slow(usgc::jitgen::x86_64::JitGoroutine* goroutine,
                                const usgc_type_layout* layout);
void usgc_jit_gc_stress(usgc::jitgen::x86_64::JitGoroutine* goroutine);
void usgc_jit_goroutine_entry(void* pack);
}
