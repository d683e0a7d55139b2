// jitgen/wasm/lowering_context.hpp — the state of one .usir -> WebAssembly lowering, shared by the
// files that implement it (internal to jitgen/wasm; the entry point is lowering.hpp):
//
//   lowering.cpp             the module: imports, variants, init, go_entry, metadata, errors
//   lowering_function.cpp    one function variant: frame push/pop, locals, control flow, polls,
//                            scalar instructions
//   lowering_memory.cpp      allocation in each class, fields, elements, globals, the barrier
//   lowering_goroutines.cpp  `go`, channel operations, unknown code
//
// One wasm function per function variant (as the x86-64 JIT: a variant per set of sites
// allocated in the caller's frame). Every parameter and result is an i64; scalar locals are wasm
// locals; reference locals are the 8-byte slots of the function's shadow-stack frame in linear
// memory (wasm_abi.h), so the collector finds them. Invariant: a reference result is stored to
// its slot before the next call, so every slow path may collect.
// Compile time only; the sequences it emits are the hot paths (docs/wasm.md has their counts).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "jitgen/interpreter/program_layout.hpp"
#include "jitgen/wasm/lowering.hpp"
#include "jitgen/wasm/module_writer.hpp"
#include "jitgen/wasm/wasm_abi.h"

namespace usgc::jitgen::wasm::lowering_detail {

using escape::OwnershipClass;
using interpreter::SiteLayout;
using interpreter::SiteShape;
using ir::Instruction;
using ir::Opcode;
using ir::Operand;
using ir::OperandKind;
namespace op = opcode;

inline constexpr uint32_t kSlotSizes[USGC_WASM_CLASS_COUNT] = USGC_WASM_CLASS_SLOT_SIZES;
inline constexpr uint32_t kMaxInlineStackBytes = 4096;
inline constexpr uint8_t kI32Shl = 0x74, kI64GeU = 0x5A;

// Imported functions, in import order.
enum Import : uint32_t {
  kAllocPrivateSlow,
  kAlloc,
  kAllocStackSlow,
  kAllocArray,
  kBarrierSlow,
  kGlobalStore,
  kPollSlow,
  kGcStress,
  kRegisterType,
  kTypeReferenceWord,
  kReserve,
  kSetGlobalRoots,
  kMakeChan,
  kChanSend,
  kChanReceive,
  kChanClose,
  kTransfer,
  kGo,
  kGoReady,
  kRegisterValueType,
  kUnknownKeep,
  kUnknownNewest,
  kRuntimeError,
  kSuspend,
  kImportCount
};
// Imported globals: the running goroutine's mutator record, heap id, shadow-stack pointer and
// limit (mutable: the host sets them at a goroutine switch); the poll flag word's address.
enum ImportedGlobal : uint32_t { kMutator, kHeapId, kShadowSp, kShadowLimit, kPollFlag };

// The size class of an object of `bytes` (header included), or -1 when it is large.
inline int size_class_of(uint32_t bytes) {
  for (int c = 0; c < USGC_WASM_CLASS_COUNT; ++c)
    if (bytes <= kSlotSizes[c]) return c;
  return -1;
}

class Lowering {
 public:
  Lowering(const ir::Module& module, const escape::EscapeAnalysis& analysis,
           const interpreter::ProgramLayout& layout, const LowerOptions& options);

  std::optional<std::vector<uint8_t>> run(std::string* error);

 private:
  struct Variant {
    uint32_t function = 0;
    std::vector<uint32_t> caller_frame_sites;
    uint32_t wasm_function = 0;
  };

  // ---- the module (lowering.cpp) ----
  void declare_imports();
  size_t variant_of(uint32_t function, const std::vector<uint32_t>& sites);
  uint32_t type_id_of_site(uint32_t site) const { return site + USGC_WASM_FIRST_TYPE; }
  void emit_init();
  void emit_go_entry();
  void emit_meta();
  // A message with {a}/{b} placeholders (the host fills in the values); `exit` 1 for a runtime
  // error, the host's "limit" status for the stack check. Returns its id.
  uint32_t error_id(const std::string& what, ir::SourcePosition position);
  uint32_t runtime_error(const std::string& what);
  int32_t publication_site();
  // The i32 on the stack non-zero: raise (an `if` around it).
  void raise_if(uint32_t id, int32_t a_local = -1, int32_t b_local = -1);
  // Calls the host's runtime_error (it does not return); a and b are i64 locals or constants.
  void raise(uint32_t id, int32_t a_local = -1, int32_t b_local = -1);

  // ---- one function variant (lowering_function.cpp) ----
  bool is_reference(uint32_t local) const { return function_layout_->local_is_reference[local]; }
  uint32_t slot_offset(uint32_t local) const {
    return USGC_WASM_FRAME_BYTES + 8 * function_layout_->slot_of_local[local];
  }
  void push(const Operand& operand);  // pushes the operand's value (i64)
  void set_local(uint32_t local);     // pops an i64 into local `local`
  void set_result(const Instruction& instruction);
  // Instruction counts of the inline sequences (LowerOptions::stub_instructions): the `if`,
  // `else` and `end` around a slow-path arm count, the arm does not.
  void stub_start();
  void slow_start() { slow_begin_ = c_.instructions; }
  void slow_stop() { stub_slow_ += c_.instructions - slow_begin_; }
  void stub_finish(const std::string& name, uint32_t excluded = 0);
  void poll();
  void lower_variant(size_t index);
  void edge(uint32_t target);
  void lower_instruction(const Instruction& instruction);
  void lower_binary(const Instruction& instruction);

  // ---- allocation, fields, elements, globals (lowering_memory.cpp) ----
  void count(uint32_t counter);
  void out_of_memory_check();
  void lower_allocation(const Instruction& instruction);
  void emit_stack_alloc(int32_t type, uint32_t payload, int32_t header_low);
  void emit_private_alloc(int32_t type, uint32_t class_index, int32_t header_low);
  bool value_may_be_stack(const Operand& value) const {
    return value.kind == OperandKind::Local && may_stack_[function_][value.local_index];
  }
  void emit_barrier_store(uint32_t object_local, uint32_t address_local, uint32_t offset,
                          bool may_be_stack);
  void lower_field(const Instruction& instruction);
  void lower_element(const Instruction& instruction);
  void lower_global(const Instruction& instruction);

  // ---- goroutines, channels, unknown code (lowering_goroutines.cpp) ----
  void block_or(uint32_t otherwise);
  void lower_send(const Instruction& instruction);
  void lower_receive(const Instruction& instruction);
  void lower_close(const Instruction& instruction);
  void lower_go(const Instruction& instruction);
  void lower_unknown(const Instruction& instruction);

  // The module: written while lowering, read by every part.
  const ir::Module& ir_;
  const escape::EscapeAnalysis& analysis_;
  const interpreter::ProgramLayout& layout_;
  const LowerOptions& options_;
  ModuleWriter w_;
  std::vector<std::vector<bool>> may_stack_;
  std::vector<Variant> variants_;
  std::map<std::pair<uint32_t, std::vector<uint32_t>>, size_t> variant_index_;
  std::vector<bool> global_is_reference_;
  std::vector<uint32_t> global_slot_;  // wasm global (scalar) or slot index (reference)
  uint32_t reference_globals_ = 0;
  uint32_t ssp_global_ = 0, references_global_ = 0, counters_global_ = 0;
  uint32_t init_function_ = 0, go_entry_function_ = 0;
  std::map<uint32_t, uint32_t> go_target_of_function_;  // function index -> go target
  std::vector<uint32_t> go_targets_;                    // go target -> function index
  std::vector<size_t> go_target_variants_;              // go target -> variant
  std::vector<std::string> errors_;
  std::string error_;

  // The variant being lowered.
  Code c_;
  uint32_t function_ = 0, block_ = 0, block_count_ = 0;
  size_t instruction_index_ = 0;
  const Instruction* instruction_ = nullptr;
  const interpreter::FunctionLayout* function_layout_ = nullptr;
  const std::vector<uint32_t>* caller_frame_sites_ = nullptr;
  std::vector<uint32_t> scalar_local_;
  uint32_t fp_ = 0, pc_ = 0, t0_ = 0, t1_ = 0, x_ = 0, y_ = 0;
  uint32_t frame_bytes_ = 0;
  uint32_t extra_depth_ = 0;
  uint32_t stub_begin_ = 0, stub_slow_ = 0, slow_begin_ = 0;
};

}  // namespace usgc::jitgen::wasm::lowering_detail
