// jitgen/interpreter/executor.hpp — one goroutine's execution of .usir functions: frames, the
// instruction loop, calls, spawns, and the goroutine's share of the counters.
//
// Frames: each call is one C++ activation of Executor::call_function holding a Frame: the
// function's reference locals (plus two scratch slots) are the slots of a usgc shadow-stack
// frame (usgc_frame_push/pop), so every reference the program holds is a root, and popping the
// frame releases the STACK_LOCAL objects it allocated (the arena is LIFO); scalar locals sit
// beside them. The quarantine: in checked mode with the escape-point rules off
// (RunOptions::check_escape_points), a wrong STACK_LOCAL decision lets a reference outlive its
// frame until a use rule traps it (frame/dead), and meanwhile the reference sits in a root slot or
// in another STACK_LOCAL object, where every collection reads it (its verifier checks the header).
// Were the arena reused, the object's header and check word would be those of whatever was
// allocated there since (a false "reachable object was freed" from the verifier, a stamp of a
// live frame, another site's object): so every frame then pops keeping the arena
// (usgc_frame_pop_keeping_arena), as AddressSanitizer quarantines freed memory, and a dead
// object stays intact, its header, its fields and its stamp, for as long as the goroutine runs.
// The arena fills sooner; the objects after that are stack substitutes (gc/stack_arena.cpp),
// private objects that a dangling reference keeps alive like any other. With the escape-point
// rules on no reference outlives its frame (they trap the return or the store first), and frames
// free their objects. The rooting rule: a reference read out of a slot is used before the next usgc
// call that may collect (an allocation, a poll, a channel operation) or is in a slot again by then.
// Safepoints: the executor polls at every call and every back edge (a jump to the same or an
// earlier block: every loop has one), and checks the stop protocol (run_state.hpp) there.
// The call-depth guard: a call that would leave less than kStackReserveBytes of the goroutine's
// stack (or pass RunOptions::max_call_depth) ends the run with kLimitExceeded instead of running
// into the guard page.
#pragma once

#include <cstdint>
#include <vector>

#include "jitgen/interpreter/decision_checks.hpp"
#include "jitgen/interpreter/run_state.hpp"

namespace usgc::jitgen::interpreter {

// Runs the entry function on the calling goroutine (the entry goroutine of run_program) and
// records its result in `run`; every goroutine it starts runs through the same executor code.
void run_entry_function(RunState& run);

// How a goroutine that the entry's program spawned starts: usgc_go_object(goroutine_entry, pack).
void goroutine_entry(void* pack);

}  // namespace usgc::jitgen::interpreter
