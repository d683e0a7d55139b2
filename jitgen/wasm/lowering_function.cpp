// jitgen/wasm/lowering_function.cpp — one function variant lowered to one wasm function: the
// prologue (shadow-stack frame push with its depth check, reference slots, entry poll), the
// blocks and their edges, scalar instructions and calls, the epilogue (frame pop).
//
// Control flow: blocks keep their order inside nested wasm `block`s, so a forward edge is one
// `br`; a back edge polls, stores the target's index and branches to the outer `loop`, whose head
// dispatches with `br_table`. Invariant: every reference local lives in a frame slot, so a poll
// or a call may collect anywhere. Compile time only; the frame push/pop and poll sequences it
// emits are hot paths (their instruction counts are recorded by stub_start/stub_finish).
#include "jitgen/wasm/lowering_context.hpp"

namespace usgc::jitgen::wasm::lowering_detail {

// Pushes the operand's value (i64).
void Lowering::push(const Operand& operand) {
  switch (operand.kind) {
    case OperandKind::Local:
      if (is_reference(operand.local_index)) {
        c_.local_get(fp_);
        c_.i64_load(slot_offset(operand.local_index));
      } else {
        c_.local_get(scalar_local_[operand.local_index]);
      }
      return;
    case OperandKind::Integer:
    case OperandKind::Boolean:
      c_.i64_const(operand.integer_value);
      return;
    case OperandKind::Null:
      c_.i64_const(0);
      return;
  }
}

// Pops an i64 into local `local`.
void Lowering::set_local(uint32_t local) {
  if (!is_reference(local)) {
    c_.local_set(scalar_local_[local]);
    return;
  }
  c_.local_set(x_);
  c_.local_get(fp_);
  c_.local_get(x_);
  c_.i64_store(slot_offset(local));
}

void Lowering::set_result(const Instruction& instruction) {
  if (instruction.result_name.empty()) {
    c_.drop();
  } else {
    set_local(instruction.result_index);
  }
}

// Instruction counts of the inline sequences (LowerOptions::stub_instructions): the `if`,
// `else` and `end` around a slow-path arm count, the arm does not.
void Lowering::stub_start() {
  stub_begin_ = c_.instructions;
  stub_slow_ = 0;
}

void Lowering::stub_finish(const std::string& name, uint32_t excluded) {
  if (options_.stub_instructions != nullptr)
    options_.stub_instructions->emplace(name,
                                        c_.instructions - stub_begin_ - stub_slow_ - excluded);
}

void Lowering::poll() {
  stub_start();
  c_.global_get(kPollFlag);
  c_.i32_load(0);
  c_.if_();
  slow_start();
  c_.call(kPollSlow);
  slow_stop();
  c_.end();
  stub_finish("poll");
}

void Lowering::lower_variant(size_t index) {
  const Variant variant = variants_[index];
  function_ = variant.function;
  const ir::Function& function = ir_.functions[function_];
  function_layout_ = &layout_.function(function_);
  caller_frame_sites_ = &variant.caller_frame_sites;
  c_ = Code();
  const uint32_t inputs = function.parameter_count + function.capture_count;
  std::vector<ValueType> locals;
  scalar_local_.assign(function.locals.size(), UINT32_MAX);
  uint32_t next = inputs;
  for (uint32_t l = 0; l < function.locals.size(); ++l) {
    if (is_reference(l)) continue;
    if (l < inputs) {
      scalar_local_[l] = l;
    } else {
      scalar_local_[l] = next++;
      locals.push_back(ValueType::kI64);
    }
  }
  auto add_local = [&](ValueType type) {
    locals.push_back(type);
    return next++;
  };
  fp_ = add_local(ValueType::kI32);
  pc_ = add_local(ValueType::kI32);
  t0_ = add_local(ValueType::kI32);
  t1_ = add_local(ValueType::kI32);
  x_ = add_local(ValueType::kI64);
  y_ = add_local(ValueType::kI64);
  frame_bytes_ = USGC_WASM_FRAME_BYTES + 8 * function_layout_->reference_slots;

  // Prologue: the frame below the shadow-stack pointer, its stack check, slots, push, poll.
  stub_start();
  c_.global_get(ssp_global_);
  c_.i32_const(static_cast<int32_t>(frame_bytes_));
  c_.op(op::kI32Sub);
  c_.local_tee(fp_);
  c_.global_get(kShadowLimit);
  c_.op(op::kI32LtU);
  c_.if_();
  slow_start();
  raise(error_id("call depth limit: calling " + function.name +
                     " would overflow the goroutine's shadow stack (1024 KiB for main, 128 "
                     "KiB for the others)",
                 function.position));
  slow_stop();
  c_.end();
  c_.local_get(fp_);
  c_.global_set(ssp_global_);
  c_.local_get(fp_);
  c_.global_get(kMutator);
  c_.i32_load(USGC_WASM_MUTATOR_FRAMES);
  c_.i32_store(USGC_WASM_FRAME_PREVIOUS);
  c_.local_get(fp_);
  c_.local_get(fp_);
  c_.i32_const(USGC_WASM_FRAME_BYTES);
  c_.op(op::kI32Add);
  c_.i32_store(USGC_WASM_FRAME_SLOTS);
  c_.local_get(fp_);
  c_.i32_const(static_cast<int32_t>(function_layout_->reference_slots));
  c_.i32_store(USGC_WASM_FRAME_COUNT);
  c_.local_get(fp_);
  c_.global_get(kMutator);
  c_.i32_load(USGC_WASM_MUTATOR_ARENA_TOP);
  c_.i32_store(USGC_WASM_FRAME_ARENA_MARK);
  std::vector<int32_t> input_of_slot(function_layout_->reference_slots, -1);
  for (uint32_t input = 0; input < inputs; ++input)
    if (is_reference(input))
      input_of_slot[function_layout_->slot_of_local[input]] = static_cast<int32_t>(input);
  for (uint32_t k = 0; k < input_of_slot.size(); ++k) {
    c_.local_get(fp_);
    if (input_of_slot[k] >= 0) {
      c_.local_get(static_cast<uint32_t>(input_of_slot[k]));
    } else {
      c_.i64_const(0);
    }
    c_.i64_store(USGC_WASM_FRAME_BYTES + 8 * k);
  }
  c_.global_get(kMutator);
  c_.local_get(fp_);
  c_.i32_store(USGC_WASM_MUTATOR_FRAMES);
  stub_finish("frame_push_" + std::to_string(function_layout_->reference_slots));
  poll();

  // Blocks: loop { block_{n-1} { ... block_0 { br_table } code_0 } code_1 ... } code_{n-1} }.
  const uint32_t blocks = static_cast<uint32_t>(function.blocks.size());
  block_count_ = blocks;
  c_.loop();
  for (uint32_t b = 0; b < blocks; ++b) c_.block();
  std::vector<uint32_t> targets(blocks);
  for (uint32_t b = 0; b < blocks; ++b) targets[b] = b;
  c_.local_get(pc_);
  c_.br_table(targets, 0);
  for (block_ = 0; block_ < blocks; ++block_) {
    c_.end();
    extra_depth_ = 0;
    const auto& instructions = function.blocks[block_].instructions;
    for (instruction_index_ = 0; instruction_index_ < instructions.size(); ++instruction_index_) {
      instruction_ = &instructions[instruction_index_];
      lower_instruction(*instruction_);
    }
  }
  c_.end();  // the loop
  c_.unreachable();
  w_.define_function(variant.wasm_function, locals, c_);
}

// A branch to block `target` from the current block, `extra_depth_` wasm blocks deeper.
void Lowering::edge(uint32_t target) {
  if (target > block_) {
    if (target == block_ + 1 && extra_depth_ == 0) return;  // falls through
    c_.br(target - block_ - 1 + extra_depth_);
    return;
  }
  poll();
  c_.i32_const(static_cast<int32_t>(target));
  c_.local_set(pc_);
  c_.br(block_count_ - 1 - block_ + extra_depth_);
}

void Lowering::lower_instruction(const Instruction& instruction) {
  switch (instruction.opcode) {
    case Opcode::Copy:
      push(instruction.operands[0]);
      return set_result(instruction);
    case Opcode::Binary:
      return lower_binary(instruction);
    case Opcode::New:
    case Opcode::NewArray:
    case Opcode::MakeChan:
      return lower_allocation(instruction);
    case Opcode::Send:
      return lower_send(instruction);
    case Opcode::Receive:
      return lower_receive(instruction);
    case Opcode::Close:
      return lower_close(instruction);
    case Opcode::Go:
      return lower_go(instruction);
    case Opcode::LoadField:
    case Opcode::StoreField:
      return lower_field(instruction);
    case Opcode::LoadIndex:
    case Opcode::StoreIndex:
      return lower_element(instruction);
    case Opcode::Length:
      push(instruction.operands[0]);
      c_.op(op::kI32WrapI64);
      c_.local_tee(t0_);
      c_.if_result(ValueType::kI64);
      c_.local_get(t0_);
      c_.i64_load(0);
      c_.else_();
      c_.i64_const(0);
      c_.end();
      return set_result(instruction);
    case Opcode::LoadGlobal:
    case Opcode::StoreGlobal:
      return lower_global(instruction);
    case Opcode::Call: {
      if (instruction.callee_unknown) return lower_unknown(instruction);
      for (const Operand& operand : instruction.operands) push(operand);
      for (const Operand& operand : instruction.captures) push(operand);
      const std::vector<uint32_t>* sites =
          layout_.caller_frame_sites(function_, block_, instruction_index_);
      size_t callee =
          variant_of(instruction.callee_index, sites != nullptr ? *sites : std::vector<uint32_t>{});
      c_.call(variants_[callee].wasm_function);
      return set_result(instruction);
    }
    case Opcode::Branch:
      push(instruction.operands[0]);
      c_.op(op::kI64Eqz);
      c_.if_();
      ++extra_depth_;
      edge(instruction.target_blocks[1]);
      c_.else_();
      edge(instruction.target_blocks[0]);
      --extra_depth_;
      c_.end();
      return;
    case Opcode::Jump:
      return edge(instruction.target_blocks[0]);
    case Opcode::Return: {
      if (!instruction.operands.empty()) {
        push(instruction.operands[0]);
      } else {
        c_.i64_const(0);
      }
      stub_start();
      c_.local_set(x_);
      // Frame pop: unlink, reset the arena (unless this variant's stack objects are its
      // caller's), release the shadow-stack space.
      c_.global_get(kMutator);
      c_.local_get(fp_);
      c_.i32_load(USGC_WASM_FRAME_PREVIOUS);
      c_.i32_store(USGC_WASM_MUTATOR_FRAMES);
      if (caller_frame_sites_->empty()) {
        c_.global_get(kMutator);
        c_.local_get(fp_);
        c_.i32_load(USGC_WASM_FRAME_ARENA_MARK);
        c_.i32_store(USGC_WASM_MUTATOR_ARENA_TOP);
      }
      c_.local_get(fp_);
      c_.i32_const(static_cast<int32_t>(frame_bytes_));
      c_.op(op::kI32Add);
      c_.global_set(ssp_global_);
      c_.local_get(x_);
      c_.return_();
      stub_finish(caller_frame_sites_->empty() ? "frame_pop" : "frame_pop_keep_arena");
      return;
    }
    default:
      error_ = escape::format_position(ir_.file_name, instruction.site_position()) +
               ": the WebAssembly target cannot lower this instruction";
      return;
  }
}

void Lowering::lower_binary(const Instruction& instruction) {
  using ir::BinaryOperator;
  const BinaryOperator o = instruction.binary_operator;
  if (o == BinaryOperator::Div || o == BinaryOperator::Rem) {
    push(instruction.operands[0]);
    c_.local_set(x_);
    push(instruction.operands[1]);
    c_.local_tee(y_);
    c_.op(op::kI64Eqz);
    raise_if(runtime_error("integer divide by zero"));
    c_.local_get(y_);
    c_.i64_const(-1);
    c_.op(op::kI64Eq);
    c_.if_result(ValueType::kI64);
    c_.i64_const(0);  // Go: MinInt64 / -1 == MinInt64 (0 - x wraps), x % -1 == 0
    if (o == BinaryOperator::Div) {
      c_.local_get(x_);
      c_.op(op::kI64Sub);
    }
    c_.else_();
    c_.local_get(x_);
    c_.local_get(y_);
    c_.op(o == BinaryOperator::Div ? op::kI64DivS : op::kI64RemS);
    c_.end();
    return set_result(instruction);
  }
  push(instruction.operands[0]);
  push(instruction.operands[1]);
  switch (o) {
    case BinaryOperator::Add:
      c_.op(op::kI64Add);
      break;
    case BinaryOperator::Sub:
      c_.op(op::kI64Sub);
      break;
    case BinaryOperator::Mul:
      c_.op(op::kI64Mul);
      break;
    case BinaryOperator::And:
    case BinaryOperator::Or:
      c_.op(o == BinaryOperator::And ? op::kI64And : op::kI64Or);
      c_.i64_const(1);
      c_.op(op::kI64And);
      break;
    default: {
      uint8_t compare = o == BinaryOperator::Lt   ? op::kI64LtS
                        : o == BinaryOperator::Le ? op::kI64LeS
                        : o == BinaryOperator::Gt ? op::kI64GtS
                        : o == BinaryOperator::Ge ? op::kI64GeS
                        : o == BinaryOperator::Eq ? op::kI64Eq
                                                  : op::kI64Ne;
      c_.op(compare);
      c_.op(op::kI64ExtendI32U);
      break;
    }
  }
  set_result(instruction);
}

}  // namespace usgc::jitgen::wasm::lowering_detail
