// jitgen/ir/printer.cpp — the canonical .usir printer (the round-trip invariant: printer.hpp).
#include "jitgen/ir/printer.hpp"

namespace usgc::jitgen::ir {

namespace {

std::string print_operand(const Operand& operand) {
  switch (operand.kind) {
    case OperandKind::Local:
      return "%" + operand.local_name;
    case OperandKind::Integer:
      return std::to_string(operand.integer_value);
    case OperandKind::Boolean:
      return operand.integer_value != 0 ? "true" : "false";
    case OperandKind::Null:
      return "null";
  }
  return "?";
}

std::string print_operand_at(const std::vector<Operand>& operands, size_t index) {
  return index < operands.size() ? print_operand(operands[index]) : "<missing>";
}

std::string print_operand_list(const std::vector<Operand>& operands) {
  std::string text = "(";
  for (size_t index = 0; index < operands.size(); ++index) {
    if (index != 0) text += ", ";
    text += print_operand(operands[index]);
  }
  return text + ")";
}

std::string print_label_at(const Instruction& instruction, size_t index) {
  return index < instruction.target_labels.size() ? instruction.target_labels[index] : "<missing>";
}

std::string print_declarations(const Module& module, const Function& function, LocalKind kind) {
  std::string text = "(";
  bool first = true;
  for (const Local& local : function.locals) {
    if (local.kind != kind) continue;
    if (!first) text += ", ";
    first = false;
    text += "%" + local.name + ": " + module.types.spelling(local.type);
  }
  return text + ")";
}

}  // namespace

std::string print_instruction(const Module& module, const Instruction& instruction) {
  const TypeTable& types = module.types;
  const std::vector<Operand>& operands = instruction.operands;
  std::string text;
  if (!instruction.result_name.empty()) text += "%" + instruction.result_name + " = ";
  switch (instruction.opcode) {
    case Opcode::Copy:
      text += print_operand_at(operands, 0);
      break;
    case Opcode::Binary:
      text += std::string(binary_operator_name(instruction.binary_operator)) + " " +
              print_operand_at(operands, 0) + ", " + print_operand_at(operands, 1);
      break;
    case Opcode::New:
      text += "new " + types.spelling(instruction.allocated_type);
      break;
    case Opcode::NewArray:
    case Opcode::MakeChan:
      text += std::string(opcode_name(instruction.opcode)) + " " +
              types.spelling(instruction.allocated_type) + ", " + print_operand_at(operands, 0);
      break;
    case Opcode::LoadField:
      text += "load " + print_operand_at(operands, 0) + "." + instruction.field_name;
      break;
    case Opcode::StoreField:
      text += "store " + print_operand_at(operands, 0) + "." + instruction.field_name + ", " +
              print_operand_at(operands, 1);
      break;
    case Opcode::LoadIndex:
      text += "load " + print_operand_at(operands, 0) + "[" + print_operand_at(operands, 1) + "]";
      break;
    case Opcode::StoreIndex:
      text += "store " + print_operand_at(operands, 0) + "[" + print_operand_at(operands, 1) +
              "], " + print_operand_at(operands, 2);
      break;
    case Opcode::Length:
      text += "len " + print_operand_at(operands, 0);
      break;
    case Opcode::LoadGlobal:
      text += "load @" + instruction.global_name;
      break;
    case Opcode::StoreGlobal:
      text += "store @" + instruction.global_name + ", " + print_operand_at(operands, 0);
      break;
    case Opcode::Call:
    case Opcode::Go:
      text += std::string(opcode_name(instruction.opcode)) + " " +
              (instruction.callee_unknown ? std::string("unknown") : instruction.callee_name) +
              print_operand_list(operands);
      if (!instruction.captures.empty())
        text += " captures" + print_operand_list(instruction.captures);
      break;
    case Opcode::Send:
      text += "send " + print_operand_at(operands, 0) + ", " + print_operand_at(operands, 1);
      break;
    case Opcode::Receive:
      text += "recv " + print_operand_at(operands, 0);
      break;
    case Opcode::Close:
      text += "close " + print_operand_at(operands, 0);
      break;
    case Opcode::Branch:
      text += "br " + print_operand_at(operands, 0) + ", " + print_label_at(instruction, 0) + ", " +
              print_label_at(instruction, 1);
      break;
    case Opcode::Jump:
      text += "jmp " + print_label_at(instruction, 0);
      break;
    case Opcode::Return:
      text += "ret";
      if (!operands.empty()) text += " " + print_operand(operands[0]);
      break;
  }
  if (instruction.source_position) {
    text += " @" + std::to_string(instruction.source_position->line) + ":" +
            std::to_string(instruction.source_position->column);
  }
  return text;
}

std::string print_module(const Module& module) {
  const TypeTable& types = module.types;
  std::string text;
  for (const StructDefinition& definition : module.structs) {
    text += "type " + definition.name + " {";
    for (size_t index = 0; index < definition.fields.size(); ++index) {
      const Field& field = definition.fields[index];
      text += (index == 0 ? " " : ", ") + field.name + ": " + types.spelling(field.type);
    }
    text += definition.fields.empty() ? "}\n" : " }\n";
  }
  if (!module.structs.empty() && (!module.globals.empty() || !module.functions.empty()))
    text += "\n";
  for (const Global& global : module.globals)
    text += "global " + global.name + ": " + types.spelling(global.type) + "\n";
  if (!module.globals.empty() && !module.functions.empty()) text += "\n";
  for (size_t function_index = 0; function_index < module.functions.size(); ++function_index) {
    const Function& function = module.functions[function_index];
    if (function_index != 0) text += "\n";
    text += "func " + function.name + print_declarations(module, function, LocalKind::Parameter);
    if (function.capture_count != 0)
      text += " captures" + print_declarations(module, function, LocalKind::Capture);
    if (function.result_type.valid()) text += " -> " + types.spelling(function.result_type);
    text += " {\n";
    for (const Local& local : function.locals) {
      if (local.kind == LocalKind::Variable)
        text += "  var %" + local.name + ": " + types.spelling(local.type) + "\n";
    }
    for (const Block& block : function.blocks) {
      text += block.label + ":\n";
      for (const Instruction& instruction : block.instructions)
        text += "  " + print_instruction(module, instruction) + "\n";
    }
    text += "}\n";
  }
  return text;
}

}  // namespace usgc::jitgen::ir
