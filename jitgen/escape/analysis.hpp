// jitgen/escape/analysis.hpp — the goroutine-aware escape analysis of a verified UltraScript
// module: interprocedural, flow-insensitive, in the spirit of connection graphs (Choi
// et al., OOPSLA 1999), extended with goroutine contexts. For every allocation site it decides an
// ownership class (docs/design.md, "Ownership classes"):
//   STACK_LOCAL        never outlives its frame: not returned, not stored into anything that
//                      outlives the frame (a caller's object, a global, a heap object), not
//                      captured or passed by a `go`, not sent; bounded size (`new S`, `new [N]T`,
//                      and `newarray`/`makechan` with a constant length);
//   GOROUTINE_PRIVATE  outlives its frame, but only the allocating goroutine can reach it;
//   GOROUTINE_SHARED   captured or passed by a `go`, sent on a channel, or stored into an object
//                      another goroutine reaches;
//   GLOBAL_SHARED      a global reaches it, or code the analysis cannot see (`unknown`) got it.
// Method:
//   1. every function is solved (function_graph.hpp) with the current summaries of its callees
//      and the module heap (site -> context-free content), in module order; its summary is merged
//      into the table and its site contents into the module heap; passes repeat until one pass
//      changes nothing (the summary fixed point: recursion and mutual recursion converge because
//      of the monotone summary invariant, function_summary.hpp);
//   2. each site's class is the highest fact recorded about it by any function (first fact in
//      module order wins among equals: the determinism invariant);
//   3. the propagation rule (decision.hpp): classes flow along module-heap edges, global first,
//      then shared, then private, breadth-first in site order, each step adding one link to the
//      reason chain ("new Item at ... is reachable from new Slot at ...: stored into ...").
//   4. per-call-site decisions (caller_frame.hpp): a private site that only escapes by being
//      returned is allocated in the caller's frame at calls whose result stays in that frame.
//   Steps 1-3 run once more when the channel-contents rule (channel_world.hpp) finds that the
//   channels may carry objects a global reaches: stores into received objects are then global.
// Conservative choices: unknown callees make their arguments global and return External; objects
// received from channels are shared (global when a global object may be sent); a parameter's whole
// region is one node, so what a callee returns from a parameter may be anything reachable from the
// argument.
#pragma once

#include <vector>

#include "jitgen/escape/decision.hpp"
#include "jitgen/escape/function_summary.hpp"
#include "jitgen/ir/ir.hpp"

namespace usgc::jitgen::escape {

struct EscapeAnalysis {
  std::string file_name;
  std::vector<SiteDecision> sites;  // sorted by position (line, column), then site index
  EscapeStatistics statistics;
  std::vector<FunctionSummary> summaries;  // per function, module order
  size_t fixed_point_passes = 0;
};

// `module` must be verified (a clean parse_module or ModuleBuilder::finish()): the analysis reads
// indices only (the resolution invariant of jitgen/ir/module.hpp).
[[gnu::visibility("default")]] EscapeAnalysis analyze_escapes(const ir::Module& module);

}  // namespace usgc::jitgen::escape
