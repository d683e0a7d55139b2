// jitgen/interpreter/unknown_world.hpp — what `call unknown(...)` and `go unknown(...)` do when
// a program runs: they stand for code the analysis cannot see, so they do what such code may do
// and the analysis assumes it does (jitgen/escape/function_graph.hpp, "unknown callee"):
//   * every reference argument becomes reachable from a global: it is stored into the world, a
//     GLOBAL_SHARED array of kWorldSlots references held by a global root (the oldest entries
//     are overwritten; stores go through the barrier, which publishes the value globally);
//   * a reference result is the newest object of the result's type in the world (null when
//     there is none); an int/bool result is 0 / false.
// `go unknown(...)` keeps its arguments the same way and starts no goroutine (the code it would
// run is unknown; what matters to the decisions is that its arguments escape).
// Concurrency: `unknown_world_next` is a relaxed counter (slots are claimed in order, and a
// racing reader may see an older object of the type, which is still a correct answer); slots
// are written by usgc_array_write and read with acquire loads (usgc_array_read).
#pragma once

#include "jitgen/interpreter/run_state.hpp"

namespace usgc::jitgen::interpreter {

inline constexpr uint64_t kWorldSlots = 256;

// Makes the world and its global root; from the entry goroutine, before the program runs.
// false (errno set) when usgc refuses.
bool create_unknown_world(RunState& run);
void destroy_unknown_world(RunState& run);  // after the run: removes the global root

void keep_in_unknown_world(RunState& run, void* value);
void* newest_in_unknown_world(const RunState& run, ir::TypeId type);

}  // namespace usgc::jitgen::interpreter
