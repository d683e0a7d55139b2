// jitgen/ir/builder.hpp — the C++ API a JIT front end uses to build UltraScript IR without text:
// the same Module the parser makes, checked by the same verify() (so the same diagnostics), and
// printable as .usir for debugging (print_module).
//
//   ModuleBuilder builder("prog.us");
//   builder.add_struct("Point", {{"x", builder.int_type()}, {"y", builder.int_type()}});
//   FunctionBuilder main = builder.add_function("main");
//   main.local("p", builder.pointer_to("Point"));
//   main.block("entry");
//   main.new_object("p", builder.struct_type("Point"), SourcePosition{3, 5});
//   main.ret();
//   BuildResult result = builder.finish();  // result.ok() or result.diagnostics
//
// Invariants:
//   * locals stay ordered parameters, captures, variables whatever order the front end declares
//     them in (parameter() and capture() insert at the end of their group).
//   * a FunctionBuilder names its function by index, so it stays valid while more functions are
//     added; it must not outlive its ModuleBuilder, and neither is used after finish().
//   * instructions go to the last block started; one before any block() starts an implicit
//     block "entry".
//   * the optional position of every instruction is its `@line:col` source position (builder IR
//     has no text position); the escape analysis reports sites there.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "jitgen/ir/diagnostics.hpp"
#include "jitgen/ir/module.hpp"

namespace usgc::jitgen::ir {

struct BuildResult {
  Module module;
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return diagnostics.empty(); }
};

using OptionalPosition = std::optional<SourcePosition>;

class ModuleBuilder;

class FunctionBuilder {
 public:
  FunctionBuilder& parameter(std::string name, TypeId type, SourcePosition position = {});
  FunctionBuilder& capture(std::string name, TypeId type, SourcePosition position = {});
  FunctionBuilder& local(std::string name, TypeId type, SourcePosition position = {});
  FunctionBuilder& block(std::string label, SourcePosition position = {});

  void copy(std::string result, Operand value, OptionalPosition position = std::nullopt);
  void binary(std::string result, BinaryOperator binary_operator, Operand left, Operand right,
              OptionalPosition position = std::nullopt);
  // `allocated` is the struct type (builder.struct_type("Point")) or a fixed-size array type.
  void new_object(std::string result, TypeId allocated, OptionalPosition position = std::nullopt);
  void new_array(std::string result, TypeId element, Operand length,
                 OptionalPosition position = std::nullopt);
  void make_channel(std::string result, TypeId element, Operand capacity,
                    OptionalPosition position = std::nullopt);
  void load_field(std::string result, std::string object, std::string field,
                  OptionalPosition position = std::nullopt);
  void store_field(std::string object, std::string field, Operand value,
                   OptionalPosition position = std::nullopt);
  void load_index(std::string result, std::string array, Operand index,
                  OptionalPosition position = std::nullopt);
  void store_index(std::string array, Operand index, Operand value,
                   OptionalPosition position = std::nullopt);
  void length(std::string result, std::string array, OptionalPosition position = std::nullopt);
  void load_global(std::string result, std::string global,
                   OptionalPosition position = std::nullopt);
  void store_global(std::string global, Operand value, OptionalPosition position = std::nullopt);
  // `result` may be empty (the value is dropped, or the callee returns nothing).
  void call(std::string result, std::string callee, std::vector<Operand> arguments,
            std::vector<Operand> captures = {}, OptionalPosition position = std::nullopt);
  void call_unknown(std::string result, std::vector<Operand> arguments,
                    OptionalPosition position = std::nullopt);
  void go(std::string callee, std::vector<Operand> arguments, std::vector<Operand> captures = {},
          OptionalPosition position = std::nullopt);
  void go_unknown(std::vector<Operand> arguments, OptionalPosition position = std::nullopt);
  void send(Operand channel, Operand value, OptionalPosition position = std::nullopt);
  void receive(std::string result, Operand channel, OptionalPosition position = std::nullopt);
  void close(Operand channel, OptionalPosition position = std::nullopt);
  void branch(Operand condition, std::string if_true, std::string if_false,
              OptionalPosition position = std::nullopt);
  void jump(std::string target, OptionalPosition position = std::nullopt);
  void ret(OptionalPosition position = std::nullopt);
  void ret(Operand value, OptionalPosition position = std::nullopt);

  // Appends any instruction as it is (for front ends that fill Instruction themselves).
  Instruction& append(Instruction instruction);

 private:
  friend class ModuleBuilder;
  FunctionBuilder(ModuleBuilder* owner, size_t function_index)
      : owner_(owner), function_index_(function_index) {}
  Function& function();
  Instruction& emit(Opcode opcode, std::string result, std::vector<Operand> operands,
                    OptionalPosition position);

  ModuleBuilder* owner_;
  size_t function_index_;
};

class ModuleBuilder {
 public:
  explicit ModuleBuilder(std::string file_name) { module_.file_name = std::move(file_name); }

  TypeId int_type() const { return module_.types.int_type(); }
  TypeId bool_type() const { return module_.types.bool_type(); }
  TypeId struct_type(std::string_view name) { return module_.types.struct_type(name); }
  TypeId pointer_to(std::string_view struct_name) {
    return module_.types.pointer_to_struct(struct_name);
  }
  TypeId array_of(TypeId element, uint64_t length = kDynamicLength) {
    return module_.types.array_of(element, length);
  }
  TypeId channel_of(TypeId element) { return module_.types.channel_of(element); }

  void add_struct(std::string name, std::vector<std::pair<std::string, TypeId>> fields,
                  SourcePosition position = {});
  void add_global(std::string name, TypeId type, SourcePosition position = {});
  FunctionBuilder add_function(std::string name, TypeId result_type = kInvalidType,
                               SourcePosition position = {});

  Module& module() { return module_; }
  // Verifies the module (verify()) and hands it over with the diagnostics.
  BuildResult finish(size_t diagnostic_limit = kDefaultDiagnosticLimit);

 private:
  friend class FunctionBuilder;
  Module module_;
};

}  // namespace usgc::jitgen::ir
