// jitgen/code_visibility/elf_symbol_file.hpp — the smallest ELF64 object a debugger accepts as
// the symbol file of a piece of JIT code.
//
// Layout (all in one byte buffer, little-endian x86-64, ET_REL like the objects LLVM's and
// LuaJIT's GDB JIT registrations hand over):
//   ELF header | section headers | .shstrtab | .strtab | .symtab
// Sections: [0] null, [1] .text, [2] .symtab, [3] .strtab, [4] .shstrtab.
//   - .text is SHT_NOBITS (no bytes in the file: the code is in memory already), flags
//     ALLOC|EXECINSTR, sh_addr = the lowest symbol start, sh_size = up to the highest symbol
//     end. gdb places ALLOC sections of a JIT object at their sh_addr, so .text covers the code.
//   - .symtab: the null symbol, then one STT_FUNC / STB_GLOBAL symbol per function, st_value
//     relative to .text (ET_REL) and st_size its code size, so pc -> name lookups work.
// No DWARF: a debugger unwinds through the code with its prologue analysis (frame-pointer
// frames); names are what this file is for.
// Invariant: symbols are validated by the caller (non-empty names without NUL, non-null
// starts, non-zero sizes, no wrap-around); build_elf_symbol_file trusts them.
// Not on a hot path: once per compiled module.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "jitgen/code_visibility/code_visibility.hpp"

namespace usgc::jitgen {

// The symbol file for `symbols` (at least one).
std::vector<uint8_t> build_elf_symbol_file(std::span<const CompiledSymbol> symbols);

}  // namespace usgc::jitgen
