// jitgen/ir/module.cpp — opcode tables and small helpers of the IR structures (module.hpp).
#include "jitgen/ir/module.hpp"

namespace usgc::jitgen::ir {

Operand Operand::local(std::string name, SourcePosition position) {
  Operand operand;
  operand.kind = OperandKind::Local;
  operand.local_name = std::move(name);
  operand.position = position;
  return operand;
}

Operand Operand::integer(int64_t value, SourcePosition position) {
  Operand operand;
  operand.kind = OperandKind::Integer;
  operand.integer_value = value;
  operand.position = position;
  return operand;
}

Operand Operand::boolean(bool value, SourcePosition position) {
  Operand operand;
  operand.kind = OperandKind::Boolean;
  operand.integer_value = value ? 1 : 0;
  operand.position = position;
  return operand;
}

Operand Operand::null(SourcePosition position) {
  Operand operand;
  operand.kind = OperandKind::Null;
  operand.position = position;
  return operand;
}

bool is_terminator(Opcode opcode) {
  return opcode == Opcode::Branch || opcode == Opcode::Jump || opcode == Opcode::Return;
}

bool is_allocation_site(Opcode opcode) {
  return opcode == Opcode::New || opcode == Opcode::NewArray || opcode == Opcode::MakeChan;
}

const char* opcode_name(Opcode opcode) {
  switch (opcode) {
    case Opcode::Copy:
      return "copy";
    case Opcode::Binary:
      return "binary";
    case Opcode::New:
      return "new";
    case Opcode::NewArray:
      return "newarray";
    case Opcode::MakeChan:
      return "makechan";
    case Opcode::LoadField:
    case Opcode::LoadIndex:
    case Opcode::LoadGlobal:
      return "load";
    case Opcode::StoreField:
    case Opcode::StoreIndex:
    case Opcode::StoreGlobal:
      return "store";
    case Opcode::Length:
      return "len";
    case Opcode::Call:
      return "call";
    case Opcode::Go:
      return "go";
    case Opcode::Send:
      return "send";
    case Opcode::Receive:
      return "recv";
    case Opcode::Close:
      return "close";
    case Opcode::Branch:
      return "br";
    case Opcode::Jump:
      return "jmp";
    case Opcode::Return:
      return "ret";
  }
  return "?";
}

const char* binary_operator_name(BinaryOperator binary_operator) {
  switch (binary_operator) {
    case BinaryOperator::Add:
      return "add";
    case BinaryOperator::Sub:
      return "sub";
    case BinaryOperator::Mul:
      return "mul";
    case BinaryOperator::Div:
      return "div";
    case BinaryOperator::Rem:
      return "rem";
    case BinaryOperator::Lt:
      return "lt";
    case BinaryOperator::Le:
      return "le";
    case BinaryOperator::Gt:
      return "gt";
    case BinaryOperator::Ge:
      return "ge";
    case BinaryOperator::Eq:
      return "eq";
    case BinaryOperator::Ne:
      return "ne";
    case BinaryOperator::And:
      return "and";
    case BinaryOperator::Or:
      return "or";
  }
  return "?";
}

const StructDefinition* Module::find_struct(std::string_view name) const {
  for (const StructDefinition& definition : structs)
    if (definition.name == name) return &definition;
  return nullptr;
}

const Function* Module::find_function(std::string_view name) const {
  for (const Function& function : functions)
    if (function.name == name) return &function;
  return nullptr;
}

}  // namespace usgc::jitgen::ir
