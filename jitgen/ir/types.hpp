// jitgen/ir/types.hpp — the types of the UltraScript IR, interned in a per-module TypeTable.
//
//   int, bool                scalars (no pointers inside)
//   *S                       reference to an object of struct type S (`type S { ... }`)
//   []T                      reference to a heap array of T whose length is known at run time
//   [N]T                     reference to an array of exactly N elements of T (bounded size:
//                            the only arrays the escape analysis may put on the stack)
//   chan T                   reference to a channel carrying T
//   S                        the struct itself: only ever the operand of `new S`, never the type
//                            of a value (objects are always handled through references)
//
// Every reference type (pointer, array, channel) may be null and may point at an allocation
// site's object; these are the values the escape analysis tracks.
//
// Invariants:
//   * the interning invariant: two TypeIds are equal iff the types are; each type is stored once,
//     keyed by its canonical spelling (`[]*Point`), so printing is a table lookup.
//   * a struct type is known by name only; whether a definition exists is the verifier's
//     business ("undefined type"), so a module under construction may mention a struct before
//     (or without) defining it.
//   * the table builds any composition (`[]Point`, `chan Point`); whether a type is a legal value
//     type (no bare struct inside) is checked by the verifier, so the parser and the builder
//     report it the same way.
//   * TypeId{} (kInvalidType) is "no type": a function without a result, an unresolved type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace usgc::jitgen::ir {

struct TypeId {
  uint32_t index = UINT32_MAX;
  bool valid() const { return index != UINT32_MAX; }
  friend bool operator==(TypeId, TypeId) = default;
};
inline constexpr TypeId kInvalidType{};

enum class TypeKind : uint8_t { Int, Bool, Struct, Pointer, Array, Channel };

inline constexpr uint64_t kDynamicLength = UINT64_MAX;  // `[]T`

struct TypeNode {
  TypeKind kind = TypeKind::Int;
  TypeId element;                    // Pointer: the struct; Array, Channel: the element
  uint64_t length = kDynamicLength;  // Array only
  std::string struct_name;           // Struct only
  std::string spelling;              // canonical text, e.g. `chan *Point`
};

class TypeTable {
 public:
  TypeTable();

  TypeId int_type() const { return int_type_; }
  TypeId bool_type() const { return bool_type_; }
  TypeId struct_type(std::string_view name);
  TypeId pointer_to(TypeId struct_type);  // struct_type must be a Struct
  TypeId pointer_to_struct(std::string_view name) { return pointer_to(struct_type(name)); }
  TypeId array_of(TypeId element, uint64_t length = kDynamicLength);
  TypeId channel_of(TypeId element);

  const TypeNode& node(TypeId type) const { return nodes_[type.index]; }
  TypeKind kind(TypeId type) const { return nodes_[type.index].kind; }
  // The canonical spelling; "<no type>" for kInvalidType.
  const std::string& spelling(TypeId type) const;
  size_t size() const { return nodes_.size(); }

  // Pointer, array or channel: may be null, may refer to an allocation site's object.
  bool is_reference(TypeId type) const;
  // For `new T`: a struct (yields *S) or a fixed-length array (yields [N]T itself).
  bool is_allocatable_by_new(TypeId type) const;

 private:
  TypeId intern(TypeNode node);

  std::vector<TypeNode> nodes_;
  std::unordered_map<std::string, TypeId> by_spelling_;
  TypeId int_type_;
  TypeId bool_type_;
};

}  // namespace usgc::jitgen::ir
