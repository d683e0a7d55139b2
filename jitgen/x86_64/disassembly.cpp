// jitgen/x86_64/disassembly.cpp — CompiledModule::disassemble with capstone (Intel syntax): each
// function's code, one instruction a line, the stubs' fast paths between marker lines.
// Tools and tests only.
#include <capstone/capstone.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "jitgen/x86_64/compiled_module.hpp"

namespace usgc::jitgen::x86_64 {

std::string CompiledModule::disassemble() const {
  csh handle;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK)
    return "disassembly unavailable: capstone cannot open x86-64\n";
  std::vector<StubMark> marks = marks_;
  std::sort(marks.begin(), marks.end(),
            [](const StubMark& a, const StubMark& b) { return a.begin < b.begin; });
  std::string out;
  char line[256];
  for (const CompiledFunction& function : functions_) {
    std::snprintf(line, sizeof line, "%s: %u bytes at +0x%x\n", function.name.c_str(),
                  function.size, function.offset);
    out += line;
    cs_insn* instructions = nullptr;
    // Addresses are offsets in the module's code (jump targets read as offsets too).
    size_t count = cs_disasm(handle, code_ + function.offset, function.size, function.offset, 0,
                             &instructions);
    auto mark =
        std::lower_bound(marks.begin(), marks.end(), function.offset,
                         [](const StubMark& m, uint32_t offset) { return m.begin < offset; });
    std::vector<const StubMark*> open;
    for (size_t i = 0; i < count; ++i) {
      uint32_t offset = static_cast<uint32_t>(instructions[i].address);
      while (!open.empty() && open.back()->end <= offset) {
        out += "      ; ---- end " + std::string(open.back()->name) + "\n";
        open.pop_back();
      }
      while (mark != marks.end() && mark->begin <= offset) {
        if (mark->begin == offset) {
          out += "      ; ---- stub " + std::string(mark->name) + "\n";
          open.push_back(&*mark);
        }
        ++mark;
      }
      std::snprintf(line, sizeof line, "  %6x  %s %s\n", offset, instructions[i].mnemonic,
                    instructions[i].op_str);
      out += line;
    }
    while (!open.empty()) {
      out += "      ; ---- end " + std::string(open.back()->name) + "\n";
      open.pop_back();
    }
    if (count != 0) cs_free(instructions, count);
  }
  cs_close(&handle);
  return out;
}

}  // namespace usgc::jitgen::x86_64
