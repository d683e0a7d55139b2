// jitgen/x86_64/liveness.cpp — live locals after each instruction (liveness.hpp).
#include "jitgen/x86_64/liveness.hpp"

namespace usgc::jitgen::x86_64 {
namespace {

template <typename Visit>
void for_each_use(const ir::Instruction& instruction, Visit visit) {
  for (const ir::Operand& operand : instruction.operands)
    if (operand.kind == ir::OperandKind::Local) visit(operand.local_index);
  for (const ir::Operand& operand : instruction.captures)
    if (operand.kind == ir::OperandKind::Local) visit(operand.local_index);
}

// live := live before `instruction`, given live after it.
void step_back(const ir::Instruction& instruction, std::vector<bool>& live) {
  if (!instruction.result_name.empty()) live[instruction.result_index] = false;
  for_each_use(instruction, [&](uint32_t local) { live[local] = true; });
}

}  // namespace

FunctionLiveness::FunctionLiveness(const ir::Function& function) {
  const size_t blocks = function.blocks.size();
  const size_t locals = function.locals.size();
  std::vector<std::vector<bool>> live_in(blocks, std::vector<bool>(locals, false));
  std::vector<std::vector<bool>> live_out(blocks, std::vector<bool>(locals, false));
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t b = blocks; b-- > 0;) {
      const ir::Block& block = function.blocks[b];
      std::vector<bool> out(locals, false);
      if (!block.instructions.empty())
        for (uint32_t target : block.instructions.back().target_blocks)
          for (size_t l = 0; l < locals; ++l)
            if (live_in[target][l]) out[l] = true;
      std::vector<bool> in = out;
      for (size_t i = block.instructions.size(); i-- > 0;) step_back(block.instructions[i], in);
      if (out != live_out[b] || in != live_in[b]) {
        live_out[b] = std::move(out);
        live_in[b] = std::move(in);
        changed = true;
      }
    }
  }
  live_at_entry_ = blocks == 0 ? std::vector<bool>(locals, false) : live_in[0];
  live_in_ = live_in;
  live_after_.resize(blocks);
  for (size_t b = 0; b < blocks; ++b) {
    const ir::Block& block = function.blocks[b];
    live_after_[b].resize(block.instructions.size());
    std::vector<bool> live = live_out[b];
    for (size_t i = block.instructions.size(); i-- > 0;) {
      live_after_[b][i] = live;
      step_back(block.instructions[i], live);
    }
  }
}

}  // namespace usgc::jitgen::x86_64
