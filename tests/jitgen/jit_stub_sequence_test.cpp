// tests/jitgen/jit_stub_sequence_test.cpp — every stub's inline fast path is exactly the
// documented sequence (jitgen/x86_64/stubs.hpp), instruction by instruction: a change that grows
// a stub fails here. Jump targets are left out of the comparison (they move with the code); every
// other operand is computed from the ABI (usgc/object.h, the type's usgc_type_layout).
#include <capstone/capstone.h>
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/compiled_module.hpp"
#include "jitgen/x86_64/stubs.hpp"
#include "safepoint/poll_instruction.hpp"
#include "tests/jitgen/usir_test_support.hpp"

namespace usgc::jitgen::x86_64 {
namespace {

// keep: two private sites (one returned, one stored into it: a barrier with no value test);
// local_use: a call that allocates keep's returned site in its frame (a variant of keep);
// main: stack sites, a barrier whose value is a stack object, a loop (back-edge poll).
constexpr const char* kProgram = R"(type Node { v: int, next: *Node }

func keep(%v: int) -> *Node {
  var %n: *Node
  var %m: *Node
entry:
  %n = new Node
  %m = new Node
  store %m.v, %v
  store %n.v, %v
  store %n.next, %m
  ret %n
}

func local_use(%v: int) -> int {
  var %p: *Node
  var %x: int
entry:
  %p = call keep(%v)
  %x = load %p.v
  ret %x
}

func main() -> int {
  var %a: *Node
  var %c: *Node
  var %i: int
  var %more: bool
entry:
  %a = new Node
  %i = 0
  jmp loop
loop:
  %more = lt %i, 10
  br %more, body, done
body:
  %c = new Node
  store %a.next, %c
  %i = call local_use(%i)
  %i = add %i, 1
  jmp loop
done:
  ret %i
}
)";

struct Compiled {
  ir::Module module;
  escape::EscapeAnalysis analysis;
  std::unique_ptr<CompiledModule> code;
};

Compiled compile_program(const std::string& text = kProgram, const char* name = "stubs.usir") {
  ir::ParseResult parsed = ir::parse_module(text, name);
  EXPECT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
  Compiled compiled{std::move(parsed.module), {}, nullptr};
  compiled.analysis = escape::analyze_escapes(compiled.module);
  std::string error;
  compiled.code = CompiledModule::compile(compiled.module, compiled.analysis, {}, &error);
  EXPECT_NE(compiled.code, nullptr) << error;
  return compiled;
}

std::string hex(uint64_t value) {
  char text[32];
  std::snprintf(text, sizeof text, "0x%" PRIx64, value);
  return text;
}

// The instructions of [begin, end) as "mnemonic operands", jump targets as "*".
std::vector<std::string> instructions_of(const CompiledModule& code, uint32_t begin, uint32_t end) {
  csh handle;
  EXPECT_EQ(cs_open(CS_ARCH_X86, CS_MODE_64, &handle), CS_ERR_OK);
  cs_insn* instructions = nullptr;
  size_t count = cs_disasm(handle, code.code() + begin, end - begin, begin, 0, &instructions);
  std::vector<std::string> lines;
  size_t bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    std::string mnemonic = instructions[i].mnemonic;
    bool jump = mnemonic[0] == 'j';
    lines.push_back(mnemonic + " " + (jump ? std::string("*") : instructions[i].op_str));
    bytes += instructions[i].size;
  }
  EXPECT_EQ(bytes, end - begin) << "the stub decodes to whole instructions";
  if (count != 0) cs_free(instructions, count);
  cs_close(&handle);
  return lines;
}

const CompiledFunction& function_named(const CompiledModule& code, const std::string& name) {
  for (const CompiledFunction& function : code.functions())
    if (function.name == name) return function;
  ADD_FAILURE() << "no compiled function " << name;
  return code.functions().front();
}

// The marks named `stub` inside `function`, in code order.
std::vector<StubMark> marks_in(const CompiledModule& code, const CompiledFunction& function,
                               const std::string& stub) {
  std::vector<StubMark> found;
  for (const StubMark& mark : code.marks())
    if (mark.name == stub && mark.begin >= function.offset &&
        mark.end <= function.offset + function.size)
      found.push_back(mark);
  return found;
}

std::vector<std::string> sequence_of(const CompiledModule& code, const std::string& function,
                                     const std::string& stub, size_t which = 0) {
  std::vector<StubMark> marks = marks_in(code, function_named(code, function), stub);
  if (marks.size() <= which) {
    ADD_FAILURE() << function << " has " << marks.size() << " " << stub << " stubs";
    return {};
  }
  return instructions_of(code, marks[which].begin, marks[which].end);
}

usgc_type_layout layout_of_site(const Compiled& compiled, uint32_t line) {
  for (const escape::SiteDecision& site : compiled.analysis.sites)
    if (site.position.line == line) {
      usgc_type_layout layout{};
      EXPECT_EQ(usgc_type_layout_of(compiled.code->layout().site(site.site_index).type, &layout),
                0);
      return layout;
    }
  ADD_FAILURE() << "no site on line " << line;
  return {};
}

// The record is compact (usgc/object.h): the count word (R << 1) | 1 and `previous`, the slots
// found right above it; the arena mark below it only where the pop restores arena_top (main
// allocates on the stack). It was 6 instructions with a slots pointer and a mark in every frame.
TEST(JitStubSequence, FramePushIsACompactRecordOfThreeInstructionsPlusTheArenaMark) {
  Compiled compiled = compile_program();
  ASSERT_NE(compiled.code, nullptr);
  // main has two reference locals: R = 2, its record at rbp - 16 - 16, the mark below it.
  EXPECT_EQ(
      sequence_of(*compiled.code, "main", "frame_push"),
      (std::vector<std::string>{"push 5", "push qword ptr [r15 + 8]",
                                "mov qword ptr [r15 + 8], rsp", "push qword ptr [r15 + 0x10]"}));
  EXPECT_EQ(
      sequence_of(*compiled.code, "main", "frame_pop"),
      (std::vector<std::string>{"mov rcx, qword ptr [rbp - 0x20]", "mov qword ptr [r15 + 8], rcx",
                                "mov rcx, qword ptr [rbp - 0x28]",
                                "mov qword ptr [r15 + 0x10], rcx", "leave ", "ret "}));
  // keep's caller-frame variant keeps the arena (its object lives in its caller's frame): no mark.
  const std::string variant =
      "keep[caller frame: " + std::to_string(compiled.analysis.sites[0].site_index) + "]";
  EXPECT_EQ(sequence_of(*compiled.code, variant, "frame_push"),
            (std::vector<std::string>{"push 5", "push qword ptr [r15 + 8]",
                                      "mov qword ptr [r15 + 8], rsp"}));
}

TEST(JitStubSequence, TheCallerFrameVariantPopsKeepingTheArena) {
  Compiled compiled = compile_program();
  ASSERT_NE(compiled.code, nullptr);
  const std::string variant =
      "keep[caller frame: " + std::to_string(compiled.analysis.sites[0].site_index) + "]";
  EXPECT_EQ(sequence_of(*compiled.code, variant, "frame_pop_keeping_arena"),
            (std::vector<std::string>{"mov rcx, qword ptr [rbp - 0x20]",
                                      "mov qword ptr [r15 + 8], rcx", "leave ", "ret "}));
  EXPECT_TRUE(
      marks_in(*compiled.code, function_named(*compiled.code, variant), "frame_pop").empty());
  EXPECT_EQ(marks_in(*compiled.code, function_named(*compiled.code, variant), "stack_alloc").size(),
            1u)
      << "the returned site is STACK_LOCAL in the caller's frame";
  EXPECT_EQ(marks_in(*compiled.code, function_named(*compiled.code, "keep"), "stack_alloc").size(),
            0u);
}

TEST(JitStubSequence, PollIsOneFaultingTestAfterTheThreadLocalLoad) {
  Compiled compiled = compile_program();
  ASSERT_NE(compiled.code, nullptr);
  const std::vector<std::string> expected = {
      "mov r11, qword ptr fs:[" + hex(static_cast<uint64_t>(int64_t{poll_slot_thread_offset()})) +
          "]",
      "test byte ptr [r11], 0"};
  EXPECT_EQ(sequence_of(*compiled.code, "main", "poll", 0), expected) << "at entry";
  EXPECT_EQ(sequence_of(*compiled.code, "main", "poll", 1), expected) << "at the back edge";
  // The faulting instruction is one the fault handler steps over (F6 /0 ib, REX.B, no index).
  for (const StubMark& mark : compiled.code->marks()) {
    if (std::string(mark.name) != "poll") continue;
    const uint8_t* test = compiled.code->code() + mark.end - 4;
    EXPECT_EQ(test[0], 0x41);
    EXPECT_EQ(test[1], 0xF6);
    EXPECT_EQ(safepoint::poll_instruction_length({test, 4}), 4u);
  }
}

TEST(JitStubSequence, PrivateAllocationIsSevenInstructionsThroughTheHeaderStore) {
  Compiled compiled = compile_program();
  ASSERT_NE(compiled.code, nullptr);
  usgc_type_layout layout = layout_of_site(compiled, 7);
  ASSERT_NE(layout.size_class, UINT32_MAX);
  const uint64_t next = 32 + 16 * uint64_t{layout.size_class};
  const std::vector<std::string> expected = {
      "mov rax, qword ptr [r15 + " + hex(next) + "]",
      "lea rcx, [rax + " + hex(layout.slot_bytes) + "]",
      "cmp rcx, qword ptr [r15 + " + hex(next + 8) + "]",
      "ja *",
      "mov qword ptr [r15 + " + hex(next) + "], rcx",
      "mov dword ptr [rax], " + hex(static_cast<uint32_t>(layout.header_bits)),
      "mov dword ptr [rax + 4], r14d"};
  EXPECT_EQ(sequence_of(*compiled.code, "keep", "private_alloc", 0), expected);
  // Right after it: the object pointer.
  std::vector<StubMark> marks =
      marks_in(*compiled.code, function_named(*compiled.code, "keep"), "private_alloc");
  ASSERT_FALSE(marks.empty());
  EXPECT_EQ(instructions_of(*compiled.code, marks[0].end, marks[0].end + 4),
            (std::vector<std::string>{"add rax, 8"}));
}

TEST(JitStubSequence, StackAllocationBumpsZeroesAndStoresTheHeader) {
  Compiled compiled = compile_program();
  ASSERT_NE(compiled.code, nullptr);
  usgc_type_layout layout = layout_of_site(compiled, 30);
  std::vector<std::string> expected = {
      "mov rax, qword ptr [r15 + 0x10]", "lea rcx, [rax + " + hex(layout.slot_bytes) + "]",
      "cmp rcx, qword ptr [r15 + 0x18]", "ja *",
      "mov qword ptr [r15 + 0x10], rcx", "xor ecx, ecx"};
  for (uint32_t word = 1; word < layout.slot_bytes / 8; ++word)
    expected.push_back("mov qword ptr [rax + " + (word == 1 ? std::string("8") : hex(8 * word)) +
                       "], rcx");
  expected.push_back("mov dword ptr [rax], " +
                     hex(static_cast<uint32_t>(layout.header_bits) & ~uint32_t{3}));
  expected.push_back("mov dword ptr [rax + 4], r14d");
  EXPECT_EQ(sequence_of(*compiled.code, "main", "stack_alloc"), expected);
}

TEST(JitStubSequence, BarrierIsTwoInstructionsBeyondTheStoreWhereTheValueCannotBeStackLocal) {
  Compiled compiled = compile_program();
  ASSERT_NE(compiled.code, nullptr);
  // keep: %m is private and stored nowhere it could come back as a stack object. The value is
  // stored from its cache register (RSI), not copied into a scratch register first.
  EXPECT_EQ(sequence_of(*compiled.code, "keep", "barrier"),
            (std::vector<std::string>{"cmp dword ptr [rax - 4], r14d", "jne *",
                                      "mov qword ptr [rax + 8], rsi"}));
  EXPECT_TRUE(
      marks_in(*compiled.code, function_named(*compiled.code, "keep"), "barrier_checking_value")
          .empty());
  // main: %c is a stack object: the value test stays (a stack object may go into a stack one).
  EXPECT_EQ(sequence_of(*compiled.code, "main", "barrier_checking_value"),
            (std::vector<std::string>{"cmp dword ptr [rax - 4], r14d", "jne *", "test rsi, rsi",
                                      "je *", "test byte ptr [rsi - 8], 3", "je *",
                                      "mov qword ptr [rax + 8], rsi"}));
}

// binary-trees' item_check, the per-call overhead of a compiled call (docs/jit.md, "Errors unwind
// to the entry"): no caller tests anything after a call (no stop-flag load through R12 at all:
// a stop reaches the next prologue through the stack limit), errors leave through the module's
// stub (no call of the report in the function), the pop does not restore an arena it cannot
// have moved, the prologue of the inner path is where the branch goes (no jump over the leaf),
// and the sum is computed in its register. Its code through the epilogue: 50 instructions with
// the post-call checks and the 6-instruction pop, 42 without them, 39 with the compact frame
// record; 49 of those on the inner path then, 40, now 37; the leaf path 8 (unchanged).
TEST(JitStubSequence, ItemCheckCallsWithoutChecksAfterTheCallsAndAShortPop) {
  Compiled compiled = compile_program(
      usgc::testing::read_text_file(usgc::testing::source_root() / "bench/binary_trees.usir"),
      "binary_trees.usir");
  ASSERT_NE(compiled.code, nullptr);
  const CompiledModule* code = compiled.code.get();
  const CompiledFunction& item_check = function_named(*code, "item_check");
  const std::vector<StubMark> pops = marks_in(*code, item_check, "frame_pop");
  ASSERT_EQ(pops.size(), 1u) << code->disassemble();
  EXPECT_EQ(instructions_of(*code, pops[0].begin, pops[0].end),
            (std::vector<std::string>{"mov rcx, qword ptr [rbp - 0x28]",
                                      "mov qword ptr [r15 + 8], rcx", "leave ", "ret "}));
  const std::vector<std::string> whole =
      instructions_of(*code, item_check.offset, item_check.offset + item_check.size);
  size_t calls = 0;
  for (const std::string& instruction : whole) {
    EXPECT_EQ(instruction.find("r12"), std::string::npos) << instruction;
    if (instruction.rfind("call ", 0) == 0) ++calls;
  }
  EXPECT_EQ(calls, 2u) << "the two recursive calls; the error report is the module's stub's";
  const std::vector<std::string> body = instructions_of(*code, item_check.offset, pops[0].end);
  size_t jumps = 0;
  for (const std::string& instruction : body)
    if (instruction == "jmp *") ++jumps;
  EXPECT_EQ(jumps, 0u) << code->disassemble();
  EXPECT_LE(body.size(), 39u) << code->disassemble();
  // The compact record (usgc/object.h): 3 instructions, no arena mark (item_check cannot move
  // arena_top); 6 with the slots pointer and the mark before.
  EXPECT_EQ(sequence_of(*code, "item_check", "frame_push"),
            (std::vector<std::string>{"push 7", "push qword ptr [r15 + 8]",
                                      "mov qword ptr [r15 + 8], rsp"}));
}

// bottom_up_tree's inner path: the compact record (3 instructions), %depth (dead after its first
// instruction) not written to its slot by the prologue (one `sub rsp` for every scalar slot),
// %below passed once for both calls (the argument word still holds it), the new node kept in
// RAX for both stores and the return (no `mov rax, reg`), the children stored from their
// registers (no copy into RCX) and without the barrier's compare (the node is new, young and
// mine: nothing between its allocation and the stores can collect or publish it). Its code
// through the epilogue (allocation counters compiled in, as the C++ API does by default): 69
// instructions before (57 on the inner path, 15 on the leaf), 53 now (42 and 14).
TEST(JitStubSequence, BottomUpTreeKeepsItsNodeInRaxAndPassesBelowOnce) {
  Compiled compiled = compile_program(
      usgc::testing::read_text_file(usgc::testing::source_root() / "bench/binary_trees.usir"),
      "binary_trees.usir");
  ASSERT_NE(compiled.code, nullptr);
  const CompiledModule* code = compiled.code.get();
  const CompiledFunction& bottom_up_tree = function_named(*code, "bottom_up_tree");
  EXPECT_EQ(sequence_of(*code, "bottom_up_tree", "frame_push"),
            (std::vector<std::string>{"push 7", "push qword ptr [r15 + 8]",
                                      "mov qword ptr [r15 + 8], rsp"}));
  const std::vector<StubMark> pops = marks_in(*code, bottom_up_tree, "frame_pop");
  ASSERT_EQ(pops.size(), 1u) << code->disassemble();
  const std::vector<std::string> body = instructions_of(*code, bottom_up_tree.offset, pops[0].end);
  size_t argument_stores = 0, moves_into_rax = 0, moves_into_rcx = 0, stack_adjusts = 0,
         scalar_pushes = 0;
  for (const std::string& instruction : body) {
    if (instruction.rfind("mov qword ptr [rsp], ", 0) == 0) ++argument_stores;
    if (instruction.rfind("mov rax, r", 0) == 0) ++moves_into_rax;
    if (instruction.rfind("mov rcx, r", 0) == 0) ++moves_into_rcx;
    if (instruction.rfind("sub rsp, ", 0) == 0) ++stack_adjusts;
    if (instruction == "push rbx") ++scalar_pushes;
  }
  EXPECT_EQ(argument_stores, 1u) << code->disassemble();
  EXPECT_EQ(moves_into_rax, 0u) << code->disassemble();
  EXPECT_EQ(moves_into_rcx, 0u) << code->disassemble();
  EXPECT_EQ(stack_adjusts, 1u) << code->disassemble();
  EXPECT_EQ(scalar_pushes, 0u) << code->disassemble();
  EXPECT_LE(body.size(), 53u) << code->disassemble();
  EXPECT_TRUE(marks_in(*code, bottom_up_tree, "barrier").empty()) << code->disassemble();
  EXPECT_EQ(marks_in(*code, bottom_up_tree, "new_object_store").size(), 2u);
}

// The barrier's compare is left out only while it would pass: a store into an object allocated
// privately in the same block, with nothing since that can collect (a private collection
// promotes it: its owner field becomes the old id, and a store of a young value into it must be
// remembered) or publish it. After a call, another allocation, or once the object was stored
// somewhere, the barrier is back. Run compiled and interpreted with a collection at every
// allocation: the same result.
TEST(JitStubSequence, AStoreIntoANewPrivateObjectSkipsTheBarrierOnlyUntilSomethingCanCollect) {
  constexpr const char* kStores = R"(type Node { v: int, next: *Node }

func other() -> int {
entry:
  ret 1
}

func main() -> int {
  var %a: *Node
  var %b: *Node
  var %x: int
entry:
  %a = call build()
  %b = call build()
  store %b.next, %a
  %x = load %a.v
  ret %x
}

func build() -> *Node {
  var %m: *Node
  var %n: *Node
  var %k: *Node
  var %x: int
entry:
  %m = new Node
  %n = new Node
  store %n.next, %m
  store %n.v, 3
  store %n.next, %m
  %x = call other()
  store %n.next, %m
  %k = new Node
  store %k.next, %n
  store %n.next, %k
  store %k.next, %m
  store %m.next, %k
  ret %n
}
)";
  Compiled compiled = compile_program(kStores, "stores.usir");
  ASSERT_NE(compiled.code, nullptr);
  const CompiledFunction& build = function_named(*compiled.code, "build");
  // Elided: n's first two stores (right after its allocation, across a scalar store), k's first
  // one. Kept: n's after the call, n's after k's allocation, k's after k was stored into n (a
  // store of it may publish it), m's (not new).
  EXPECT_EQ(marks_in(*compiled.code, build, "new_object_store").size(), 3u)
      << compiled.code->disassemble();
  EXPECT_EQ(marks_in(*compiled.code, build, "barrier").size(), 4u) << compiled.code->disassemble();
  CompileOptions stress;
  stress.gc_stress = true;
  std::string error;
  std::unique_ptr<CompiledModule> stressed =
      CompiledModule::compile(compiled.module, compiled.analysis, stress, &error);
  ASSERT_NE(stressed, nullptr) << error;
  EXPECT_EQ(marks_in(*stressed, function_named(*stressed, "build"), "new_object_store").size(), 3u);
  interpreter::RunOptions options;
  options.gc_stress_every = 1;
  interpreter::RunResult jitted = run_compiled(*stressed, options);
  interpreter::RunResult interpreted =
      interpreter::run_program(compiled.module, compiled.analysis, options);
  ASSERT_EQ(jitted.status, interpreter::RunStatus::kCompleted) << jitted.message;
  EXPECT_EQ(jitted.returned_value, 3);
  EXPECT_EQ(jitted.returned_value, interpreted.returned_value);
}

TEST(JitStubSequence, TheProgramRunsCompiledAsInterpreted) {
  Compiled compiled = compile_program();
  ASSERT_NE(compiled.code, nullptr);
  interpreter::RunOptions options;
  interpreter::RunResult jitted = run_compiled(*compiled.code, options);
  interpreter::RunResult interpreted =
      interpreter::run_program(compiled.module, compiled.analysis, options);
  ASSERT_EQ(jitted.status, interpreter::RunStatus::kCompleted) << jitted.message;
  EXPECT_EQ(jitted.returned_value, interpreted.returned_value);
  EXPECT_EQ(jitted.allocations_per_site, interpreted.allocations_per_site);
  EXPECT_GT(jitted.caller_frame_allocations, 0u);
}

}  // namespace
}  // namespace usgc::jitgen::x86_64
