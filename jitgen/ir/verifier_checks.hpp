// jitgen/ir/verifier_checks.hpp — the Verifier behind verify() (verifier.hpp lists the checks
// and the order of the diagnostics). Internal to verifier.cpp (types, declarations, functions)
// and verifier_instructions.cpp (the checks of each instruction).
// Invariants: names are resolved to indices in the order the diagnostics are reported (module
// order); a check that reports returns an invalid type or false, so nothing downstream reports a
// consequence of the same error twice; at most the diagnostic limit is kept (DiagnosticList).
#pragma once

#include <string>
#include <unordered_map>

#include "jitgen/ir/verifier.hpp"

namespace usgc::jitgen::ir {

inline std::string position_text(SourcePosition position) {
  return std::to_string(position.line) + ":" + std::to_string(position.column);
}

// "(first defined at 3:5)" when the first definition has a position.
inline std::string first_defined(SourcePosition position) {
  return position.known() ? " (first defined at " + position_text(position) + ")" : "";
}

// The type of an operand; `is_null` for the `null` literal, which fits every reference type.
struct OperandType {
  TypeId type;
  bool is_null = false;
  bool valid() const { return is_null || type.valid(); }
};

class Verifier {
 public:
  Verifier(Module& module, size_t diagnostic_limit)
      : module_(module), types_(module.types), diagnostics_(module.file_name, diagnostic_limit) {}

  std::vector<Diagnostic> run();

 private:
  void report(SourcePosition position, std::string message) {
    diagnostics_.report(position, std::move(message));
  }

  // ---- types -----------------------------------------------------------------------------
  // A type a local, field, global, element or result may have. `what` names the declaration.
  bool check_value_type(TypeId type, SourcePosition position, const std::string& what);
  bool check_struct_defined(TypeId struct_type, SourcePosition position);
  std::string describe(const Operand& operand, OperandType type) const;
  bool assignable(TypeId target, OperandType value) const {
    if (value.is_null) return types_.is_reference(target);
    return target == value.type;
  }

  // ---- declarations ----------------------------------------------------------------------
  void check_structs();
  void check_globals();
  void check_function_names();

  // ---- functions -------------------------------------------------------------------------
  void check_function(Function& function);
  void check_block(Block& block);
  // ---- instructions ----------------------------------------------------------------------
  SourcePosition where(const Operand& operand, const Instruction& instruction) const {
    return operand.position.known() ? operand.position : instruction.diagnostic_position();
  }

  OperandType operand_type(Operand& operand, const Instruction& instruction);

  // The operand's type, or invalid after reporting that it is not of kind `kind`.
  OperandType expect_kind(Operand& operand, const Instruction& instruction, TypeKind kind,
                          const std::string& expected);
  void expect_assignable(Operand& operand, const Instruction& instruction, TypeId target,
                         const std::string& context);

  // The result local's type (resolving it), or invalid after a report.
  TypeId result_type(Instruction& instruction);

  // Checks that the result local can hold a value of type `produced`.
  void define_result(Instruction& instruction, TypeId produced);
  static bool has_result(Opcode opcode);
  static size_t operand_count(const Instruction& instruction);

  // Shape checks a parsed instruction always passes; builder IR may not.
  bool check_shape(const Instruction& instruction);
  void check_instruction(Instruction& instruction);
  void check_binary(Instruction& instruction);
  const Field* resolve_field(Instruction& instruction);
  void check_call(Instruction& instruction);
  void resolve_targets(Instruction& instruction);
  Module& module_;
  TypeTable& types_;
  DiagnosticList diagnostics_;
  std::unordered_map<std::string, uint32_t> struct_index_;
  std::unordered_map<std::string, uint32_t> global_index_;
  std::unordered_map<std::string, uint32_t> function_index_;
  // Of the function being checked:
  Function* function_ = nullptr;
  std::unordered_map<std::string, uint32_t> local_index_;
  std::unordered_map<std::string, uint32_t> block_index_;
};

}  // namespace usgc::jitgen::ir
