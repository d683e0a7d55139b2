// jitgen/code_visibility/gdb_jit_interface.hpp — the GDB JIT compilation interface
// (gdb manual, "JIT Compilation Interface"; also read by LLDB).
//
// The protocol: the process exports a descriptor, `__jit_debug_descriptor`, heading a doubly
// linked list of jit_code_entry records, each pointing at an in-memory object file (here
// jitgen/code_visibility/elf_symbol_file.hpp), and an empty function,
// `__jit_debug_register_code`, on which a debugger keeps a breakpoint. To register (or
// unregister) an entry the JIT links (unlinks) it, sets relevant_entry and action_flag, and
// calls the function; the debugger, stopped there, reads the descriptor and loads (drops) the
// object file. Both names must be exactly these, with default visibility (the library is built
// -fvisibility=hidden), and the function must survive optimization as a real call: noinline and
// used, and an asm barrier in its body so neither the function nor the calls to it are removed
// (LLVM's registration does the same).
//
// Invariant (the descriptor's lock): the list, relevant_entry and action_flag are written only
// under the code-visibility lock (code_visibility.cpp), so a debugger sees one consistent
// change per call of __jit_debug_register_code. Entries stay alive while linked.
// Not on a hot path: once per module announced or withdrawn.
#pragma once

#include <cstdint>

extern "C" {

typedef enum { JIT_NOACTION = 0, JIT_REGISTER_FN, JIT_UNREGISTER_FN } jit_actions_t;

struct jit_code_entry {
  struct jit_code_entry* next_entry;
  struct jit_code_entry* prev_entry;
  const char* symfile_addr;
  uint64_t symfile_size;
};

struct jit_descriptor {
  uint32_t version;
  // jit_actions_t, written as uint32_t as in the gdb manual's declaration.
  uint32_t action_flag;
  struct jit_code_entry* relevant_entry;
  struct jit_code_entry* first_entry;
};

// The debugger's breakpoint target. Called with the code-visibility lock held.
__attribute__((visibility("default"), noinline, used)) void __jit_debug_register_code(void);

// Written only under the code-visibility lock; read by a debugger while the process is stopped.
extern __attribute__((visibility("default"))) struct jit_descriptor __jit_debug_descriptor;

}  // extern "C"

namespace usgc::jitgen {

// Link `entry` at the head of the list and notify the debugger. Caller holds the lock.
void gdb_register_entry_locked(jit_code_entry* entry);
// Unlink `entry` and notify the debugger. Caller holds the lock.
void gdb_unregister_entry_locked(jit_code_entry* entry);

}  // namespace usgc::jitgen
