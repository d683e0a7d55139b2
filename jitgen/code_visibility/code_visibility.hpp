// jitgen/code_visibility/code_visibility.hpp — making compiled code visible to profilers and
// debuggers, the way V8 and the JVM make theirs visible.
//
// A JIT calls announce_compiled_module() once a module's code is in place (executable, final
// addresses) and withdraw_compiled_module() before that code memory is unmapped or reused.
// Two mechanisms, both standard:
//   - perf map (jitgen/code_visibility/perf_map.hpp): with USGC_PERF_MAP=1 in the environment,
//     every announced symbol appends one line "START SIZE name" (hex, no 0x) to
//     perf-<pid>.map in the temporary directory, which `perf report` / `perf top` read to name
//     samples in anonymous executable memory. A map file only grows: withdrawal writes nothing.
//   - GDB JIT interface (jitgen/code_visibility/gdb_jit_interface.hpp): always on. Each module
//     becomes one jit_code_entry whose symbol file is a small in-memory ELF64 object
//     (jitgen/code_visibility/elf_symbol_file.hpp) naming its functions, so gdb's backtrace and
//     `info symbol` show them. Costs a few hundred bytes per module and one call to an empty
//     function when no debugger is attached.
//
// Invariants:
//   - a symbol is announced only while its bytes are mapped at [start, start + size_bytes);
//     the caller withdraws the module before freeing the code (a debugger may read it).
//   - a VisibleModule is owned by the caller from announce to withdraw; withdraw frees it.
//   - thread-safe: announce and withdraw may run on any threads at once; one lock
//     (the code-visibility lock, a leaf: docs/HACKING.md) serializes the registration.
// Invalid input (no symbols, an empty name or one holding a NUL or newline, a null start, a
// zero size, a range that wraps) announces nothing: announce prints one "usgc: ..." line
// naming the module and the symbol and returns null. Not on any hot path (once per module).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace usgc::jitgen {

struct CompiledSymbol {
  std::string name;        // as it should appear in a profile or a backtrace
  const void* start;       // first byte of the function's code
  std::size_t size_bytes;  // bytes of code from start
};

// Opaque: the registration of one module (its GDB entry and symbol file).
struct VisibleModule;

// Registers `symbols` (one module's functions) with the debugger and, when USGC_PERF_MAP=1,
// appends them to the perf map. Returns the registration to pass to withdraw_compiled_module,
// or null when nothing was announced (invalid input, see above).
VisibleModule* announce_compiled_module(std::string_view module_name,
                                        std::span<const CompiledSymbol> symbols);

// Unregisters the module from the debugger and frees the registration. Null does nothing.
void withdraw_compiled_module(VisibleModule* module);

}  // namespace usgc::jitgen
