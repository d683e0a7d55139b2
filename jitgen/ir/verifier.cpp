// jitgen/ir/verifier.cpp — name resolution and checks of the UltraScript IR: verify(), the types,
// the declarations and the functions (verifier.hpp lists the checks; the instructions' are in
// verifier_instructions.cpp).
#include "jitgen/ir/verifier_checks.hpp"

namespace usgc::jitgen::ir {

std::vector<Diagnostic> Verifier::run() {
  check_structs();
  check_globals();
  check_function_names();
  for (Function& function : module_.functions) {
    if (diagnostics_.full()) break;
    check_function(function);
  }
  return diagnostics_.take();
}

bool Verifier::check_value_type(TypeId type, SourcePosition position, const std::string& what) {
  if (!type.valid() || type.index >= types_.size()) {
    report(position, what + " has no type");
    return false;
  }
  const TypeNode& node = types_.node(type);
  switch (node.kind) {
    case TypeKind::Int:
    case TypeKind::Bool:
      return true;
    case TypeKind::Struct:
      report(position, what + ": struct type '" + node.struct_name +
                           "' cannot be a value type (objects are used through '*" +
                           node.struct_name + "')");
      return false;
    case TypeKind::Pointer:
      return check_struct_defined(node.element, position);
    case TypeKind::Array:
    case TypeKind::Channel:
      return check_value_type(node.element, position, what);
  }
  return false;
}

bool Verifier::check_struct_defined(TypeId struct_type, SourcePosition position) {
  const std::string& name = types_.node(struct_type).struct_name;
  if (struct_index_.count(name) != 0) return true;
  report(position, "undefined type '" + name + "'");
  return false;
}

std::string Verifier::describe(const Operand& operand, OperandType type) const {
  switch (operand.kind) {
    case OperandKind::Local:
      return "'%" + operand.local_name + "' of type " + types_.spelling(type.type);
    case OperandKind::Integer:
      return "integer " + std::to_string(operand.integer_value);
    case OperandKind::Boolean:
      return operand.integer_value != 0 ? "true" : "false";
    case OperandKind::Null:
      return "null";
  }
  return "operand";
}

void Verifier::check_structs() {
  for (uint32_t index = 0; index < module_.structs.size(); ++index) {
    const StructDefinition& definition = module_.structs[index];
    if (definition.name == "int" || definition.name == "bool" || definition.name == "chan") {
      report(definition.position, "'" + definition.name + "' is a built-in type name");
      continue;
    }
    auto [existing, inserted] = struct_index_.emplace(definition.name, index);
    if (!inserted) {
      report(definition.position, "duplicate type '" + definition.name + "'" +
                                      first_defined(module_.structs[existing->second].position));
    }
  }
  for (const StructDefinition& definition : module_.structs) {
    std::unordered_map<std::string, SourcePosition> field_positions;
    for (const Field& field : definition.fields) {
      auto [existing, inserted] = field_positions.emplace(field.name, field.position);
      if (!inserted) {
        report(field.position, "duplicate field '" + field.name + "' in type '" + definition.name +
                                   "'" + first_defined(existing->second));
      }
      check_value_type(field.type, field.position,
                       "field '" + definition.name + "." + field.name + "'");
    }
  }
}

void Verifier::check_globals() {
  for (uint32_t index = 0; index < module_.globals.size(); ++index) {
    const Global& global = module_.globals[index];
    auto [existing, inserted] = global_index_.emplace(global.name, index);
    if (!inserted) {
      report(global.position, "duplicate global '@" + global.name + "'" +
                                  first_defined(module_.globals[existing->second].position));
    }
    check_value_type(global.type, global.position, "global '@" + global.name + "'");
  }
}

void Verifier::check_function_names() {
  for (uint32_t index = 0; index < module_.functions.size(); ++index) {
    const Function& function = module_.functions[index];
    if (function.name == "unknown") {
      report(function.position, "'unknown' is reserved for calls to unknown functions");
      continue;
    }
    auto [existing, inserted] = function_index_.emplace(function.name, index);
    if (!inserted) {
      report(function.position, "duplicate function '" + function.name + "'" +
                                    first_defined(module_.functions[existing->second].position));
    }
  }
}

void Verifier::check_function(Function& function) {
  function_ = &function;
  local_index_.clear();
  block_index_.clear();
  if (function.result_type.valid()) {
    check_value_type(function.result_type, function.position,
                     "result of function '" + function.name + "'");
  }
  if (static_cast<size_t>(function.parameter_count) + function.capture_count >
      function.locals.size()) {
    report(function.position,
           "function '" + function.name + "': parameter and capture counts exceed its locals");
    return;
  }
  for (uint32_t index = 0; index < function.locals.size(); ++index) {
    const Local& local = function.locals[index];
    LocalKind expected_kind = index < function.parameter_count ? LocalKind::Parameter
                              : index < function.parameter_count + function.capture_count
                                  ? LocalKind::Capture
                                  : LocalKind::Variable;
    if (local.kind != expected_kind) {
      report(local.position,
             "local '%" + local.name + "': locals must be ordered parameters, captures, variables");
    }
    auto [existing, inserted] = local_index_.emplace(local.name, index);
    if (!inserted) {
      report(local.position, "duplicate local '%" + local.name + "' in function '" + function.name +
                                 "'" + first_defined(function.locals[existing->second].position));
    }
    check_value_type(local.type, local.position, "local '%" + local.name + "'");
  }
  if (function.blocks.empty()) {
    report(function.position, "function '" + function.name + "' has no blocks");
    return;
  }
  for (uint32_t index = 0; index < function.blocks.size(); ++index) {
    const Block& block = function.blocks[index];
    auto [existing, inserted] = block_index_.emplace(block.label, index);
    if (!inserted) {
      report(block.position, "duplicate label '" + block.label + "' in function '" + function.name +
                                 "'" + first_defined(function.blocks[existing->second].position));
    }
  }
  for (Block& block : function.blocks) {
    if (diagnostics_.full()) return;
    check_block(block);
  }
}

void Verifier::check_block(Block& block) {
  if (block.instructions.empty()) {
    report(block.position,
           "block '" + block.label + "' is empty: it must end with a terminator (br, jmp or ret)");
    return;
  }
  for (size_t index = 0; index < block.instructions.size(); ++index) {
    Instruction& instruction = block.instructions[index];
    check_instruction(instruction);
    bool last = index + 1 == block.instructions.size();
    if (is_terminator(instruction.opcode) && !last) {
      report(block.instructions[index + 1].diagnostic_position(),
             "instruction after the terminator '" + std::string(opcode_name(instruction.opcode)) +
                 "' of block '" + block.label + "' (start a new block with a label)");
      return;
    }
    if (last && !is_terminator(instruction.opcode)) {
      report(instruction.diagnostic_position(),
             "block '" + block.label +
                 "' does not end with a terminator: expected br, jmp or ret after this '" +
                 (instruction.opcode == Opcode::Binary
                      ? binary_operator_name(instruction.binary_operator)
                      : opcode_name(instruction.opcode)) +
                 "'");
    }
  }
}

std::vector<Diagnostic> verify(Module& module, size_t diagnostic_limit) {
  return Verifier(module, diagnostic_limit).run();
}

}  // namespace usgc::jitgen::ir
