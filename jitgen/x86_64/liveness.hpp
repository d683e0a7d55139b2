// jitgen/x86_64/liveness.hpp — which locals of a function are live (may still be read) after each
// instruction, for the compiler's register cache (register_cache.hpp): a value that is dead
// need not be stored back to its frame slot, a compare whose result only the next branch reads
// becomes a compare-and-jump, a dead register is the first to give up.
//
// Classic backward dataflow over the function's blocks: an instruction uses the locals among
// its operands and captures and defines its result; live-out of a block is the union of its
// successors' live-in (Branch and Jump targets; Return has none). A local read before any
// assignment is live at entry (its slot's zero, as in the interpreter). Exact for locals, which
// are never aliased (nothing takes a local's address). Compile time only.
#pragma once

#include <cstdint>
#include <vector>

#include "jitgen/ir/ir.hpp"

namespace usgc::jitgen::x86_64 {

class FunctionLiveness {
 public:
  explicit FunctionLiveness(const ir::Function& function);

  // True when `local` may be read after instruction `instruction` of block `block` (before it is
  // assigned again). After a terminator: live-out of the block.
  bool live_after(uint32_t block, uint32_t instruction, uint32_t local) const {
    return live_after_[block][instruction][local];
  }
  const std::vector<bool>& live_after_set(uint32_t block, uint32_t instruction) const {
    return live_after_[block][instruction];
  }
  // True when `local` may be read before any assignment (it must start as zero, its slot's
  // initial value in the interpreter).
  bool live_at_entry(uint32_t local) const { return live_at_entry_[local]; }
  // The locals that may be read in or after block `block` before being assigned (live-in).
  const std::vector<bool>& live_in(uint32_t block) const { return live_in_[block]; }

 private:
  std::vector<std::vector<std::vector<bool>>> live_after_;  // [block][instruction][local]
  std::vector<bool> live_at_entry_;                         // [local]
  std::vector<std::vector<bool>> live_in_;                  // [block][local]
};

}  // namespace usgc::jitgen::x86_64
