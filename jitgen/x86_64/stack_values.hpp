// jitgen/x86_64/stack_values.hpp — which locals may hold a STACK_LOCAL object, so the write
// barrier's value test ("is the stored value stack-local?", a fatal compiler bug when it is and
// the target is a heap object) is emitted only where the escape decisions allow such a value.
//
// A local may hold a stack object when something assigned to it may be one: an allocation site
// decided STACK_LOCAL or allocated in a caller's frame at some call (caller_frame_calls); a copy
// of such a local; a load from an object such a local may hold (stack objects may be stored into
// stack objects); the result of a call whose callee may return one or that allocates in the
// caller's frame; a parameter or capture of a function some call passes such a local to. Spawns,
// channels, globals and unknown code never carry a stack object (they publish). Flow-insensitive,
// iterated over the module to a fixed point; conservative (it over-approximates).
// Compile time only.
#pragma once

#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/program_layout.hpp"
#include "jitgen/ir/ir.hpp"

namespace usgc::jitgen::x86_64 {

// [function][local]: true when the local may hold a STACK_LOCAL object.
std::vector<std::vector<bool>> locals_that_may_hold_stack_objects(
    const ir::Module& module, const escape::EscapeAnalysis& analysis,
    const interpreter::ProgramLayout& layout);

}  // namespace usgc::jitgen::x86_64
