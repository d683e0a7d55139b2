// jitgen/escape/abstract_value.hpp — the nodes of the escape analysis' points-to graphs, and the
// table of allocation sites.
//
// An AbstractValue is what a reference local may point to:
//   * Site s      — every object allocated at allocation site s (one abstract object per site,
//                   numbered in module order: functions, blocks, instructions);
//   * Input i     — the phantom object of the current function's input i (parameters, then
//                   captures): it stands for the whole region of the caller's objects reachable
//                   from that argument (loads from it yield itself: the region is collapsed);
//   * External    — objects reachable from globals or made by code the analysis cannot see;
//   * Received    — objects received from a channel: other goroutines may reach them.
// Invariants:
//   * the context-free invariant: Site, External and Received mean the same thing in every
//     function, Input i only inside one function; so only context-free values are ever stored in
//     the module-wide heap (analysis.cpp) or in a summary's value sets.
//   * the field-insensitive heap: an abstract object has one content set, the union of what its
//     fields and elements may hold (reasons still name the field of each store).
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "jitgen/ir/ir.hpp"

namespace usgc::jitgen::escape {

enum class ValueKind : uint8_t { Site, Input, External, Received };

struct AbstractValue {
  ValueKind kind = ValueKind::External;
  uint32_t index = 0;  // Site: the site index; Input: the input index; otherwise 0

  static AbstractValue site(uint32_t site_index) { return {ValueKind::Site, site_index}; }
  static AbstractValue input(uint32_t input_index) { return {ValueKind::Input, input_index}; }
  static AbstractValue external() { return {ValueKind::External, 0}; }
  static AbstractValue received() { return {ValueKind::Received, 0}; }
  bool context_free() const { return kind != ValueKind::Input; }
  friend auto operator<=>(const AbstractValue&, const AbstractValue&) = default;
};

using ValueSet = std::set<AbstractValue>;  // ordered: iteration order is deterministic

struct SiteLocation {
  uint32_t function_index = 0;
  uint32_t block_index = 0;
  uint32_t instruction_index = 0;
};

// Every allocation site of a module, in module order, and the reverse map.
class SiteTable {
 public:
  explicit SiteTable(const ir::Module& module);

  size_t size() const { return locations_.size(); }
  const SiteLocation& location(uint32_t site) const { return locations_[site]; }
  const ir::Instruction& instruction(uint32_t site) const;
  // The site of an allocation instruction.
  uint32_t site_of(uint32_t function, uint32_t block, uint32_t instruction) const {
    return index_.at({function, block, instruction});
  }
  // "new Point", "new [16]int", "newarray *Point", "makechan *Item".
  std::string describe(uint32_t site) const;
  // "new Point at f.usir:12:5".
  std::string describe_at(uint32_t site) const;
  const ir::Module& module() const { return module_; }

 private:
  const ir::Module& module_;
  std::vector<SiteLocation> locations_;
  std::map<std::tuple<uint32_t, uint32_t, uint32_t>, uint32_t> index_;
};

}  // namespace usgc::jitgen::escape
