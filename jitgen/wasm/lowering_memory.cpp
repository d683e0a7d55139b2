// jitgen/wasm/lowering_memory.cpp — allocation in each ownership class, field and element
// accesses, reference globals, and the write barrier, lowered with the x86-64 JIT's sequences:
// the stack arena bump, the private run bump + limit check + header store inline; shared and
// global allocation a runtime call; the same-goroutine barrier test inline (owner half of the
// target's header against the heap id) with the slow path a call. Nil and bounds checks raise
// positioned runtime errors through the host. Compile time only; the sequences are hot paths.
#include <algorithm>

#include "jitgen/wasm/lowering_context.hpp"
#include "usgc/object.h"

namespace usgc::jitgen::wasm::lowering_detail {

void Lowering::count(uint32_t counter) {
  c_.global_get(counters_global_);
  c_.global_get(counters_global_);
  c_.i64_load(8 * counter);
  c_.i64_const(1);
  c_.op(op::kI64Add);
  c_.i64_store(8 * counter);
}

void Lowering::out_of_memory_check() {
  c_.local_get(t0_);
  c_.op(op::kI32Eqz);
  raise_if(runtime_error("out of memory: the WebAssembly memory cannot grow"));
}

void Lowering::lower_allocation(const Instruction& instruction) {
  const uint32_t site_index = layout_.site_at(function_, block_, instruction_index_);
  const SiteLayout& site = layout_.site(site_index);
  const bool in_caller_frame =
      std::binary_search(caller_frame_sites_->begin(), caller_frame_sites_->end(), site_index);
  const OwnershipClass decided = in_caller_frame ? OwnershipClass::StackLocal : site.decided;
  const uint32_t ownership = static_cast<uint32_t>(interpreter::usgc_class_of(decided));
  const uint32_t counter =
      in_caller_frame ? static_cast<uint32_t>(layout_.site_count()) + site_index : site_index;
  const int32_t type = static_cast<int32_t>(type_id_of_site(site_index));

  if (site.shape == SiteShape::kDynamicArray && instruction.opcode == Opcode::New) {
    error_ = escape::format_position(ir_.file_name, instruction.site_position()) +
             ": the WebAssembly target does not lower `new [N]T` this large";
    return;
  }
  if (instruction.opcode == Opcode::NewArray || instruction.opcode == Opcode::MakeChan) {
    const Operand& length = instruction.operands[0];
    if (!(length.kind == OperandKind::Integer && length.integer_value >= 0)) {
      push(length);
      c_.local_tee(y_);
      c_.i64_const(0);
      c_.op(op::kI64LtS);
      raise_if(
          runtime_error(instruction.opcode == Opcode::NewArray ? "newarray: negative length {a}"
                                                               : "makechan: negative capacity {a}"),
          static_cast<int32_t>(y_));
    }
  }
  if (options_.gc_stress) c_.call(kGcStress);
  if (site.shape == SiteShape::kChannel) {
    c_.i32_const(type);
    push(instruction.operands[0]);
    c_.i32_const(static_cast<int32_t>(ownership));
    c_.call(kMakeChan);
    c_.local_set(t0_);
    out_of_memory_check();
  } else if (site.shape == SiteShape::kDynamicArray) {
    c_.i32_const(type);
    push(instruction.operands[0]);
    c_.i32_const(static_cast<int32_t>(ownership));
    c_.call(kAllocArray);
    c_.local_set(t0_);
    out_of_memory_check();
  } else {
    const bool array = site.shape == SiteShape::kBoundedArray;
    const uint64_t payload64 =
        array ? 8 + 8 * site.bounded_length : 8 * ir_.structs[site.struct_index].fields.size();
    if (payload64 > 0x7fff0000u) {
      error_ = escape::format_position(ir_.file_name, instruction.site_position()) +
               ": object too large for the WebAssembly target";
      return;
    }
    const uint32_t payload = static_cast<uint32_t>(payload64);
    const int class_index = size_class_of(payload + 8);
    const int32_t header_low = static_cast<int32_t>(ownership | (array ? USGC_HEADER_ARRAY : 0) |
                                                    (static_cast<uint32_t>(type) << 8));
    if (decided == OwnershipClass::StackLocal && payload + 8 <= kMaxInlineStackBytes) {
      emit_stack_alloc(type, payload, header_low);
    } else if (decided == OwnershipClass::GoroutinePrivate && class_index >= 0) {
      emit_private_alloc(type, static_cast<uint32_t>(class_index), header_low);
    } else if (decided == OwnershipClass::StackLocal) {
      c_.i32_const(type);
      c_.i32_const(static_cast<int32_t>(payload));
      c_.call(kAllocStackSlow);
      c_.local_set(t0_);
      out_of_memory_check();
    } else {
      c_.i32_const(type);
      c_.i32_const(static_cast<int32_t>(payload));
      c_.i32_const(static_cast<int32_t>(ownership));
      c_.call(kAlloc);
      c_.local_set(t0_);
      out_of_memory_check();
    }
    if (array) {
      c_.local_get(t0_);
      c_.i64_const(static_cast<int64_t>(site.bounded_length));
      c_.i64_store(0);
    }
  }
  c_.local_get(t0_);
  c_.op(op::kI64ExtendI32U);
  set_result(instruction);
  count(counter);
}

// The stack arena bump: t0 = top; top + size <= limit, else the runtime's substitute; the
// header's two halves stored; the payload zeroed (the arena is reused). Leaves t0 = object.
void Lowering::emit_stack_alloc(int32_t type, uint32_t payload, int32_t header_low) {
  const uint32_t size = (payload + 8 + 7) & ~7u;
  stub_start();
  c_.global_get(kMutator);
  c_.i32_load(USGC_WASM_MUTATOR_ARENA_TOP);
  c_.local_tee(t0_);
  c_.i32_const(static_cast<int32_t>(size));
  c_.op(op::kI32Add);
  c_.local_tee(t1_);
  c_.global_get(kMutator);
  c_.i32_load(USGC_WASM_MUTATOR_ARENA_LIMIT);
  c_.op(op::kI32GtU);
  c_.if_();
  slow_start();
  c_.i32_const(type);
  c_.i32_const(static_cast<int32_t>(payload));
  c_.call(kAllocStackSlow);
  c_.local_set(t0_);
  out_of_memory_check();
  slow_stop();
  c_.else_();
  c_.global_get(kMutator);
  c_.local_get(t1_);
  c_.i32_store(USGC_WASM_MUTATOR_ARENA_TOP);
  c_.local_get(t0_);
  c_.i32_const(header_low);
  c_.i32_store(0);
  c_.local_get(t0_);
  c_.global_get(kHeapId);
  c_.i32_store(4);
  for (uint32_t word = 0; word < payload / 8; ++word) {
    c_.local_get(t0_);
    c_.i64_const(0);
    c_.i64_store(8 + 8 * word);
  }
  c_.local_get(t0_);
  c_.i32_const(8);
  c_.op(op::kI32Add);
  c_.local_set(t0_);
  c_.end();
  stub_finish("stack_alloc_" + std::to_string(payload / 8));
}

// The private TLAB bump: t0 = run.next; next + slot <= run.limit, else the runtime's refill
// (which returns a slot); header stored inline in both cases. Leaves t0 = object.
void Lowering::emit_private_alloc(int32_t type, uint32_t class_index, int32_t header_low) {
  (void)type;
  const uint32_t run = USGC_WASM_MUTATOR_RUNS + USGC_WASM_RUN_BYTES * class_index;
  stub_start();
  c_.global_get(kMutator);
  c_.i32_load(run);
  c_.local_tee(t0_);
  c_.i32_const(static_cast<int32_t>(kSlotSizes[class_index]));
  c_.op(op::kI32Add);
  c_.local_tee(t1_);
  c_.global_get(kMutator);
  c_.i32_load(run + 4);
  c_.op(op::kI32GtU);
  c_.if_();
  slow_start();
  c_.i32_const(static_cast<int32_t>(class_index));
  c_.call(kAllocPrivateSlow);
  c_.local_set(t0_);
  out_of_memory_check();
  slow_stop();
  c_.else_();
  c_.global_get(kMutator);
  c_.local_get(t1_);
  c_.i32_store(run);
  c_.end();
  c_.local_get(t0_);
  c_.i32_const(header_low);
  c_.i32_store(0);
  c_.local_get(t0_);
  c_.global_get(kHeapId);
  c_.i32_store(4);
  c_.local_get(t0_);
  c_.i32_const(8);
  c_.op(op::kI32Add);
  c_.local_set(t0_);
  stub_finish("private_alloc");
}

// The store of y (i64) into the reference word at t0 + offset of the object t0... with the
// same-goroutine barrier: one load of the owner half and a compare; the slow path a call.
void Lowering::emit_barrier_store(uint32_t object_local, uint32_t address_local, uint32_t offset,
                                  bool may_be_stack) {
  stub_start();
  uint32_t value_test = 0;
  c_.local_get(object_local);
  c_.i32_const(8);
  c_.op(op::kI32Sub);
  c_.i32_load(4);
  c_.global_get(kHeapId);
  c_.op(op::kI32Eq);
  if (may_be_stack && !options_.omit_stack_value_tests) {  // and the value is not STACK_LOCAL
    value_test = c_.instructions;
    c_.local_get(y_);
    c_.op(op::kI64Eqz);
    c_.if_result(ValueType::kI32);
    c_.i32_const(1);
    c_.else_();
    c_.local_get(y_);
    c_.op(op::kI32WrapI64);
    c_.i32_const(8);
    c_.op(op::kI32Sub);
    c_.i32_load8_u(0);
    c_.i32_const(3);
    c_.op(op::kI32And);
    c_.i32_const(0);
    c_.op(op::kI32Ne);
    c_.end();
    c_.op(op::kI32And);
    value_test = c_.instructions - value_test;
    if (options_.stub_instructions != nullptr)
      options_.stub_instructions->emplace("barrier_value_test", value_test);
  }
  c_.if_();
  c_.local_get(address_local);
  c_.local_get(y_);
  c_.i64_store(offset);
  c_.else_();
  slow_start();
  c_.local_get(object_local);
  c_.local_get(address_local);
  c_.i32_const(static_cast<int32_t>(offset));
  c_.op(op::kI32Add);
  c_.local_get(y_);
  c_.op(op::kI32WrapI64);
  c_.i32_const(publication_site());
  c_.call(kBarrierSlow);
  raise_if(runtime_error("a STACK_LOCAL object stored into a heap object (escape analysis bug)"));
  slow_stop();
  c_.end();
  stub_finish("barrier", value_test);
}

void Lowering::lower_field(const Instruction& instruction) {
  const Operand& base = instruction.operands[0];
  const ir::TypeId base_type = ir_.functions[function_].locals[base.local_index].type;
  const bool reference = layout_.struct_layout(layout_.struct_of_pointer(base_type))
                             .field_is_reference[instruction.field_index];
  push(base);
  c_.op(op::kI32WrapI64);
  c_.local_tee(t0_);
  c_.op(op::kI32Eqz);
  raise_if(runtime_error("nil pointer dereference (field " + instruction.field_name + " of %" +
                         base.local_name + ")"));
  const uint32_t offset = 8 * instruction.field_index;
  if (instruction.opcode == Opcode::LoadField) {
    c_.local_get(t0_);
    c_.i64_load(offset);
    return set_result(instruction);
  }
  const Operand& value = instruction.operands[1];
  if (!reference || value.kind == OperandKind::Null) {
    c_.local_get(t0_);
    push(value);
    c_.i64_store(offset);
    return;
  }
  push(value);
  c_.local_set(y_);
  emit_barrier_store(t0_, t0_, offset, value_may_be_stack(value));
}

void Lowering::lower_element(const Instruction& instruction) {
  const Operand& base = instruction.operands[0];
  const ir::TypeId base_type = ir_.functions[function_].locals[base.local_index].type;
  const bool reference = ir_.types.is_reference(ir_.types.node(base_type).element);
  push(base);
  c_.op(op::kI32WrapI64);
  c_.local_set(t0_);
  push(instruction.operands[1]);
  c_.local_set(x_);
  c_.local_get(t0_);
  c_.op(op::kI32Eqz);
  c_.if_();
  raise(runtime_error("index out of range [{a}] with length 0 (%" + base.local_name + " is null)"),
        static_cast<int32_t>(x_));
  c_.end();
  c_.local_get(x_);
  c_.local_get(t0_);
  c_.i64_load(0);
  c_.op(kI64GeU);
  c_.if_();
  c_.local_get(t0_);
  c_.i64_load(0);
  c_.local_set(y_);
  raise(runtime_error("index out of range [{a}] with length {b}"), static_cast<int32_t>(x_),
        static_cast<int32_t>(y_));
  c_.end();
  c_.local_get(t0_);
  c_.local_get(x_);
  c_.op(op::kI32WrapI64);
  c_.i32_const(3);
  c_.op(kI32Shl);
  c_.op(op::kI32Add);
  c_.local_set(t1_);
  if (instruction.opcode == Opcode::LoadIndex) {
    c_.local_get(t1_);
    c_.i64_load(8);
    return set_result(instruction);
  }
  const Operand& value = instruction.operands[2];
  if (!reference || value.kind == OperandKind::Null) {
    c_.local_get(t1_);
    push(value);
    c_.i64_store(8);
    return;
  }
  push(value);
  c_.local_set(y_);
  emit_barrier_store(t0_, t1_, 8, value_may_be_stack(value));
}

void Lowering::lower_global(const Instruction& instruction) {
  const uint32_t slot = global_slot_[instruction.global_index];
  if (!global_is_reference_[instruction.global_index]) {
    if (instruction.opcode == Opcode::LoadGlobal) {
      c_.global_get(slot);
      return set_result(instruction);
    }
    push(instruction.operands[0]);
    c_.global_set(slot);
    return;
  }
  if (instruction.opcode == Opcode::LoadGlobal) {
    c_.global_get(references_global_);
    c_.i64_load(8 * slot);
    return set_result(instruction);
  }
  c_.global_get(references_global_);
  c_.i32_const(static_cast<int32_t>(8 * slot));
  c_.op(op::kI32Add);
  push(instruction.operands[0]);
  c_.op(op::kI32WrapI64);
  c_.i32_const(publication_site());
  c_.call(kGlobalStore);
  raise_if(runtime_error("a STACK_LOCAL object stored into a global (escape analysis bug)"));
}

}  // namespace usgc::jitgen::wasm::lowering_detail
