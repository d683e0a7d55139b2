// jitgen/x86_64/compiler.cpp — the baseline compiler: .usir functions to x86-64 with xbyak.
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
// The code is generated into a heap buffer (xbyak with a user buffer: it never maps memory
// itself), copied into a read-write mapping, then sealed read+execute (code_memory.hpp).
// Compile time only; nothing here runs on a hot path.
#include <algorithm>
#include <cstring>
#include <map>

#include "jitgen/x86_64/compiled_module.hpp"
#include "jitgen/x86_64/liveness.hpp"
#include "jitgen/x86_64/register_cache.hpp"
#include "jitgen/x86_64/register_convention.hpp"
#include "jitgen/x86_64/stack_values.hpp"
#include "jitgen/x86_64/stubs.hpp"
#include "kernel_iface/code_memory.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "usgc/safepoint.h"

namespace usgc::jitgen::x86_64 {

using namespace Xbyak::util;
using escape::OwnershipClass;
using interpreter::SiteLayout;
using interpreter::SiteShape;
using interpreter::usgc_class_of;
using ir::Instruction;
using ir::Opcode;
using ir::Operand;
using ir::OperandKind;

namespace {

// Functions with more reference slots than this always push their frame at entry (a temporary
// frame copies every root slot; the stack check's 64 KiB margin covers a few hundred bytes).
constexpr uint32_t kMaxFramelessRoots = 64;
// RBX RSI RDI R8 R9 R10 (register_cache.hpp).
constexpr size_t kCacheRegisterCount = 6;

struct Variant {
  uint32_t function = 0;
  std::vector<uint32_t> caller_frame_sites;  // sorted
  Xbyak::Label* entry = nullptr;             // owned by the emitter
};

}  // namespace

class Compiler {
 public:
  Compiler(CompiledModule& module, Emitter& emitter)
      : m_(module), e_(emitter), ir_(module.module_), layout_(module.layout_), cache_(emitter) {
    may_stack_ = locals_that_may_hold_stack_objects(ir_, module.analysis_, layout_);
  }

  void compile_all() {
    emit_enter_thunk();
    for (uint32_t f = 0; f < ir_.functions.size(); ++f) variant_of(f, {});
    for (size_t v = 0; v < variants_.size(); ++v) compile_variant(v);  // grows while compiling
  }

 private:
  // ---- variants ------------------------------------------------------------------------------
  size_t variant_of(uint32_t function, const std::vector<uint32_t>& sites) {
    auto key = std::make_pair(function, sites);
    auto found = variant_index_.find(key);
    if (found != variant_index_.end()) return found->second;
    size_t index = variants_.size();
    variants_.push_back(std::make_unique<Variant>());
    variants_.back()->function = function;
    variants_.back()->caller_frame_sites = sites;
    variants_.back()->entry = &e_.label();
    variant_index_.emplace(std::move(key), index);
    return index;
  }

  // ---- the entry thunk: C ABI -> compiled convention ----------------------------------------
  // uint64_t enter(const void* code, JitGoroutine* g, const uint64_t* inputs, uint64_t count)
  void emit_enter_thunk() {
    uint32_t begin = e_.here();
    e_.push(rbp);
    e_.mov(rbp, rsp);
    e_.push(rbx);
    e_.push(r12);
    e_.push(r13);
    e_.push(r14);
    e_.push(r15);
    e_.sub(rsp, 8);
    e_.mov(r13, rsi);
    e_.mov(r15, e_.qword[rsi + offsetof(JitGoroutine, mutator)]);
    e_.mov(r14d, e_.dword[r15]);
    e_.mov(r12, e_.qword[rsi + offsetof(JitGoroutine, stopping)]);
    e_.mov(rax, rdi);
    e_.lea(r8, e_.ptr[rcx * 8 + 15]);
    e_.and_(r8, -16);
    e_.sub(rsp, r8);
    e_.mov(rsi, rdx);
    e_.mov(rdi, rsp);
    e_.rep();
    e_.movsq();
    e_.call(rax);
    e_.lea(rsp, e_.ptr[rbp - 40]);
    e_.pop(r15);
    e_.pop(r14);
    e_.pop(r13);
    e_.pop(r12);
    e_.pop(rbx);
    e_.pop(rbp);
    e_.ret();
    m_.functions_.push_back({"usgc_jit_enter", UINT32_MAX, {}, begin, e_.here() - begin});
  }

  // ---- frame addressing --------------------------------------------------------------------
  Xbyak::Address local(uint32_t index) const {
    if (frameless()) {
      // No frame, no slots: only an input's value has a home, the caller's argument word (RSP
      // is the entry's on a shrink-wrapped path). Anything else is in a cache register
      // (plan_frameless guarantees it); a read of it from memory would be a compiler bug.
      if (index >= inputs_) throw Xbyak::Error(Xbyak::ERR_INTERNAL);
      return e_.qword[rsp + 8 + static_cast<int32_t>(8 * index)];
    }
    uint32_t slot = function_layout_->slot_of_local[index];
    return function_layout_->local_is_reference[index]
               ? e_.qword[rbp + reference_base_ + static_cast<int32_t>(8 * slot)]
               : e_.qword[rbp + scalar_base_ + static_cast<int32_t>(8 * slot)];
  }
  // The value of `operand` in a register: the local's cache register (loaded if need be), or
  // `scratch` (RAX, RCX or RDX) holding the constant.
  Xbyak::Reg64 value(const Operand& operand, const Xbyak::Reg64& scratch) {
    switch (operand.kind) {
      case OperandKind::Local:
        return cache_.read(operand.local_index);
      case OperandKind::Integer:
      case OperandKind::Boolean:
        e_.mov(scratch, operand.integer_value);
        return scratch;
      case OperandKind::Null:
        break;
    }
    e_.xor_(scratch.cvt32(), scratch.cvt32());
    return scratch;
  }
  // reg := operand (a scratch register: from the local's cache register, else straight from
  // its slot, not caching it).
  void load(const Xbyak::Reg64& reg, const Operand& operand) {
    if (operand.kind == OperandKind::Local) {
      if (std::optional<Xbyak::Reg64> cached = cache_.cached(operand.local_index)) {
        e_.mov(reg, *cached);
      } else {
        e_.mov(reg, local(operand.local_index));
      }
      return;
    }
    Xbyak::Reg64 source = value(operand, reg);
    if (source != reg) e_.mov(reg, source);
  }
  static bool is_small_constant(const Operand& operand) {
    return operand.kind != OperandKind::Local && operand.integer_value >= INT32_MIN &&
           operand.integer_value <= INT32_MAX;  // Null: integer_value 0
  }
  bool result_live(const Instruction& instruction) const {
    return !instruction.result_name.empty() &&
           liveness_->live_after(block_, instruction_, instruction.result_index);
  }
  // The result local := reg (in its cache register; nothing when the result is dead).
  void store_result(const Instruction& instruction, const Xbyak::Reg64& reg) {
    if (!result_live(instruction)) return;
    Xbyak::Reg64 destination = cache_.define(instruction.result_index);
    if (destination != reg) e_.mov(destination, reg);
  }
  const std::vector<bool>* live_after() const {
    return &liveness_->live_after_set(block_, instruction_);
  }
  // Around a call into the runtime on the main path: every dirty local to its slot before (the
  // call may collect or read slots), nothing cached after (it clobbers the registers).
  void runtime_call_begin() {
    cache_.store_dirty();
    cache_.forget_all();
  }
  void runtime_call_end() { cache_.forget_all(); }

  // ---- out-of-line errors and operations ----------------------------------------------------
  // A label that reports runtime error `kind` of the current instruction and leaves through the
  // stopped path. `setup` moves the error's values into RDX (a) and RCX (b).
  // Without a frame (a shrink-wrapped path) RSP is 8 below 16-aligned: the call is aligned,
  // and the stopped path returns without a frame to pop.
  Xbyak::Label& error_label(ErrorKind kind, std::function<void()> setup = {}) {
    return error_label_in(kind, !frameless(), std::move(setup));
  }
  Xbyak::Label& error_label_in(ErrorKind kind, bool framed, std::function<void()> setup = {}) {
    uint32_t id = static_cast<uint32_t>(m_.errors_.size());
    m_.errors_.push_back({kind, function_, block_, instruction_});
    Xbyak::Label& label = e_.label();
    Xbyak::Label* stopped = framed ? stopped_ : stopped_frameless_;
    e_.cold.push_back([this, &label, stopped, id, setup, framed]() {
      e_.L(label);
      if (!framed) e_.sub(rsp, 8);
      if (setup) setup();
      e_.mov(rdi, r13);
      e_.mov(esi, id);
      e_.call_absolute(reinterpret_cast<const void*>(&usgc_jit_runtime_error));
      if (!framed) e_.add(rsp, 8);
      e_.jmp(*stopped, Emitter::T_NEAR);
    });
    return label;
  }

  uint32_t add_operation(OperationSite site) {
    site.function = function_;
    site.block = block_;
    site.instruction = instruction_;
    site.reference_base = reference_base_;
    site.scalar_base = scalar_base_;
    m_.operations_.push_back(site);
    return static_cast<uint32_t>(m_.operations_.size() - 1);
  }
  void call_operation(uint32_t operation) {
    runtime_call_begin();  // the operation reads and writes the frame's slots
    e_.mov(rdi, r13);
    e_.mov(esi, operation);
    e_.mov(rdx, rbp);
    e_.call_absolute(reinterpret_cast<const void*>(&usgc_jit_operation));
    runtime_call_end();
    e_.test(eax, eax);
    e_.jnz(*stopped_, Emitter::T_NEAR);
  }
  void check_stop() {
    e_.cmp(e_.byte[r12], 0);
    e_.jne(*stopped_, Emitter::T_NEAR);
  }

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

  bool block_may_run_frameless(const ir::Function& function, uint32_t b) const {
    std::vector<bool> mentioned(function.locals.size(), false);
    size_t count = 0;
    auto mention = [&](uint32_t local) {
      if (!mentioned[local]) ++count;
      mentioned[local] = true;
    };
    const auto& instructions = function.blocks[b].instructions;
    for (uint32_t i = 0; i < instructions.size(); ++i) {
      const Instruction& instruction = instructions[i];
      for (const Operand& operand : instruction.operands)
        if (operand.kind == OperandKind::Local) mention(operand.local_index);
      for (const Operand& operand : instruction.captures)
        if (operand.kind == OperandKind::Local) mention(operand.local_index);
      if (!instruction.result_name.empty()) mention(instruction.result_index);
      switch (instruction.opcode) {
        case Opcode::Call:
        case Opcode::Go:
        case Opcode::Send:
        case Opcode::Receive:
        case Opcode::Close:
        case Opcode::MakeChan:
          return false;
        case Opcode::New:
        case Opcode::NewArray: {
          const uint32_t site_index = layout_.site_at(function_, b, i);
          const SiteLayout& site = layout_.site(site_index);
          const bool in_caller_frame = std::binary_search(caller_frame_sites_->begin(),
                                                          caller_frame_sites_->end(), site_index);
          if (in_caller_frame || site.decided != OwnershipClass::GoroutinePrivate ||
              site.shape == SiteShape::kDynamicArray ||
              m_.site_layouts_[site_index].size_class == UINT32_MAX)
            return false;
          break;
        }
        case Opcode::StoreGlobal:
          if (global_is_reference_[instruction.global_index]) return false;
          break;
        case Opcode::Branch:
        case Opcode::Jump:
          for (uint32_t target : instruction.target_blocks)
            if (target <= b) return false;  // a back edge polls
          break;
        default:
          break;
      }
    }
    return count <= kCacheRegisterCount;
  }

  void plan_frameless(const ir::Function& function) {
    const uint32_t blocks = static_cast<uint32_t>(function.blocks.size());
    frameless_.assign(blocks, false);
    if (!m_.options_.shrink_wrap || blocks == 0 || references_ > kMaxFramelessRoots) return;
    std::vector<std::vector<uint32_t>> predecessors(blocks);
    for (uint32_t b = 0; b < blocks; ++b)
      if (!function.blocks[b].instructions.empty())
        for (uint32_t target : function.blocks[b].instructions.back().target_blocks)
          predecessors[target].push_back(b);
    std::vector<bool> ok(blocks);
    for (uint32_t b = 0; b < blocks; ++b) ok[b] = block_may_run_frameless(function, b);
    for (bool changed = true; changed;) {
      changed = false;
      std::vector<bool> assigned(function.locals.size(), false);
      for (uint32_t b = 0; b < blocks; ++b)
        if (ok[b])
          for (const Instruction& instruction : function.blocks[b].instructions)
            if (!instruction.result_name.empty()) assigned[instruction.result_index] = true;
      for (uint32_t b = 0; b < blocks; ++b) {
        if (!ok[b]) continue;
        bool keep = b == 0 || !predecessors[b].empty();
        for (uint32_t p : predecessors[b]) keep = keep && ok[p];
        const std::vector<bool>& live_in = liveness_->live_in(b);
        for (uint32_t l = 0; l < live_in.size() && keep; ++l)
          if (live_in[l] && (l >= inputs_ || (b != 0 && assigned[l]))) keep = false;
        if (!keep) {
          ok[b] = false;
          changed = true;
        }
      }
    }
    if (!ok[0]) return;
    bool returns = false;
    for (uint32_t b = 0; b < blocks; ++b)
      if (ok[b] && !function.blocks[b].instructions.empty() &&
          function.blocks[b].instructions.back().opcode == Opcode::Return)
        returns = true;
    if (returns) frameless_ = std::move(ok);
  }

  // Where a slot gets its value when the frame is made: at the function's entry (`live` null)
  // an input's argument word or zero; on an edge from a shrink-wrapped block the local's cache
  // register or its argument word when `live` says it is live there, zero (references) or
  // nothing (scalars: kZero, never read before assigned) otherwise.
  RootSource slot_source(uint32_t local, const std::vector<bool>* live) const {
    RootSource source;
    if (live != nullptr && !(*live)[local]) return source;
    if (live != nullptr)
      if (std::optional<Xbyak::Reg64> cached = cache_.cached(local)) {
        source.kind = RootSource::Kind::kRegister;
        source.reg = *cached;
        return source;
      }
    if (local < inputs_) {
      source.kind = RootSource::Kind::kInput;
      source.input = local;
      return source;
    }
    // Live where the frame is made, neither cached nor an input: plan_frameless rules it out.
    if (live != nullptr) throw Xbyak::Error(Xbyak::ERR_INTERNAL);
    return source;
  }

  // The prologue: RBP, the slots, the frame push, the stack check, the entry poll. At the
  // function's entry (`live` null), or on an edge from a shrink-wrapped block into a framed one
  // (`live`: the target's live-in).
  void emit_frame_entry(const std::vector<bool>* live) {
    e_.push(rbp);
    e_.mov(rbp, rsp);
    std::vector<RootSource> roots;
    for (size_t k = references_; k-- > 0;)
      roots.push_back(slot_source(local_of_reference_slot_[k], live));
    e_.push_roots(roots);
    emit_frame_push(e_, references_);
    // Scalar slots: inputs copied in; zero only where the local may be read before it is
    // assigned (the collector never reads scalar slots); the rest left as they are.
    uint32_t skipped_bytes = 0;
    for (size_t k = scalars_; k-- > 0;) {
      const uint32_t l = local_of_scalar_slot_[k];
      const bool needed = live != nullptr ? (*live)[l] : l < inputs_ || liveness_->live_at_entry(l);
      if (!needed) {
        skipped_bytes += 8;
        continue;
      }
      if (skipped_bytes != 0) e_.sub(rsp, skipped_bytes);
      skipped_bytes = 0;
      e_.push_roots({slot_source(l, live)});
    }
    if (outgoing_bytes_ + skipped_bytes != 0) e_.sub(rsp, outgoing_bytes_ + skipped_bytes);
    // The stack check's error is positioned at the function's entry, wherever the frame is made.
    const uint32_t block = block_, instruction = instruction_;
    block_ = 0;
    instruction_ = 0;
    Xbyak::Label& overflow = error_label_in(ErrorKind::kStackOverflow, /*framed=*/true);
    block_ = block;
    instruction_ = instruction;
    e_.cmp(rsp, e_.qword[r13 + kGoroutineStackLimit]);
    e_.jb(overflow, Emitter::T_NEAR);
    emit_poll(e_);
  }

  // What the slow path of a stub in `instruction` saves. In a framed block: the cache's
  // ColdSave. In a shrink-wrapped one: a temporary frame whose roots are the reference locals
  // live across the instruction or used by it (a barrier's object and value are the slow
  // path's arguments), from their registers or argument words; an allocation's result is not
  // yet defined.
  ColdSave cold_save_for(const Instruction& instruction) {
    if (!frameless()) return cache_.cold_save();
    ColdSave save = cache_.cold_save(/*store_roots=*/false);
    std::vector<bool> live = *live_after();
    if (!instruction.result_name.empty()) live[instruction.result_index] = false;
    for (const Operand& operand : instruction.operands)
      if (operand.kind == OperandKind::Local) live[operand.local_index] = true;
    for (size_t l = 0; l < live.size(); ++l)
      if (!function_layout_->local_is_reference[l]) live[l] = false;
    save.temporary_frame = true;
    for (size_t k = references_; k-- > 0;)
      save.frame_roots.push_back(slot_source(local_of_reference_slot_[k], &live));
    return save;
  }

  // ---- one variant ------------------------------------------------------------------------
  void compile_variant(size_t index) {
    Variant& variant = *variants_[index];
    function_ = variant.function;
    const ir::Function& function = ir_.functions[function_];
    function_layout_ = &layout_.function(function_);
    caller_frame_sites_ = &variant.caller_frame_sites;
    liveness_ = std::make_unique<FunctionLiveness>(function);
    references_ = function_layout_->reference_slots;
    scalars_ = function_layout_->scalar_slots;
    reference_base_ = -static_cast<int32_t>(8 * references_);
    frame_offset_ = reference_base_ - 32;
    scalar_base_ = frame_offset_ - static_cast<int32_t>(8 * scalars_);
    uint32_t outgoing = 0;
    for (const ir::Block& block : function.blocks)
      for (const Instruction& instruction : block.instructions)
        if (instruction.opcode == Opcode::Call && !instruction.callee_unknown)
          outgoing = std::max<uint32_t>(
              outgoing,
              static_cast<uint32_t>(instruction.operands.size() + instruction.captures.size()));
    uint32_t pushed_bytes = 8 * (references_ + 4 + scalars_);
    outgoing_bytes_ = 8 * outgoing;
    if ((pushed_bytes + outgoing_bytes_) % 16 != 0) outgoing_bytes_ += 8;
    inputs_ = function.parameter_count + function.capture_count;
    local_of_reference_slot_.assign(references_, 0);
    local_of_scalar_slot_.assign(scalars_, 0);
    for (uint32_t l = 0; l < function.locals.size(); ++l)
      (function_layout_->local_is_reference[l]
           ? local_of_reference_slot_
           : local_of_scalar_slot_)[function_layout_->slot_of_local[l]] = l;

    e_.align(16);
    uint32_t begin = e_.here();
    if (variant.caller_frame_sites.empty()) m_.base_offsets_[function_] = begin;
    e_.L(*variant.entry);
    stopped_ = &e_.label();
    stopped_frameless_ = &e_.label();
    epilogue_ = &e_.label();
    block_labels_.clear();
    for (size_t b = 0; b < function.blocks.size(); ++b) block_labels_.push_back(&e_.label());
    e_.cold.clear();
    block_count_ = static_cast<uint32_t>(function.blocks.size());
    plan_frameless(function);
    predecessor_count_.assign(block_count_, 0);
    for (const ir::Block& block : function.blocks)
      if (!block.instructions.empty())
        for (uint32_t target : block.instructions.back().target_blocks)
          ++predecessor_count_[target];
    entry_cache_.assign(block_count_, std::nullopt);

    // Prologue: slots (inputs copied in, the rest zero), the frame, the stack check, the poll;
    // none on a shrink-wrapped entry (each edge into the framed blocks makes it).
    block_ = 0;
    instruction_ = 0;
    if (!frameless()) emit_frame_entry(nullptr);

    cache_.start_function([this](uint32_t index) { return local(index); },
                          &function_layout_->local_is_reference);
    for (block_ = 0; block_ < function.blocks.size(); ++block_) {
      e_.L(*block_labels_[block_]);
      // A block with several predecessors starts from the slots; one entered only from an
      // earlier block keeps that block's registers (hand_cache_to_successors).
      if (entry_cache_[block_]) {
        cache_.restore(*entry_cache_[block_]);
      } else {
        cache_.forget_all();
      }
      const auto& instructions = function.blocks[block_].instructions;
      for (instruction_ = 0; instruction_ < instructions.size(); ++instruction_) {
        cache_.start_instruction(instructions[instruction_], live_after());
        compile_instruction(instructions[instruction_]);
      }
    }

    // The epilogue right after the last block (its `ret` falls through), the stopped path after.
    e_.L(*epilogue_);
    emit_frame_pop(e_, frame_offset_, !variant.caller_frame_sites.empty());
    e_.L(*stopped_);
    e_.mov(e_.qword[r13 + kGoroutineUnwound], 1);
    e_.xor_(eax, eax);
    e_.jmp(*epilogue_, Emitter::T_NEAR);
    if (std::find(frameless_.begin(), frameless_.end(), true) != frameless_.end()) {
      e_.L(*stopped_frameless_);  // the stopped path of the shrink-wrapped blocks: no frame
      e_.mov(e_.qword[r13 + kGoroutineUnwound], 1);
      e_.xor_(eax, eax);
      e_.ret();
    }
    // The out-of-line code, after the body. A cold emitter may queue more cold code (none does
    // today): take the queue out before running it, so a push never moves a running function.
    while (!e_.cold.empty()) {
      std::vector<std::function<void()>> cold = std::move(e_.cold);
      e_.cold.clear();
      for (const std::function<void()>& emit : cold) emit();
    }

    std::string name = function.name;
    if (!variant.caller_frame_sites.empty()) {
      name += "[caller frame:";
      for (uint32_t site : variant.caller_frame_sites) name += " " + std::to_string(site);
      name += "]";
    }
    m_.functions_.push_back(
        {name, function_, variant.caller_frame_sites, begin, e_.here() - begin});
  }

  // ---- instructions ------------------------------------------------------------------------
  void compile_instruction(const Instruction& instruction) {
    switch (instruction.opcode) {
      case Opcode::Copy: {
        if (!result_live(instruction)) return;
        const Operand& source = instruction.operands[0];
        if (source.kind != OperandKind::Local) {
          Xbyak::Reg64 destination = cache_.define(instruction.result_index);
          if (source.kind == OperandKind::Null || source.integer_value == 0) {
            e_.xor_(destination.cvt32(), destination.cvt32());
          } else {
            e_.mov(destination, source.integer_value);
          }
          return;
        }
        store_result(instruction, value(source, rax));
        return;
      }
      case Opcode::Binary:
        return compile_binary(instruction);
      case Opcode::New:
      case Opcode::NewArray:
      case Opcode::MakeChan:
        return compile_allocation(instruction);
      case Opcode::LoadField:
      case Opcode::StoreField:
        return compile_field(instruction);
      case Opcode::LoadIndex:
      case Opcode::StoreIndex:
        return compile_element(instruction);
      case Opcode::Length: {
        Xbyak::Label& null = e_.label();
        load(rax, instruction.operands[0]);
        if (!result_live(instruction)) return;
        e_.test(rax, rax);
        e_.jz(null);
        e_.mov(rax, e_.qword[rax]);
        e_.L(null);
        store_result(instruction, rax);
        return;
      }
      case Opcode::LoadGlobal:
      case Opcode::StoreGlobal:
        return compile_global(instruction);
      case Opcode::Call:
        if (instruction.callee_unknown) return call_operation(add_operation({}));
        return compile_call(instruction);
      case Opcode::Go:
      case Opcode::Send:
      case Opcode::Receive:
      case Opcode::Close:
        return call_operation(add_operation({}));
      case Opcode::Branch: {
        const Operand& condition = instruction.operands[0];
        Condition taken = Condition::kNotEqual;
        if (pending_compare_) {
          taken = *pending_compare_;  // the compare just before set the flags
          pending_compare_.reset();
        } else if (condition.kind == OperandKind::Local) {
          Xbyak::Reg64 reg = cache_.read(condition.local_index);
          e_.test(reg, reg);
        } else {
          if (!frameless()) cache_.store_dirty(live_after());
          const uint32_t target = instruction.target_blocks[condition.integer_value != 0 ? 0 : 1];
          hand_cache_to_successors({target});
          edge(target, true);
          return;
        }
        if (!frameless()) cache_.store_dirty(live_after());  // plain moves: the flags survive
        hand_cache_to_successors(instruction.target_blocks);
        if (frameless())
          return frameless_two_way(taken, instruction.target_blocks[0],
                                   instruction.target_blocks[1]);
        two_way(taken, instruction.target_blocks[0], instruction.target_blocks[1]);
        return;
      }
      case Opcode::Jump:
        if (!frameless()) cache_.store_dirty(live_after());
        hand_cache_to_successors(instruction.target_blocks);
        edge(instruction.target_blocks[0], true);
        return;
      case Opcode::Return:
        if (!instruction.operands.empty()) load(rax, instruction.operands[0]);
        if (frameless()) {
          e_.ret();  // no frame to pop
        } else if (block_ + 1 != block_count_) {
          e_.jmp(*epilogue_, Emitter::T_NEAR);
        }
        return;
    }
  }

  // Successors entered only from this block, later in the order, start with its registers
  // (after the live dirty ones were stored: the slots agree). An edge into framed code from a
  // block without the frame makes the slots of the target's live-in from these registers, so
  // they agree there too. Back edges poll and start from the slots.
  void hand_cache_to_successors(const std::vector<uint32_t>& targets) {
    const RegisterCache::Snapshot state = cache_.snapshot();
    for (uint32_t target : targets)
      if (target > block_ && predecessor_count_[target] == 1) entry_cache_[target] = state;
  }

  // A jump to block `target`; a back edge (to this or an earlier block) polls and checks the
  // stop flag first, as the interpreter's checkpoint does. `last`: nothing follows in this block,
  // so a forward edge to the next block falls through.
  void edge(uint32_t target, bool last) {
    if (frameless() && !frameless_[target]) {
      // Into the framed blocks (a forward edge: a shrink-wrapped path has no back edge).
      emit_frame_entry(&liveness_->live_in(target));
      if (last && target == block_ + 1) return;
      e_.jmp(*block_labels_[target], Emitter::T_NEAR);
      return;
    }
    if (target <= block_) {
      emit_poll(e_);
      check_stop();
    } else if (last && target == block_ + 1) {
      return;
    }
    e_.jmp(*block_labels_[target], Emitter::T_NEAR);
  }

  // The conditions a compare leaves in the flags (signed, as the IR's ints).
  enum class Condition : uint8_t { kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual };
  static Condition negate(Condition c) {
    switch (c) {
      case Condition::kEqual:
        return Condition::kNotEqual;
      case Condition::kNotEqual:
        return Condition::kEqual;
      case Condition::kLess:
        return Condition::kGreaterEqual;
      case Condition::kLessEqual:
        return Condition::kGreater;
      case Condition::kGreater:
        return Condition::kLessEqual;
      case Condition::kGreaterEqual:
        break;
    }
    return Condition::kLess;
  }
  void jump_if(Condition c, const Xbyak::Label& target) {
    switch (c) {
      case Condition::kEqual:
        return e_.je(target, Emitter::T_NEAR);
      case Condition::kNotEqual:
        return e_.jne(target, Emitter::T_NEAR);
      case Condition::kLess:
        return e_.jl(target, Emitter::T_NEAR);
      case Condition::kLessEqual:
        return e_.jle(target, Emitter::T_NEAR);
      case Condition::kGreater:
        return e_.jg(target, Emitter::T_NEAR);
      case Condition::kGreaterEqual:
        return e_.jge(target, Emitter::T_NEAR);
    }
  }
  // To `taken` when the flags satisfy `c`, else to `otherwise`. Forward edges jump straight to
  // their block (falling through to the next one); a back edge polls on its own path.
  void two_way(Condition c, uint32_t taken, uint32_t otherwise) {
    const uint32_t next = block_ + 1;
    if (taken > block_ && otherwise > block_) {
      if (otherwise == next) return jump_if(c, *block_labels_[taken]);
      if (taken == next) return jump_if(negate(c), *block_labels_[otherwise]);
      jump_if(c, *block_labels_[taken]);
      e_.jmp(*block_labels_[otherwise], Emitter::T_NEAR);
      return;
    }
    Xbyak::Label& else_path = e_.label();
    jump_if(negate(c), else_path);
    edge(taken, false);
    e_.L(else_path);
    edge(otherwise, true);
  }

  // two_way from a shrink-wrapped block (both edges forward): an edge to a framed block makes
  // the frame on its way (emit_frame_entry, after the jump on the flags: it clobbers them).
  void frameless_two_way(Condition c, uint32_t taken, uint32_t otherwise) {
    if (frameless_[taken] && frameless_[otherwise]) return two_way(c, taken, otherwise);
    if (frameless_[taken]) {
      jump_if(c, *block_labels_[taken]);
      return edge(otherwise, true);
    }
    if (frameless_[otherwise]) {
      jump_if(negate(c), *block_labels_[otherwise]);
      return edge(taken, true);
    }
    Xbyak::Label& else_path = e_.label();
    jump_if(negate(c), else_path);
    edge(taken, false);
    e_.L(else_path);
    edge(otherwise, true);
  }

  // The condition of a compare, or nothing for the other operators.
  static std::optional<Condition> condition_of(ir::BinaryOperator op) {
    switch (op) {
      case ir::BinaryOperator::Lt:
        return Condition::kLess;
      case ir::BinaryOperator::Le:
        return Condition::kLessEqual;
      case ir::BinaryOperator::Gt:
        return Condition::kGreater;
      case ir::BinaryOperator::Ge:
        return Condition::kGreaterEqual;
      case ir::BinaryOperator::Eq:
        return Condition::kEqual;
      case ir::BinaryOperator::Ne:
        return Condition::kNotEqual;
      default:
        return std::nullopt;
    }
  }

  // A compare whose result only the next instruction, a branch, reads: the branch jumps on the
  // flags (no setcc, no register, no slot).
  bool compare_feeds_next_branch(const Instruction& instruction) const {
    const auto& instructions = ir_.functions[function_].blocks[block_].instructions;
    if (instruction_ + 1 >= instructions.size() || instruction.result_name.empty()) return false;
    const Instruction& next = instructions[instruction_ + 1];
    return next.opcode == Opcode::Branch && next.operands[0].kind == OperandKind::Local &&
           next.operands[0].local_index == instruction.result_index &&
           !liveness_->live_after(block_, instruction_ + 1, instruction.result_index);
  }

  void compile_binary(const Instruction& instruction) {
    const Operand& left = instruction.operands[0];
    const Operand& right = instruction.operands[1];
    const ir::BinaryOperator op = instruction.binary_operator;
    if (std::optional<Condition> condition = condition_of(op)) {
      const bool fused = compare_feeds_next_branch(instruction);
      if (!fused && !result_live(instruction)) return;
      Xbyak::Reg64 a = value(left, rax);
      if (is_small_constant(right)) {
        e_.cmp(a, static_cast<uint32_t>(static_cast<int32_t>(right.integer_value)));
      } else {
        e_.cmp(a, value(right, rcx));
      }
      if (fused) {
        pending_compare_ = condition;
        return;
      }
    } else if (op == ir::BinaryOperator::Add || op == ir::BinaryOperator::Sub ||
               op == ir::BinaryOperator::Mul) {
      if (!result_live(instruction)) return;
      if (is_small_constant(right) && left.kind == OperandKind::Local) {
        // Straight into the result's register: `mov r, a; add r, imm`.
        Xbyak::Reg64 a = value(left, rax);
        Xbyak::Reg64 destination = cache_.define(instruction.result_index);
        if (destination != a) e_.mov(destination, a);
        const uint32_t imm = static_cast<uint32_t>(static_cast<int32_t>(right.integer_value));
        if (op == ir::BinaryOperator::Add) e_.add(destination, imm);
        if (op == ir::BinaryOperator::Sub) e_.sub(destination, imm);
        if (op == ir::BinaryOperator::Mul) e_.imul(destination, destination, static_cast<int>(imm));
        return;
      }
      load(rax, left);
      if (is_small_constant(right)) {
        const uint32_t imm = static_cast<uint32_t>(static_cast<int32_t>(right.integer_value));
        if (op == ir::BinaryOperator::Add) e_.add(rax, imm);
        if (op == ir::BinaryOperator::Sub) e_.sub(rax, imm);
        if (op == ir::BinaryOperator::Mul) e_.imul(rax, rax, static_cast<int>(imm));
      } else {
        Xbyak::Reg64 b = value(right, rcx);
        if (op == ir::BinaryOperator::Add) e_.add(rax, b);
        if (op == ir::BinaryOperator::Sub) e_.sub(rax, b);
        if (op == ir::BinaryOperator::Mul) e_.imul(rax, b);
      }
      return store_result(instruction, rax);
    } else {
      load(rax, left);
      load(rcx, right);
    }
    switch (op) {
      case ir::BinaryOperator::Add:
      case ir::BinaryOperator::Sub:
      case ir::BinaryOperator::Mul:
        break;  // above
      case ir::BinaryOperator::Div:
      case ir::BinaryOperator::Rem: {
        bool divide = instruction.binary_operator == ir::BinaryOperator::Div;
        Xbyak::Label& by_zero = error_label(ErrorKind::kDivideByZero);
        Xbyak::Label& normal = e_.label();
        Xbyak::Label& done = e_.label();
        e_.test(rcx, rcx);
        e_.jz(by_zero, Emitter::T_NEAR);
        e_.cmp(rcx, -1);
        e_.jne(normal);
        if (divide) {
          e_.neg(rax);  // Go: MinInt64 / -1 == MinInt64
        } else {
          e_.xor_(eax, eax);
        }
        e_.jmp(done);
        e_.L(normal);
        e_.cqo();
        e_.idiv(rcx);
        if (!divide) e_.mov(rax, rdx);
        e_.L(done);
        break;
      }
      case ir::BinaryOperator::Lt:
      case ir::BinaryOperator::Le:
      case ir::BinaryOperator::Gt:
      case ir::BinaryOperator::Ge:
      case ir::BinaryOperator::Eq:
      case ir::BinaryOperator::Ne: {
        switch (instruction.binary_operator) {
          case ir::BinaryOperator::Lt:
            e_.setl(al);
            break;
          case ir::BinaryOperator::Le:
            e_.setle(al);
            break;
          case ir::BinaryOperator::Gt:
            e_.setg(al);
            break;
          case ir::BinaryOperator::Ge:
            e_.setge(al);
            break;
          case ir::BinaryOperator::Eq:
            e_.sete(al);
            break;
          default:
            e_.setne(al);
            break;
        }
        e_.movzx(eax, al);
        break;
      }
      case ir::BinaryOperator::And:
        e_.and_(rax, rcx);
        e_.and_(eax, 1);
        break;
      case ir::BinaryOperator::Or:
        e_.or_(rax, rcx);
        e_.and_(eax, 1);
        break;
    }
    store_result(instruction, rax);
  }

  // ---- allocation --------------------------------------------------------------------------
  void compile_allocation(const Instruction& instruction) {
    const uint32_t site_index = layout_.site_at(function_, block_, instruction_);
    const SiteLayout& site = layout_.site(site_index);
    const bool in_caller_frame =
        std::binary_search(caller_frame_sites_->begin(), caller_frame_sites_->end(), site_index);
    const OwnershipClass decided = in_caller_frame ? OwnershipClass::StackLocal : site.decided;
    const usgc_ownership ownership = usgc_class_of(decided);
    const uint32_t counter =
        in_caller_frame ? static_cast<uint32_t>(layout_.site_count()) + site_index : site_index;

    if (instruction.opcode == Opcode::MakeChan) {
      OperationSite operation;
      operation.site = site_index;
      operation.counter = counter;
      operation.ownership = ownership;
      return call_operation(add_operation(operation));
    }
    // The length check comes first, as in the interpreter (then the stress collection).
    const bool dynamic = site.shape == SiteShape::kDynamicArray;
    if (instruction.opcode == Opcode::NewArray) {
      const Operand& length = instruction.operands[0];
      if (!(length.kind == OperandKind::Integer && length.integer_value >= 0)) {
        Xbyak::Label& negative =
            error_label(ErrorKind::kNegativeLength, [this]() { e_.mov(rdx, rax); });
        load(rax, length);
        e_.test(rax, rax);
        e_.js(negative, Emitter::T_NEAR);
      }
    }
    if (m_.options_.gc_stress) {
      // As a stub's slow path does (the refill that collects): the dirty references to their
      // slots, the cache registers saved around the call. So --gc-stress collects with exactly
      // the register state a refill sees, at every allocation.
      const ColdSave save = cold_save_for(instruction);
      e_.save(save);
      e_.mov(rdi, r13);
      e_.call_absolute(reinterpret_cast<const void*>(&usgc_jit_gc_stress));
      e_.restore(save);
    }
    Xbyak::Label& out_of_memory = error_label(ErrorKind::kOutOfMemory);
    const usgc_type_layout* type_layout = &m_.site_layouts_[site_index];
    const bool inline_layout = type_layout->size_class != UINT32_MAX;
    if (dynamic) {
      runtime_call_begin();
      if (instruction.opcode == Opcode::NewArray) {
        load(rsi, instruction.operands[0]);
      } else {
        e_.xor_(esi, esi);  // `new [N]T` too large to lay out bounded: as the interpreter does
      }
      e_.mov(edi, site.type);
      e_.mov(edx, static_cast<uint32_t>(ownership));
      e_.call_absolute(reinterpret_cast<const void*>(&usgc_alloc_array));
      runtime_call_end();
      e_.test(rax, rax);
      e_.jz(out_of_memory, Emitter::T_NEAR);
    } else if (decided == OwnershipClass::StackLocal && inline_layout) {
      if (type_layout->slot_bytes / 8 - 1 > 8) cache_.evict(rdi);  // zeroed with `rep stosq`
      e_.cold_save = cold_save_for(instruction);
      emit_stack_alloc(e_, type_layout, out_of_memory);
    } else if (decided == OwnershipClass::GoroutinePrivate && inline_layout) {
      e_.cold_save = cold_save_for(instruction);
      emit_private_alloc(e_, type_layout, out_of_memory);
    } else if (decided == OwnershipClass::StackLocal) {
      runtime_call_begin();
      e_.mov(rdi, r13);
      e_.mov(rsi, reinterpret_cast<uint64_t>(type_layout));
      e_.call_absolute(reinterpret_cast<const void*>(&usgc_jit_alloc_stack_slow));
      runtime_call_end();
      e_.test(rax, rax);
      e_.jz(out_of_memory, Emitter::T_NEAR);
    } else {
      runtime_call_begin();
      e_.mov(edi, site.type);
      e_.mov(esi, static_cast<uint32_t>(ownership));
      e_.call_absolute(reinterpret_cast<const void*>(&usgc_alloc));
      runtime_call_end();
      e_.test(rax, rax);
      e_.jz(out_of_memory, Emitter::T_NEAR);
    }
    if (site.shape == SiteShape::kBoundedArray) {
      if (site.bounded_length <= INT32_MAX) {
        e_.mov(e_.qword[rax], static_cast<uint32_t>(site.bounded_length));
      } else {
        e_.mov(rcx, site.bounded_length);
        e_.mov(e_.qword[rax], rcx);
      }
    }
    store_result(instruction, rax);
    if (m_.options_.count_allocations)
      e_.inc(e_.qword[r13 + kGoroutineCounters + static_cast<int32_t>(8 * counter)]);
  }

  // ---- fields, elements, globals ----------------------------------------------------------
  bool value_may_be_stack(const Operand& value) const {
    return value.kind == OperandKind::Local && may_stack_[function_][value.local_index];
  }

  void compile_field(const Instruction& instruction) {
    const Operand& base = instruction.operands[0];
    const ir::TypeId base_type = ir_.functions[function_].locals[base.local_index].type;
    const bool reference = layout_.struct_layout(layout_.struct_of_pointer(base_type))
                               .field_is_reference[instruction.field_index];
    Xbyak::Label& nil = error_label(ErrorKind::kNilField);
    const int32_t offset = static_cast<int32_t>(8 * instruction.field_index);
    if (instruction.opcode == Opcode::LoadField) {
      Xbyak::Reg64 object = value(base, rax);
      e_.test(object, object);
      e_.jz(nil, Emitter::T_NEAR);
      if (!result_live(instruction)) return;
      Xbyak::Reg64 destination = cache_.define(instruction.result_index);
      e_.mov(destination, e_.qword[object + offset]);
      return;
    }
    load(rax, base);
    e_.test(rax, rax);
    e_.jz(nil, Emitter::T_NEAR);
    const Xbyak::Address field = e_.qword[rax + offset];
    const Operand& stored = instruction.operands[1];
    if (!reference && stored.kind == OperandKind::Local) {
      e_.mov(field, value(stored, rcx));
      return;
    }
    load(rcx, stored);
    if (!reference || stored.kind == OperandKind::Null) {
      e_.mov(field, rcx);  // a null store needs no barrier: nothing is published or kept
    } else {
      e_.cold_save = cold_save_for(instruction);
      emit_barrier(e_, field, rcx, value_may_be_stack(stored));
    }
  }

  void compile_element(const Instruction& instruction) {
    const Operand& base = instruction.operands[0];
    const ir::TypeId base_type = ir_.functions[function_].locals[base.local_index].type;
    const bool reference = ir_.types.is_reference(ir_.types.node(base_type).element);
    Xbyak::Label& out_of_range = error_label(ErrorKind::kIndex, [this]() {
      e_.mov(rdx, rcx);
      e_.mov(rcx, rax);
    });
    load(rax, base);
    load(rcx, instruction.operands[1]);
    e_.test(rax, rax);
    e_.jz(out_of_range, Emitter::T_NEAR);
    e_.cmp(rcx, e_.qword[rax]);
    e_.jae(out_of_range, Emitter::T_NEAR);
    const Xbyak::Address element = e_.qword[rax + rcx * 8 + 8];
    if (instruction.opcode == Opcode::LoadIndex) {
      if (!result_live(instruction)) return;
      e_.mov(rax, element);
      store_result(instruction, rax);
      return;
    }
    const Operand& stored = instruction.operands[2];
    load(rdx, stored);
    if (!reference || stored.kind == OperandKind::Null) {
      e_.mov(element, rdx);
    } else {
      e_.cold_save = cold_save_for(instruction);
      emit_barrier(e_, element, rdx, value_may_be_stack(stored));
    }
  }

  void compile_global(const Instruction& instruction) {
    const uint32_t slot = global_slots_[instruction.global_index];
    const bool reference = global_is_reference_[instruction.global_index];
    const int32_t table = reference ? kGoroutineReferenceGlobals : kGoroutineScalarGlobals;
    if (instruction.opcode == Opcode::LoadGlobal) {
      if (!result_live(instruction)) return;
      e_.mov(rcx, e_.qword[r13 + table]);
      e_.mov(rax, e_.qword[rcx + static_cast<int32_t>(8 * slot)]);
      store_result(instruction, rax);
      return;
    }
    if (!reference) {
      load(rdx, instruction.operands[0]);
      e_.mov(rcx, e_.qword[r13 + table]);
      e_.mov(e_.qword[rcx + static_cast<int32_t>(8 * slot)], rdx);
      return;
    }
    load(rdx, instruction.operands[0]);
    runtime_call_begin();  // publication: may collect
    e_.mov(rsi, rdx);
    e_.mov(rcx, e_.qword[r13 + table]);
    e_.lea(rdi, e_.ptr[rcx + static_cast<int32_t>(8 * slot)]);
    e_.call_absolute(reinterpret_cast<const void*>(&usgc_global_store));
    runtime_call_end();
  }

  // ---- calls -------------------------------------------------------------------------------
  void compile_call(const Instruction& instruction) {
    uint32_t input = 0;
    auto pass = [&](const Operand& operand) {
      const Xbyak::Address argument = e_.qword[rsp + static_cast<int32_t>(8 * input++)];
      if (operand.kind == OperandKind::Local) {
        if (std::optional<Xbyak::Reg64> cached = cache_.cached(operand.local_index)) {
          e_.mov(argument, *cached);
        } else {
          e_.mov(rax, local(operand.local_index));
          e_.mov(argument, rax);
        }
      } else if (is_small_constant(operand)) {
        e_.mov(argument, operand.integer_value);  // imm32, sign-extended
      } else {
        e_.mov(rax, operand.integer_value);
        e_.mov(argument, rax);
      }
    };
    for (const Operand& operand : instruction.operands) pass(operand);
    for (const Operand& operand : instruction.captures) pass(operand);
    // The callee may collect (its roots: the slots) and clobbers every cache register. The
    // result's old value is dead: the call overwrites it.
    std::vector<bool> live = *live_after();
    if (!instruction.result_name.empty()) live[instruction.result_index] = false;
    cache_.store_dirty(&live);
    cache_.forget_all();
    const std::vector<uint32_t>* sites =
        layout_.caller_frame_sites(function_, block_, instruction_);
    size_t callee =
        variant_of(instruction.callee_index, sites != nullptr ? *sites : std::vector<uint32_t>{});
    e_.call(*variants_[callee]->entry);
    check_stop();
    store_result(instruction, rax);
  }

 public:
  // Global slots as RunState numbers them (run_state.cpp): references and scalars apart.
  void number_globals() {
    uint32_t references = 0, scalars = 0;
    for (const ir::Global& global : ir_.globals) {
      bool reference = ir_.types.is_reference(global.type);
      global_is_reference_.push_back(reference);
      global_slots_.push_back(reference ? references++ : scalars++);
    }
  }

 private:
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
  Xbyak::Label* stopped_frameless_ = nullptr;
  int32_t frame_offset_ = 0;
  int32_t scalar_base_ = 0;
  uint32_t block_count_ = 0;
  std::unique_ptr<FunctionLiveness> liveness_;
  RegisterCache cache_;
  std::optional<Condition> pending_compare_;  // set by a compare fused with the next branch
  Xbyak::Label* stopped_ = nullptr;
  Xbyak::Label* epilogue_ = nullptr;
  std::vector<Xbyak::Label*> block_labels_;
};

CompiledModule::CompiledModule(const ir::Module& module, const escape::EscapeAnalysis& analysis,
                               interpreter::ProgramLayout layout, const CompileOptions& options)
    : module_(module), analysis_(analysis), layout_(std::move(layout)), options_(options) {}

CompiledModule::~CompiledModule() {
  withdraw_compiled_module(visible_);  // before the code goes away (a debugger may read it)
  if (registered_for_safepoints_) (void)usgc_safepoint_unregister_polling_code(mapping_);
  if (mapping_ != nullptr) (void)kernel::unmap_code(mapping_, mapping_bytes_);
}

const void* CompiledModule::entry(std::string_view function_name) const {
  for (uint32_t f = 0; f < module_.functions.size(); ++f)
    if (module_.functions[f].name == function_name) return function_code(f);
  return nullptr;
}

std::unique_ptr<CompiledModule> CompiledModule::compile(const ir::Module& module,
                                                        const escape::EscapeAnalysis& analysis,
                                                        const CompileOptions& options,
                                                        std::string* error) {
  std::optional<interpreter::ProgramLayout> layout =
      interpreter::ProgramLayout::build(module, analysis, error, /*check_words=*/false);
  if (!layout) return nullptr;
  std::unique_ptr<CompiledModule> compiled(
      new CompiledModule(module, analysis, std::move(*layout), options));
  const size_t sites = compiled->layout_.site_count();
  compiled->site_layouts_ = std::make_unique<usgc_type_layout[]>(sites == 0 ? 1 : sites);
  for (size_t s = 0; s < sites; ++s) {
    const SiteLayout& site = compiled->layout_.site(static_cast<uint32_t>(s));
    usgc_type_layout& type_layout = compiled->site_layouts_[s];
    if (site.shape == SiteShape::kDynamicArray ||
        usgc_type_layout_of(site.type, &type_layout) != 0) {
      type_layout.size_class = UINT32_MAX;  // never inlined
    }
  }
  {
    // The arena floor: one tiny STACK_LOCAL object each goroutine makes before its first
    // compiled frame, so the arena's top is never null under a compiled frame (stubs.hpp).
    static const usgc_type_id floor_type = [] {
      usgc_type_info info = {"usgc-jit-arena-floor", USGC_KIND_OBJECT, 8, nullptr, 0};
      return usgc_register_type(&info);
    }();
    if (floor_type == 0 || usgc_type_layout_of(floor_type, &compiled->arena_floor_layout_) != 0) {
      *error = module.file_name + ": cannot register the JIT's arena floor type";
      return nullptr;
    }
  }
  compiled->base_offsets_.assign(module.functions.size(), 0);

  size_t instructions = 0;
  for (const ir::Function& function : module.functions)
    for (const ir::Block& block : function.blocks) instructions += block.instructions.size();
  size_t capacity = 4096 + 256 * instructions;
  std::vector<uint8_t> buffer;
  for (int attempt = 0;; ++attempt) {
    buffer.assign(capacity, 0);
    compiled->operations_.clear();
    compiled->errors_.clear();
    compiled->functions_.clear();
    try {
      Emitter emitter(capacity, buffer.data());
      Compiler compiler(*compiled, emitter);
      compiler.number_globals();
      compiler.compile_all();
      emitter.ready();
      compiled->code_bytes_ = emitter.getSize();
      compiled->marks_ = std::move(emitter.marks);
      break;
    } catch (const Xbyak::Error& failure) {
      if (failure == Xbyak::ERR_CODE_IS_TOO_BIG && attempt < 4) {
        capacity *= 4;
        continue;
      }
      *error = module.file_name + ": code generation failed: " + failure.what();
      return nullptr;
    }
  }

  const size_t page = kernel::os_page_size();
  const size_t mapping_bytes = (compiled->code_bytes_ + page - 1) / page * page;
  kernel::Result<void*> mapped = kernel::map_code_writable(mapping_bytes);
  if (!mapped.ok()) {
    *error = module.file_name + ": cannot map " + std::to_string(mapping_bytes) +
             " bytes for code: " + std::strerror(mapped.error());
    return nullptr;
  }
  compiled->mapping_ = mapped.value();
  compiled->mapping_bytes_ = mapping_bytes;
  std::memcpy(compiled->mapping_, buffer.data(), compiled->code_bytes_);
  if (options.after_code_written != nullptr)
    options.after_code_written(compiled->mapping_, mapping_bytes, options.hook_argument);
  kernel::Status sealed = kernel::seal_code_executable(compiled->mapping_, mapping_bytes);
  if (!sealed.ok()) {
    *error = module.file_name +
             ": cannot make the code executable (mprotect): " + std::strerror(sealed.error());
    return nullptr;
  }
  compiled->code_ = static_cast<const uint8_t*>(compiled->mapping_);
  // The code polls at every entry and back edge; its inline sequences are not safe points, so
  // asynchronous safepoints must leave it alone (usgc/safepoint.h).
  int registered = usgc_safepoint_register_polling_code(compiled->mapping_, mapping_bytes);
  if (registered != 0) {
    *error = module.file_name +
             ": cannot register the code with the safepoints: " + std::strerror(registered) +
             " (at most " + std::to_string(USGC_MAX_POLLING_CODE_RANGES) +
             " modules loaded at once)";
    return nullptr;
  }
  compiled->registered_for_safepoints_ = true;
  std::vector<CompiledSymbol> symbols;
  for (const CompiledFunction& function : compiled->functions_)
    symbols.push_back(
        {function.function_index == UINT32_MAX ? function.name : "usir:" + function.name,
         compiled->code_ + function.offset, function.size});
  compiled->visible_ = announce_compiled_module(module.file_name, symbols);
  return compiled;
}

}  // namespace usgc::jitgen::x86_64
