// jitgen/escape/function_summary.hpp — what a function does with its inputs (parameters, then
// captures), as seen by its callers: the interprocedural part of the escape analysis.
//
// A summary is expressed in context-free values (abstract_value.hpp) and input indices only, so a
// caller applies it by substituting its own argument values for the inputs:
//   * input_level[i]: the highest class the callee forces on everything reachable from input i —
//     GoroutineShared (spawned, sent, stored into something another goroutine reaches) or
//     GlobalShared (stored into a global, passed to unknown code); StackLocal means "neither";
//   * input_returned[i]: the result may point into input i's region;
//   * input_sent[i]: input i's region may be sent on a channel (channel_world.hpp);
//   * inputs_stored_into_input[j]: inputs i whose region may be stored into input j's region;
//   * values_stored_into_input[j]: context-free values stored into input j's region;
//   * inputs_stored_into_site: (site s, input i): input i's region stored into site s's object;
//   * returned_values: context-free values the result may point to.
// Invariants:
//   * the monotone summary invariant: during the fixed point a summary only grows (levels rise,
//     sets gain members: merge() never removes), so iteration over recursive call graphs ends.
//   * the optimistic start: every summary starts empty (nothing escapes) and the fixed point
//     raises it; a summary is final only when a whole pass over the module changed nothing.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "jitgen/escape/abstract_value.hpp"
#include "jitgen/escape/decision.hpp"

namespace usgc::jitgen::escape {

struct FunctionSummary {
  std::vector<OwnershipClass> input_level;
  std::vector<std::vector<ReasonStep>> input_reasons;  // why input_level[i] (empty: StackLocal)
  std::vector<std::string> input_short_reasons;        // "sent on a channel", ...
  std::vector<bool> input_returned;
  std::vector<bool> input_sent;
  std::vector<std::set<uint32_t>> inputs_stored_into_input;
  std::vector<ValueSet> values_stored_into_input;
  std::set<std::pair<uint32_t, uint32_t>> inputs_stored_into_site;  // (site, input)
  ValueSet returned_values;

  explicit FunctionSummary(size_t input_count = 0)
      : input_level(input_count, OwnershipClass::StackLocal),
        input_reasons(input_count),
        input_short_reasons(input_count),
        input_returned(input_count, false),
        input_sent(input_count, false),
        inputs_stored_into_input(input_count),
        values_stored_into_input(input_count) {}

  // Unions `other` into this summary (keeps the monotone summary invariant); true if anything
  // grew. The reasons of a raised level come from `other`.
  bool merge(const FunctionSummary& other) {
    bool grew = false;
    for (size_t i = 0; i < input_level.size(); ++i) {
      if (other.input_level[i] > input_level[i]) {
        input_level[i] = other.input_level[i];
        input_reasons[i] = other.input_reasons[i];
        input_short_reasons[i] = other.input_short_reasons[i];
        grew = true;
      }
      if (other.input_returned[i] && !input_returned[i]) input_returned[i] = grew = true;
      if (other.input_sent[i] && !input_sent[i]) input_sent[i] = grew = true;
      for (uint32_t input : other.inputs_stored_into_input[i])
        grew |= inputs_stored_into_input[i].insert(input).second;
      for (AbstractValue value : other.values_stored_into_input[i])
        grew |= values_stored_into_input[i].insert(value).second;
    }
    for (const auto& pair : other.inputs_stored_into_site)
      grew |= inputs_stored_into_site.insert(pair).second;
    for (AbstractValue value : other.returned_values) grew |= returned_values.insert(value).second;
    return grew;
  }
};

}  // namespace usgc::jitgen::escape
