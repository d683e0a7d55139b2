// jitgen/ir/builder.cpp — the programmatic IR builder (invariants in builder.hpp).
#include "jitgen/ir/builder.hpp"

#include "jitgen/ir/verifier.hpp"

namespace usgc::jitgen::ir {

void ModuleBuilder::add_struct(std::string name, std::vector<std::pair<std::string, TypeId>> fields,
                               SourcePosition position) {
  StructDefinition definition;
  definition.name = std::move(name);
  definition.position = position;
  for (auto& [field_name, type] : fields)
    definition.fields.push_back({std::move(field_name), type, {}});
  module_.structs.push_back(std::move(definition));
}

void ModuleBuilder::add_global(std::string name, TypeId type, SourcePosition position) {
  module_.globals.push_back({std::move(name), type, position});
}

FunctionBuilder ModuleBuilder::add_function(std::string name, TypeId result_type,
                                            SourcePosition position) {
  Function function;
  function.name = std::move(name);
  function.result_type = result_type;
  function.position = position;
  module_.functions.push_back(std::move(function));
  return FunctionBuilder(this, module_.functions.size() - 1);
}

BuildResult ModuleBuilder::finish(size_t diagnostic_limit) {
  BuildResult result;
  result.diagnostics = verify(module_, diagnostic_limit);
  result.module = std::move(module_);
  return result;
}

Function& FunctionBuilder::function() {
  return owner_->module_.functions[function_index_];
}

FunctionBuilder& FunctionBuilder::parameter(std::string name, TypeId type,
                                            SourcePosition position) {
  Function& target = function();
  target.locals.insert(target.locals.begin() + target.parameter_count,
                       {std::move(name), type, LocalKind::Parameter, position});
  ++target.parameter_count;
  return *this;
}

FunctionBuilder& FunctionBuilder::capture(std::string name, TypeId type, SourcePosition position) {
  Function& target = function();
  target.locals.insert(target.locals.begin() + target.parameter_count + target.capture_count,
                       {std::move(name), type, LocalKind::Capture, position});
  ++target.capture_count;
  return *this;
}

FunctionBuilder& FunctionBuilder::local(std::string name, TypeId type, SourcePosition position) {
  function().locals.push_back({std::move(name), type, LocalKind::Variable, position});
  return *this;
}

FunctionBuilder& FunctionBuilder::block(std::string label, SourcePosition position) {
  function().blocks.push_back({std::move(label), {}, position});
  return *this;
}

Instruction& FunctionBuilder::append(Instruction instruction) {
  Function& target = function();
  if (target.blocks.empty()) target.blocks.push_back({"entry", {}, {}});
  target.blocks.back().instructions.push_back(std::move(instruction));
  return target.blocks.back().instructions.back();
}

Instruction& FunctionBuilder::emit(Opcode opcode, std::string result, std::vector<Operand> operands,
                                   OptionalPosition position) {
  Instruction instruction;
  instruction.opcode = opcode;
  instruction.result_name = std::move(result);
  instruction.operands = std::move(operands);
  instruction.source_position = position;
  return append(std::move(instruction));
}

void FunctionBuilder::copy(std::string result, Operand value, OptionalPosition position) {
  emit(Opcode::Copy, std::move(result), {std::move(value)}, position);
}

void FunctionBuilder::binary(std::string result, BinaryOperator binary_operator, Operand left,
                             Operand right, OptionalPosition position) {
  emit(Opcode::Binary, std::move(result), {std::move(left), std::move(right)}, position)
      .binary_operator = binary_operator;
}

void FunctionBuilder::new_object(std::string result, TypeId allocated, OptionalPosition position) {
  emit(Opcode::New, std::move(result), {}, position).allocated_type = allocated;
}

void FunctionBuilder::new_array(std::string result, TypeId element, Operand length,
                                OptionalPosition position) {
  emit(Opcode::NewArray, std::move(result), {std::move(length)}, position).allocated_type = element;
}

void FunctionBuilder::make_channel(std::string result, TypeId element, Operand capacity,
                                   OptionalPosition position) {
  emit(Opcode::MakeChan, std::move(result), {std::move(capacity)}, position).allocated_type =
      element;
}

void FunctionBuilder::load_field(std::string result, std::string object, std::string field,
                                 OptionalPosition position) {
  emit(Opcode::LoadField, std::move(result), {Operand::local(std::move(object))}, position)
      .field_name = std::move(field);
}

void FunctionBuilder::store_field(std::string object, std::string field, Operand value,
                                  OptionalPosition position) {
  emit(Opcode::StoreField, "", {Operand::local(std::move(object)), std::move(value)}, position)
      .field_name = std::move(field);
}

void FunctionBuilder::load_index(std::string result, std::string array, Operand index,
                                 OptionalPosition position) {
  emit(Opcode::LoadIndex, std::move(result), {Operand::local(std::move(array)), std::move(index)},
       position);
}

void FunctionBuilder::store_index(std::string array, Operand index, Operand value,
                                  OptionalPosition position) {
  emit(Opcode::StoreIndex, "",
       {Operand::local(std::move(array)), std::move(index), std::move(value)}, position);
}

void FunctionBuilder::length(std::string result, std::string array, OptionalPosition position) {
  emit(Opcode::Length, std::move(result), {Operand::local(std::move(array))}, position);
}

void FunctionBuilder::load_global(std::string result, std::string global,
                                  OptionalPosition position) {
  emit(Opcode::LoadGlobal, std::move(result), {}, position).global_name = std::move(global);
}

void FunctionBuilder::store_global(std::string global, Operand value, OptionalPosition position) {
  emit(Opcode::StoreGlobal, "", {std::move(value)}, position).global_name = std::move(global);
}

void FunctionBuilder::call(std::string result, std::string callee, std::vector<Operand> arguments,
                           std::vector<Operand> captures, OptionalPosition position) {
  Instruction& instruction = emit(Opcode::Call, std::move(result), std::move(arguments), position);
  instruction.callee_name = std::move(callee);
  instruction.captures = std::move(captures);
}

void FunctionBuilder::call_unknown(std::string result, std::vector<Operand> arguments,
                                   OptionalPosition position) {
  Instruction& instruction = emit(Opcode::Call, std::move(result), std::move(arguments), position);
  instruction.callee_unknown = true;
  instruction.callee_name = "unknown";
}

void FunctionBuilder::go(std::string callee, std::vector<Operand> arguments,
                         std::vector<Operand> captures, OptionalPosition position) {
  Instruction& instruction = emit(Opcode::Go, "", std::move(arguments), position);
  instruction.callee_name = std::move(callee);
  instruction.captures = std::move(captures);
}

void FunctionBuilder::go_unknown(std::vector<Operand> arguments, OptionalPosition position) {
  Instruction& instruction = emit(Opcode::Go, "", std::move(arguments), position);
  instruction.callee_unknown = true;
  instruction.callee_name = "unknown";
}

void FunctionBuilder::send(Operand channel, Operand value, OptionalPosition position) {
  emit(Opcode::Send, "", {std::move(channel), std::move(value)}, position);
}

void FunctionBuilder::receive(std::string result, Operand channel, OptionalPosition position) {
  emit(Opcode::Receive, std::move(result), {std::move(channel)}, position);
}

void FunctionBuilder::close(Operand channel, OptionalPosition position) {
  emit(Opcode::Close, "", {std::move(channel)}, position);
}

void FunctionBuilder::branch(Operand condition, std::string if_true, std::string if_false,
                             OptionalPosition position) {
  emit(Opcode::Branch, "", {std::move(condition)}, position).target_labels = {std::move(if_true),
                                                                              std::move(if_false)};
}

void FunctionBuilder::jump(std::string target, OptionalPosition position) {
  emit(Opcode::Jump, "", {}, position).target_labels = {std::move(target)};
}

void FunctionBuilder::ret(OptionalPosition position) {
  emit(Opcode::Return, "", {}, position);
}

void FunctionBuilder::ret(Operand value, OptionalPosition position) {
  emit(Opcode::Return, "", {std::move(value)}, position);
}

}  // namespace usgc::jitgen::ir
