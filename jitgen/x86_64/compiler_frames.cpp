// jitgen/x86_64/compiler_frames.cpp — frames only where they are needed (shrink-wrapping): which
// blocks run without the shadow-stack frame, and the frame made on the edge into framed code. The
// design and the invariants are in compiler.hpp.
#include <algorithm>

#include "jitgen/x86_64/compiler.hpp"

namespace usgc::jitgen::x86_64 {

bool Compiler::block_may_run_frameless(const ir::Function& function, uint32_t b) const {
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

void Compiler::plan_frameless(const ir::Function& function) {
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

RootSource Compiler::slot_source(uint32_t local, const std::vector<bool>* live) const {
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

std::vector<uint32_t> Compiler::emit_frame_entry(const std::vector<bool>* live,
                                                 bool scalars_stay_in_registers) {
  std::vector<uint32_t> unwritten;
  e_.push(rbp);
  e_.mov(rbp, rsp);
  std::vector<RootSource> roots;
  for (size_t k = references_; k-- > 0;)
    roots.push_back(slot_source(local_of_reference_slot_[k], live));
  e_.push_roots(roots);
  emit_frame_push(e_, references_, frame_pop_);
  // Scalar slots: inputs copied in; zero only where the local may be read before it is
  // assigned (the collector never reads scalar slots); the rest left as they are. Where the
  // block after keeps these registers (`scalars_stay_in_registers`: the entry made right
  // before it), a scalar in a cache register is not written: the caller marks it dirty, and
  // the block's write-backs store it only if it is live where a slot is needed.
  uint32_t skipped_bytes = 0;
  for (size_t k = scalars_; k-- > 0;) {
    const uint32_t l = local_of_scalar_slot_[k];
    const bool needed = live != nullptr ? (*live)[l] : l < inputs_ || liveness_->live_at_entry(l);
    const bool in_register = needed && scalars_stay_in_registers &&
                             slot_source(l, live).kind == RootSource::Kind::kRegister;
    if (in_register) unwritten.push_back(l);
    if (!needed || in_register) {
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
  Xbyak::Label& overflow = error_label(ErrorKind::kStackOverflow);
  block_ = block;
  instruction_ = instruction;
  e_.cmp(rsp, e_.qword[r13 + kGoroutineStackLimit]);
  e_.jb(overflow, Emitter::T_NEAR);
  emit_poll(e_);
  // No stop-flag test here or after calls: a stopping run moves the stack limit above the stack
  // (kStoppedStackLimit), so the check above fails at the next framed call and the report
  // unwinds. A path that makes no call is straight-line or loops through a back edge that
  // tests the flag.
  return unwritten;
}

ColdSave Compiler::cold_save_for(const Instruction& instruction) {
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

}  // namespace usgc::jitgen::x86_64
