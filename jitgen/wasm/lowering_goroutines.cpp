// jitgen/wasm/lowering_goroutines.cpp — `go`, channel operations and unknown code. Each is a
// runtime call (jitgen/wasm/runtime/); an operation that cannot complete returns "block", and the
// lowered code calls the host's `suspend`, which asyncify turns into a coroutine switch (the
// resumed call returns what the partner handed over). Spawn arguments, sent values and what is
// passed to unknown code are publication points: the runtime publishes them. Compile time only.
#include "jitgen/wasm/lowering_context.hpp"

namespace usgc::jitgen::wasm::lowering_detail {

// After a channel call left its status (i32) on the stack: BLOCK suspends the goroutine
// (host.suspend: an asyncify unwind; the resumed call returns what the partner handed over).
// Leaves the i64 result: the resumed value, or `otherwise` (a call) when it did not block.
void Lowering::block_or(uint32_t otherwise) {
  c_.i32_const(USGC_WASM_CHAN_BLOCK);
  c_.op(op::kI32Eq);
  c_.if_result(ValueType::kI64);
  c_.call(kSuspend);
  c_.else_();
  if (otherwise == UINT32_MAX) {
    c_.local_get(t1_);
    c_.op(op::kI64ExtendI32U);
  } else {
    c_.call(otherwise);
  }
  c_.end();
}

void Lowering::lower_send(const Instruction& instruction) {
  push(instruction.operands[0]);
  c_.op(op::kI32WrapI64);
  push(instruction.operands[1]);
  c_.i32_const(publication_site());
  c_.call(kChanSend);
  c_.local_tee(t1_);
  block_or(UINT32_MAX);  // the status: DONE, CLOSED (also when resumed) or STACK_VALUE
  c_.op(op::kI32WrapI64);
  c_.local_tee(t1_);
  c_.if_();
  c_.local_get(t1_);
  c_.i32_const(USGC_WASM_CHAN_CLOSED);
  c_.op(op::kI32Eq);
  raise_if(runtime_error("send on closed channel"));
  raise(runtime_error("a STACK_LOCAL object sent on a channel (escape analysis bug)"));
  c_.end();
}

void Lowering::lower_receive(const Instruction& instruction) {
  push(instruction.operands[0]);
  c_.op(op::kI32WrapI64);
  c_.call(kChanReceive);
  block_or(kTransfer);
  set_result(instruction);
}

void Lowering::lower_close(const Instruction& instruction) {
  push(instruction.operands[0]);
  c_.op(op::kI32WrapI64);
  c_.local_tee(t0_);
  c_.op(op::kI32Eqz);
  raise_if(runtime_error("close of nil channel"));
  c_.local_get(t0_);
  c_.call(kChanClose);
  raise_if(runtime_error("close of closed channel"));
}

// `go f(...) captures(...)`: a goroutine record from the runtime, the inputs written into it,
// then usgc_wasm_go_ready publishes the reference inputs and queues it (its body: go_entry).
void Lowering::lower_go(const Instruction& instruction) {
  if (instruction.callee_unknown) return lower_unknown(instruction);
  const uint32_t callee_index = instruction.callee_index;
  const ir::Function& callee = ir_.functions[callee_index];
  const uint32_t inputs = callee.parameter_count + callee.capture_count;
  if (inputs > USGC_WASM_GO_MAX_INPUTS) {
    error_ = escape::format_position(ir_.file_name, instruction.site_position()) +
             ": the WebAssembly target passes at most " + std::to_string(USGC_WASM_GO_MAX_INPUTS) +
             " inputs to a goroutine";
    return;
  }
  auto found = go_target_of_function_.find(callee_index);
  if (found == go_target_of_function_.end()) {
    found = go_target_of_function_.emplace(callee_index, static_cast<uint32_t>(go_targets_.size()))
                .first;
    go_targets_.push_back(callee_index);
    go_target_variants_.push_back(variant_of(callee_index, {}));
  }
  uint64_t references = 0;
  for (uint32_t i = 0; i < inputs; ++i)
    if (ir_.types.is_reference(callee.locals[i].type)) references |= uint64_t{1} << i;
  c_.i32_const(static_cast<int32_t>(found->second));
  c_.i32_const(static_cast<int32_t>(inputs));
  c_.i64_const(static_cast<int64_t>(references));
  c_.call(kGo);
  c_.local_tee(t0_);
  c_.op(op::kI32Eqz);
  raise_if(runtime_error("go: cannot start a goroutine: the WebAssembly memory cannot grow"));
  uint32_t input = 0;
  auto store_input = [&](const Operand& operand) {
    c_.local_get(t0_);
    push(operand);
    c_.i64_store(USGC_WASM_GOROUTINE_INPUTS + 8 * input++);
  };
  for (const Operand& operand : instruction.operands) store_input(operand);
  for (const Operand& operand : instruction.captures) store_input(operand);
  c_.local_get(t0_);
  c_.i32_const(publication_site());
  c_.call(kGoReady);
  raise_if(runtime_error("a STACK_LOCAL object passed to a goroutine (escape analysis bug)"));
}

// `call unknown(...)` / `go unknown(...)`: the interpreter's unknown world
// (runtime/unknown_world.c): reference arguments kept (published GLOBAL_SHARED), a reference
// result the newest kept object of its type, an int/bool result 0; no goroutine starts.
void Lowering::lower_unknown(const Instruction& instruction) {
  auto keep = [&](const Operand& operand) {
    if (operand.kind != OperandKind::Local || !is_reference(operand.local_index)) return;
    push(operand);
    c_.op(op::kI32WrapI64);
    c_.i32_const(publication_site());
    c_.call(kUnknownKeep);
    raise_if(runtime_error("a STACK_LOCAL object passed to unknown code (escape analysis bug)"));
  };
  for (const Operand& operand : instruction.operands) keep(operand);
  for (const Operand& operand : instruction.captures) keep(operand);
  if (instruction.opcode != Opcode::Call || instruction.result_name.empty()) return;
  const ir::TypeId type = ir_.functions[function_].locals[instruction.result_index].type;
  if (ir_.types.is_reference(type)) {
    c_.i32_const(static_cast<int32_t>(type.index));
    c_.call(kUnknownNewest);
    c_.op(op::kI64ExtendI32U);
  } else {
    c_.i64_const(0);
  }
  set_local(instruction.result_index);
}

}  // namespace usgc::jitgen::wasm::lowering_detail
