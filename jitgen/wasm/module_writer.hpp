// jitgen/wasm/module_writer.hpp — a small writer of binary WebAssembly modules (MVP format):
// types, imports (functions, memory, globals), functions, memory, globals, exports, data and
// custom sections, with LEB128 encoding. `Code` builds one function body instruction by
// instruction. The lowering (lowering.hpp) is its user; tests validate its output with wabt's
// wasm-validate and node.
//
// Invariants: function indices count imports first (the format's rule): every import is added
// before the first function (add_function refuses otherwise, returning UINT32_MAX). Type
// signatures are interned. Compile time only; nothing here runs on a hot path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace usgc::jitgen::wasm {

enum class ValueType : uint8_t { kI32 = 0x7F, kI64 = 0x7E };

void append_unsigned_leb(std::vector<uint8_t>& out, uint64_t value);
void append_signed_leb(std::vector<uint8_t>& out, int64_t value);

// One function body's instructions (the opcodes the lowering uses).
class Code {
 public:
  std::vector<uint8_t> bytes;
  uint32_t instructions = 0;  // emitted so far (each opcode once, immediates not counted)

  void op(uint8_t opcode) {
    bytes.push_back(opcode);
    ++instructions;
  }
  void i32_const(int32_t value);
  void i64_const(int64_t value);
  void local_get(uint32_t index) { op_index(0x20, index); }
  void local_set(uint32_t index) { op_index(0x21, index); }
  void local_tee(uint32_t index) { op_index(0x22, index); }
  void global_get(uint32_t index) { op_index(0x23, index); }
  void global_set(uint32_t index) { op_index(0x24, index); }
  void call(uint32_t function) { op_index(0x10, function); }
  void br(uint32_t depth) { op_index(0x0C, depth); }
  void br_if(uint32_t depth) { op_index(0x0D, depth); }
  void br_table(const std::vector<uint32_t>& targets, uint32_t otherwise);
  // Structured control: a block type of nothing (0x40) or one value.
  void block() { op_type(0x02, 0x40); }
  void loop() { op_type(0x03, 0x40); }
  void if_() { op_type(0x04, 0x40); }
  void if_result(ValueType type) { op_type(0x04, static_cast<uint8_t>(type)); }
  void else_() { op(0x05); }
  void end() { op(0x0B); }
  void unreachable() { op(0x00); }
  void return_() { op(0x0F); }
  void drop() { op(0x1A); }
  // Memory access with a constant offset (alignment hints: natural).
  void i32_load(uint32_t offset) { memory(0x28, 2, offset); }
  void i64_load(uint32_t offset) { memory(0x29, 3, offset); }
  void i32_store(uint32_t offset) { memory(0x36, 2, offset); }
  void i64_store(uint32_t offset) { memory(0x37, 3, offset); }
  void i32_load8_u(uint32_t offset) { memory(0x2D, 0, offset); }

 private:
  void op_type(uint8_t opcode, uint8_t block_type) {
    op(opcode);
    bytes.push_back(block_type);
  }
  void op_index(uint8_t opcode, uint32_t index);
  void memory(uint8_t opcode, uint32_t align, uint32_t offset);
};

// Opcodes without immediates, by name.
namespace opcode {
inline constexpr uint8_t kI32Eqz = 0x45, kI32Eq = 0x46, kI32Ne = 0x47, kI32LtU = 0x49,
                         kI32GtU = 0x4B, kI32Add = 0x6A, kI32Sub = 0x6B, kI32And = 0x71,
                         kI64Eqz = 0x50, kI64Eq = 0x51, kI64Ne = 0x52, kI64LtS = 0x53,
                         kI64GtS = 0x55, kI64LeS = 0x57, kI64GeS = 0x59, kI64GeU = 0x5A,
                         kI64Add = 0x7C, kI64Sub = 0x7D, kI64Mul = 0x7E, kI64DivS = 0x7F,
                         kI64RemS = 0x81, kI64And = 0x83, kI64Or = 0x84, kI64Shl = 0x86,
                         kI32WrapI64 = 0xA7, kI64ExtendI32U = 0xAD, kI64ExtendI32S = 0xAC;
}  // namespace opcode

class ModuleWriter {
 public:
  struct Signature {
    std::vector<ValueType> params;
    std::vector<ValueType> results;
    bool operator==(const Signature&) const = default;
  };

  uint32_t type(const Signature& signature);  // interned
  uint32_t import_function(std::string_view module, std::string_view name,
                           const Signature& signature);
  void import_memory(std::string_view module, std::string_view name, uint32_t min_pages);
  // An imported global; `mutable_` needs the mutable-globals feature (every engine since 2019).
  uint32_t import_global(std::string_view module, std::string_view name, ValueType type,
                         bool mutable_ = false);
  // A memory defined by this module (instead of an imported one).
  void define_memory(uint32_t min_pages, uint32_t max_pages);
  uint32_t add_global(ValueType type, bool mutable_, int64_t initial);
  // Declares a function (its index is final); its body is set by define_function.
  uint32_t declare_function(const Signature& signature);
  void define_function(uint32_t function, const std::vector<ValueType>& locals, const Code& code);
  void export_function(std::string_view name, uint32_t function);
  void export_global(std::string_view name, uint32_t global);
  void export_memory(std::string_view name);
  void add_data(uint32_t offset, std::vector<uint8_t> bytes);
  void add_custom(std::string_view name, std::vector<uint8_t> bytes);

  // The module; empty with *error set when a declared function has no body.
  std::vector<uint8_t> finish(std::string* error) const;

  uint32_t function_count() const { return imported_functions_ + function_types_.size(); }

 private:
  struct Import {
    std::string module, name;
    uint8_t kind;           // 0 function, 2 memory, 3 global
    uint32_t index;         // type (function), min pages (memory), value type (global)
    bool mutable_ = false;  // globals
  };
  struct Export {
    std::string name;
    uint8_t kind;
    uint32_t index;
  };
  struct Global {
    ValueType type;
    bool mutable_;
    int64_t initial;
  };
  struct Body {
    bool defined = false;
    std::vector<uint8_t> bytes;  // locals vector and code, without the size
  };
  std::vector<Signature> types_;
  std::vector<Import> imports_;
  uint32_t imported_functions_ = 0, imported_globals_ = 0;
  std::vector<uint32_t> function_types_;
  std::vector<Body> bodies_;
  bool memory_defined_ = false;
  uint32_t memory_min_ = 0, memory_max_ = 0;
  std::vector<Global> globals_;
  std::vector<Export> exports_;
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> data_;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> custom_;
};

}  // namespace usgc::jitgen::wasm
