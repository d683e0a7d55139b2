// jitgen/x86_64/compiler_instructions.cpp — one instruction: copies, edges and branches, arithmetic
// and compares (a compare fused with the branch that reads it). The design and the invariants are
// in compiler.hpp.
#include "jitgen/x86_64/compiler.hpp"

namespace usgc::jitgen::x86_64 {

void Compiler::compile_instruction(const Instruction& instruction) {
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
      load(rax, instruction.operands[0]);
      if (!result_live(instruction)) return;
      if (known_nonnull(instruction.operands[0])) {
        e_.mov(rax, e_.qword[rax]);
      } else {  // len of a null array is 0
        Xbyak::Label& null = e_.label();
        e_.test(rax, rax);
        e_.jz(null);
        e_.mov(rax, e_.qword[rax]);
        e_.L(null);
      }
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
        return frameless_two_way(taken, instruction.target_blocks[0], instruction.target_blocks[1]);
      two_way(taken, instruction.target_blocks[0], instruction.target_blocks[1]);
      return;
    }
    case Opcode::Jump:
      if (!frameless()) cache_.store_dirty(live_after());
      hand_cache_to_successors(instruction.target_blocks);
      edge(instruction.target_blocks[0], true);
      return;
    case Opcode::Return:
      if (!instruction.operands.empty() && !(instruction.operands[0].kind == OperandKind::Local &&
                                             rax_held_ == instruction.operands[0].local_index))
        load(rax, instruction.operands[0]);
      if (frameless()) {
        e_.ret();  // no frame to pop
      } else if (block_ + 1 != block_count_) {
        e_.jmp(*epilogue_, Emitter::T_NEAR);
      }
      return;
  }
}

void Compiler::hand_cache_to_successors(const std::vector<uint32_t>& targets) {
  const RegisterCache::Snapshot state = cache_.snapshot();
  for (uint32_t target : targets) {
    if (target > block_ && predecessor_count_[target] == 1) {
      entry_cache_[target] = state;
      entry_nonnull_[target] = nonnull_;
    }
  }
}

void Compiler::note_definition(const Instruction& instruction) {
  if (instruction.result_name.empty()) return;
  const bool allocated = instruction.opcode == Opcode::New ||
                         instruction.opcode == Opcode::NewArray ||
                         instruction.opcode == Opcode::MakeChan;  // or it reported an error
  const bool copied = instruction.opcode == Opcode::Copy && known_nonnull(instruction.operands[0]);
  nonnull_[instruction.result_index] = allocated || copied;
}

Xbyak::Label& Compiler::deferred_frame_entry(uint32_t target) {
  if (deferred_entries_[target] == nullptr) deferred_entries_[target] = &e_.label();
  return *deferred_entries_[target];
}

void Compiler::edge(uint32_t target, bool last) {
  if (frameless() && !frameless_[target]) {
    // Into the framed blocks (a forward edge: a shrink-wrapped path has no back edge). The only
    // way into the target: its frame is made right before it (no jump after the prologue).
    if (predecessor_count_[target] == 1) {
      Xbyak::Label& entry = deferred_frame_entry(target);
      if (!(last && target == block_ + 1)) e_.jmp(entry, Emitter::T_NEAR);
      return;
    }
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

Compiler::Condition Compiler::negate(Condition c) {
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

void Compiler::jump_if(Condition c, const Xbyak::Label& target) {
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

void Compiler::two_way(Condition c, uint32_t taken, uint32_t otherwise) {
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

void Compiler::frameless_two_way(Condition c, uint32_t taken, uint32_t otherwise) {
  if (frameless_[taken] && frameless_[otherwise]) return two_way(c, taken, otherwise);
  // The framed target's frame made right before it where this is its only way in: the branch
  // goes there, the shrink-wrapped target follows (item_check: `jne` to the prologue, `ret 1`).
  if (frameless_[taken]) {
    if (taken == block_ + 1 && predecessor_count_[otherwise] == 1)
      return jump_if(negate(c), deferred_frame_entry(otherwise));
    jump_if(c, *block_labels_[taken]);
    return edge(otherwise, true);
  }
  if (frameless_[otherwise]) {
    if (otherwise == block_ + 1 && predecessor_count_[taken] == 1)
      return jump_if(c, deferred_frame_entry(taken));
    jump_if(negate(c), *block_labels_[otherwise]);
    return edge(taken, true);
  }
  Xbyak::Label& else_path = e_.label();
  jump_if(negate(c), else_path);
  edge(taken, false);
  e_.L(else_path);
  edge(otherwise, true);
}

std::optional<Compiler::Condition> Compiler::condition_of(ir::BinaryOperator op) {
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

bool Compiler::compare_feeds_next_branch(const Instruction& instruction) const {
  const auto& instructions = ir_.functions[function_].blocks[block_].instructions;
  if (instruction_ + 1 >= instructions.size() || instruction.result_name.empty()) return false;
  const Instruction& next = instructions[instruction_ + 1];
  return next.opcode == Opcode::Branch && next.operands[0].kind == OperandKind::Local &&
         next.operands[0].local_index == instruction.result_index &&
         !liveness_->live_after(block_, instruction_ + 1, instruction.result_index);
}

void Compiler::compile_binary(const Instruction& instruction) {
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
    auto apply = [&](const Xbyak::Reg64& d, const Xbyak::Reg64& b) {
      if (op == ir::BinaryOperator::Add) e_.add(d, b);
      if (op == ir::BinaryOperator::Sub) e_.sub(d, b);
      if (op == ir::BinaryOperator::Mul) e_.imul(d, b);
    };
    if (is_small_constant(right)) {  // left a constant too (a local is above)
      load(rax, left);
      const uint32_t imm = static_cast<uint32_t>(static_cast<int32_t>(right.integer_value));
      if (op == ir::BinaryOperator::Add) e_.add(rax, imm);
      if (op == ir::BinaryOperator::Sub) e_.sub(rax, imm);
      if (op == ir::BinaryOperator::Mul) e_.imul(rax, rax, static_cast<int>(imm));
      return store_result(instruction, rax);
    }
    // Straight into the result's register: `mov d, a; op d, b` (`op d, a` when the result is
    // the right operand's local and the operator commutes; through RAX for `d = a - d`).
    const Xbyak::Reg64 b = value(right, rcx);
    const Xbyak::Reg64 a = value(left, rax);
    const Xbyak::Reg64 destination = cache_.define(instruction.result_index);
    if (destination == b && destination != a) {
      if (op != ir::BinaryOperator::Sub) return apply(destination, a);
      e_.mov(rax, a);
      e_.sub(rax, b);
      e_.mov(destination, rax);
      return;
    }
    if (destination != a) e_.mov(destination, a);
    return apply(destination, b);
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

}  // namespace usgc::jitgen::x86_64
