// jitgen/escape/analysis.cpp — the module driver of the escape analysis: the summary fixed point,
// the site classes and their propagation (analysis.hpp).
#include "jitgen/escape/analysis.hpp"

#include <algorithm>
#include <deque>
#include <optional>
#include <set>

#include "jitgen/escape/abstract_value.hpp"
#include "jitgen/escape/caller_frame.hpp"
#include "jitgen/escape/channel_world.hpp"
#include "jitgen/escape/function_graph.hpp"

namespace usgc::jitgen::escape {
namespace {

struct SiteState {
  OwnershipClass ownership = OwnershipClass::StackLocal;
  std::string short_reason = "does not escape";
  std::vector<ReasonStep> reasons;
  // Private only because its size is not bounded: it does not outlive its frame by itself, so a
  // chain that shows it does (propagation) replaces this reason (the class stays the same).
  bool size_only = false;
};

constexpr size_t kMaximumChainSteps = 32;

// The functions that call or spawn each function (by callee_index), each list ascending.
std::vector<std::vector<uint32_t>> callers_of(const ir::Module& module) {
  const auto count = static_cast<uint32_t>(module.functions.size());
  std::vector<std::set<uint32_t>> callers(count);
  for (uint32_t f = 0; f < count; ++f)
    for (const ir::Block& block : module.functions[f].blocks)
      for (const ir::Instruction& instruction : block.instructions)
        if (instruction.callee_index < count) callers[instruction.callee_index].insert(f);
  std::vector<std::vector<uint32_t>> lists(count);
  for (uint32_t f = 0; f < count; ++f) lists[f].assign(callers[f].begin(), callers[f].end());
  return lists;
}

// Every function once, callees before their callers where the call graph has no cycle (a
// post-order of an iterative depth-first search from each function in index order).
std::vector<uint32_t> callee_first_order(const ir::Module& module) {
  const auto count = static_cast<uint32_t>(module.functions.size());
  std::vector<std::vector<uint32_t>> callees(count);
  for (uint32_t f = 0; f < count; ++f) {
    std::set<uint32_t> unique;
    for (const ir::Block& block : module.functions[f].blocks)
      for (const ir::Instruction& instruction : block.instructions)
        if (instruction.callee_index < count) unique.insert(instruction.callee_index);
    callees[f].assign(unique.begin(), unique.end());
  }
  std::vector<uint32_t> order;
  order.reserve(count);
  std::vector<bool> visited(count, false);
  std::vector<std::pair<uint32_t, size_t>> stack;  // function, next callee to visit
  for (uint32_t root = 0; root < count; ++root) {
    if (visited[root]) continue;
    visited[root] = true;
    stack.push_back({root, 0});
    while (!stack.empty()) {
      auto& [function, next] = stack.back();
      if (next < callees[function].size()) {
        uint32_t callee = callees[function][next++];
        if (!visited[callee]) {
          visited[callee] = true;
          stack.push_back({callee, 0});
        }
        continue;
      }
      order.push_back(function);
      stack.pop_back();
    }
  }
  return order;
}
constexpr const char* kSizeNotBounded = "size not bounded";  // function_graph.cpp's short reason

// Steps 1-3 of analysis.hpp under one reading of stores into received objects.
struct ModuleSolution {
  std::vector<FunctionSummary> summaries;
  ModuleHeap heap;
  std::vector<FunctionGraph> graphs;
  std::vector<SiteState> states;
  size_t fixed_point_passes = 0;
};

ModuleSolution solve_module(const ir::Module& module, const SiteTable& sites,
                            const ChannelWorld& channels) {
  const uint32_t function_count = static_cast<uint32_t>(module.functions.size());
  ModuleSolution solution;
  for (const ir::Function& function : module.functions)
    solution.summaries.emplace_back(function.parameter_count + function.capture_count);

  // 1. The summary fixed point, from a worklist: a function is solved again only when what its
  // solve read changed (a callee's summary, a heap entry it looked up), callees before callers
  // (callee_first_order), so a call chain of N functions takes about N solves, not N passes of N.
  ModuleHeap& heap = solution.heap;
  std::vector<FunctionGraph>& graphs = solution.graphs;
  graphs.resize(function_count);
  const std::vector<uint32_t> order = callee_first_order(module);
  std::vector<uint32_t> position(function_count);
  for (uint32_t p = 0; p < function_count; ++p) position[order[p]] = p;
  const std::vector<std::vector<uint32_t>> callers = callers_of(module);
  std::vector<std::set<uint32_t>> heap_readers(sites.size());    // site -> functions that read it
  std::set<uint32_t> pending(position.begin(), position.end());  // positions in `order`
  uint32_t cursor = 0;
  solution.fixed_point_passes = function_count == 0 ? 0 : 1;
  auto enqueue = [&](uint32_t function) { pending.insert(position[function]); };
  while (!pending.empty()) {
    auto next = pending.lower_bound(cursor);
    if (next == pending.end()) {  // wrapped around: one more pass over the order
      next = pending.begin();
      ++solution.fixed_point_passes;
    }
    cursor = *next;
    pending.erase(next);
    const uint32_t f = order[cursor];
    graphs[f] = solve_function(sites, f, solution.summaries, heap, channels);
    for (uint32_t site : graphs[f].heap_sites_read) heap_readers[site].insert(f);
    if (solution.summaries[f].merge(graphs[f].summary))
      for (uint32_t caller : callers[f]) enqueue(caller);
    for (const auto& [object, values] : graphs[f].contents) {
      if (object.kind != ValueKind::Site) continue;
      bool grew = false;
      for (AbstractValue value : values)
        if (value.context_free()) grew |= heap[object.index].insert(value).second;
      if (grew)
        for (uint32_t reader : heap_readers[object.index]) enqueue(reader);
    }
  }

  // 2. Direct facts: the highest one per site, the first among equals.
  std::vector<SiteState>& states = solution.states;
  states.resize(sites.size());
  std::map<std::pair<uint32_t, uint32_t>, ReasonStep> edge_origins;
  for (uint32_t f = 0; f < function_count; ++f) {
    for (const EscapeFact& fact : graphs[f].facts) {
      if (fact.target.kind != ValueKind::Site) continue;
      SiteState& state = states[fact.target.index];
      if (fact.level <= state.ownership) continue;
      state = {fact.level, fact.short_reason, fact.reasons, fact.short_reason == kSizeNotBounded};
    }
    for (const auto& [edge, origin] : graphs[f].content_origins)
      if (edge.first.kind == ValueKind::Site && edge.second.kind == ValueKind::Site)
        edge_origins.emplace(std::pair{edge.first.index, edge.second.index}, origin);
  }

  // 3. The propagation rule, highest class first; then the mailbox rule (channel_world.hpp: a
  // received object made global makes every site in the mailbox global), and the propagation
  // again after it raised a site.
  auto propagate = [&] {
    for (OwnershipClass level : {OwnershipClass::GlobalShared, OwnershipClass::GoroutineShared,
                                 OwnershipClass::GoroutinePrivate}) {
      std::deque<uint32_t> pending;
      for (bool size_only : {false, true})  // sites that outlive their frame first
        for (uint32_t site = 0; site < sites.size(); ++site)
          if (states[site].ownership == level && states[site].size_only == size_only)
            pending.push_back(site);
      while (!pending.empty()) {
        uint32_t from = pending.front();
        pending.pop_front();
        auto contents = heap.find(from);
        if (contents == heap.end()) continue;
        for (AbstractValue value : contents->second) {
          if (value.kind != ValueKind::Site) continue;
          uint32_t to = value.index;
          bool better_reason =
              states[to].ownership == level && states[to].size_only && !states[from].size_only;
          if (states[to].ownership >= level && !better_reason) continue;
          std::vector<ReasonStep> reasons = states[from].reasons;
          if (reasons.size() < kMaximumChainSteps) {
            auto origin = edge_origins.find({from, to});
            ReasonStep link{
                origin != edge_origins.end() ? origin->second.position
                                             : sites.instruction(to).site_position(),
                sites.describe_at(to) + " is reachable from " + sites.describe_at(from)};
            if (origin != edge_origins.end()) link.fact += ": " + origin->second.fact;
            reasons.push_back(std::move(link));
          }
          if (better_reason && !states[to].reasons.empty() && reasons.size() < kMaximumChainSteps)
            reasons.push_back(states[to].reasons.front());  // keep "its size is not bounded"
          states[to] = {
              level,
              std::string("reachable from a ") + ownership_class_short_name(level) + " object",
              std::move(reasons), states[from].size_only};
          pending.push_back(to);  // again after a better reason: its successors want it too
        }
      }
    }
  };
  propagate();
  for (;;) {
    std::vector<OwnershipClass> classes;
    for (const SiteState& state : states) classes.push_back(state.ownership);
    std::optional<ReceivedMadeGlobal> made_global =
        received_made_global(sites, graphs, heap, classes);
    if (!made_global) break;
    bool raised = false;
    for (const MailboxValue& entry : mailbox_contents(graphs, heap)) {
      if (entry.value.kind != ValueKind::Site) continue;
      SiteState& state = states[entry.value.index];
      if (state.ownership == OwnershipClass::GlobalShared) continue;
      std::vector<ReasonStep> reasons{*entry.sent};
      if (entry.reached_from_sent)
        reasons.push_back({entry.sent->position, sites.describe_at(entry.value.index) +
                                                     " is reachable from the object sent there"});
      reasons.push_back({entry.sent->position, "whatever is sent may be received anywhere, and " +
                                                   made_global->short_reason});
      for (const ReasonStep& step : made_global->reasons)
        if (reasons.size() < kMaximumChainSteps) reasons.push_back(step);
      state = {OwnershipClass::GlobalShared, "may be received and made global", std::move(reasons),
               false};
      raised = true;
    }
    if (!raised) break;
    propagate();
  }
  return solution;
}

}  // namespace

EscapeAnalysis analyze_escapes(const ir::Module& module) {
  SiteTable sites(module);
  EscapeAnalysis analysis;
  analysis.file_name = module.file_name;

  // Steps 1-3 with received objects shared; once more if the channels may carry global objects
  // (the channel-contents rule, channel_world.hpp).
  ModuleSolution solution = solve_module(module, sites, ChannelWorld{});
  std::vector<OwnershipClass> classes;
  std::vector<std::string> short_reasons;
  for (const SiteState& state : solution.states) {
    classes.push_back(state.ownership);
    short_reasons.push_back(state.short_reason);
  }
  ChannelWorld channels =
      decide_channel_world(sites, solution.graphs, solution.heap, classes, short_reasons);
  size_t passes = solution.fixed_point_passes;
  if (channels.received_level == OwnershipClass::GlobalShared) {
    solution = solve_module(module, sites, channels);
    passes += solution.fixed_point_passes;
  }
  analysis.fixed_point_passes = passes;
  analysis.summaries = std::move(solution.summaries);
  const std::vector<SiteState>& states = solution.states;

  // 4. Decisions, then the per-call-site ones (caller_frame.hpp), then sorted by position.
  for (uint32_t site = 0; site < sites.size(); ++site) {
    const SiteLocation& at = sites.location(site);
    SiteDecision decision;
    decision.site_index = site;
    decision.function_index = at.function_index;
    decision.block_index = at.block_index;
    decision.instruction_index = at.instruction_index;
    decision.function_name = module.functions[at.function_index].name;
    decision.position = sites.instruction(site).site_position();
    decision.allocation = sites.describe(site);
    decision.ownership = states[site].ownership;
    decision.short_reason = states[site].short_reason;
    decision.reasons = states[site].reasons;
    analysis.sites.push_back(std::move(decision));
  }
  decide_caller_frame_calls(sites, solution.graphs, solution.heap, analysis.summaries,
                            analysis.sites);
  for (const SiteDecision& decision : analysis.sites) {
    analysis.statistics.add(decision.ownership);
    if (!decision.caller_frame_calls.empty()) ++analysis.statistics.caller_frame_sites;
  }
  std::stable_sort(analysis.sites.begin(), analysis.sites.end(),
                   [](const SiteDecision& a, const SiteDecision& b) {
                     if (a.position.line != b.position.line)
                       return a.position.line < b.position.line;
                     if (a.position.column != b.position.column)
                       return a.position.column < b.position.column;
                     return a.site_index < b.site_index;
                   });
  return analysis;
}

}  // namespace usgc::jitgen::escape
