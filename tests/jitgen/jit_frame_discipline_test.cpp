// tests/jitgen/jit_frame_discipline_test.cpp — shrink-wrapped frames never leave a point that can
// collect without its roots (docs/jit.md, "Frames only where they are needed").
//
// The machine-code check (check_frames) is independent of the compiler's own bookkeeping: it
// decodes every compiled function with capstone and follows every path from its entry, tracking
// whether the function's shadow-stack frame is linked (`mov qword [r15 + 8], rsp` links a frame,
// a store of any other register into mutator->frames unlinks it). It fails when
//   - a call (to a compiled function, or into the runtime: the allocation refills, the barrier's
//     slow path, channel operations, --gc-stress's collection...) or a poll runs while no frame
//     of the function is linked: a collection there would miss the function's references;
//     the only call allowed without a frame is the runtime-error report (it never collects);
//   - a path returns with its frame still linked, or two paths meet with different states.
// A jump to the module's unwind stub (a stopping run, a runtime error: docs/jit.md, "Errors
// unwind to the entry") ends a path in either state: the stub unlinks every compiled frame.
// The run check: a leaf that runs without its frame allocates (a collection at every allocation
// with --gc-stress 1) while the only reference to its input is its argument word; the temporary
// frame of the slow path must root it, or the list built through it comes back corrupt.
#include <capstone/capstone.h>
#include <gtest/gtest.h>
#include <xbyak/xbyak.h>

#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/compiled_module.hpp"
#include "jitgen/x86_64/jit_runtime.hpp"
#include "tests/jitgen/random_usir_program.hpp"
#include "tests/jitgen/usir_test_support.hpp"
#include "tests/support/time_limits.hpp"

namespace usgc::jitgen::x86_64 {
namespace {

struct FrameCheck {
  std::vector<std::string> violations;
  size_t frameless_returns = 0;  // `ret`s reached on a path that never linked a frame
  size_t framed_returns = 0;     // `ret`s reached after a frame was linked and unlinked
  size_t unwinds = 0;            // jumps to the unwind stub
};

// Follows every path of the code [begin, end) (addresses as in `code`, which starts at
// `origin`) from `begin`. `allowed_without_frame`: the one call target that may run without a
// frame (the runtime-error report). A jump into [exits_begin, exits_end) (the module's unwind
// stub) ends a path.
FrameCheck check_frames(const uint8_t* code, uint64_t origin, uint64_t begin, uint64_t end,
                        uint64_t allowed_without_frame, uint64_t exits_begin = 0,
                        uint64_t exits_end = 0) {
  FrameCheck check;
  csh handle;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) {
    check.violations.push_back("capstone: cannot open");
    return check;
  }
  cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* decoded = nullptr;
  size_t count = cs_disasm(handle, code + (begin - origin), end - begin, begin, 0, &decoded);
  std::map<uint64_t, size_t> at;  // address -> index
  for (size_t i = 0; i < count; ++i) at[decoded[i].address] = i;

  struct State {
    bool linked = false;
    bool ever_linked = false;
  };
  std::map<uint64_t, std::set<std::pair<bool, bool>>> seen;
  std::map<uint64_t, bool> linked_at;
  std::vector<std::pair<uint64_t, State>> work = {{begin, {}}};
  auto violation = [&](uint64_t address, const std::string& what) {
    char text[32];
    std::snprintf(text, sizeof text, "+0x%llx: ", static_cast<unsigned long long>(address));
    check.violations.push_back(text + what);
  };
  while (!work.empty()) {
    auto [address, state] = work.back();
    work.pop_back();
    uint64_t last_rax_immediate = 0;
    for (;;) {
      auto found = at.find(address);
      if (found == at.end()) {
        violation(address, "a path leaves the function or lands inside an instruction");
        break;
      }
      auto known = linked_at.find(address);
      if (known != linked_at.end() && known->second != state.linked) {
        violation(address, "paths meet with and without the frame linked");
        break;
      }
      linked_at[address] = state.linked;
      if (!seen[address].insert({state.linked, state.ever_linked}).second) break;
      const cs_insn& insn = decoded[found->second];
      const cs_x86& x86 = insn.detail->x86;
      const std::string mnemonic = insn.mnemonic;
      const std::string operands = insn.op_str;
      address = insn.address + insn.size;
      if (mnemonic == "mov" && operands.rfind("qword ptr [r15 + 8], ", 0) == 0) {
        state.linked = operands == "qword ptr [r15 + 8], rsp";
        if (state.linked) state.ever_linked = true;
        continue;
      }
      if ((mnemonic == "movabs" || mnemonic == "mov") && x86.op_count == 2 &&
          x86.operands[0].type == X86_OP_REG && x86.operands[0].reg == X86_REG_RAX &&
          x86.operands[1].type == X86_OP_IMM) {
        last_rax_immediate = static_cast<uint64_t>(x86.operands[1].imm);
        continue;
      }
      if (mnemonic == "test" && operands == "byte ptr [r11], 0" && !state.linked)
        violation(insn.address, "a poll without the frame linked");
      if (mnemonic == "call") {
        const bool through_rax = operands == "rax";
        if (!state.linked && !(through_rax && last_rax_immediate == allowed_without_frame))
          violation(insn.address, "a call without the frame linked: " + operands);
        continue;
      }
      if (mnemonic == "ret") {
        if (state.linked) violation(insn.address, "returns with its frame linked");
        ++(state.ever_linked ? check.framed_returns : check.frameless_returns);
        break;
      }
      if (mnemonic[0] == 'j') {
        if (x86.op_count != 1 || x86.operands[0].type != X86_OP_IMM) {
          violation(insn.address, "an indirect jump");
          break;
        }
        const auto target = static_cast<uint64_t>(x86.operands[0].imm);
        if (target >= exits_begin && target < exits_end) {
          ++check.unwinds;
        } else {
          work.push_back({target, state});
        }
        if (mnemonic == "jmp") break;
        continue;
      }
      if (mnemonic == "ud2" || mnemonic == "hlt") break;
    }
  }
  if (count != 0) cs_free(decoded, count);
  cs_close(&handle);
  return check;
}

uint64_t runtime_error_address() {
  return reinterpret_cast<uint64_t>(&usgc_jit_runtime_error);
}

FrameCheck check_function(const CompiledModule& code, const CompiledFunction& function) {
  const uint64_t origin = reinterpret_cast<uint64_t>(code.code());
  uint64_t exits_begin = 0, exits_end = 0;
  for (const CompiledFunction& stub : code.functions())
    if (stub.name == "usgc_jit_unwind") {
      exits_begin = origin + stub.offset;
      exits_end = exits_begin + stub.size;
    }
  EXPECT_EQ(exits_begin, origin + code.unwind_offset()) << "the module's unwind stub";
  return check_frames(code.code(), origin, origin + function.offset,
                      origin + function.offset + function.size, runtime_error_address(),
                      exits_begin, exits_end);
}

struct Compiled {
  ir::Module module;
  escape::EscapeAnalysis analysis;
  std::unique_ptr<CompiledModule> code;
};

Compiled compile_text(const std::string& text, const std::string& name, CompileOptions options) {
  ir::ParseResult parsed = ir::parse_module(text, name);
  EXPECT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
  Compiled compiled{std::move(parsed.module), {}, nullptr};
  compiled.analysis = escape::analyze_escapes(compiled.module);
  std::string error;
  compiled.code = CompiledModule::compile(compiled.module, compiled.analysis, options, &error);
  EXPECT_NE(compiled.code, nullptr) << error;
  return compiled;
}

// Checks every compiled function; returns the frameless returns over all of them.
size_t expect_frames_everywhere(const CompiledModule& code) {
  size_t frameless = 0;
  for (const CompiledFunction& function : code.functions()) {
    if (function.function_index == UINT32_MAX) continue;  // the entry thunk, the unwind stub
    FrameCheck check = check_function(code, function);
    for (const std::string& violation : check.violations)
      ADD_FAILURE() << function.name << " " << violation << "\n" << code.disassemble();
    EXPECT_GT(check.frameless_returns + check.framed_returns, 0u) << function.name;
    frameless += check.frameless_returns;
  }
  return frameless;
}

// The checker itself: hand-made code with each kind of mistake, and the correct shapes.
TEST(JitFrameDiscipline, TheCheckerFindsACallOrPollWithoutTheFrame) {
  using namespace Xbyak::util;
  const uint64_t report = runtime_error_address();
  auto check_code = [&](const std::function<void(Xbyak::CodeGenerator&)>& emit) {
    Xbyak::CodeGenerator e(4096, Xbyak::DontSetProtectRWE);
    emit(e);
    e.ready();
    const uint64_t origin = reinterpret_cast<uint64_t>(e.getCode());
    return check_frames(e.getCode(), origin, origin, origin + e.getSize(), report);
  };
  auto link = [](Xbyak::CodeGenerator& e) { e.mov(e.qword[r15 + 8], rsp); };
  auto unlink = [](Xbyak::CodeGenerator& e) { e.mov(e.qword[r15 + 8], rcx); };
  auto runtime_call = [](Xbyak::CodeGenerator& e, uint64_t target) {
    e.mov(rax, target);
    e.call(rax);
  };
  // Correct: frame, call, unlink, return; and a leaf path that returns before the frame.
  FrameCheck good = check_code([&](Xbyak::CodeGenerator& e) {
    Xbyak::Label leaf;
    e.test(rbx, rbx);
    e.je(leaf);
    link(e);
    runtime_call(e, 0x1234);
    e.test(e.byte[r11], 0);
    unlink(e);
    e.ret();
    e.L(leaf);
    runtime_call(e, report);  // the error report is allowed anywhere
    e.ret();
  });
  EXPECT_TRUE(good.violations.empty()) << good.violations.front();
  EXPECT_EQ(good.frameless_returns, 1u);
  EXPECT_EQ(good.framed_returns, 1u);
  // A runtime call on the path that skipped the frame.
  FrameCheck call = check_code([&](Xbyak::CodeGenerator& e) {
    Xbyak::Label leaf;
    e.test(rbx, rbx);
    e.je(leaf);
    link(e);
    unlink(e);
    e.ret();
    e.L(leaf);
    runtime_call(e, 0x1234);
    e.ret();
  });
  ASSERT_EQ(call.violations.size(), 1u);
  EXPECT_NE(call.violations[0].find("a call without the frame linked"), std::string::npos);
  // A poll, and a compiled call, before the frame.
  FrameCheck poll = check_code([&](Xbyak::CodeGenerator& e) {
    Xbyak::Label callee;
    e.test(e.byte[r11], 0);
    e.call(callee);
    e.ret();
    e.L(callee);
    e.ret();
  });
  EXPECT_EQ(poll.violations.size(), 2u);
  // A path that returns with its frame linked, and two paths meeting in different states.
  FrameCheck leak = check_code([&](Xbyak::CodeGenerator& e) {
    Xbyak::Label join;
    e.test(rbx, rbx);
    e.je(join);
    link(e);
    e.L(join);
    e.ret();
  });
  EXPECT_FALSE(leak.violations.empty());
}

TEST(JitFrameDiscipline, CorpusAndRandomProgramsCallAndPollOnlyWithTheFrameLinked) {
  size_t frameless = 0, programs = 0;
  auto check_both = [&](const std::string& text, const std::string& name) {
    for (bool stress : {false, true}) {
      CompileOptions options;
      options.gc_stress = stress;
      Compiled compiled = compile_text(text, name, options);
      if (compiled.code == nullptr) return;
      frameless += expect_frames_everywhere(*compiled.code);
    }
    ++programs;
  };
  for (const auto& path : usgc::testing::usir_corpus_files()) {
    SCOPED_TRACE(path.filename().string());
    check_both(usgc::testing::read_text_file(path), path.filename().string());
  }
  for (uint32_t i = 0; i < 60; ++i) {
    random_usir::RandomUsirProgram program = random_usir::generate_random_program(0x5F00u + i);
    SCOPED_TRACE(program.file_name + "\n" + program.text);
    check_both(program.text, program.file_name);
  }
  check_both(
      usgc::testing::read_text_file(usgc::testing::source_root() / "bench/binary_trees.usir"),
      "binary_trees.usir");
  EXPECT_GE(programs, 100u);
  EXPECT_GT(frameless, 0u) << "no function returned without its frame: nothing was shrink-wrapped";
}

TEST(JitFrameDiscipline, BinaryTreesLeavesRunWithoutTheFrameAndOnlyWithShrinkWrapping) {
  const std::string text =
      usgc::testing::read_text_file(usgc::testing::source_root() / "bench/binary_trees.usir");
  for (bool shrink_wrap : {true, false}) {
    CompileOptions options;
    options.shrink_wrap = shrink_wrap;
    Compiled compiled = compile_text(text, "binary_trees.usir", options);
    ASSERT_NE(compiled.code, nullptr);
    for (const char* name : {"item_check", "bottom_up_tree"}) {
      for (const CompiledFunction& function : compiled.code->functions()) {
        if (function.name != name) continue;
        FrameCheck check = check_function(*compiled.code, function);
        EXPECT_TRUE(check.violations.empty()) << name;
        if (shrink_wrap) {
          EXPECT_GE(check.frameless_returns, 1u) << name << ": its leaf path returns unframed";
        } else {
          EXPECT_EQ(check.frameless_returns, 0u) << name;
        }
        EXPECT_GE(check.framed_returns, 1u) << name << ": its inner path pushes the frame";
      }
    }
  }
}

// leaf runs without its frame (private allocations, barriers, loads: no call, no loop); main
// passes it a fresh node held only in a register (dead in main after the call), so during the
// collection at each of leaf's allocations (--gc-stress 1) only leaf's temporary frame roots
// it, and through it the whole list. A missed root frees list nodes; the next allocations reuse
// them and the sum comes back wrong (or the run crashes).
constexpr const char* kLeafProgram = R"(type Node { v: int, next: *Node }

func leaf(%t: *Node, %k: int) -> *Node {
  var %n: *Node
  var %m: *Node
  var %x: int
entry:
  %n = new Node
  %m = new Node
  store %m.v, %k
  store %m.next, %t
  %x = load %t.v
  store %n.v, %x
  store %n.next, %m
  ret %n
}

func main() -> int {
  var %head: *Node
  var %t: *Node
  var %i: int
  var %sum: int
  var %x: int
  var %more: bool
entry:
  %i = 1
  jmp head
head:
  %more = le %i, 300
  br %more, body, walk
body:
  %t = new Node
  store %t.v, %i
  store %t.next, %head
  %head = call leaf(%t, %i)
  %i = add %i, 1
  jmp head
walk:
  %more = ne %head, null
  br %more, visit, done
visit:
  %x = load %head.v
  %sum = add %sum, %x
  %head = load %head.next
  jmp walk
done:
  ret %sum
}
)";

TEST(JitFrameDiscipline, ALeafAllocatingWithoutItsFrameKeepsItsInputRooted) {
  {
    // Without --gc-stress's calls leaf returns on a path that never links a frame (with them,
    // each allocation links a temporary one).
    Compiled plain = compile_text(kLeafProgram, "leaf.usir", {});
    ASSERT_NE(plain.code, nullptr);
    for (const CompiledFunction& function : plain.code->functions())
      if (function.name == "leaf") {
        EXPECT_GE(check_function(*plain.code, function).frameless_returns, 1u)
            << plain.code->disassemble();
      }
  }
  CompileOptions options;
  options.gc_stress = true;
  Compiled compiled = compile_text(kLeafProgram, "leaf.usir", options);
  ASSERT_NE(compiled.code, nullptr);
  interpreter::RunOptions run;
  run.checked = false;
  run.procs = 1;
  run.gc_stress_every = 1;
  run.time_limit_ms = usgc::testing::kRunTimeLimitMs;
  interpreter::RunResult result = run_compiled(*compiled.code, run);
  ASSERT_EQ(result.status, interpreter::RunStatus::kCompleted) << result.message;
  EXPECT_GT(result.private_collections, 0u);
  // Each iteration i adds three nodes: n (v = i), m (v = i), t (v = i): 3 * (1 + ... + 300).
  ASSERT_TRUE(result.returned_value.has_value());
  EXPECT_EQ(*result.returned_value, 3 * 300 * 301 / 2);
}

}  // namespace
}  // namespace usgc::jitgen::x86_64
