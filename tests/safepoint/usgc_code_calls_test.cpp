// tests/safepoint/usgc_code_calls_test.cpp — usgc's own code never passes through code that an
// asynchronous safepoint may stop.
//
// The signal handler never stops a thread running usgc's code (the usgc_text section) or a
// system library (safepoint/code_ranges.hpp). A PLT stub is neither: it lies in the program's
// (or libusgc.so's) .plt, so a call from usgc's code to memcpy or syscall through a stub could be
// stopped on the stub, inside usgc's code: between the write barrier's shade and its store (a
// shared mark then lost the overwritten reference), or holding a channel's lock (the stop then
// waited for that lock forever). The library is built with -fno-plt (Makefile), so its calls to
// shared libraries go through the GOT.
//
//   UsgcCode.CallsNoPltStub
//     Disassembles usgc_text (capstone) and checks that no direct call or jump leaves it for a
//     PLT-shaped stub (jmp *GOT(%rip), with or without endbr64 and bnd prefixes).
//   UsgcCode.CallsNoProgramCode (below)
#include <capstone/capstone.h>
#include <dlfcn.h>
#include <pthread.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "safepoint/code_ranges.hpp"

namespace usgc::safepoint {
namespace {

// A PLT entry's first instructions: [endbr64] [bnd] jmp *disp32(%rip).
bool looks_like_plt_stub(uintptr_t address) {
  const auto* code = reinterpret_cast<const uint8_t*>(address);
  static const uint8_t kEndbr64[] = {0xF3, 0x0F, 0x1E, 0xFA};
  if (std::memcmp(code, kEndbr64, sizeof kEndbr64) == 0) code += sizeof kEndbr64;
  if (code[0] == 0xF2) ++code;  // bnd
  return code[0] == 0xFF && code[1] == 0x25;
}

std::string name_of(uintptr_t address) {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(address), &info) != 0 && info.dli_sname != nullptr)
    return info.dli_sname;
  return "?";
}

// A direct call or jump out of usgc_text: where from, where to.
struct Exit {
  uintptr_t from;
  uintptr_t to;
};

// Disassembles usgc_text (capstone) and returns its direct calls and jumps that leave it; *branches
// counts every direct one seen.
std::vector<Exit> branches_leaving_usgc_code(size_t* branches) {
  std::vector<Exit> exits;
  *branches = 0;
  const uintptr_t begin = usgc_code_begin();
  const uintptr_t end = usgc_code_end();
  csh handle = 0;
  if (begin == 0 || begin >= end || cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK)
    return exits;
  cs_option(handle, CS_OPT_SKIPDATA, CS_OPT_ON);  // padding between functions
  const auto* code = reinterpret_cast<const uint8_t*>(begin);
  size_t size = end - begin;
  uint64_t address = begin;
  cs_insn* instruction = cs_malloc(handle);
  while (instruction != nullptr && cs_disasm_iter(handle, &code, &size, &address, instruction)) {
    const bool call = std::strcmp(instruction->mnemonic, "call") == 0;
    const bool jump = std::strcmp(instruction->mnemonic, "jmp") == 0;
    if (!call && !jump) continue;
    char* rest = nullptr;
    const uintptr_t target = std::strtoull(instruction->op_str, &rest, 16);
    if (rest == instruction->op_str || *rest != '\0') continue;  // indirect: register or memory
    ++*branches;
    if (target < begin || target >= end) exits.push_back({instruction->address, target});
  }
  if (instruction != nullptr) cs_free(instruction, 1);
  cs_close(&handle);
  return exits;
}

TEST(UsgcCode, CallsNoPltStub) {
  ASSERT_NE(usgc_code_begin(), 0u) << "the build did not move usgc's code into usgc_text";
  size_t branches = 0;
  size_t through_plt = 0;
  std::string examples;
  for (const Exit& exit : branches_leaving_usgc_code(&branches)) {
    if (!looks_like_plt_stub(exit.to)) continue;
    ++through_plt;
    if (through_plt <= 8)
      examples += " " + name_of(exit.from) + " -> stub at 0x" + std::to_string(exit.to) + ";";
  }
  EXPECT_GT(branches, 1000u) << "the disassembly found too few direct calls to mean anything";
  EXPECT_EQ(through_plt, 0u) << "usgc's code calls through PLT stubs, where an asynchronous "
                                "safepoint may stop it (build the library with -fno-plt):"
                             << examples;
}

//   UsgcCode.CallsNoProgramCode
//     No direct call or jump leaves usgc_text for the program's own code either: an inline or
//     template function that the program (here: the tests, which include usgc's headers and use
//     std::string) also emits out of line is one function to the linker, which keeps the copy it
//     met first, the program's, in .text; usgc's calls would then run code the asynchronous
//     safepoint handler takes for the program's and may stop (a debug build, where nothing is
//     inlined, stopped goroutines inside the write barrier's and the allocator's slow paths that
//     way). The Makefile renames the library's copies (symbol.usgc). The one exit allowed is
//     pthread_atfork, which libc_nonshared.a links into the program (called once, at start).
TEST(UsgcCode, CallsNoProgramCode) {
  size_t branches = 0;
  size_t into_program = 0;
  std::string examples;
  const auto atfork = reinterpret_cast<uintptr_t>(&pthread_atfork);
  for (const Exit& exit : branches_leaving_usgc_code(&branches)) {
    if (looks_like_plt_stub(exit.to) || exit.to == atfork) continue;
    ++into_program;
    if (into_program <= 8) examples += " " + name_of(exit.from) + " -> " + name_of(exit.to) + ";";
  }
  EXPECT_GT(branches, 1000u) << "the disassembly found too few direct calls to mean anything";
  EXPECT_EQ(into_program, 0u) << "usgc's code calls the program's copy of a function:" << examples;
}

}  // namespace
}  // namespace usgc::safepoint
