// jitgen/escape/decision.cpp — names of the ownership classes and position formatting
// (decision.hpp).
#include "jitgen/escape/decision.hpp"

namespace usgc::jitgen::escape {

const char* ownership_class_name(OwnershipClass ownership) {
  switch (ownership) {
    case OwnershipClass::StackLocal:
      return "STACK_LOCAL";
    case OwnershipClass::GoroutinePrivate:
      return "GOROUTINE_PRIVATE";
    case OwnershipClass::GoroutineShared:
      return "GOROUTINE_SHARED";
    case OwnershipClass::GlobalShared:
      return "GLOBAL_SHARED";
  }
  return "?";
}

const char* ownership_class_short_name(OwnershipClass ownership) {
  switch (ownership) {
    case OwnershipClass::StackLocal:
      return "stack";
    case OwnershipClass::GoroutinePrivate:
      return "private";
    case OwnershipClass::GoroutineShared:
      return "shared";
    case OwnershipClass::GlobalShared:
      return "global";
  }
  return "?";
}

std::optional<OwnershipClass> parse_ownership_class(std::string_view text) {
  for (size_t index = 0; index < kOwnershipClassCount; ++index) {
    auto ownership = static_cast<OwnershipClass>(index);
    if (text == ownership_class_name(ownership) || text == ownership_class_short_name(ownership))
      return ownership;
  }
  return std::nullopt;
}

std::string format_position(const std::string& file_name, ir::SourcePosition position) {
  if (!position.known()) return file_name;
  return file_name + ":" + std::to_string(position.line) + ":" + std::to_string(position.column);
}

}  // namespace usgc::jitgen::escape
