// jitgen/ir/module.hpp — the UltraScript IR: a module of struct types, globals and functions;
// functions of named, typed locals and labelled basic blocks of instructions. The text format
// (`.usir`, docs/usir.md) is a one-to-one spelling of these structures.
//
// The IR is not SSA: a local (`%p`) is a named, typed variable that instructions read and write
// any number of times, as in Go's or LLVM's pre-mem2reg code. That is what the escape analysis
// wants (a connection-graph node per local) and what a JIT front end emits most easily.
//
// Every allocation site is an instruction (`new`, `newarray`, `makechan`) with its type and a
// position; every publication point the ownership classes care about (docs/design.md, "Ownership
// classes") is an instruction too: `go` (arguments and captures), `send`, `store @global`,
// `store %p.f` / `store %a[i]` into another object, `call unknown(...)`.
//
// Names and indices: instructions name locals, fields, globals, callees and labels by their
// text names, exactly as written or as given to the builder. verify() (verifier.hpp) resolves
// each name to an index (the `*_index` fields below).
//   * the resolution invariant: after verify() returned no diagnostic, every index of every
//     instruction is valid and every type is checked; the escape analysis and the interpreter
//     read indices only, and only from verified modules.
//
// Positions: every instruction has up to two.
//   * `text_position`: where the instruction starts in the .usir text (set by the parser; unknown
//     for builder IR). Diagnostics about the text point there.
//   * `source_position`: the optional `@line:col` annotation — the position in the UltraScript
//     source the front end compiled it from. Printed back, so it survives a round trip.
//   site_position() is the position the analysis reports: the annotation if any, else the text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jitgen/ir/diagnostics.hpp"
#include "jitgen/ir/types.hpp"

namespace usgc::jitgen::ir {

inline constexpr uint32_t kUnresolved = UINT32_MAX;

enum class OperandKind : uint8_t { Local, Integer, Boolean, Null };

struct Operand {
  OperandKind kind = OperandKind::Null;
  std::string local_name;              // Local: without the `%`
  int64_t integer_value = 0;           // Integer; Boolean: 0 or 1
  uint32_t local_index = kUnresolved;  // Local, after verify()
  SourcePosition position;             // where written (unknown for builder IR)

  static Operand local(std::string name, SourcePosition position = {});
  static Operand integer(int64_t value, SourcePosition position = {});
  static Operand boolean(bool value, SourcePosition position = {});
  static Operand null(SourcePosition position = {});
};

enum class BinaryOperator : uint8_t { Add, Sub, Mul, Div, Rem, Lt, Le, Gt, Ge, Eq, Ne, And, Or };

// Operand layout per opcode (`r` = the result local, absent where the column says "-").
enum class Opcode : uint8_t {
  Copy,         // r = operands[0]                                   `%r = %x` / `%r = 5`
  Binary,       // r = operands[0] <binary_operator> operands[1]    `%r = add %a, %b`
  New,          // r = new allocated_type (struct S -> *S; [N]T)     `%r = new Point`
  NewArray,     // r = new []allocated_type of length operands[0]   `%r = newarray *Point, %n`
  MakeChan,     // r = chan allocated_type, capacity operands[0]     `%r = makechan *Point, 4`
  LoadField,    // r = operands[0].field_name                        `%r = load %p.next`
  StoreField,   // - : operands[0].field_name = operands[1]          `store %p.next, %q`
  LoadIndex,    // r = operands[0][operands[1]]                      `%r = load %a[%i]`
  StoreIndex,   // - : operands[0][operands[1]] = operands[2]        `store %a[%i], %p`
  Length,       // r = length of array operands[0]                   `%r = len %a`
  LoadGlobal,   // r = global_name                                   `%r = load @head`
  StoreGlobal,  // - : global_name = operands[0]                     `store @head, %p`
  Call,         // r? = callee_name(operands...) captures(captures...)  `%r = call f(%a)`
  Go,           // - : spawn callee_name(operands...) captures(...)  `go worker(%a) captures(%s)`
  Send,         // - : send operands[1] on channel operands[0]       `send %ch, %p`
  Receive,      // r = receive from channel operands[0]              `%r = recv %ch`
  Close,        // - : close channel operands[0]                     `close %ch`
  Branch,       // - : if operands[0] goto targets[0] else targets[1]  `br %c, body, done`
  Jump,         // - : goto targets[0]                               `jmp loop`
  Return,       // - : return operands[0] if present                 `ret %p` / `ret`
};

bool is_terminator(Opcode opcode);
bool is_allocation_site(Opcode opcode);  // New, NewArray, MakeChan
const char* opcode_name(Opcode opcode);  // the mnemonic: "new", "load", "store", ...
const char* binary_operator_name(BinaryOperator binary_operator);

struct Instruction {
  Opcode opcode = Opcode::Return;
  BinaryOperator binary_operator = BinaryOperator::Add;  // Binary only

  // The result local, without `%`; empty when there is none.
  std::string result_name;
  uint32_t result_index = kUnresolved;
  SourcePosition result_position;

  std::vector<Operand> operands;  // layout: see Opcode

  TypeId allocated_type;  // New: the struct or [N]T; NewArray, MakeChan: the element type

  std::string field_name;  // LoadField, StoreField
  uint32_t field_index = kUnresolved;
  std::string global_name;  // LoadGlobal, StoreGlobal
  uint32_t global_index = kUnresolved;

  // Call, Go: the callee; `callee_unknown` for `call unknown(...)` (a callee the analysis
  // cannot see: every argument escapes to it).
  bool callee_unknown = false;
  std::string callee_name;
  uint32_t callee_index = kUnresolved;
  std::vector<Operand> captures;  // Call, Go: the closure's captured variables

  std::vector<std::string> target_labels;  // Branch (2), Jump (1)
  std::vector<uint32_t> target_blocks;     // resolved

  SourcePosition text_position;
  std::optional<SourcePosition> source_position;

  SourcePosition site_position() const {
    return source_position ? *source_position : text_position;
  }
  // Where a diagnostic about this instruction points: the text if parsed, else the annotation.
  SourcePosition diagnostic_position() const {
    return text_position.known() ? text_position : source_position.value_or(SourcePosition{});
  }
};

enum class LocalKind : uint8_t { Parameter, Capture, Variable };

struct Local {
  std::string name;  // without `%`
  TypeId type;
  LocalKind kind = LocalKind::Variable;
  SourcePosition position;
};

struct Block {
  std::string label;
  std::vector<Instruction> instructions;
  SourcePosition position;
};

// Locals are ordered: parameters, then captures, then variables (`var`), each in declaration
// order (the builder and the parser keep this; the verifier checks it).
struct Function {
  std::string name;
  std::vector<Local> locals;
  uint32_t parameter_count = 0;
  uint32_t capture_count = 0;
  TypeId result_type;         // kInvalidType: returns nothing
  std::vector<Block> blocks;  // blocks[0] is the entry
  SourcePosition position;
};

struct Field {
  std::string name;
  TypeId type;
  SourcePosition position;
};

struct StructDefinition {
  std::string name;
  std::vector<Field> fields;
  SourcePosition position;
};

struct Global {
  std::string name;
  TypeId type;
  SourcePosition position;
};

struct Module {
  std::string file_name;  // used in diagnostics and reported site positions
  TypeTable types;
  std::vector<StructDefinition> structs;
  std::vector<Global> globals;
  std::vector<Function> functions;

  // Linear searches by name (modules are small; the analysis works on indices).
  const StructDefinition* find_struct(std::string_view name) const;
  const Function* find_function(std::string_view name) const;
};

}  // namespace usgc::jitgen::ir
