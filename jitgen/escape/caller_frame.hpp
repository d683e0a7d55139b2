// jitgen/escape/caller_frame.hpp — per-call-site decisions for objects returned to a caller that
// keeps them in its frame (CallerFrameCall, decision.hpp): what Go gets by inlining a small
// constructor, without inlining. At such a call the callee allocates the site STACK_LOCAL in
// the caller's frame and leaves its arena in place when it returns, so the object lives until
// the caller's frame pops; everywhere else the site keeps its class (GOROUTINE_PRIVATE).
//
// A site s of function f is a candidate when its decision is GOROUTINE_PRIVATE and every fact
// any function recorded about s is "returned from f" (not stored into a caller's object, not of
// unbounded size, not published), and no object's content may hold s (it is never stored
// anywhere, so loads never yield it). A call `%r = call f(...)` in g (or one without result)
// allocates the candidates f may return in g's frame when no local that may hold r's value
// (r and its copies) is returned, stored into an object, a global or a channel, passed to a
// goroutine or to unknown code, or passed to a function whose summary lets that input escape,
// be returned or be stored (function_summary.hpp). Loads and stores through it, `len`, channel
// operations on it and comparisons are fine. All conservative: a local is judged by every
// instruction that reads it, whatever value it holds there.
// Invariant (the caller-frame rule): an object allocated in the caller's frame never outlives
// that frame; checked mode (jitgen/interpreter) traps any run that shows otherwise.
#pragma once

#include <vector>

#include "jitgen/escape/abstract_value.hpp"
#include "jitgen/escape/decision.hpp"
#include "jitgen/escape/function_graph.hpp"
#include "jitgen/escape/function_summary.hpp"

namespace usgc::jitgen::escape {

// `decisions` is indexed by site index; their classes are final. Fills caller_frame_calls.
void decide_caller_frame_calls(const SiteTable& sites, const std::vector<FunctionGraph>& graphs,
                               const ModuleHeap& heap,
                               const std::vector<FunctionSummary>& summaries,
                               std::vector<SiteDecision>& decisions);

}  // namespace usgc::jitgen::escape
