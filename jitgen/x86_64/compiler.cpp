// jitgen/x86_64/compiler.cpp — the compiler's driver: variants, the entry thunk, frame addressing,
// out-of-line errors and operations, one variant, calls.
// The design and the invariants are in compiler.hpp.
#include <algorithm>
#include <string>

#include "jitgen/x86_64/compiler.hpp"

namespace usgc::jitgen::x86_64 {

void Compiler::compile_all() {
  emit_enter_thunk();
  for (uint32_t f = 0; f < ir_.functions.size(); ++f) variant_of(f, {});
  for (size_t v = 0; v < variants_.size(); ++v) compile_variant(v);  // grows while compiling
}

size_t Compiler::variant_of(uint32_t function, const std::vector<uint32_t>& sites) {
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

// The thunk's frame, RBP-relative (the unwind stub finds it through JitGoroutine::entry_frame):
//     [rbp - 8 .. rbp - 40]  RBX R12 R13 R14 R15 (the C caller's)
//     [rbp - 48]             the enclosing thunk's entry_frame (a nested entry on the goroutine)
//     [rbp - 56]             mutator->frames at entry
//     [rbp - 64]             mutator->arena_top at entry
// then the inputs, 16-aligned, at the callee's [rsp + 8 + 8 i].
namespace {
constexpr int32_t kThunkEnclosing = -48;
constexpr int32_t kThunkFrames = -56;
constexpr int32_t kThunkArenaTop = -64;
constexpr int32_t kMutatorFrames = offsetof(usgc_mutator, frames);
constexpr int32_t kMutatorArenaTop = offsetof(usgc_mutator, arena_top);
}  // namespace

void Compiler::emit_enter_thunk() {
  uint32_t begin = e_.here();
  Xbyak::Label& leave = e_.label();
  unwind_ = &e_.label();
  runtime_error_ = &e_.label();
  e_.push(rbp);
  e_.mov(rbp, rsp);
  e_.push(rbx);
  e_.push(r12);
  e_.push(r13);
  e_.push(r14);
  e_.push(r15);
  e_.push(e_.qword[rsi + kGoroutineEntryFrame]);
  e_.mov(r13, rsi);
  e_.mov(r15, e_.qword[rsi + offsetof(JitGoroutine, mutator)]);
  e_.push(e_.qword[r15 + kMutatorFrames]);
  e_.push(e_.qword[r15 + kMutatorArenaTop]);
  e_.mov(e_.qword[r13 + kGoroutineEntryFrame], rbp);
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
  e_.L(leave);
  e_.mov(rcx, e_.qword[rbp + kThunkEnclosing]);
  e_.mov(e_.qword[r13 + kGoroutineEntryFrame], rcx);
  e_.lea(rsp, e_.ptr[rbp - 40]);
  e_.pop(r15);
  e_.pop(r14);
  e_.pop(r13);
  e_.pop(r12);
  e_.pop(rbx);
  e_.pop(rbp);
  e_.ret();
  m_.functions_.push_back({"usgc_jit_enter", UINT32_MAX, {}, begin, e_.here() - begin});

  // The exits of a stopping run. RSP stays below the abandoned frames until they are unlinked,
  // so nothing overwrites a linked frame; the code is polling code (never stopped
  // asynchronously), so no collection sees the frames half unlinked.
  begin = e_.here();
  e_.L(*unwind_);
  e_.mov(rbp, e_.qword[r13 + kGoroutineEntryFrame]);
  e_.mov(rcx, e_.qword[rbp + kThunkFrames]);
  e_.mov(e_.qword[r15 + kMutatorFrames], rcx);
  e_.mov(rcx, e_.qword[rbp + kThunkArenaTop]);
  e_.mov(e_.qword[r15 + kMutatorArenaTop], rcx);
  e_.mov(e_.qword[r13 + kGoroutineUnwound], 1);
  e_.xor_(eax, eax);
  e_.jmp(leave, Emitter::T_NEAR);
  e_.L(*runtime_error_);
  e_.and_(rsp, -16);
  e_.mov(rdi, r13);
  e_.call_absolute(reinterpret_cast<const void*>(&usgc_jit_runtime_error));
  e_.jmp(*unwind_, Emitter::T_NEAR);
  m_.functions_.push_back({"usgc_jit_unwind", UINT32_MAX, {}, begin, e_.here() - begin});
  m_.unwind_offset_ = begin;
}

Xbyak::Address Compiler::local(uint32_t index) const {
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

Xbyak::Reg64 Compiler::value(const Operand& operand, const Xbyak::Reg64& scratch) {
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

void Compiler::load(const Xbyak::Reg64& reg, const Operand& operand) {
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

bool Compiler::is_small_constant(const Operand& operand) {
  return operand.kind != OperandKind::Local && operand.integer_value >= INT32_MIN &&
         operand.integer_value <= INT32_MAX;  // Null: integer_value 0
}

bool Compiler::result_live(const Instruction& instruction) const {
  return !instruction.result_name.empty() &&
         liveness_->live_after(block_, instruction_, instruction.result_index);
}

void Compiler::store_result(const Instruction& instruction, const Xbyak::Reg64& reg) {
  if (!result_live(instruction)) return;
  Xbyak::Reg64 destination = cache_.define(instruction.result_index);
  if (destination != reg) e_.mov(destination, reg);
}

const std::vector<bool>* Compiler::live_after() const {
  return &liveness_->live_after_set(block_, instruction_);
}

void Compiler::runtime_call_begin() {
  cache_.store_dirty();
  cache_.forget_all();
}

Xbyak::Label& Compiler::error_label(ErrorKind kind, std::function<void()> setup) {
  uint32_t id = static_cast<uint32_t>(m_.errors_.size());
  m_.errors_.push_back({kind, function_, block_, instruction_});
  Xbyak::Label& label = e_.label();
  e_.cold.push_back([this, &label, id, setup]() {
    e_.L(label);
    if (setup) setup();
    e_.mov(esi, id);
    e_.jmp(*runtime_error_, Emitter::T_NEAR);
  });
  return label;
}

uint32_t Compiler::add_operation(OperationSite site) {
  site.function = function_;
  site.block = block_;
  site.instruction = instruction_;
  site.reference_base = reference_base_;
  site.scalar_base = scalar_base_;
  m_.operations_.push_back(site);
  return static_cast<uint32_t>(m_.operations_.size() - 1);
}

void Compiler::call_operation(uint32_t operation) {
  runtime_call_begin();  // the operation reads and writes the frame's slots
  e_.mov(rdi, r13);
  e_.mov(esi, operation);
  e_.mov(rdx, rbp);
  e_.call_absolute(reinterpret_cast<const void*>(&usgc_jit_operation));
  runtime_call_end();
  e_.test(eax, eax);
  e_.jnz(*unwind_, Emitter::T_NEAR);
}

void Compiler::check_stop() {
  e_.cmp(e_.byte[r12], 0);
  e_.jne(*unwind_, Emitter::T_NEAR);
}

bool Compiler::variant_moves_arena(const ir::Function& function) const {
  if (!caller_frame_sites_->empty()) return true;  // keeps the arena anyway
  for (uint32_t b = 0; b < function.blocks.size(); ++b) {
    const auto& instructions = function.blocks[b].instructions;
    for (uint32_t i = 0; i < instructions.size(); ++i) {
      const Instruction& instruction = instructions[i];
      switch (instruction.opcode) {
        case Opcode::Call: {
          if (instruction.callee_unknown) return true;
          const std::vector<uint32_t>* sites = layout_.caller_frame_sites(function_, b, i);
          if (sites != nullptr && !sites->empty()) return true;
          break;
        }
        case Opcode::New:
        case Opcode::NewArray:
          if (layout_.site(layout_.site_at(function_, b, i)).decided == OwnershipClass::StackLocal)
            return true;
          break;
        case Opcode::Go:
        case Opcode::Send:
        case Opcode::Receive:
        case Opcode::Close:
        case Opcode::MakeChan:
          return true;
        default:
          break;
      }
    }
  }
  return false;
}

void Compiler::compile_variant(size_t index) {
  Variant& variant = *variants_[index];
  function_ = variant.function;
  const ir::Function& function = ir_.functions[function_];
  function_layout_ = &layout_.function(function_);
  caller_frame_sites_ = &variant.caller_frame_sites;
  liveness_ = std::make_unique<FunctionLiveness>(function);
  references_ = function_layout_->reference_slots;
  scalars_ = function_layout_->scalar_slots;
  frame_pop_ = !variant.caller_frame_sites.empty() ? FramePop::kKeepArena
               : variant_moves_arena(function)     ? FramePop::kRestoreArena
                                                   : FramePop::kArenaUnchanged;
  const uint32_t mark_bytes = frame_pop_ == FramePop::kRestoreArena ? kArenaMarkBytes : 0;
  reference_base_ = -static_cast<int32_t>(8 * references_);
  frame_offset_ = reference_base_ - kCompactFrameBytes;
  scalar_base_ = frame_offset_ - static_cast<int32_t>(mark_bytes + 8 * scalars_);
  uint32_t outgoing = 0;
  for (const ir::Block& block : function.blocks)
    for (const Instruction& instruction : block.instructions)
      if (instruction.opcode == Opcode::Call && !instruction.callee_unknown)
        outgoing = std::max<uint32_t>(outgoing, static_cast<uint32_t>(instruction.operands.size() +
                                                                      instruction.captures.size()));
  uint32_t pushed_bytes = 8 * (references_ + scalars_) + kCompactFrameBytes + mark_bytes;
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
  epilogue_ = &e_.label();
  block_labels_.clear();
  for (size_t b = 0; b < function.blocks.size(); ++b) block_labels_.push_back(&e_.label());
  e_.cold.clear();
  block_count_ = static_cast<uint32_t>(function.blocks.size());
  plan_frameless(function);
  predecessor_count_.assign(block_count_, 0);
  for (const ir::Block& block : function.blocks)
    if (!block.instructions.empty())
      for (uint32_t target : block.instructions.back().target_blocks) ++predecessor_count_[target];
  entry_cache_.assign(block_count_, std::nullopt);
  deferred_entries_.assign(block_count_, nullptr);
  entry_nonnull_.assign(block_count_, std::nullopt);

  // Prologue: slots (inputs copied in, the rest zero), the frame, the stack check, the poll;
  // none on a shrink-wrapped entry (each edge into the framed blocks makes it).
  block_ = 0;
  instruction_ = 0;
  if (!frameless()) emit_frame_entry(nullptr);

  cache_.start_function([this](uint32_t index) { return local(index); },
                        &function_layout_->local_is_reference);
  for (block_ = 0; block_ < function.blocks.size(); ++block_) {
    // A block with several predecessors starts from the slots; one entered only from an
    // earlier block keeps that block's registers (hand_cache_to_successors).
    if (entry_cache_[block_]) {
      cache_.restore(*entry_cache_[block_]);
    } else {
      cache_.forget_all();
    }
    // A framed block entered only from a shrink-wrapped one: its frame is made here, with that
    // block's registers (the preceding code never falls through: it is not a predecessor).
    if (deferred_entries_[block_] != nullptr) {
      e_.L(*deferred_entries_[block_]);
      for (uint32_t l : emit_frame_entry(&liveness_->live_in(block_), true)) cache_.mark_dirty(l);
    }
    e_.L(*block_labels_[block_]);
    if (entry_nonnull_[block_]) {
      nonnull_ = std::move(*entry_nonnull_[block_]);
    } else {
      nonnull_.assign(function.locals.size(), false);
    }
    const auto& instructions = function.blocks[block_].instructions;
    rax_after_ = -1;
    new_private_after_ = -1;
    argument_word_holds_.assign(outgoing_bytes_ / 8, -1);
    for (instruction_ = 0; instruction_ < instructions.size(); ++instruction_) {
      rax_held_ = rax_after_;
      rax_after_ = -1;
      new_private_ = new_private_after_;
      new_private_after_ = -1;
      cache_.start_instruction(instructions[instruction_], live_after());
      compile_instruction(instructions[instruction_]);
      note_definition(instructions[instruction_]);
      forget_argument_words_of(instructions[instruction_]);
      keep_new_private(instructions[instruction_]);
    }
  }

  // The epilogue right after the last block (its `ret` falls through). A stopping run never
  // comes here: it unwinds (emit_enter_thunk).
  e_.L(*epilogue_);
  emit_frame_pop(e_, frame_offset_, frame_pop_);
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
  m_.functions_.push_back({name, function_, variant.caller_frame_sites, begin, e_.here() - begin});
}

void Compiler::compile_call(const Instruction& instruction) {
  uint32_t input = 0;
  const std::vector<int64_t> argument_words_before = argument_word_holds_;
  auto pass = [&](const Operand& operand) {
    const uint32_t word = input++;
    const Xbyak::Address argument = e_.qword[rsp + static_cast<int32_t>(8 * word)];
    if (word < argument_word_holds_.size())
      argument_word_holds_[word] = operand.kind == OperandKind::Local ? operand.local_index : -1;
    if (operand.kind == OperandKind::Local && word < argument_words_before.size() &&
        argument_words_before[word] == operand.local_index)
      return;  // the word still holds it: the last call's callee did not write it
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
  const std::vector<uint32_t>* sites = layout_.caller_frame_sites(function_, block_, instruction_);
  size_t callee =
      variant_of(instruction.callee_index, sites != nullptr ? *sites : std::vector<uint32_t>{});
  e_.call(*variants_[callee]->entry);  // a stopping run never returns here (it unwinds)
  store_result(instruction, rax);
}

void Compiler::number_globals() {
  uint32_t references = 0, scalars = 0;
  for (const ir::Global& global : ir_.globals) {
    bool reference = ir_.types.is_reference(global.type);
    global_is_reference_.push_back(reference);
    global_slots_.push_back(reference ? references++ : scalars++);
  }
}

}  // namespace usgc::jitgen::x86_64
