// jitgen/escape/caller_frame.cpp — the rules of caller_frame.hpp. Keeps the caller-frame rule and
// the determinism invariant (functions, blocks and instructions in module order).
#include "jitgen/escape/caller_frame.hpp"

#include <set>

namespace usgc::jitgen::escape {
namespace {

using ir::Instruction;
using ir::Opcode;
using ir::Operand;
using ir::OperandKind;

// Sites that may be allocated in a caller's frame (caller_frame.hpp, "candidate").
std::vector<bool> find_candidates(const SiteTable& sites, const std::vector<FunctionGraph>& graphs,
                                  const ModuleHeap& heap,
                                  const std::vector<SiteDecision>& decisions) {
  const ir::Module& module = sites.module();
  std::vector<bool> candidate(sites.size(), false);
  for (uint32_t site = 0; site < sites.size(); ++site) {
    // Facts are kept once per level (the first-reason rule), so "size not bounded" may hide
    // behind "returned": the size is looked at here.
    const Instruction& allocation = sites.instruction(site);
    bool bounded =
        allocation.opcode == Opcode::New || allocation.operands[0].kind == OperandKind::Integer;
    candidate[site] = bounded && decisions[site].ownership == OwnershipClass::GoroutinePrivate;
  }
  for (const FunctionGraph& graph : graphs) {
    // Other facts at the private level ("stored into an object of the caller") are found through
    // the contents below, for the same reason.
    for (const EscapeFact& fact : graph.facts) {
      if (fact.target.kind != ValueKind::Site) continue;
      uint32_t site = fact.target.index;
      const std::string returned =
          "returned from " + module.functions[sites.location(site).function_index].name;
      if (fact.level != OwnershipClass::GoroutinePrivate || fact.short_reason != returned)
        candidate[site] = false;
    }
    for (const auto& [object, values] : graph.contents)
      for (AbstractValue value : values)
        if (value.kind == ValueKind::Site) candidate[value.index] = false;
  }
  for (const auto& [object, values] : heap)
    for (AbstractValue value : values)
      if (value.kind == ValueKind::Site) candidate[value.index] = false;
  return candidate;
}

// Does the callee keep input `input` from escaping and from being stored anywhere? (It may return
// it: the call's result then holds the object too.)
bool input_stays(const FunctionSummary& summary, uint32_t input) {
  if (summary.input_level[input] != OwnershipClass::StackLocal) return false;
  for (const std::set<uint32_t>& stored : summary.inputs_stored_into_input)
    if (stored.count(input)) return false;
  for (const auto& [site, stored_input] : summary.inputs_stored_into_site)
    if (stored_input == input) return false;
  return true;
}

class CallerFrame {
 public:
  CallerFrame(const ir::Module& module, const std::vector<FunctionSummary>& summaries,
              uint32_t function_index)
      : function_(module.functions[function_index]), summaries_(summaries) {}

  // Does the value that a call leaves in local `result` stay in this frame? (caller_frame.hpp)
  bool result_stays(uint32_t result) const {
    // The result and every local it may reach: copies, and results of calls that return it.
    std::set<uint32_t> holders = {result};
    for (bool grew = true; grew;) {
      grew = false;
      for_each_instruction([&](const Instruction& instruction) {
        if (instruction.opcode == Opcode::Copy && holds(holders, instruction.operands[0]))
          grew |= holders.insert(instruction.result_index).second;
        if (instruction.opcode == Opcode::Call && !instruction.callee_unknown &&
            !instruction.result_name.empty() && returns_a_holder(instruction, holders))
          grew |= holders.insert(instruction.result_index).second;
      });
    }
    bool stays = true;
    for_each_instruction([&](const Instruction& instruction) {
      if (stays) stays = uses_stay(instruction, holders);
    });
    return stays;
  }

 private:
  template <typename Visit>
  void for_each_instruction(Visit&& visit) const {
    for (const ir::Block& block : function_.blocks)
      for (const Instruction& instruction : block.instructions) visit(instruction);
  }
  static bool holds(const std::set<uint32_t>& holders, const Operand& operand) {
    return operand.kind == OperandKind::Local && holders.count(operand.local_index) != 0;
  }
  bool returns_a_holder(const Instruction& call, const std::set<uint32_t>& holders) const {
    const FunctionSummary& summary = summaries_[call.callee_index];
    uint32_t input = 0;
    for (const std::vector<Operand>* list : {&call.operands, &call.captures}) {
      for (const Operand& operand : *list) {
        if (holds(holders, operand) && summary.input_returned[input]) return true;
        ++input;
      }
    }
    return false;
  }

  // Does `instruction` read a holder only in ways that keep the object in this frame?
  bool uses_stay(const Instruction& instruction, const std::set<uint32_t>& holders) const {
    switch (instruction.opcode) {
      case Opcode::StoreField:
        return !holds(holders, instruction.operands[1]);
      case Opcode::StoreIndex:
        return !holds(holders, instruction.operands[2]);
      case Opcode::StoreGlobal:
      case Opcode::Return:
        return instruction.operands.empty() || !holds(holders, instruction.operands[0]);
      case Opcode::Send:
        return !holds(holders, instruction.operands[1]);
      case Opcode::Go:
      case Opcode::Call: {
        const bool known_call = instruction.opcode == Opcode::Call && !instruction.callee_unknown;
        uint32_t input = 0;
        for (const std::vector<Operand>* list : {&instruction.operands, &instruction.captures}) {
          for (const Operand& operand : *list) {
            if (holds(holders, operand) &&
                (!known_call || !input_stays(summaries_[instruction.callee_index], input)))
              return false;
            ++input;
          }
        }
        return true;
      }
      default:  // copies (followed above), loads and stores through it, len, comparisons, channel
                // ops on it
        return true;
    }
  }

  const ir::Function& function_;
  const std::vector<FunctionSummary>& summaries_;
};

}  // namespace

void decide_caller_frame_calls(const SiteTable& sites, const std::vector<FunctionGraph>& graphs,
                               const ModuleHeap& heap,
                               const std::vector<FunctionSummary>& summaries,
                               std::vector<SiteDecision>& decisions) {
  const ir::Module& module = sites.module();
  std::vector<bool> candidate = find_candidates(sites, graphs, heap, decisions);
  bool any = false;
  for (bool is_candidate : candidate) any |= is_candidate;
  if (!any) return;
  for (uint32_t g = 0; g < module.functions.size(); ++g) {
    CallerFrame frame(module, summaries, g);
    const ir::Function& caller = module.functions[g];
    for (uint32_t b = 0; b < caller.blocks.size(); ++b) {
      for (uint32_t i = 0; i < caller.blocks[b].instructions.size(); ++i) {
        const Instruction& call = caller.blocks[b].instructions[i];
        if (call.opcode != Opcode::Call || call.callee_unknown) continue;
        std::vector<uint32_t> returned;
        for (AbstractValue value : summaries[call.callee_index].returned_values)
          if (value.kind == ValueKind::Site && candidate[value.index] &&
              sites.location(value.index).function_index == call.callee_index)
            returned.push_back(value.index);
        if (returned.empty()) continue;
        if (!call.result_name.empty() && !frame.result_stays(call.result_index)) continue;
        for (uint32_t site : returned)
          decisions[site].caller_frame_calls.push_back(
              {g, b, i, caller.name, call.site_position()});
      }
    }
  }
}

}  // namespace usgc::jitgen::escape
