// jitgen/escape/abstract_value.cpp — the allocation-site table (abstract_value.hpp).
#include "jitgen/escape/abstract_value.hpp"

#include "jitgen/escape/decision.hpp"

namespace usgc::jitgen::escape {

SiteTable::SiteTable(const ir::Module& module) : module_(module) {
  for (uint32_t f = 0; f < module.functions.size(); ++f) {
    const ir::Function& function = module.functions[f];
    for (uint32_t b = 0; b < function.blocks.size(); ++b) {
      const ir::Block& block = function.blocks[b];
      for (uint32_t i = 0; i < block.instructions.size(); ++i) {
        if (!ir::is_allocation_site(block.instructions[i].opcode)) continue;
        index_[{f, b, i}] = static_cast<uint32_t>(locations_.size());
        locations_.push_back({f, b, i});
      }
    }
  }
}

const ir::Instruction& SiteTable::instruction(uint32_t site) const {
  const SiteLocation& at = locations_[site];
  return module_.functions[at.function_index]
      .blocks[at.block_index]
      .instructions[at.instruction_index];
}

std::string SiteTable::describe(uint32_t site) const {
  const ir::Instruction& allocation = instruction(site);
  const ir::TypeTable& types = module_.types;
  switch (allocation.opcode) {
    case ir::Opcode::New: {
      const ir::TypeNode& node = types.node(allocation.allocated_type);
      return "new " + (node.kind == ir::TypeKind::Struct ? node.struct_name : node.spelling);
    }
    case ir::Opcode::NewArray:
      return "newarray " + types.spelling(allocation.allocated_type);
    case ir::Opcode::MakeChan:
      return "makechan " + types.spelling(allocation.allocated_type);
    default:
      return ir::opcode_name(allocation.opcode);
  }
}

std::string SiteTable::describe_at(uint32_t site) const {
  return describe(site) + " at " +
         format_position(module_.file_name, instruction(site).site_position());
}

}  // namespace usgc::jitgen::escape
