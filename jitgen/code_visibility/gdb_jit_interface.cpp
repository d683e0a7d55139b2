// jitgen/code_visibility/gdb_jit_interface.cpp — see gdb_jit_interface.hpp.
#include "jitgen/code_visibility/gdb_jit_interface.hpp"

extern "C" {

void __jit_debug_register_code(void) {
  // Keeps the function and every call to it: the debugger's breakpoint must be hit.
  asm volatile("" ::: "memory");
}

// version 1 is the only version of the protocol.
struct jit_descriptor __jit_debug_descriptor = {1, JIT_NOACTION, nullptr, nullptr};

}  // extern "C"

namespace usgc::jitgen {

void gdb_register_entry_locked(jit_code_entry* entry) {
  entry->prev_entry = nullptr;
  entry->next_entry = __jit_debug_descriptor.first_entry;
  if (entry->next_entry != nullptr) entry->next_entry->prev_entry = entry;
  __jit_debug_descriptor.first_entry = entry;
  __jit_debug_descriptor.relevant_entry = entry;
  __jit_debug_descriptor.action_flag = JIT_REGISTER_FN;
  __jit_debug_register_code();
  __jit_debug_descriptor.action_flag = JIT_NOACTION;
}

void gdb_unregister_entry_locked(jit_code_entry* entry) {
  if (entry->prev_entry != nullptr) {
    entry->prev_entry->next_entry = entry->next_entry;
  } else {
    __jit_debug_descriptor.first_entry = entry->next_entry;
  }
  if (entry->next_entry != nullptr) entry->next_entry->prev_entry = entry->prev_entry;
  __jit_debug_descriptor.relevant_entry = entry;
  __jit_debug_descriptor.action_flag = JIT_UNREGISTER_FN;
  __jit_debug_register_code();
  __jit_debug_descriptor.action_flag = JIT_NOACTION;
  entry->next_entry = nullptr;
  entry->prev_entry = nullptr;
}

}  // namespace usgc::jitgen
