// jitgen/x86_64/compiler_memory.cpp — allocation (the private, stack and shared stubs), fields,
// elements and globals with their nil and bounds checks and the barrier (left out on stores into
// a new private object: keep_new_private).
// The design and the invariants are in compiler.hpp.
#include "jitgen/x86_64/compiler.hpp"

namespace usgc::jitgen::x86_64 {

void Compiler::compile_allocation(const Instruction& instruction) {
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
    new_private_after_ = instruction.result_index;  // young and mine (keep_new_private)
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
  note_rax_holds(instruction.result_index);
}

bool Compiler::value_may_be_stack(const Operand& value) const {
  return value.kind == OperandKind::Local && may_stack_[function_][value.local_index];
}

void Compiler::compile_field(const Instruction& instruction) {
  const Operand& base = instruction.operands[0];
  const ir::TypeId base_type = ir_.functions[function_].locals[base.local_index].type;
  const bool reference = layout_.struct_layout(layout_.struct_of_pointer(base_type))
                             .field_is_reference[instruction.field_index];
  const int32_t offset = static_cast<int32_t>(8 * instruction.field_index);
  const bool check_nil = !known_nonnull(base);
  note_checked_nonnull(base);  // from here on (a failed check leaves the function)
  if (instruction.opcode == Opcode::LoadField) {
    Xbyak::Reg64 object = value(base, rax);
    if (check_nil) {
      e_.test(object, object);
      e_.jz(error_label(ErrorKind::kNilField), Emitter::T_NEAR);
    }
    if (!result_live(instruction)) return;
    Xbyak::Reg64 destination = cache_.define(instruction.result_index);
    e_.mov(destination, e_.qword[object + offset]);
    return;
  }
  if (rax_held_ != base.local_index) load(rax, base);  // else RAX has it from the last one
  if (check_nil) {
    e_.test(rax, rax);
    e_.jz(error_label(ErrorKind::kNilField), Emitter::T_NEAR);
  }
  const Xbyak::Address field = e_.qword[rax + offset];
  const Operand& stored = instruction.operands[1];
  if (stored.kind == OperandKind::Local && !reference) {
    e_.mov(field, value(stored, rcx));
    note_rax_holds(base.local_index);
    return;
  }
  if (stored.kind != OperandKind::Local || !reference) {  // a constant is null or a scalar
    load(rcx, stored);
    e_.mov(field, rcx);  // a null store needs no barrier: nothing is published or kept
    note_rax_holds(base.local_index);
    return;
  }
  // The value from its cache register (the barrier takes any but RAX RCX R11); the object's
  // register, if it has one, gives RAX back after the slow path's call.
  const Xbyak::Reg64 stored_value = value(stored, rcx);
  if (new_private_ == base.local_index && stored.local_index != base.local_index &&
      !value_may_be_stack(stored)) {
    const uint32_t begin = e_.here();
    e_.mov(field, stored_value);  // into a new private object of mine: the barrier would pass
    e_.mark("new_object_store", begin);
    note_rax_holds(base.local_index);
    return;
  }
  const std::optional<Xbyak::Reg64> object_home = cache_.cached(base.local_index);
  e_.cold_save = cold_save_for(instruction);
  emit_barrier(e_, field, stored_value, value_may_be_stack(stored), object_home);
  if (object_home) note_rax_holds(base.local_index);
}

void Compiler::compile_element(const Instruction& instruction) {
  const Operand& base = instruction.operands[0];
  const ir::TypeId base_type = ir_.functions[function_].locals[base.local_index].type;
  const bool reference = ir_.types.is_reference(ir_.types.node(base_type).element);
  Xbyak::Label& out_of_range = error_label(ErrorKind::kIndex, [this]() {
    e_.mov(rdx, rcx);
    e_.mov(rcx, rax);
  });
  load(rax, base);
  load(rcx, instruction.operands[1]);
  if (!known_nonnull(base)) {  // a null array has no index in range
    e_.test(rax, rax);
    e_.jz(out_of_range, Emitter::T_NEAR);
  }
  note_checked_nonnull(base);
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

void Compiler::compile_global(const Instruction& instruction) {
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

void Compiler::keep_new_private(const Instruction& instruction) {
  if (new_private_ < 0 || new_private_after_ >= 0) return;  // nothing to keep, or a new one
  if (!instruction.result_name.empty() && instruction.result_index == new_private_) return;
  for (const Operand& operand : instruction.operands)
    if (instruction.opcode != Opcode::LoadField && instruction.opcode != Opcode::Length &&
        operand.kind == OperandKind::Local && operand.local_index == new_private_ &&
        &operand != &instruction.operands[0])
      return;  // stored or passed somewhere: it may be published
  switch (instruction.opcode) {
    case Opcode::Copy:
    case Opcode::Binary:
    case Opcode::LoadField:
    case Opcode::LoadIndex:
    case Opcode::Length:
    case Opcode::LoadGlobal:
      break;  // no call, no slow path
    case Opcode::StoreField:
    case Opcode::StoreIndex: {
      // No slow path: a scalar or null store, or a store into the new object itself.
      const Operand& stored = instruction.operands.back();
      const bool barrier = stored.kind == OperandKind::Local &&
                           function_layout_->local_is_reference[stored.local_index];
      if (barrier &&
          !(instruction.opcode == Opcode::StoreField &&
            instruction.operands[0].local_index == new_private_ && !value_may_be_stack(stored)))
        return;
      break;
    }
    default:
      return;  // calls, polls, allocations, channels, `go`, global stores, branches
  }
  new_private_after_ = new_private_;
}

}  // namespace usgc::jitgen::x86_64
