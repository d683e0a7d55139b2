// jitgen/x86_64/compiler.hpp — the baseline compiler: .usir functions to x86-64 with xbyak.
// Internal to the compiler's files (compiler*.cpp, compiled_module.cpp); embedders use
// compiled_module.hpp.
//
// One pass per function variant over its blocks in order. Every local has a frame slot
// (register_convention.hpp); within a block, locals are kept in registers (register_cache.hpp)
// and written back only where the slot is needed: live at the block's end, before a call or a
// point that can collect. Liveness (liveness.hpp) drops dead stores and fuses a compare with the
// branch that alone reads it. Calls between compiled functions are direct (rel32 within the
// module).
// Inline: arithmetic, comparisons, branches, field/element/length/global access with their nil
// and bounds checks, the allocation stubs, the barrier, the poll, the frame push/pop
// (stubs.hpp). Out of line: the slow paths, runtime errors, and the operations that are calls
// into the runtime anyway (channels, `go`, unknown code: jit_runtime.hpp).
// The compiler's parts, one file each:
//   compiler.cpp               variants, the entry thunk, frame addressing, errors, one variant,
//                              calls;
//   compiler_frames.cpp        frames only where they are needed (shrink-wrapping);
//   compiler_instructions.cpp  instructions, edges and branches, arithmetic and compares;
//   compiler_memory.cpp        allocation, fields, elements, globals;
//   compiled_module.cpp        CompiledModule: runs the compiler, maps and seals the code.
// Invariants: the register cache and the slots agree wherever control can enter a block from
// more than one place (block starts, back edges, calls, points that can collect); a
// shrink-wrapped block never reads a slot (plan_frameless). Compile time only; nothing here runs
// on a hot path.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "jitgen/x86_64/compiled_module.hpp"
#include "jitgen/x86_64/liveness.hpp"
#include "jitgen/x86_64/register_cache.hpp"
#include "jitgen/x86_64/register_convention.hpp"
#include "jitgen/x86_64/stack_values.hpp"
#include "jitgen/x86_64/stubs.hpp"

namespace usgc::jitgen::x86_64 {

// The compiler's files only (this header is not included elsewhere).
using namespace Xbyak::util;
using escape::OwnershipClass;
using interpreter::SiteLayout;
using interpreter::SiteShape;
using interpreter::usgc_class_of;
using ir::Instruction;
using ir::Opcode;
using ir::Operand;
using ir::OperandKind;

// Functions with more reference slots than this always push their frame at entry (a temporary
// frame copies every root slot; the stack check's 64 KiB margin covers a few hundred bytes).
inline constexpr uint32_t kMaxFramelessRoots = 64;
// RBX RSI RDI R8 R9 R10 (register_cache.hpp).
inline constexpr size_t kCacheRegisterCount = 6;

// A function compiled for one set of sites its caller allocates in the caller's frame.
struct Variant {
  uint32_t function = 0;
  std::vector<uint32_t> caller_frame_sites;  // sorted
  Xbyak::Label* entry = nullptr;             // owned by the emitter
};

class Compiler {
 public:
  Compiler(CompiledModule& module, Emitter& emitter)
      : m_(module), e_(emitter), ir_(module.module_), layout_(module.layout_), cache_(emitter) {
    may_stack_ = locals_that_may_hold_stack_objects(ir_, module.analysis_, layout_);
  }

  void compile_all();
  // Global slots as RunState numbers them (run_state.cpp): references and scalars apart.
  void number_globals();

 private:
  // ---- variants ------------------------------------------------------------------------------
  size_t variant_of(uint32_t function, const std::vector<uint32_t>& sites);

  // ---- the entry thunk: C ABI -> compiled convention ----------------------------------------
  // uint64_t enter(const void* code, JitGoroutine* g, const uint64_t* inputs, uint64_t count)
  // Then the module's two exits for a run that stops (the unwind protocol, docs/jit.md "Errors
  // unwind to the entry"): `unwind_` (jumped to with R13 and R15 intact, any RSP and RBP) goes
  // straight back to the innermost thunk of the goroutine (JitGoroutine::entry_frame): it
  // unlinks every compiled frame at once (mutator->frames and arena_top as they were at entry),
  // sets `unwound` and returns 0 from the thunk; `runtime_error_` (ESI the error site, RDX RCX
  // its values) aligns RSP, reports the error (the frames still linked: the report may read the
  // objects they root) and unwinds. No compiled caller tests anything after a call.
  void emit_enter_thunk();

  // ---- frame addressing --------------------------------------------------------------------
  Xbyak::Address local(uint32_t index) const;
  // The value of `operand` in a register: the local's cache register (loaded if need be), or
  // `scratch` (RAX, RCX or RDX) holding the constant.
  Xbyak::Reg64 value(const Operand& operand, const Xbyak::Reg64& scratch);
  // reg := operand (a scratch register: from the local's cache register, else straight from
  // its slot, not caching it).
  void load(const Xbyak::Reg64& reg, const Operand& operand);
  static bool is_small_constant(const Operand& operand);
  bool result_live(const Instruction& instruction) const;
  // The result local := reg (in its cache register; nothing when the result is dead).
  void store_result(const Instruction& instruction, const Xbyak::Reg64& reg);
  const std::vector<bool>* live_after() const;
  // Around a call into the runtime on the main path: every dirty local to its slot before (the
  // call may collect or read slots), nothing cached after (it clobbers the registers).
  void runtime_call_begin();
  void runtime_call_end() { cache_.forget_all(); }

  // ---- out-of-line errors and operations ----------------------------------------------------
  // A label that reports runtime error `kind` of the current instruction and unwinds (the
  // module's runtime_error_ stub; framed or not, any RSP). `setup` moves the error's values into
  // RDX (a) and RCX (b).
  Xbyak::Label& error_label(ErrorKind kind, std::function<void()> setup = {});
  uint32_t add_operation(OperationSite site);
  void call_operation(uint32_t operation);
  // The run's stop flag: unwind when it is set (back edges; calls see a stop through the
  // stack limit instead, jit_runtime.hpp kStoppedStackLimit).
  void check_stop();
  // Whether the variant being compiled can leave mutator->arena_top other than it found it
  // when its frame is popped: a STACK_LOCAL allocation, a call of a variant that allocates in
  // this frame, or a runtime operation. If not, its epilogue does not restore it.
  bool variant_moves_arena(const ir::Function& function) const;

  // ---- frames only where they are needed (shrink-wrapping) ---------------------------------
  // A block runs without the function's shadow-stack frame when nothing in it can collect or
  // needs the slots, so a leaf path (item_check's `ret 1`) costs no frame push, no stack check
  // and no entry poll. What holds in such a block:
  //   - it makes no call (compiled or runtime) on its main path, no STACK_LOCAL or runtime
  //     allocation (a private allocation's fast path is fine), no reference global store, and
  //     has no back edge (no poll); so the only points that can collect are the slow paths of
  //     its private allocations and barriers (and --gc-stress's call), which push a temporary
  //     frame rooting every live reference (cold_save_for);
  //   - it mentions at most as many locals as there are cache registers, so no local is ever
  //     spilled: every value is in a register, or is an input never assigned on the path, read
  //     from the caller's argument words;
  //   - every predecessor runs without the frame too, and what is live into it (unless it is
  //     the entry) is only such inputs; the entry's live-in is only inputs (nothing relies on a
  //     slot's initial zero);
  // and the function has such a path to a return (else shrink-wrapping would only add a jump).
  // An edge from such a block into a framed one builds the frame there (emit_frame_entry with
  // the target's live-in: registers and inputs into their slots, dead references zero), then
  // the stack check and the entry poll. A leaf path has no poll: it is straight-line code
  // (no back edge, no call), so the time to the next safepoint stays bounded.
  bool frameless() const { return block_ < frameless_.size() && frameless_[block_]; }

  bool block_may_run_frameless(const ir::Function& function, uint32_t b) const;
  void plan_frameless(const ir::Function& function);

  // Where a slot gets its value when the frame is made: at the function's entry (`live` null)
  // an input's argument word or zero; on an edge from a shrink-wrapped block the local's cache
  // register or its argument word when `live` says it is live there, zero (references) or
  // nothing (scalars: kZero, never read before assigned) otherwise.
  RootSource slot_source(uint32_t local, const std::vector<bool>* live) const;

  // The prologue: RBP, the slots, the frame push, the stack check, the entry poll. At the
  // function's entry (`live` null), or on an edge from a shrink-wrapped block into a framed one
  // (`live`: the target's live-in). With `scalars_stay_in_registers` (the entry made right
  // before the block, which keeps the cache registers) the scalars in cache registers are not
  // written to their slots: it returns them, for the caller to mark dirty.
  std::vector<uint32_t> emit_frame_entry(const std::vector<bool>* live,
                                         bool scalars_stay_in_registers = false);

  // What the slow path of a stub in `instruction` saves. In a framed block: the cache's
  // ColdSave. In a shrink-wrapped one: a temporary frame whose roots are the reference locals
  // live across the instruction or used by it (a barrier's object and value are the slow
  // path's arguments), from their registers or argument words; an allocation's result is not
  // yet defined.
  ColdSave cold_save_for(const Instruction& instruction);

  // ---- one variant ------------------------------------------------------------------------
  void compile_variant(size_t index);

  // ---- instructions ------------------------------------------------------------------------
  void compile_instruction(const Instruction& instruction);

  // Successors entered only from this block, later in the order, start with its registers
  // (after the live dirty ones were stored: the slots agree) and its known non-null locals. An
  // edge into framed code from a block without the frame makes the slots of the target's live-in
  // from these registers, so they agree there too. Back edges poll and start from the slots,
  // knowing nothing.
  void hand_cache_to_successors(const std::vector<uint32_t>& targets);

  // "Known non-null": a local is known not to be null where every path to this point went through
  // an allocation into it, a copy of a known non-null local into it, or a nil check of it that
  // passed (a field or element access), with no other assignment of it since. Facts start empty
  // at a function's entry and at every block with more than one predecessor or a back edge into
  // it; a block entered only from an earlier one starts with that block's facts at its jump.
  // Objects never move and locals change only as an instruction's result, so calls and
  // collections keep the facts. A field or element access of a known non-null local emits no nil
  // check (the error it would report cannot happen).
  bool known_nonnull(const Operand& operand) const {
    return operand.kind == OperandKind::Local && nonnull_[operand.local_index];
  }
  void note_checked_nonnull(const Operand& operand) {
    if (operand.kind == OperandKind::Local) nonnull_[operand.local_index] = true;
  }
  // After an instruction: its result local's fact.
  void note_definition(const Instruction& instruction);

  // A jump to block `target`; a back edge (to this or an earlier block) polls and checks the
  // stop flag first, as the interpreter's checkpoint does. `last`: nothing follows in this block,
  // so a forward edge to the next block falls through.
  void edge(uint32_t target, bool last);
  // The label of the frame entry made right before framed block `target` (emitted when the
  // loop reaches it), for an edge from a shrink-wrapped block that is its only predecessor.
  Xbyak::Label& deferred_frame_entry(uint32_t target);

  // The conditions a compare leaves in the flags (signed, as the IR's ints).
  enum class Condition : uint8_t { kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual };
  static Condition negate(Condition c);
  void jump_if(Condition c, const Xbyak::Label& target);
  // To `taken` when the flags satisfy `c`, else to `otherwise`. Forward edges jump straight to
  // their block (falling through to the next one); a back edge polls on its own path.
  void two_way(Condition c, uint32_t taken, uint32_t otherwise);

  // two_way from a shrink-wrapped block (both edges forward): an edge to a framed block makes
  // the frame on its way (emit_frame_entry, after the jump on the flags: it clobbers them).
  void frameless_two_way(Condition c, uint32_t taken, uint32_t otherwise);

  // The condition of a compare, or nothing for the other operators.
  static std::optional<Condition> condition_of(ir::BinaryOperator op);

  // A compare whose result only the next instruction, a branch, reads: the branch jumps on the
  // flags (no setcc, no register, no slot).
  bool compare_feeds_next_branch(const Instruction& instruction) const;
  void compile_binary(const Instruction& instruction);

  // "RAX holds a local": an allocation leaves its object in RAX, and a field store leaves its
  // object there (the barrier's slow path puts it back), so the next instruction of the block,
  // if it is a field store into that object or returns it, skips the move into RAX. Only from
  // one instruction to the next one of the same block (each instruction that does not note it
  // forgets it; a block starts knowing nothing).
  void note_rax_holds(uint32_t local) { rax_after_ = local; }

  // "A new private object": a local assigned by an inline GOROUTINE_PRIVATE allocation, with
  // nothing since that can collect (a call, a poll, an allocation, a barrier's slow path: a
  // private collection promotes survivors, rewriting their owner field to the old id) or publish
  // it (it stored or passed anywhere). Its header's owner field is still the heap id the
  // allocation wrote (young, mine), so a barrier on a store into it would always pass its
  // compare: the store is emitted without it (a `new_object_store`), as HotSpot stores into a
  // just-allocated object without card marks. Only where the stored value cannot be a
  // STACK_LOCAL object (the barrier's value test stays otherwise). Within a block, from one
  // instruction to the next: loads, arithmetic, copies and stores without a slow path keep it;
  // anything else forgets it.
  void keep_new_private(const Instruction& instruction);

  // ---- allocation --------------------------------------------------------------------------
  void compile_allocation(const Instruction& instruction);

  // ---- fields, elements, globals ----------------------------------------------------------
  bool value_may_be_stack(const Operand& value) const;
  void compile_field(const Instruction& instruction);
  void compile_element(const Instruction& instruction);
  void compile_global(const Instruction& instruction);

  // ---- calls -------------------------------------------------------------------------------
  // Outgoing argument words: a compiled callee never writes its input words (it copies them
  // into its slots or reads them where they are; register_convention.hpp), and nothing else
  // writes above RSP but a call's argument setup, so after a call, word k still holds what was
  // passed there. A call that passes the same local, unchanged since, in the same word does not
  // store it again (bottom_up_tree's two calls with %below). Known within a block only, and
  // forgotten when the local is assigned.
  void compile_call(const Instruction& instruction);
  void forget_argument_words_of(const Instruction& instruction) {
    if (instruction.result_name.empty()) return;
    for (int64_t& holds : argument_word_holds_)
      if (holds == instruction.result_index) holds = -1;
  }

  CompiledModule& m_;
  Emitter& e_;
  const ir::Module& ir_;
  const interpreter::ProgramLayout& layout_;
  std::vector<std::vector<bool>> may_stack_;
  std::vector<std::unique_ptr<Variant>> variants_;
  std::map<std::pair<uint32_t, std::vector<uint32_t>>, size_t> variant_index_;
  std::vector<uint32_t> global_slots_;
  std::vector<bool> global_is_reference_;

  // The variant being compiled.
  uint32_t function_ = 0;
  uint32_t block_ = 0;
  uint32_t instruction_ = 0;
  const interpreter::FunctionLayout* function_layout_ = nullptr;
  const std::vector<uint32_t>* caller_frame_sites_ = nullptr;
  int32_t reference_base_ = 0;
  uint32_t references_ = 0;
  uint32_t scalars_ = 0;
  uint32_t inputs_ = 0;
  uint32_t outgoing_bytes_ = 0;
  std::vector<uint32_t> local_of_reference_slot_;
  std::vector<uint32_t> local_of_scalar_slot_;
  std::vector<bool> frameless_;              // [block]: runs without the frame (plan_frameless)
  std::vector<uint32_t> predecessor_count_;  // [block]: edges into it
  std::vector<std::optional<RegisterCache::Snapshot>> entry_cache_;  // [block]
  std::vector<Xbyak::Label*> deferred_entries_;  // [block]: its frame entry (deferred_frame_entry)
  std::vector<bool> nonnull_;  // [local]: known non-null at the current instruction
  std::vector<std::optional<std::vector<bool>>>
      entry_nonnull_;                             // [block]: from its only predecessor
  int32_t frame_offset_ = 0;                      // the compact usgc_frame's, from RBP
  FramePop frame_pop_ = FramePop::kRestoreArena;  // what the epilogue does with arena_top
  int32_t scalar_base_ = 0;
  uint32_t block_count_ = 0;
  std::unique_ptr<FunctionLiveness> liveness_;
  RegisterCache cache_;
  std::optional<Condition> pending_compare_;  // set by a compare fused with the next branch
  int64_t rax_held_ = -1;   // the local RAX held when the current instruction began, or -1
  int64_t rax_after_ = -1;  // the local the current instruction leaves in RAX (note_rax_holds)
  std::vector<int64_t> argument_word_holds_;  // [outgoing word]: the local it holds, or -1
  int64_t new_private_ = -1;        // "a new private object" when the instruction began, or -1
  int64_t new_private_after_ = -1;  // and after it (keep_new_private)
  Xbyak::Label* unwind_ = nullptr;  // module-wide (emit_enter_thunk)
  Xbyak::Label* runtime_error_ = nullptr;  // module-wide (emit_enter_thunk)
  Xbyak::Label* epilogue_ = nullptr;
  std::vector<Xbyak::Label*> block_labels_;
};

}  // namespace usgc::jitgen::x86_64
