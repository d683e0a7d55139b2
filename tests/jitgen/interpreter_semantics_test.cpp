// tests/jitgen/interpreter_semantics_test.cpp — the .usir interpreter runs programs with Go's
// semantics (jitgen/interpreter/interpreter.hpp): arithmetic, control flow, calls with captures
// by value, objects and arrays, globals, goroutines and channels (buffered, unbuffered, closed,
// nil), unknown code; every runtime error stops the run with a positioned message instead of a
// crash; deadlocks, step, time and call-depth limits end runs cleanly; the counts per site and
// per class are those of the program; collections forced after every allocation change nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

#include "tests/jitgen/interpreter_test_support.hpp"

namespace usgc::jitgen::interpreter {
namespace {

using testing::describe;
using testing::run_text;

const char* const kNode = "type Node { value: int, next: *Node }\n";

TEST(InterpreterSemantics, LoopsArithmeticAndTheEntrysResult) {
  RunResult result = run_text(R"(
func main() -> int {
  var %i: int
  var %sum: int
  var %more: bool
entry:
  %i = 0
  %sum = 0
  jmp head
head:
  %more = lt %i, 100
  br %more, body, done
body:
  %sum = add %sum, %i
  %i = add %i, 1
  jmp head
done:
  %sum = mul %sum, 3
  %sum = sub %sum, 1
  %sum = div %sum, 2
  %sum = rem %sum, 1000
  ret %sum
}
)");
  ASSERT_EQ(result.status, RunStatus::kCompleted) << describe(result);
  EXPECT_EQ(result.returned_value, (4950 * 3 - 1) / 2 % 1000);
  EXPECT_GT(result.steps, 400u);
}

TEST(InterpreterSemantics, IntegerEdgesFollowGo) {
  RunResult result = run_text(R"(
func main() -> int {
  var %min: int
  var %q: int
  var %r: int
entry:
  %min = sub 0, 9223372036854775807
  %min = sub %min, 1
  %q = div %min, -1
  %r = rem %min, -1
  %q = sub %q, %min
  %q = add %q, %r
  ret %q
}
)");
  ASSERT_EQ(result.status, RunStatus::kCompleted) << describe(result);
  EXPECT_EQ(result.returned_value, 0)
      << "MinInt64 / -1 == MinInt64 and MinInt64 % -1 == 0, as in Go";
}

TEST(InterpreterSemantics, ArgumentsAndCapturesArePassedByValue) {
  RunResult result = run_text(std::string(kNode) + R"(
func bump(%x: int) captures(%y: int) -> int {
entry:
  %x = add %x, 10
  %y = add %y, 100
  %x = add %x, %y
  ret %x
}
func main(%a: int, %b: int) -> int {
  var %r: int
entry:
  %r = call bump(%a) captures(%b)
  %r = add %r, %a
  %r = add %r, %b
  ret %r
}
)",
                              RunOptions{.arguments = {1, 2}});
  ASSERT_EQ(result.status, RunStatus::kCompleted) << describe(result);
  EXPECT_EQ(result.returned_value, (1 + 10) + (2 + 100) + 1 + 2);
}

TEST(InterpreterSemantics, ObjectsArraysAndGlobals) {
  RunResult result = run_text(std::string(kNode) + R"(
global head: *Node
global count: int
func push(%v: int) {
  var %n: *Node
  var %old: *Node
  var %c: int
entry:
  %n = new Node
  store %n.value, %v
  %old = load @head
  store %n.next, %old
  store @head, %n
  %c = load @count
  %c = add %c, 1
  store @count, %c
  ret
}
func main() -> int {
  var %a: [4]int
  var %d: []*Node
  var %n: *Node
  var %x: int
  var %y: int
  var %more: bool
entry:
  call push(5)
  call push(7)
  %a = new [4]int
  store %a[3], 40
  %x = load %a[3]
  %y = len %a
  %x = add %x, %y
  %d = newarray *Node, %y
  %n = load @head
  store %d[1], %n
  %n = load %d[1]
  %y = load %n.value
  %x = add %x, %y
  %n = load %n.next
  %y = load %n.value
  %x = add %x, %y
  %y = load @count
  %x = mul %x, %y
  %d = null
  %y = len %d
  %x = add %x, %y
  ret %x
}
)");
  ASSERT_EQ(result.status, RunStatus::kCompleted) << describe(result);
  EXPECT_EQ(result.returned_value, (40 + 4 + 7 + 5) * 2) << "len of a null array is 0";
}

struct RuntimeErrorCase {
  const char* name;
  const char*
      body;  // instructions of main after `entry:`, using %n: *Node, %a: []int, %c: chan int
  const char* message;
};

TEST(InterpreterSemantics, RuntimeErrorsStopTheRunWithAPositionedMessage) {
  const RuntimeErrorCase cases[] = {
      {"nil field load", "  %x = load %n.value\n",
       "t.usir:9:3: runtime error: nil pointer dereference (field value of %n)"},
      {"nil field store", "  store %n.next, %n\n",
       "t.usir:9:3: runtime error: nil pointer dereference (field next of %n)"},
      {"divide by zero", "  %x = div 7, %x\n", "t.usir:9:3: runtime error: integer divide by zero"},
      {"remainder by zero", "  %x = rem 7, 0\n",
       "t.usir:9:3: runtime error: integer divide by zero"},
      {"index past the end", "  %a = newarray int, 3\n  %x = load %a[3]\n",
       "t.usir:10:3: runtime error: index out of range [3] with length 3"},
      {"negative index", "  %a = newarray int, 3\n  %x = sub 0, 1\n  store %a[%x], 1\n",
       "t.usir:11:3: runtime error: index out of range [-1] with length 3"},
      {"index of null", "  %x = load %a[0]\n",
       "t.usir:9:3: runtime error: index out of range [0] with length 0 (%a is null)"},
      {"negative length", "  %x = sub 0, 2\n  %a = newarray int, %x\n",
       "t.usir:10:3: runtime error: newarray: negative length -2"},
      {"negative capacity", "  %x = sub 0, 1\n  %c = makechan int, %x\n",
       "t.usir:10:3: runtime error: makechan: negative capacity -1"},
      {"close of nil", "  close %c\n", "t.usir:9:3: runtime error: close of nil channel"},
      {"double close", "  %c = makechan int, 1\n  close %c\n  close %c\n",
       "t.usir:11:3: runtime error: close of closed channel"},
      {"send on closed", "  %c = makechan int, 1\n  close %c\n  send %c, 1\n",
       "t.usir:11:3: runtime error: send on closed channel"},
  };
  for (const RuntimeErrorCase& error : cases) {
    std::string text =
        std::string(kNode) +
        "func main() {\n  var %n: *Node\n  var %a: []int\n  var %c: chan int\n  var %x: int\n"
        "entry:\n  %x = 0\n" +
        error.body + "  ret\n}\n";
    RunResult result = run_text(text);
    EXPECT_EQ(result.status, RunStatus::kRuntimeError) << error.name << ": " << describe(result);
    EXPECT_EQ(result.message, error.message) << error.name;
  }
}

TEST(InterpreterSemantics, ChannelsBetweenGoroutinesBufferedUnbufferedAndClosed) {
  RunResult result = run_text(R"(
func producer(%out: chan int, %n: int) {
  var %i: int
  var %more: bool
entry:
  %i = 1
  jmp head
head:
  %more = le %i, %n
  br %more, body, done
body:
  send %out, %i
  %i = add %i, 1
  jmp head
done:
  close %out
  ret
}
func main() -> int {
  var %unbuffered: chan int
  var %buffered: chan int
  var %v: int
  var %sum: int
  var %i: int
  var %more: bool
entry:
  %unbuffered = makechan int, 0
  %buffered = makechan int, 64
  go producer(%unbuffered, 50)
  go producer(%buffered, 50)
  %sum = 0
  %i = 0
  jmp head
head:
  %more = lt %i, 51
  br %more, body, done
body:
  %v = recv %unbuffered
  %sum = add %sum, %v
  %v = recv %buffered
  %sum = add %sum, %v
  %i = add %i, 1
  jmp head
done:
  ret %sum
}
)");
  ASSERT_EQ(result.status, RunStatus::kCompleted) << describe(result);
  EXPECT_EQ(result.returned_value, 2 * 50 * 51 / 2)
      << "the 51st receive of each closed channel yields 0";
  EXPECT_EQ(result.goroutines_started, 2u);
}

TEST(InterpreterSemantics, ReferenceChannelsCarryObjectsAcrossGoroutines) {
  RunResult result = run_text(std::string(kNode) + R"(
func make_list(%out: chan *Node, %n: int) {
  var %head: *Node
  var %node: *Node
  var %i: int
  var %more: bool
entry:
  %i = 0
  jmp head
head:
  %more = lt %i, %n
  br %more, body, done
body:
  %node = new Node
  store %node.value, %i
  store %node.next, %head
  %head = %node
  %i = add %i, 1
  jmp head
done:
  send %out, %head
  ret
}
func main() -> int {
  var %in: chan *Node
  var %list: *Node
  var %sum: int
  var %v: int
  var %more: bool
entry:
  %in = makechan *Node, 0
  go make_list(%in, 1000)
  %list = recv %in
  %sum = 0
  jmp head
head:
  %more = ne %list, null
  br %more, body, done
body:
  %v = load %list.value
  %sum = add %sum, %v
  %list = load %list.next
  jmp head
done:
  ret %sum
}
)");
  ASSERT_EQ(result.status, RunStatus::kCompleted) << describe(result);
  EXPECT_EQ(result.returned_value, 999 * 1000 / 2);
}

TEST(InterpreterSemantics, BlockedForeverIsADeadlockAndNilChannelsBlockForever) {
  for (const char* operation :
       {"  %c = makechan int, 0\n  %v = recv %c\n", "  %v = recv %c\n", "  send %c, 1\n"}) {
    RunOptions options;
    options.deadlock_ms = 200;
    RunResult result =
        run_text(std::string("func main() {\n  var %c: chan int\n  var %v: int\nentry:\n") +
                     operation + "  ret\n}\n",
                 options);
    EXPECT_EQ(result.status, RunStatus::kDeadlock) << operation << describe(result);
    EXPECT_NE(result.message.find("all goroutines are asleep - deadlock!"), std::string::npos)
        << result.message;
  }
}

TEST(InterpreterSemantics, ReturningFromTheEntryStopsGoroutinesThatRunOrBlockForever) {
  auto start = std::chrono::steady_clock::now();
  RunResult result = run_text(R"(
func spin() {
entry:
  jmp entry
}
func wait(%c: chan int) {
  var %v: int
entry:
  %v = recv %c
  ret
}
func main() -> int {
  var %c: chan int
entry:
  %c = makechan int, 0
  go spin()
  go spin()
  go wait(%c)
  ret 7
}
)");
  ASSERT_EQ(result.status, RunStatus::kCompleted) << describe(result);
  EXPECT_EQ(result.returned_value, 7);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(InterpreterSemantics, StepTimeAndCallDepthLimitsEndRunsCleanly) {
  const char* loop = "func main() {\nentry:\n  jmp entry\n}\n";
  RunResult steps = run_text(loop, RunOptions{.max_steps = 100000});
  EXPECT_EQ(steps.status, RunStatus::kLimitExceeded) << describe(steps);
  EXPECT_NE(steps.message.find("step limit"), std::string::npos) << steps.message;
  RunResult time = run_text(loop, RunOptions{.time_limit_ms = 200});
  EXPECT_EQ(time.status, RunStatus::kLimitExceeded) << describe(time);
  EXPECT_NE(time.message.find("time limit"), std::string::npos) << time.message;

  const char* recursion = R"(
func down(%n: int) -> int {
  var %r: int
entry:
  %n = add %n, 1
  %r = call down(%n)
  ret %r
}
func main() -> int {
  var %r: int
entry:
  %r = call down(0)
  ret %r
}
)";
  RunResult stack = run_text(recursion);
  EXPECT_EQ(stack.status, RunStatus::kLimitExceeded) << describe(stack);
  EXPECT_NE(stack.message.find("would overflow the goroutine stack"), std::string::npos)
      << stack.message;
  RunResult depth = run_text(recursion, RunOptions{.max_call_depth = 50});
  EXPECT_EQ(depth.status, RunStatus::kLimitExceeded) << describe(depth);
  EXPECT_NE(depth.message.find("at depth 50 (RunOptions::max_call_depth 50)"), std::string::npos)
      << depth.message;
}

TEST(InterpreterSemantics, UnknownCodeKeepsArgumentsAndHandsBackObjectsOfTheResultType) {
  RunResult result = run_text(std::string(kNode) + R"(
func main() -> int {
  var %n: *Node
  var %back: *Node
  var %v: int
  var %same: bool
entry:
  %back = call unknown()
  %same = eq %back, null
  br %same, first, fail
first:
  %n = new Node
  store %n.value, 42
  call unknown(%n)
  %back = call unknown()
  %v = call unknown(%n)
  %same = eq %back, %n
  br %same, ok, fail
ok:
  %v = add %v, 1
  ret %v
fail:
  ret -1
}
)");
  ASSERT_EQ(result.status, RunStatus::kCompleted) << describe(result);
  EXPECT_EQ(result.returned_value, 1)
      << "null before anything was kept, then the kept object; int results are 0";
}

TEST(InterpreterSemantics, CountsPerSiteAndPerClassAreThoseOfTheProgram) {
  escape::EscapeAnalysis analysis;
  const std::string text = std::string(kNode) + R"(
func keep(%n: int) -> *Node {
  var %i: int
  var %more: bool
  var %scratch: *Node
  var %kept: *Node
entry:
  %i = 0
  jmp head
head:
  %more = lt %i, %n
  br %more, body, done
body:
  %scratch = new Node
  store %scratch.value, %i
  %kept = new Node
  %i = add %i, 1
  jmp head
done:
  ret %kept
}
func main() {
  var %n: *Node
entry:
  %n = call keep(300)
  ret
}
)";
  RunResult first = run_text(text, {}, [&](escape::EscapeAnalysis& a) { analysis = a; });
  ASSERT_EQ(first.status, RunStatus::kCompleted) << describe(first);
  EXPECT_EQ(testing::site_on_line(analysis, 15).ownership, escape::OwnershipClass::StackLocal);
  // %kept outlives keep's frame, but main keeps it in its own: allocated there, on the stack.
  const escape::SiteDecision& kept = testing::site_on_line(analysis, 17);
  EXPECT_EQ(kept.ownership, escape::OwnershipClass::GoroutinePrivate);
  ASSERT_EQ(kept.caller_frame_calls.size(), 1u);
  EXPECT_EQ(kept.caller_frame_calls[0].function_name, "main");
  EXPECT_EQ(first.allocations_per_site, (std::vector<uint64_t>{300, 300}));
  EXPECT_EQ(first.allocations_per_class[0], 600u);
  EXPECT_EQ(first.allocations_per_class[1], 0u);
  EXPECT_EQ(first.caller_frame_allocations, 300u);
  EXPECT_EQ(first.total_allocations(), 600u);
  RunResult second = run_text(text);
  EXPECT_EQ(second.allocations_per_site, first.allocations_per_site);
  EXPECT_EQ(second.steps, first.steps);
}

// Forced collections after every allocation, with the heap verifier on, while goroutines build,
// send and walk lists of every class: the run's results do not change.
TEST(InterpreterSemantics, CollectionsAfterEveryAllocationChangeNothing) {
  const std::string text = std::string(kNode) + R"(
global keep: *Node
func build(%n: int) -> *Node {
  var %head: *Node
  var %node: *Node
  var %scratch: *Node
  var %i: int
  var %more: bool
entry:
  %i = 0
  jmp head
head:
  %more = lt %i, %n
  br %more, body, done
body:
  %scratch = new Node
  store %scratch.next, %head
  %node = new Node
  store %node.value, %i
  store %node.next, %head
  %head = %node
  %i = add %i, 1
  jmp head
done:
  ret %head
}
func sum(%list: *Node) -> int {
  var %total: int
  var %v: int
  var %more: bool
entry:
  %total = 0
  jmp head
head:
  %more = ne %list, null
  br %more, body, done
body:
  %v = load %list.value
  %total = add %total, %v
  %list = load %list.next
  jmp head
done:
  ret %total
}
func worker(%out: chan *Node, %n: int) {
  var %list: *Node
entry:
  %list = call build(%n)
  send %out, %list
  ret
}
func main() -> int {
  var %c: chan *Node
  var %a: *Node
  var %b: *Node
  var %g: *Node
  var %total: int
  var %v: int
entry:
  %c = makechan *Node, 0
  go worker(%c, 400)
  go worker(%c, 400)
  %g = call build(100)
  store @keep, %g
  %a = call build(300)
  %total = call sum(%a)
  %b = recv %c
  %v = call sum(%b)
  %total = add %total, %v
  %b = recv %c
  %v = call sum(%b)
  %total = add %total, %v
  %g = load @keep
  %v = call sum(%g)
  %total = add %total, %v
  ret %total
}
)";
  const int64_t expected = 299 * 300 / 2 + 2 * (399 * 400 / 2) + 99 * 100 / 2;
  setenv("USGC_VERIFY", "1", 1);
  RunResult plain = run_text(text);
  RunResult stressed = run_text(text, RunOptions{.gc_stress_every = 1});
  unsetenv("USGC_VERIFY");
  ASSERT_EQ(plain.status, RunStatus::kCompleted) << describe(plain);
  ASSERT_EQ(stressed.status, RunStatus::kCompleted) << describe(stressed);
  EXPECT_EQ(plain.returned_value, expected);
  EXPECT_EQ(stressed.returned_value, expected);
  EXPECT_GT(stressed.private_collections, 1000u);
  EXPECT_GT(stressed.shared_collections, 500u);
  EXPECT_EQ(stressed.allocations_per_site, plain.allocations_per_site);
}

TEST(InterpreterSemantics, BadEntriesAreSetupErrorsAndNothingRuns) {
  const char* text = "type Box { v: int }\nfunc f(%n: int, %b: *Box) {\nentry:\n  ret\n}\n";
  RunResult missing = run_text(text);
  EXPECT_EQ(missing.status, RunStatus::kSetupError);
  EXPECT_EQ(missing.message, "t.usir: no function 'main' to run");
  RunResult too_many = run_text(text, RunOptions{.entry = "f", .arguments = {1, 2, 3}});
  EXPECT_EQ(too_many.message, "t.usir: f takes 2 parameter(s), 3 argument(s) given");
  RunResult reference = run_text(text, RunOptions{.entry = "f", .arguments = {1, 2}});
  EXPECT_EQ(reference.status, RunStatus::kSetupError);
  EXPECT_NE(reference.message.find("parameter %b of f is a reference"), std::string::npos)
      << reference.message;
  RunResult fine = run_text(text, RunOptions{.entry = "f", .arguments = {1}});
  EXPECT_EQ(fine.status, RunStatus::kCompleted) << describe(fine);
  EXPECT_EQ(fine.allocations_per_site.size(), 0u);
}

}  // namespace
}  // namespace usgc::jitgen::interpreter
