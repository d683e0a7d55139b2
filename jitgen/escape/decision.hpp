// jitgen/escape/decision.hpp — what the escape analysis decides: the ownership class of each
// allocation site (docs/design.md, "Ownership classes"), the reason for it as a chain of
// facts with positions, and per-class statistics. Front-end code, not on any hot path.
//
// Invariants:
//   * the class order invariant: StackLocal < GoroutinePrivate < GoroutineShared < GlobalShared,
//     and a site's class is the maximum over every fact that applies to it; anything reachable
//     from an object of class C >= GoroutinePrivate has class >= C (the propagation rule).
//   * the reason invariant: every site above StackLocal carries at least one ReasonStep, the first
//     naming the fact that put it in its class, each later one the next link of the chain.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jitgen/ir/ir.hpp"

namespace usgc::jitgen::escape {

enum class OwnershipClass : uint8_t { StackLocal, GoroutinePrivate, GoroutineShared, GlobalShared };
inline constexpr size_t kOwnershipClassCount = 4;

const char* ownership_class_name(OwnershipClass ownership);        // "STACK_LOCAL", ...
const char* ownership_class_short_name(OwnershipClass ownership);  // "stack", "private", ...
// Accepts both spellings; nullopt for anything else.
std::optional<OwnershipClass> parse_ownership_class(std::string_view text);

// One link of a reason chain. `fact` is a complete sentence fragment with its positions written
// in (`captured by the goroutine spawned at f.usir:14:3 through variable %shared`); `position`
// is the instruction the fact is about (for JSON and sorting).
struct ReasonStep {
  ir::SourcePosition position;
  std::string fact;
  friend bool operator==(const ReasonStep&, const ReasonStep&) = default;
};

// A per-call-site decision: at this call the callee's object is allocated in the caller's frame,
// STACK_LOCAL there, as if the callee were inlined (Go keeps such an inlined copy on the stack).
// Made for GOROUTINE_PRIVATE sites whose only escape is being returned by their function, at
// calls whose result never leaves the caller's frame (caller_frame.hpp has the rules).
struct CallerFrameCall {
  uint32_t function_index = 0;  // the caller
  uint32_t block_index = 0;
  uint32_t instruction_index = 0;
  std::string function_name;
  ir::SourcePosition position;  // the call's Instruction::site_position()
  friend bool operator==(const CallerFrameCall&, const CallerFrameCall&) = default;
};

struct SiteDecision {
  uint32_t site_index = 0;  // allocation sites numbered in module order
  uint32_t function_index = 0;
  uint32_t block_index = 0;
  uint32_t instruction_index = 0;
  std::string function_name;
  ir::SourcePosition position;  // Instruction::site_position()
  std::string allocation;       // "new Point", "newarray *Point", "makechan *Item", "new [16]int"
  OwnershipClass ownership = OwnershipClass::StackLocal;
  std::string short_reason;  // "does not escape", "returned from make_pair", ...
  std::vector<ReasonStep> reasons;
  std::vector<CallerFrameCall> caller_frame_calls;  // in module order
  friend bool operator==(const SiteDecision&, const SiteDecision&) = default;
};

struct EscapeStatistics {
  std::array<size_t, kOwnershipClassCount> sites_per_class{};
  size_t total_sites = 0;
  size_t caller_frame_sites = 0;  // sites with at least one CallerFrameCall
  size_t count(OwnershipClass ownership) const {
    return sites_per_class[static_cast<size_t>(ownership)];
  }
  double percent(OwnershipClass ownership) const {
    return total_sites == 0
               ? 0.0
               : 100.0 * static_cast<double>(count(ownership)) / static_cast<double>(total_sites);
  }
  void add(OwnershipClass ownership) {
    ++sites_per_class[static_cast<size_t>(ownership)];
    ++total_sites;
  }
};

// `file:line:col`, or `file` without a position.
std::string format_position(const std::string& file_name, ir::SourcePosition position);

}  // namespace usgc::jitgen::escape
