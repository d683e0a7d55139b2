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
#include <vector>

#include "jitgen/interpreter/run_state.hpp"
#include "usgc/gc.h"

namespace usgc::jitgen::x86_64 {

class CompiledModule;

// The run a compiled module is executing (lives for the whole run_program_with call, so spawned
// goroutines that outlive the entry function still find it).
struct JitRun {
  interpreter::RunState* run = nullptr;
  const CompiledModule* module = nullptr;
};

struct JitGoroutine {
  usgc_mutator* mutator;                 // +0   R15 at entry
  const std::atomic<bool>* stopping;     // +8   R12 at entry
  char* stack_limit;                     // +16  compiled prologues compare RSP with it
  uint64_t unwound;                      // +24  set by compiled code leaving for a stopped run
  void** reference_globals;              // +32  the run's globals (RunState)
  std::atomic<int64_t>* scalar_globals;  // +40
  interpreter::RunState* run;            // +48
  const JitRun* jit;                     // +56
  uint64_t substitutes;                  // +64  STACK_LOCAL sites placed as private substitutes
  uint32_t since_stress;                 // +72
  uint32_t stress_turn;                  // +76
  uint64_t counters[1];                  // +80  [site] decided class; [sites + site] caller frame
};
inline constexpr int32_t kGoroutineStackLimit = 16;
inline constexpr int32_t kGoroutineUnwound = 24;
inline constexpr int32_t kGoroutineReferenceGlobals = 32;
inline constexpr int32_t kGoroutineScalarGlobals = 40;
inline constexpr int32_t kGoroutineCounters = 80;

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
// return through the epilogues.
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
