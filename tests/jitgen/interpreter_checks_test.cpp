// tests/jitgen/interpreter_checks_test.cpp — checked mode traps every wrong decision
// (jitgen/interpreter/decision_checks.hpp): each program below runs clean with the analysis'
// decisions, and with one site's decision lowered by hand the run stops with the rule that
// decision breaks, naming the site and the instruction. With the escape-point rules off, the
// same wrong decisions are caught where they do harm (a dead frame, a published object), and an
// object of another goroutine is recognised as foreign.
#include <gtest/gtest.h>

#include "jitgen/interpreter/decision_checks.hpp"
#include "jitgen/interpreter/program_layout.hpp"
#include "tests/jitgen/interpreter_test_support.hpp"
#include "tests/support/runtime_fixture.hpp"

namespace usgc::jitgen::interpreter {
namespace {

using escape::OwnershipClass;
using testing::describe;
using testing::run_text;
using testing::site_on_line;

const char* const kBox = "type Box { v: int, next: *Box }\n";

// Runs `text` once as analysed (it must complete) and once with the site annotated @<line>:1
// decided `wrong`; returns the second run.
RunResult run_with_wrong_decision(const std::string& text, uint32_t line, OwnershipClass wrong,
                                  RunOptions options = {}) {
  RunResult right = run_text(text, options);
  EXPECT_EQ(right.status, RunStatus::kCompleted) << "as analysed: " << describe(right);
  return run_text(text, options, [&](escape::EscapeAnalysis& analysis) {
    escape::SiteDecision& site = site_on_line(analysis, line);
    EXPECT_GT(site.ownership, wrong) << "the test lowers a decision";
    site.ownership = wrong;
    site.short_reason = "lowered by the test";
    site.caller_frame_calls.clear();  // stack in its own frame, at every call
  });
}

void expect_violation(const RunResult& result, const char* rule, uint32_t site_line) {
  ASSERT_EQ(result.status, RunStatus::kCheckViolation) << describe(result);
  ASSERT_TRUE(result.violation.has_value());
  EXPECT_EQ(result.violation->rule, rule) << result.message;
  EXPECT_NE(result.message.find("at t.usir:" + std::to_string(site_line) + ":1 was decided"),
            std::string::npos)
      << result.message;
  EXPECT_EQ(result.message.rfind("t.usir:", 0), 0u) << "positioned: " << result.message;
}

const std::string kReturned = std::string(kBox) + R"(
func make() -> *Box {
  var %p: *Box
entry:
  %p = new Box @100:1
  ret %p
}
func main() -> int {
  var %p: *Box
  var %v: int
entry:
  %p = call make()
  %v = load %p.v
  ret %v
}
)";

TEST(InterpreterChecks, AReturnedStackObjectIsTrappedAtTheReturn) {
  RunResult result = run_with_wrong_decision(kReturned, 100, OwnershipClass::StackLocal);
  expect_violation(result, "frame-escape/return", 100);
  EXPECT_EQ(result.message,
            "t.usir:7:3: checked mode: new Box at t.usir:100:1 was decided stack (lowered by the "
            "test), but it is "
            "returned from the frame that allocated it (in make)");
}

TEST(InterpreterChecks, WithoutEscapePointRulesTheUseAfterTheFramePoppedIsTrapped) {
  RunResult result = run_with_wrong_decision(kReturned, 100, OwnershipClass::StackLocal,
                                             RunOptions{.check_escape_points = false});
  expect_violation(result, "frame/dead", 100);
  EXPECT_NE(result.message.find("t.usir:14:3:"), std::string::npos)
      << "the load in main: " << result.message;
}

TEST(InterpreterChecks, AStackObjectStoredIntoAHeapObjectIsTrapped) {
  RunResult result =
      run_with_wrong_decision(std::string(kBox) + R"(
func main(%n: int) {
  var %table: []*Box
  var %p: *Box
entry:
  %table = newarray *Box, %n
  %p = new Box @101:1
  store %table[0], %p
  ret
}
)",
                              101, OwnershipClass::StackLocal, RunOptions{.arguments = {4}});
  expect_violation(result, "frame-escape/store", 101);
  EXPECT_NE(result.message.find("a heap object that outlives its frame"), std::string::npos)
      << result.message;
}

TEST(InterpreterChecks, AStackObjectStoredIntoAnOlderFramesObjectIsTrapped) {
  const std::string text = std::string(kBox) + R"(
func fill(%h: *Box) {
  var %p: *Box
entry:
  %p = new Box @101:1
  store %h.next, %p
  ret
}
func main() {
  var %h: *Box
entry:
  %h = new Box @100:1
  call fill(%h)
  ret
}
)";
  escape::EscapeAnalysis analysis = testing::parse_and_analyze(text).analysis;
  EXPECT_EQ(site_on_line(analysis, 100).ownership, OwnershipClass::StackLocal);
  RunResult result = run_with_wrong_decision(text, 101, OwnershipClass::StackLocal);
  expect_violation(result, "frame-escape/store", 101);
  EXPECT_NE(result.message.find("an object of an older frame that outlives its own"),
            std::string::npos)
      << result.message;
}

// A caller-frame decision (jitgen/escape/caller_frame.hpp) is checked like any stack decision:
// made by hand for a caller that returns the object on, the return out of the caller's frame is
// trapped; without the escape-point rules, the use after that frame popped.
const std::string kReturnedTwice = std::string(kBox) + R"(
func make() -> *Box {
  var %p: *Box
entry:
  %p = new Box @100:1
  store %p.v, 7
  ret %p
}
func pass() -> *Box {
  var %p: *Box
entry:
  %p = call make()
  ret %p
}
func main() -> int {
  var %p: *Box
  var %v: int
entry:
  %p = call pass()
  %v = load %p.v
  ret %v
}
)";

RunResult run_with_wrong_caller_frame(RunOptions options) {
  RunResult right = run_text(kReturnedTwice, options);
  EXPECT_EQ(right.status, RunStatus::kCompleted) << "as analysed: " << describe(right);
  EXPECT_EQ(right.caller_frame_allocations, 0u) << "pass returns the object on: no caller keeps it";
  return run_text(kReturnedTwice, options, [](escape::EscapeAnalysis& analysis) {
    escape::SiteDecision& site = site_on_line(analysis, 100);
    EXPECT_TRUE(site.caller_frame_calls.empty());
    // `%p = call make()` is pass's first instruction (function 1, block 0).
    site.caller_frame_calls.push_back({1, 0, 0, "pass", {13, 3}});
  });
}

TEST(InterpreterChecks, AWrongCallerFrameDecisionIsTrappedAtTheCallersReturn) {
  RunResult result = run_with_wrong_caller_frame({});
  expect_violation(result, "frame-escape/return", 100);
  EXPECT_NE(result.message.find("t.usir:14:3:"), std::string::npos)
      << "pass's ret: " << result.message;
}

TEST(InterpreterChecks, AWrongCallerFrameDecisionWithoutEscapePointRulesIsTrappedAtTheUse) {
  RunResult result = run_with_wrong_caller_frame(RunOptions{.check_escape_points = false});
  expect_violation(result, "frame/dead", 100);
  EXPECT_NE(result.message.find("t.usir:21:3:"), std::string::npos)
      << "the load in main: " << result.message;
}

// Without the escape-point rules a wrong STACK_LOCAL decision leaves a reference to a popped
// frame's object in the caller's slot until its use is trapped; meanwhile the caller allocates
// again. The popped objects are quarantined (executor.hpp, "Frames"), so neither the collections
// in between (the verifier reads every root's header) nor the use rule read a newer object in
// their place.
// make() allocates a [4]int and then the Box of site 100 (lowered into make's own frame) and
// returns the Box; main keeps it, makes `allocations` (its locals `declarations`) in the popped
// frame's place, then loads from the Box (line 23 with two declarations and three allocation
// lines).
std::string dead_frame_program(const char* declarations, const char* allocations) {
  return std::string(kBox) + R"(
func make() -> *Box {
  var %scratch: [4]int
  var %p: *Box
entry:
  %scratch = new [4]int
  store %scratch[0], 1
  %p = new Box @100:1
  store %p.v, 7
  ret %p
}
func main() -> int {
  var %p: *Box
  var %v: int
)" + declarations +
         "entry:\n  %p = call make()\n" + allocations + "  %v = load %p.v\n  ret %v\n}\n";
}

// Reused, the arena would put [8]int's zeroed elements where the dead Box's header was: the
// verifier of the collection at the next allocation aborted ("a reachable object was freed").
TEST(InterpreterChecks, CollectionsBeforeTheUseOfADeadFramesObjectRunClean) {
  setenv("USGC_VERIFY", "1", 1);
  RunResult result = run_with_wrong_decision(
      dead_frame_program("  var %cover: [8]int\n  var %q: *Box\n",
                         "  %cover = new [8]int\n  %q = new Box\n  %q = new Box\n"),
      100, OwnershipClass::StackLocal,
      RunOptions{.check_escape_points = false, .gc_stress_every = 1});
  unsetenv("USGC_VERIFY");
  expect_violation(result, "frame/dead", 100);
  EXPECT_NE(result.message.find("t.usir:23:3:"), std::string::npos)
      << "the load in main: " << result.message;
  EXPECT_GT(result.private_collections, 0u);
}

// Reused, the arena would put main's [2]int exactly where the dead Box was (after a [4]int where
// make's was): its header, its site and its check word (main's live frame) would pass every use
// rule, and the load would read the array's length.
TEST(InterpreterChecks, ADeadFramesObjectIsNotMistakenForTheObjectAllocatedInItsPlace) {
  RunResult result = run_with_wrong_decision(
      dead_frame_program("  var %s: [4]int\n  var %in_place: [2]int\n",
                         "  %s = new [4]int\n  %in_place = new [2]int\n  store %in_place[1], 5\n"),
      100, OwnershipClass::StackLocal, RunOptions{.check_escape_points = false});
  expect_violation(result, "frame/dead", 100);
  EXPECT_NE(result.message.find("t.usir:23:3:"), std::string::npos)
      << "the load in main: " << result.message;
}

const std::string kSharedHolder = std::string(kBox) + R"(
func reader(%b: *Box, %done: chan int) {
  var %inner: *Box
  var %v: int
entry:
  %inner = load %b.next
  %v = load %inner.v
  send %done, %v
  ret
}
func main() -> int {
  var %holder: *Box
  var %p: *Box
  var %done: chan int
  var %v: int
entry:
  %done = makechan int, 0
  %holder = new Box @100:1
  %p = new Box @101:1
  store %p.v, 5
  store %holder.next, %p
  go reader(%holder, %done)
  %v = recv %done
  ret %v
}
)";

TEST(InterpreterChecks, APrivateObjectStoredIntoASharedOneIsTrapped) {
  RunResult result = run_with_wrong_decision(kSharedHolder, 101, OwnershipClass::GoroutinePrivate);
  expect_violation(result, "class-order/store", 101);
  EXPECT_NE(result.message.find(
                "stored into new Box at t.usir:100:1 (shared): other goroutines reach it"),
            std::string::npos)
      << result.message;
}

TEST(InterpreterChecks, WithoutEscapePointRulesTheRuntimesPublicationIsTrappedAtTheNextUse) {
  RunResult result = run_with_wrong_decision(kSharedHolder, 101, OwnershipClass::GoroutinePrivate,
                                             RunOptions{.check_escape_points = false});
  expect_violation(result, "header/published", 101);
  EXPECT_NE(result.message.find("the runtime published it"), std::string::npos) << result.message;
}

TEST(InterpreterChecks, PublicationsBelowTheirClassAreTrapped) {
  struct Case {
    const char* rule;
    const char* instruction;  // uses %p (the site @101:1), %c: chan *Box, @g
    OwnershipClass wrong;
  };
  const Case cases[] = {
      {"publish/send", "  send %c, %p\n  %p = recv %c\n", OwnershipClass::GoroutinePrivate},
      {"publish/spawn", "  go sink(%p)\n", OwnershipClass::GoroutinePrivate},
      {"publish/spawn", "  go keep() captures(%p)\n", OwnershipClass::StackLocal},
      {"publish/global", "  store @g, %p\n", OwnershipClass::GoroutineShared},
      {"publish/unknown", "  call unknown(%p)\n", OwnershipClass::GoroutineShared},
      {"publish/unknown", "  go unknown(%p)\n", OwnershipClass::GoroutinePrivate},
  };
  for (const Case& c : cases) {
    std::string text = std::string(kBox) +
                       "global g: *Box\n"
                       "func sink(%b: *Box) {\nentry:\n  ret\n}\n"
                       "func keep() captures(%b: *Box) {\nentry:\n  ret\n}\n"
                       "func main() {\n  var %p: *Box\n  var %c: chan *Box\nentry:\n"
                       "  %c = makechan *Box, 1\n  %p = new Box @101:1\n" +
                       c.instruction + "  ret\n}\n";
    RunResult result = run_with_wrong_decision(text, 101, c.wrong);
    SCOPED_TRACE(c.instruction);
    expect_violation(result, c.rule, 101);
  }
}

// Many stack objects linked in one frame overflow the arena: the rest become stack substitutes,
// and checked mode, the barrier and the verifier accept the links between them.
TEST(InterpreterChecks, StackObjectsBeyondTheArenaRunCleanAsSubstitutes) {
  setenv("USGC_VERIFY", "1", 1);
  RunResult result = run_text(std::string(kBox) + R"(
func main() -> int {
  var %head: *Box
  var %node: *Box
  var %i: int
  var %sum: int
  var %v: int
  var %more: bool
entry:
  %i = 0
  jmp head
head:
  %more = lt %i, 6000
  br %more, body, walk
body:
  %node = new Box @100:1
  store %node.v, %i
  store %node.next, %head
  %head = %node
  %i = add %i, 1
  jmp head
walk:
  %sum = 0
  jmp walk_head
walk_head:
  %more = ne %head, null
  br %more, walk_body, done
walk_body:
  %v = load %head.v
  %sum = add %sum, %v
  %head = load %head.next
  jmp walk_head
done:
  ret %sum
}
)",
                              RunOptions{.gc_stress_every = 500});
  unsetenv("USGC_VERIFY");
  ASSERT_EQ(result.status, RunStatus::kCompleted) << describe(result);
  EXPECT_EQ(result.returned_value, 5999 * 6000 / 2);
  EXPECT_EQ(result.allocations_per_class[0], 6000u);
  EXPECT_GT(result.stack_substitutes, 0u);
  EXPECT_LT(result.stack_substitutes, 6000u);
}

// owner/foreign is a backstop no .usir program reaches (every way to another goroutine is a
// publication the runtime performs); it is shown here on an object handed over behind the
// runtime's back.
class InterpreterOwnerCheck : public usgc::testing::RuntimeTest {};

TEST_F(InterpreterOwnerCheck, AnotherGoroutinesPrivateObjectIsForeign) {
  testing::ParsedProgram program = testing::parse_and_analyze(std::string(kBox) + R"(
func main() -> *Box {
  var %p: *Box
entry:
  %p = new Box @101:1
  ret %p
}
)");
  std::string error;
  std::optional<ProgramLayout> layout =
      ProgramLayout::build(program.module, program.analysis, &error);
  ASSERT_TRUE(layout.has_value()) << error;
  RunOptions options;
  RunState run(program.module, program.analysis, *layout, options);
  const ir::Instruction& load = program.module.functions[0].blocks[0].instructions[0];
  std::optional<CheckViolation> own, foreign;
  usgc::testing::run_main([&] {
    USGC_ROOTS(roots, 1);
    roots[0] = usgc_alloc(layout->site(0).type, USGC_GOROUTINE_PRIVATE);
    ASSERT_NE(roots[0], nullptr);
    LiveFrames frames;
    own = check_access(CheckContext{run, frames, load, "main"}, roots[0]);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    usgc_waitgroup_add(&done, 1);
    void* object = roots[0];
    usgc::testing::go([&, object] {
      LiveFrames other;
      foreign = check_access(CheckContext{run, other, load, "main"}, object);
      usgc_waitgroup_done(&done);
    });
    usgc_waitgroup_wait(&done);
  });
  EXPECT_FALSE(own.has_value()) << own->message;
  ASSERT_TRUE(foreign.has_value());
  EXPECT_EQ(foreign->rule, "owner/foreign");
  EXPECT_NE(foreign->message.find("reached it, and it belongs to another goroutine"),
            std::string::npos)
      << foreign->message;
}

}  // namespace
}  // namespace usgc::jitgen::interpreter
