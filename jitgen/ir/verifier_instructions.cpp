// jitgen/ir/verifier_instructions.cpp — the checks of each IR instruction: operand kinds and types,
// results, shapes of builder IR, calls and branch targets (verifier.hpp lists them).
#include "jitgen/ir/verifier_checks.hpp"

namespace usgc::jitgen::ir {

OperandType Verifier::operand_type(Operand& operand, const Instruction& instruction) {
  switch (operand.kind) {
    case OperandKind::Integer:
      return {types_.int_type()};
    case OperandKind::Boolean:
      return {types_.bool_type()};
    case OperandKind::Null:
      return {kInvalidType, true};
    case OperandKind::Local: {
      auto found = local_index_.find(operand.local_name);
      if (found == local_index_.end()) {
        report(where(operand, instruction), "undefined local '%" + operand.local_name + "'");
        return {};
      }
      operand.local_index = found->second;
      return {function_->locals[found->second].type};
    }
  }
  return {};
}

OperandType Verifier::expect_kind(Operand& operand, const Instruction& instruction, TypeKind kind,
                                  const std::string& expected) {
  OperandType type = operand_type(operand, instruction);
  if (!type.valid()) return {};
  if (type.is_null || types_.kind(type.type) != kind) {
    report(where(operand, instruction), std::string(opcode_name(instruction.opcode)) +
                                            ": expected " + expected + ", found " +
                                            describe(operand, type));
    return {};
  }
  return type;
}

void Verifier::expect_assignable(Operand& operand, const Instruction& instruction, TypeId target,
                                 const std::string& context) {
  OperandType type = operand_type(operand, instruction);
  if (!type.valid() || !target.valid() || assignable(target, type)) return;
  report(where(operand, instruction), context + ": expected a value of type " +
                                          types_.spelling(target) + ", found " +
                                          describe(operand, type));
}

TypeId Verifier::result_type(Instruction& instruction) {
  SourcePosition position = instruction.result_position.known() ? instruction.result_position
                                                                : instruction.diagnostic_position();
  auto found = local_index_.find(instruction.result_name);
  if (found == local_index_.end()) {
    report(position, "undefined local '%" + instruction.result_name + "'");
    return kInvalidType;
  }
  instruction.result_index = found->second;
  return function_->locals[found->second].type;
}

void Verifier::define_result(Instruction& instruction, TypeId produced) {
  TypeId result = result_type(instruction);
  if (!result.valid() || !produced.valid() || result == produced) return;
  SourcePosition position = instruction.result_position.known() ? instruction.result_position
                                                                : instruction.diagnostic_position();
  report(position, std::string(opcode_name(instruction.opcode)) + " yields " +
                       types_.spelling(produced) + " but '%" + instruction.result_name +
                       "' has type " + types_.spelling(result));
}

bool Verifier::has_result(Opcode opcode) {
  switch (opcode) {
    case Opcode::StoreField:
    case Opcode::StoreIndex:
    case Opcode::StoreGlobal:
    case Opcode::Go:
    case Opcode::Send:
    case Opcode::Close:
    case Opcode::Branch:
    case Opcode::Jump:
    case Opcode::Return:
      return false;
    default:
      return true;  // Call: optional
  }
}

size_t Verifier::operand_count(const Instruction& instruction) {
  switch (instruction.opcode) {
    case Opcode::Copy:
    case Opcode::NewArray:
    case Opcode::MakeChan:
    case Opcode::LoadField:
    case Opcode::Length:
    case Opcode::StoreGlobal:
    case Opcode::Receive:
    case Opcode::Close:
    case Opcode::Branch:
      return 1;
    case Opcode::Binary:
    case Opcode::StoreField:
    case Opcode::LoadIndex:
    case Opcode::Send:
      return 2;
    case Opcode::StoreIndex:
      return 3;
    case Opcode::New:
    case Opcode::LoadGlobal:
    case Opcode::Jump:
      return 0;
    case Opcode::Call:
    case Opcode::Go:
      return instruction.operands.size();
    case Opcode::Return:
      return instruction.operands.size() <= 1 ? instruction.operands.size() : 1;
  }
  return 0;
}

bool Verifier::check_shape(const Instruction& instruction) {
  std::string name = opcode_name(instruction.opcode);
  SourcePosition position = instruction.diagnostic_position();
  size_t expected = operand_count(instruction);
  if (instruction.operands.size() != expected) {
    report(position, "malformed '" + name + "': expected " + std::to_string(expected) +
                         " operands, found " + std::to_string(instruction.operands.size()));
    return false;
  }
  bool result_expected = has_result(instruction.opcode);
  if (!result_expected && !instruction.result_name.empty()) {
    report(position, "'" + name + "' does not produce a value, found a result '%" +
                         instruction.result_name + "'");
    return false;
  }
  if (result_expected && instruction.opcode != Opcode::Call && instruction.result_name.empty()) {
    report(position, "'" + name + "' produces a value: expected a result local");
    return false;
  }
  size_t targets = instruction.opcode == Opcode::Branch ? 2
                   : instruction.opcode == Opcode::Jump ? 1
                                                        : 0;
  if (instruction.target_labels.size() != targets) {
    report(position, "malformed '" + name + "': expected " + std::to_string(targets) +
                         " target labels, found " +
                         std::to_string(instruction.target_labels.size()));
    return false;
  }
  bool base_is_local = true;
  if (instruction.opcode == Opcode::LoadField || instruction.opcode == Opcode::StoreField ||
      instruction.opcode == Opcode::LoadIndex || instruction.opcode == Opcode::StoreIndex) {
    base_is_local = instruction.operands[0].kind == OperandKind::Local;
  }
  if (!base_is_local) {
    report(position, "'" + name + "': the object or array must be a local");
    return false;
  }
  return true;
}

void Verifier::check_instruction(Instruction& instruction) {
  if (!check_shape(instruction)) return;
  std::vector<Operand>& operands = instruction.operands;
  TypeTable& types = types_;
  switch (instruction.opcode) {
    case Opcode::Copy: {
      TypeId result = result_type(instruction);
      if (result.valid())
        expect_assignable(operands[0], instruction, result, "'%" + instruction.result_name + "' =");
      break;
    }
    case Opcode::Binary:
      check_binary(instruction);
      break;
    case Opcode::New: {
      TypeId allocated = instruction.allocated_type;
      SourcePosition position = instruction.diagnostic_position();
      if (!allocated.valid() || allocated.index >= types.size() ||
          !types.is_allocatable_by_new(allocated)) {
        report(position, "new: expected a struct name or a fixed-size array '[N]T', found " +
                             types.spelling(allocated));
        break;
      }
      if (types.kind(allocated) == TypeKind::Struct) {
        if (check_struct_defined(allocated, position))
          define_result(instruction, types.pointer_to(allocated));
      } else if (check_value_type(allocated, position, "new")) {
        define_result(instruction, allocated);
      }
      break;
    }
    case Opcode::NewArray:
    case Opcode::MakeChan: {
      bool is_array = instruction.opcode == Opcode::NewArray;
      bool element_ok =
          check_value_type(instruction.allocated_type, instruction.diagnostic_position(),
                           is_array ? "newarray element" : "makechan element");
      OperandType size = expect_kind(operands[0], instruction, TypeKind::Int,
                                     is_array ? "an int length" : "an int capacity");
      if (size.valid() && operands[0].kind == OperandKind::Integer &&
          operands[0].integer_value < 0) {
        report(where(operands[0], instruction), std::string(opcode_name(instruction.opcode)) +
                                                    ": expected a non-negative size, found " +
                                                    describe(operands[0], size));
      }
      if (element_ok) {
        define_result(instruction, is_array ? types.array_of(instruction.allocated_type)
                                            : types.channel_of(instruction.allocated_type));
      }
      break;
    }
    case Opcode::LoadField:
    case Opcode::StoreField: {
      const Field* field = resolve_field(instruction);
      if (field == nullptr) break;
      if (instruction.opcode == Opcode::LoadField) {
        define_result(instruction, field->type);
      } else {
        expect_assignable(operands[1], instruction, field->type,
                          "store into '." + field->name + "'");
      }
      break;
    }
    case Opcode::LoadIndex:
    case Opcode::StoreIndex: {
      OperandType array = expect_kind(operands[0], instruction, TypeKind::Array, "an array");
      OperandType index = expect_kind(operands[1], instruction, TypeKind::Int, "an int index");
      if (!array.valid()) break;
      const TypeNode& node = types.node(array.type);
      if (index.valid() && operands[1].kind == OperandKind::Integer &&
          (operands[1].integer_value < 0 ||
           (node.length != kDynamicLength &&
            static_cast<uint64_t>(operands[1].integer_value) >= node.length))) {
        report(where(operands[1], instruction), std::string(opcode_name(instruction.opcode)) +
                                                    ": index " +
                                                    std::to_string(operands[1].integer_value) +
                                                    " is out of range for " + node.spelling);
      }
      if (instruction.opcode == Opcode::LoadIndex) {
        define_result(instruction, node.element);
      } else {
        expect_assignable(operands[2], instruction, node.element, "store into an element");
      }
      break;
    }
    case Opcode::Length:
      if (expect_kind(operands[0], instruction, TypeKind::Array, "an array").valid())
        define_result(instruction, types.int_type());
      break;
    case Opcode::LoadGlobal:
    case Opcode::StoreGlobal: {
      auto found = global_index_.find(instruction.global_name);
      if (found == global_index_.end()) {
        report(instruction.diagnostic_position(),
               "undefined global '@" + instruction.global_name + "'");
        if (instruction.opcode == Opcode::StoreGlobal) operand_type(operands[0], instruction);
        break;
      }
      instruction.global_index = found->second;
      TypeId type = module_.globals[found->second].type;
      if (instruction.opcode == Opcode::LoadGlobal) {
        define_result(instruction, type);
      } else {
        expect_assignable(operands[0], instruction, type,
                          "store into '@" + instruction.global_name + "'");
      }
      break;
    }
    case Opcode::Call:
    case Opcode::Go:
      check_call(instruction);
      break;
    case Opcode::Send: {
      OperandType channel = expect_kind(operands[0], instruction, TypeKind::Channel, "a channel");
      if (channel.valid()) {
        expect_assignable(operands[1], instruction, types.node(channel.type).element, "send");
      } else {
        operand_type(operands[1], instruction);
      }
      break;
    }
    case Opcode::Receive: {
      OperandType channel = expect_kind(operands[0], instruction, TypeKind::Channel, "a channel");
      if (channel.valid()) define_result(instruction, types.node(channel.type).element);
      break;
    }
    case Opcode::Close:
      expect_kind(operands[0], instruction, TypeKind::Channel, "a channel");
      break;
    case Opcode::Branch:
      expect_kind(operands[0], instruction, TypeKind::Bool, "a bool condition");
      resolve_targets(instruction);
      break;
    case Opcode::Jump:
      resolve_targets(instruction);
      break;
    case Opcode::Return: {
      TypeId expected = function_->result_type;
      if (operands.empty() && expected.valid()) {
        report(instruction.diagnostic_position(), "ret: function '" + function_->name +
                                                      "' returns " + types.spelling(expected) +
                                                      ": expected a value");
      } else if (!operands.empty() && !expected.valid()) {
        report(where(operands[0], instruction),
               "ret: function '" + function_->name + "' returns nothing, found a value");
      } else if (!operands.empty()) {
        expect_assignable(operands[0], instruction, expected, "ret");
      }
      break;
    }
  }
}

void Verifier::check_binary(Instruction& instruction) {
  std::vector<Operand>& operands = instruction.operands;
  BinaryOperator binary_operator = instruction.binary_operator;
  std::string name = binary_operator_name(binary_operator);
  OperandType left = operand_type(operands[0], instruction);
  OperandType right = operand_type(operands[1], instruction);
  if (!left.valid() || !right.valid()) return;
  TypeId int_type = types_.int_type();
  TypeId bool_type = types_.bool_type();
  TypeId produced;
  if (binary_operator == BinaryOperator::Eq || binary_operator == BinaryOperator::Ne) {
    bool comparable = (left.is_null && right.is_null) ||
                      (left.is_null && types_.is_reference(right.type)) ||
                      (right.is_null && types_.is_reference(left.type)) ||
                      (!left.is_null && !right.is_null && left.type == right.type);
    if (!comparable) {
      report(where(operands[1], instruction), name + ": cannot compare " +
                                                  describe(operands[0], left) + " with " +
                                                  describe(operands[1], right));
      return;
    }
    produced = bool_type;
  } else {
    bool is_logical =
        binary_operator == BinaryOperator::And || binary_operator == BinaryOperator::Or;
    bool is_comparison =
        binary_operator == BinaryOperator::Lt || binary_operator == BinaryOperator::Le ||
        binary_operator == BinaryOperator::Gt || binary_operator == BinaryOperator::Ge;
    TypeId operand_expected = is_logical ? bool_type : int_type;
    for (size_t side = 0; side < 2; ++side) {
      OperandType type = side == 0 ? left : right;
      if (type.is_null || type.type != operand_expected) {
        report(where(operands[side], instruction), name + ": expected " +
                                                       types_.spelling(operand_expected) +
                                                       ", found " + describe(operands[side], type));
        return;
      }
    }
    produced = is_logical || is_comparison ? bool_type : int_type;
  }
  define_result(instruction, produced);
}

const Field* Verifier::resolve_field(Instruction& instruction) {
  Operand& base = instruction.operands[0];
  OperandType type = operand_type(base, instruction);
  if (instruction.opcode == Opcode::StoreField) operand_type(instruction.operands[1], instruction);
  if (!type.valid()) return nullptr;
  if (type.is_null || types_.kind(type.type) != TypeKind::Pointer) {
    report(where(base, instruction), std::string(opcode_name(instruction.opcode)) +
                                         ": expected a pointer to a struct before '." +
                                         instruction.field_name + "', found " +
                                         describe(base, type));
    return nullptr;
  }
  const std::string& struct_name = types_.node(types_.node(type.type).element).struct_name;
  auto found = struct_index_.find(struct_name);
  if (found == struct_index_.end()) return nullptr;  // reported at the local's declaration
  const StructDefinition& definition = module_.structs[found->second];
  for (uint32_t index = 0; index < definition.fields.size(); ++index) {
    if (definition.fields[index].name == instruction.field_name) {
      instruction.field_index = index;
      return &definition.fields[index];
    }
  }
  report(instruction.diagnostic_position(),
         "type '" + struct_name + "' has no field '" + instruction.field_name + "'");
  return nullptr;
}

void Verifier::check_call(Instruction& instruction) {
  std::string name = opcode_name(instruction.opcode);
  for (Operand& capture : instruction.captures) {
    if (capture.kind != OperandKind::Local) {
      OperandType type = operand_type(capture, instruction);
      report(where(capture, instruction),
             name + ": expected a local in captures(...), found " + describe(capture, type));
      return;
    }
  }
  if (instruction.callee_unknown) {
    for (Operand& operand : instruction.operands) operand_type(operand, instruction);
    for (Operand& capture : instruction.captures) operand_type(capture, instruction);
    if (!instruction.result_name.empty()) result_type(instruction);
    return;
  }
  auto found = function_index_.find(instruction.callee_name);
  if (found == function_index_.end()) {
    report(instruction.diagnostic_position(),
           "undefined function '" + instruction.callee_name + "'");
    return;
  }
  instruction.callee_index = found->second;
  const Function& callee = module_.functions[found->second];
  const std::string callee_text = name + " " + callee.name;
  if (instruction.operands.size() != callee.parameter_count) {
    report(instruction.diagnostic_position(),
           callee_text + ": expected " + std::to_string(callee.parameter_count) +
               " arguments, found " + std::to_string(instruction.operands.size()));
    return;
  }
  if (instruction.captures.size() != callee.capture_count) {
    report(instruction.diagnostic_position(),
           callee_text + ": expected " + std::to_string(callee.capture_count) +
               " captured variables, found " + std::to_string(instruction.captures.size()));
    return;
  }
  if (static_cast<size_t>(callee.parameter_count) + callee.capture_count > callee.locals.size())
    return;  // reported with the callee
  for (size_t index = 0; index < instruction.operands.size(); ++index) {
    const Local& parameter = callee.locals[index];
    expect_assignable(instruction.operands[index], instruction, parameter.type,
                      callee_text + ", argument '%" + parameter.name + "'");
  }
  for (size_t index = 0; index < instruction.captures.size(); ++index) {
    const Local& capture = callee.locals[callee.parameter_count + index];
    expect_assignable(instruction.captures[index], instruction, capture.type,
                      callee_text + ", capture '%" + capture.name + "'");
  }
  if (!instruction.result_name.empty()) {
    if (!callee.result_type.valid()) {
      report(instruction.result_position.known() ? instruction.result_position
                                                 : instruction.diagnostic_position(),
             callee_text + ": function '" + callee.name + "' returns nothing, found a result '%" +
                 instruction.result_name + "'");
      return;
    }
    define_result(instruction, callee.result_type);
  }
}

void Verifier::resolve_targets(Instruction& instruction) {
  instruction.target_blocks.assign(instruction.target_labels.size(), kUnresolved);
  for (size_t index = 0; index < instruction.target_labels.size(); ++index) {
    auto found = block_index_.find(instruction.target_labels[index]);
    if (found == block_index_.end()) {
      report(instruction.diagnostic_position(), "undefined label '" +
                                                    instruction.target_labels[index] +
                                                    "' in function '" + function_->name + "'");
      continue;
    }
    instruction.target_blocks[index] = found->second;
  }
}

}  // namespace usgc::jitgen::ir
