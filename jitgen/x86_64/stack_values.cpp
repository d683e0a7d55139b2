// jitgen/x86_64/stack_values.cpp — the fixed point of stack_values.hpp.
#include "jitgen/x86_64/stack_values.hpp"

namespace usgc::jitgen::x86_64 {

std::vector<std::vector<bool>> locals_that_may_hold_stack_objects(
    const ir::Module& module, const escape::EscapeAnalysis& analysis,
    const interpreter::ProgramLayout& layout) {
  std::vector<bool> site_may_be_stack(analysis.sites.size(), false);
  for (const escape::SiteDecision& decision : analysis.sites)
    site_may_be_stack[decision.site_index] =
        decision.ownership == escape::OwnershipClass::StackLocal ||
        !decision.caller_frame_calls.empty();

  std::vector<std::vector<bool>> may(module.functions.size());
  for (size_t f = 0; f < module.functions.size(); ++f)
    may[f].assign(module.functions[f].locals.size(), false);
  std::vector<bool> returns_stack(module.functions.size(), false);

  bool changed = true;
  auto set = [&](std::vector<bool>& flags, uint32_t index) {
    if (!flags[index]) {
      flags[index] = true;
      changed = true;
    }
  };
  auto holds = [&](size_t f, const ir::Operand& operand) {
    return operand.kind == ir::OperandKind::Local && may[f][operand.local_index];
  };
  while (changed) {
    changed = false;
    for (uint32_t f = 0; f < module.functions.size(); ++f) {
      const ir::Function& function = module.functions[f];
      for (uint32_t b = 0; b < function.blocks.size(); ++b) {
        const auto& instructions = function.blocks[b].instructions;
        for (uint32_t i = 0; i < instructions.size(); ++i) {
          const ir::Instruction& instruction = instructions[i];
          switch (instruction.opcode) {
            case ir::Opcode::New:
            case ir::Opcode::NewArray:
            case ir::Opcode::MakeChan:
              if (site_may_be_stack[layout.site_at(f, b, i)]) set(may[f], instruction.result_index);
              break;
            case ir::Opcode::Copy:
              if (holds(f, instruction.operands[0])) set(may[f], instruction.result_index);
              break;
            case ir::Opcode::LoadField:
            case ir::Opcode::LoadIndex:
              if (holds(f, instruction.operands[0])) set(may[f], instruction.result_index);
              break;
            case ir::Opcode::Call: {
              if (instruction.callee_unknown) break;
              uint32_t callee = instruction.callee_index;
              uint32_t input = 0;
              for (const ir::Operand& operand : instruction.operands) {
                if (holds(f, operand)) set(may[callee], input);
                ++input;
              }
              for (const ir::Operand& operand : instruction.captures) {
                if (holds(f, operand)) set(may[callee], input);
                ++input;
              }
              if (!instruction.result_name.empty() &&
                  (returns_stack[callee] || layout.caller_frame_sites(f, b, i) != nullptr))
                set(may[f], instruction.result_index);
              break;
            }
            case ir::Opcode::Return:
              if (!instruction.operands.empty() && holds(f, instruction.operands[0]))
                set(returns_stack, f);
              break;
            default:
              break;
          }
        }
      }
    }
  }
  return may;
}

}  // namespace usgc::jitgen::x86_64
