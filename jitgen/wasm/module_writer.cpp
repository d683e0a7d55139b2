// jitgen/wasm/module_writer.cpp — the binary encoding of module_writer.hpp: sections in the
// order the format requires (type, import, function, memory, global, export, code, data, custom
// last), each a LEB128 size and its bytes. Compile time only.
#include "jitgen/wasm/module_writer.hpp"

namespace usgc::jitgen::wasm {

void append_unsigned_leb(std::vector<uint8_t>& out, uint64_t value) {
  do {
    uint8_t byte = value & 0x7F;
    value >>= 7;
    if (value != 0) byte |= 0x80;
    out.push_back(byte);
  } while (value != 0);
}

void append_signed_leb(std::vector<uint8_t>& out, int64_t value) {
  for (;;) {
    uint8_t byte = value & 0x7F;
    value >>= 7;  // arithmetic: the sign is kept
    bool done = (value == 0 && (byte & 0x40) == 0) || (value == -1 && (byte & 0x40) != 0);
    if (!done) byte |= 0x80;
    out.push_back(byte);
    if (done) return;
  }
}

namespace {

void append_name(std::vector<uint8_t>& out, std::string_view name) {
  append_unsigned_leb(out, name.size());
  out.insert(out.end(), name.begin(), name.end());
}

void append_section(std::vector<uint8_t>& module, uint8_t id, const std::vector<uint8_t>& body) {
  module.push_back(id);
  append_unsigned_leb(module, body.size());
  module.insert(module.end(), body.begin(), body.end());
}

}  // namespace

void Code::i32_const(int32_t value) {
  op(0x41);
  append_signed_leb(bytes, value);
}
void Code::i64_const(int64_t value) {
  op(0x42);
  append_signed_leb(bytes, value);
}
void Code::op_index(uint8_t opcode, uint32_t index) {
  op(opcode);
  append_unsigned_leb(bytes, index);
}
void Code::br_table(const std::vector<uint32_t>& targets, uint32_t otherwise) {
  op(0x0E);
  append_unsigned_leb(bytes, targets.size());
  for (uint32_t target : targets) append_unsigned_leb(bytes, target);
  append_unsigned_leb(bytes, otherwise);
}
void Code::memory(uint8_t opcode, uint32_t align, uint32_t offset) {
  op(opcode);
  append_unsigned_leb(bytes, align);
  append_unsigned_leb(bytes, offset);
}

uint32_t ModuleWriter::type(const Signature& signature) {
  for (uint32_t t = 0; t < types_.size(); ++t)
    if (types_[t] == signature) return t;
  types_.push_back(signature);
  return static_cast<uint32_t>(types_.size() - 1);
}

uint32_t ModuleWriter::import_function(std::string_view module, std::string_view name,
                                       const Signature& signature) {
  if (!function_types_.empty()) return UINT32_MAX;  // indices of declared functions would move
  imports_.push_back({std::string(module), std::string(name), 0, type(signature)});
  return imported_functions_++;
}

void ModuleWriter::import_memory(std::string_view module, std::string_view name,
                                 uint32_t min_pages) {
  imports_.push_back({std::string(module), std::string(name), 2, min_pages});
}

uint32_t ModuleWriter::import_global(std::string_view module, std::string_view name,
                                     ValueType value_type, bool mutable_) {
  if (!globals_.empty()) return UINT32_MAX;
  imports_.push_back(
      {std::string(module), std::string(name), 3, static_cast<uint32_t>(value_type), mutable_});
  return imported_globals_++;
}

void ModuleWriter::define_memory(uint32_t min_pages, uint32_t max_pages) {
  memory_defined_ = true;
  memory_min_ = min_pages;
  memory_max_ = max_pages;
}

uint32_t ModuleWriter::add_global(ValueType value_type, bool mutable_, int64_t initial) {
  globals_.push_back({value_type, mutable_, initial});
  return imported_globals_ + static_cast<uint32_t>(globals_.size() - 1);
}

uint32_t ModuleWriter::declare_function(const Signature& signature) {
  function_types_.push_back(type(signature));
  bodies_.emplace_back();
  return imported_functions_ + static_cast<uint32_t>(function_types_.size() - 1);
}

void ModuleWriter::define_function(uint32_t function, const std::vector<ValueType>& locals,
                                   const Code& code) {
  Body& body = bodies_.at(function - imported_functions_);
  body.defined = true;
  body.bytes.clear();
  // Locals as runs of one type.
  std::vector<std::pair<uint32_t, ValueType>> runs;
  for (ValueType local : locals) {
    if (!runs.empty() && runs.back().second == local) {
      ++runs.back().first;
    } else {
      runs.emplace_back(1, local);
    }
  }
  append_unsigned_leb(body.bytes, runs.size());
  for (const auto& [count, local] : runs) {
    append_unsigned_leb(body.bytes, count);
    body.bytes.push_back(static_cast<uint8_t>(local));
  }
  body.bytes.insert(body.bytes.end(), code.bytes.begin(), code.bytes.end());
}

void ModuleWriter::export_function(std::string_view name, uint32_t function) {
  exports_.push_back({std::string(name), 0, function});
}
void ModuleWriter::export_global(std::string_view name, uint32_t global) {
  exports_.push_back({std::string(name), 3, global});
}
void ModuleWriter::export_memory(std::string_view name) {
  exports_.push_back({std::string(name), 2, 0});
}
void ModuleWriter::add_data(uint32_t offset, std::vector<uint8_t> bytes) {
  data_.emplace_back(offset, std::move(bytes));
}
void ModuleWriter::add_custom(std::string_view name, std::vector<uint8_t> bytes) {
  custom_.emplace_back(std::string(name), std::move(bytes));
}

std::vector<uint8_t> ModuleWriter::finish(std::string* error) const {
  for (size_t f = 0; f < bodies_.size(); ++f) {
    if (!bodies_[f].defined) {
      *error = "wasm module: function " + std::to_string(imported_functions_ + f) +
               " is declared but has no body";
      return {};
    }
  }
  std::vector<uint8_t> module = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00};
  std::vector<uint8_t> s;
  append_unsigned_leb(s, types_.size());
  for (const Signature& signature : types_) {
    s.push_back(0x60);
    append_unsigned_leb(s, signature.params.size());
    for (ValueType p : signature.params) s.push_back(static_cast<uint8_t>(p));
    append_unsigned_leb(s, signature.results.size());
    for (ValueType r : signature.results) s.push_back(static_cast<uint8_t>(r));
  }
  append_section(module, 1, s);
  if (!imports_.empty()) {
    s.clear();
    append_unsigned_leb(s, imports_.size());
    for (const Import& import : imports_) {
      append_name(s, import.module);
      append_name(s, import.name);
      s.push_back(import.kind);
      if (import.kind == 0) {
        append_unsigned_leb(s, import.index);
      } else if (import.kind == 2) {
        s.push_back(0x00);  // limits: min only
        append_unsigned_leb(s, import.index);
      } else {
        s.push_back(static_cast<uint8_t>(import.index));
        s.push_back(import.mutable_ ? 0x01 : 0x00);
      }
    }
    append_section(module, 2, s);
  }
  s.clear();
  append_unsigned_leb(s, function_types_.size());
  for (uint32_t t : function_types_) append_unsigned_leb(s, t);
  append_section(module, 3, s);
  if (memory_defined_) {
    s.clear();
    append_unsigned_leb(s, 1);
    s.push_back(0x01);  // limits: min and max
    append_unsigned_leb(s, memory_min_);
    append_unsigned_leb(s, memory_max_);
    append_section(module, 5, s);
  }
  if (!globals_.empty()) {
    s.clear();
    append_unsigned_leb(s, globals_.size());
    for (const Global& global : globals_) {
      s.push_back(static_cast<uint8_t>(global.type));
      s.push_back(global.mutable_ ? 1 : 0);
      s.push_back(global.type == ValueType::kI32 ? 0x41 : 0x42);
      append_signed_leb(s, global.type == ValueType::kI32 ? static_cast<int32_t>(global.initial)
                                                          : global.initial);
      s.push_back(0x0B);
    }
    append_section(module, 6, s);
  }
  if (!exports_.empty()) {
    s.clear();
    append_unsigned_leb(s, exports_.size());
    for (const Export& e : exports_) {
      append_name(s, e.name);
      s.push_back(e.kind);
      append_unsigned_leb(s, e.index);
    }
    append_section(module, 7, s);
  }
  s.clear();
  append_unsigned_leb(s, bodies_.size());
  for (const Body& body : bodies_) {
    append_unsigned_leb(s, body.bytes.size() + 1);
    s.insert(s.end(), body.bytes.begin(), body.bytes.end());
    s.push_back(0x0B);  // the body's end
  }
  append_section(module, 10, s);
  if (!data_.empty()) {
    s.clear();
    append_unsigned_leb(s, data_.size());
    for (const auto& [offset, bytes] : data_) {
      s.push_back(0x00);  // active, memory 0
      s.push_back(0x41);
      append_signed_leb(s, static_cast<int32_t>(offset));
      s.push_back(0x0B);
      append_unsigned_leb(s, bytes.size());
      s.insert(s.end(), bytes.begin(), bytes.end());
    }
    append_section(module, 11, s);
  }
  for (const auto& [name, bytes] : custom_) {
    s.clear();
    append_name(s, name);
    s.insert(s.end(), bytes.begin(), bytes.end());
    append_section(module, 0, s);
  }
  return module;
}

}  // namespace usgc::jitgen::wasm
