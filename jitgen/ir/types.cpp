// jitgen/ir/types.cpp — the interning type table (see types.hpp for the interning invariant).
#include "jitgen/ir/types.hpp"

namespace usgc::jitgen::ir {

namespace {
const std::string kNoTypeSpelling = "<no type>";
}

TypeTable::TypeTable() {
  int_type_ = intern({TypeKind::Int, kInvalidType, kDynamicLength, "", "int"});
  bool_type_ = intern({TypeKind::Bool, kInvalidType, kDynamicLength, "", "bool"});
}

TypeId TypeTable::intern(TypeNode node) {
  auto found = by_spelling_.find(node.spelling);
  if (found != by_spelling_.end()) return found->second;
  TypeId id{static_cast<uint32_t>(nodes_.size())};
  by_spelling_.emplace(node.spelling, id);
  nodes_.push_back(std::move(node));
  return id;
}

TypeId TypeTable::struct_type(std::string_view name) {
  std::string spelling(name);
  return intern({TypeKind::Struct, kInvalidType, kDynamicLength, spelling, spelling});
}

TypeId TypeTable::pointer_to(TypeId struct_type) {
  if (!struct_type.valid() || kind(struct_type) != TypeKind::Struct) return kInvalidType;
  return intern({TypeKind::Pointer, struct_type, kDynamicLength, "", "*" + spelling(struct_type)});
}

TypeId TypeTable::array_of(TypeId element, uint64_t length) {
  if (!element.valid()) return kInvalidType;
  std::string prefix = length == kDynamicLength ? "[]" : "[" + std::to_string(length) + "]";
  return intern({TypeKind::Array, element, length, "", prefix + spelling(element)});
}

TypeId TypeTable::channel_of(TypeId element) {
  if (!element.valid()) return kInvalidType;
  return intern({TypeKind::Channel, element, kDynamicLength, "", "chan " + spelling(element)});
}

const std::string& TypeTable::spelling(TypeId type) const {
  if (!type.valid() || type.index >= nodes_.size()) return kNoTypeSpelling;
  return nodes_[type.index].spelling;
}

bool TypeTable::is_reference(TypeId type) const {
  if (!type.valid()) return false;
  TypeKind type_kind = kind(type);
  return type_kind == TypeKind::Pointer || type_kind == TypeKind::Array ||
         type_kind == TypeKind::Channel;
}

bool TypeTable::is_allocatable_by_new(TypeId type) const {
  if (!type.valid()) return false;
  const TypeNode& type_node = node(type);
  return type_node.kind == TypeKind::Struct ||
         (type_node.kind == TypeKind::Array && type_node.length != kDynamicLength);
}

}  // namespace usgc::jitgen::ir
