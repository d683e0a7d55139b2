// jitgen/interpreter/program_layout.hpp — how the interpreter lays a module out in memory: one
// usgc type per allocation site, the words of each object, the slots of each function's locals.
//
// Objects (every word 8 bytes; `p` is the object pointer, the usgc header is at p - 8):
//   struct S (`new S`)                  [field 0] ... [field n-1] [check word]
//   bounded array (`new [N]T`,          [length N] [element 0] ... [element N-1] [check word]
//     `newarray T, <constant>`)
//   dynamic array (`newarray T, %n`)    a usgc array: [length] [elements]      (no check word)
//   channel (`makechan T, c`)           [usgc_chan*] [check word]
// So `len` and element access are the same for both kinds of arrays (length at p, elements at
// p + 8). The check word belongs to decision_checks.hpp: the frame of a STACK_LOCAL object. A
// layout built without check words (`check_words = false`: unchecked runs and compiled code,
// which make no decision checks) leaves it out of structs and bounded arrays (check_word_offset
// 0): a two-pointer struct is then 16 bytes, not 24, as in C.
//
// Each site has its own usgc type ("Point#3"), so the site of any object is one header load and
// one table lookup (site_of_object) — every reference an IR program holds is to a site object.
// Registrations are interned process-wide by name and layout (the usgc type table is never
// cleared and holds 65535 types), so running many programs in one process reuses them.
//
// Locals: each function's reference locals are the slots of its shadow-stack frame (roots, so
// the collector sees them); scalar locals live beside them. `slot_of_local` maps a local to its
// index in the one array or the other.
// Invariant: built only from a verified module and its analysis (interpreter.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"
#include "usgc/gc.h"

namespace usgc::jitgen::interpreter {

enum class SiteShape : uint8_t { kStruct, kBoundedArray, kDynamicArray, kChannel };

struct SiteLayout {
  uint32_t site_index = 0;
  uint32_t function_index = 0;
  SiteShape shape = SiteShape::kStruct;
  usgc_type_id type = 0;
  ir::TypeId value_type;        // the IR type of the allocation's result (*S, [N]T, []T, chan T)
  uint32_t struct_index = 0;    // kStruct
  uint64_t bounded_length = 0;  // kBoundedArray: N
  bool element_is_reference = false;  // arrays and channels
  uint32_t check_word_offset = 0;     // bytes from p; 0 for kDynamicArray (none)
  // kBoundedArray longer than the inline layout (program_layout.cpp): allocated as usgc's array
  // kind of this many elements (usgc_alloc_array), without a check word; 0 otherwise.
  uint64_t fixed_array_length = 0;
  escape::OwnershipClass decided = escape::OwnershipClass::StackLocal;
  std::string description;  // "new Point at f.usir:7:16"
};

struct StructLayout {
  std::vector<bool> field_is_reference;  // field k at byte offset 8 * k
};

struct FunctionLayout {
  std::vector<uint32_t> slot_of_local;  // index into the reference or the scalar slots
  std::vector<bool> local_is_reference;
  uint32_t reference_slots = 0;
  uint32_t scalar_slots = 0;
};

class ProgramLayout {
 public:
  // Registers the site types; nullopt with *error set when usgc refuses one. `check_words`:
  // objects carry the check word (checked mode needs it; see above).
  static std::optional<ProgramLayout> build(const ir::Module& module,
                                            const escape::EscapeAnalysis& analysis,
                                            std::string* error, bool check_words = true);

  const SiteLayout& site(uint32_t site_index) const { return sites_[site_index]; }
  size_t site_count() const { return sites_.size(); }
  // The site of an allocation instruction (function, block, instruction).
  uint32_t site_at(uint32_t function, uint32_t block, uint32_t instruction) const {
    return site_of_instruction_[function][block][instruction];
  }
  // The sites a call allocates in the caller's frame (escape::CallerFrameCall), sorted; nullptr
  // for a call that has none.
  const std::vector<uint32_t>* caller_frame_sites(uint32_t function, uint32_t block,
                                                  uint32_t instruction) const {
    uint32_t list = caller_frame_list_of_instruction_[function][block][instruction];
    return list == UINT32_MAX ? nullptr : &caller_frame_lists_[list];
  }
  // The site of an object made by this program; nullptr for any other object.
  const SiteLayout* site_of_object(const void* object) const {
    usgc_type_id type = usgc_type_of(object);
    if (type >= site_of_type_.size() || site_of_type_[type] < 0) return nullptr;
    return &sites_[static_cast<uint32_t>(site_of_type_[type])];
  }
  const StructLayout& struct_layout(uint32_t struct_index) const { return structs_[struct_index]; }
  // The struct a `*S` type points to (the operand type of `load %p.f`).
  uint32_t struct_of_pointer(ir::TypeId pointer_type) const {
    return struct_of_type_[pointer_type.index];
  }
  const FunctionLayout& function(uint32_t function_index) const {
    return functions_[function_index];
  }

 private:
  std::vector<SiteLayout> sites_;
  std::vector<int32_t> site_of_type_;  // usgc type id -> site index, -1 if not this program's
  std::vector<std::vector<std::vector<uint32_t>>> site_of_instruction_;
  std::vector<std::vector<std::vector<uint32_t>>> caller_frame_list_of_instruction_;
  std::vector<std::vector<uint32_t>> caller_frame_lists_;
  std::vector<StructLayout> structs_;
  std::vector<uint32_t> struct_of_type_;  // by TypeId index; UINT32_MAX when not a *S
  std::vector<FunctionLayout> functions_;
};

// 8-byte words of an object: field k of a struct, element i of an array (both kinds).
inline uint64_t* object_word(void* object, uint64_t index) {
  return static_cast<uint64_t*>(object) + index;
}
inline uint64_t* array_element(void* array, uint64_t index) {
  return static_cast<uint64_t*>(array) + 1 + index;
}
inline uint64_t array_length(const void* array) {
  return *static_cast<const uint64_t*>(array);
}

// The C API's ownership class for an escape decision: what the interpreter and the JIT allocate.
constexpr usgc_ownership usgc_class_of(escape::OwnershipClass ownership) {
  switch (ownership) {
    case escape::OwnershipClass::StackLocal:
      return USGC_STACK_LOCAL;
    case escape::OwnershipClass::GoroutinePrivate:
      return USGC_GOROUTINE_PRIVATE;
    case escape::OwnershipClass::GoroutineShared:
      return USGC_GOROUTINE_SHARED;
    case escape::OwnershipClass::GlobalShared:
      return USGC_GLOBAL_SHARED;
  }
  return USGC_GOROUTINE_PRIVATE;
}

}  // namespace usgc::jitgen::interpreter
