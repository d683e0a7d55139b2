// jitgen/escape/function_graph.hpp — the intraprocedural part of the escape analysis: one
// function's points-to graph (a connection graph with the heap collapsed per abstract object),
// solved flow-insensitively, with its callees' summaries applied at each call and spawn.
//
// Nodes: the function's locals; the abstract values of abstract_value.hpp. Edges: local -> value
// (points-to), object -> value (content: a store into any field or element). Each instruction is a
// constraint, re-applied in instruction order until no set grows (the local fixed point):
//   copy `%r = %x`           pts(r) ⊇ pts(x)
//   alloc at site s          pts(r) ∋ Site s
//   load `%r = %p.f`/`[i]`   pts(r) ⊇ content(o) for o ∈ pts(p) (Input/External/Received: itself)
//   store `%p.f, %v`         content(o) ⊇ pts(v) for o ∈ pts(p); into External: v is global;
//                            into Received: v is at the level of ChannelWorld (shared, or
//                            global when the channels may carry global objects: channel_world.hpp)
//   `load @g` / `store @g`   pts(r) ∋ External / v is global
//   `recv`                   pts(r) ∋ Received;  `send %c, %v`: v is shared, sent ⊇ pts(v)
//   `call f(...)`            f's summary, inputs replaced by the argument sets
//   `go f(...)`              every argument and capture is shared, then f's summary
//   unknown callee           every argument is global; the result is External
//   `ret %v`                 returned ⊇ pts(v)
// Facts ("v is shared because ...") are recorded on values with their reason chains; the module
// driver (analysis.cpp) turns them into site classes.
// Invariants:
//   * the determinism invariant: instructions are visited in module order and every set is
//     ordered, so facts, their order and their reasons are the same on every run.
//   * the first-reason rule: a fact (value, class) is recorded once, with the reason of the
//     first constraint that produced it.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "jitgen/escape/abstract_value.hpp"
#include "jitgen/escape/decision.hpp"
#include "jitgen/escape/function_summary.hpp"

namespace usgc::jitgen::escape {

// Context-free content of site objects, accumulated over the whole module (the context-free
// invariant of abstract_value.hpp).
using ModuleHeap = std::map<uint32_t, ValueSet>;

struct EscapeFact {
  AbstractValue target;
  OwnershipClass level = OwnershipClass::StackLocal;
  std::string short_reason;
  std::vector<ReasonStep> reasons;
};

// What stores into received objects mean (channel_world.hpp decides it between two solutions).
struct ChannelWorld {
  OwnershipClass received_level = OwnershipClass::GoroutineShared;
  std::vector<ReasonStep> reasons;  // why GlobalShared (empty when GoroutineShared)
};

struct FunctionGraph {
  std::vector<ValueSet> points_to;             // per local
  std::map<AbstractValue, ValueSet> contents;  // Site and Input objects, this function's view
  std::map<std::pair<AbstractValue, AbstractValue>, ReasonStep> content_origins;  // first store
  ValueSet returned;
  std::map<AbstractValue, ReasonStep> return_origins;  // first `ret` of each value
  std::vector<EscapeFact> facts;                       // in discovery order, one per (value, class)
  ValueSet sent;                                       // may be sent on a channel (by a callee too)
  std::map<AbstractValue, ReasonStep> send_origins;    // the first send of each
  std::optional<ReasonStep> unknown_code;              // the first call or go of unknown code
  // The first local holding a channel of references that may come from a global or from unknown
  // code (External), where unknown code could send on it.
  std::optional<ReasonStep> external_channel;
  FunctionSummary summary;  // derived from the above
  // Sites whose ModuleHeap entry the solve looked up (present or not): the module driver solves
  // this function again when one of them grows (its worklist, analysis.cpp).
  std::set<uint32_t> heap_sites_read;
};

// Solves function `function_index` of a verified module with the current summaries and heap.
FunctionGraph solve_function(const SiteTable& sites, uint32_t function_index,
                             const std::vector<FunctionSummary>& summaries, const ModuleHeap& heap,
                             const ChannelWorld& channels);

// Everything reachable from `roots` through `graph.contents` and `heap` (roots included). When
// heap_sites_read is given, every site whose heap entry was looked up is added to it.
ValueSet reachable_values(const FunctionGraph& graph, const ModuleHeap& heap, const ValueSet& roots,
                          std::set<uint32_t>* heap_sites_read = nullptr);

}  // namespace usgc::jitgen::escape
