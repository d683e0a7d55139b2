// tests/jitgen/jit_runtime_error_test.cpp — runtime errors in compiled code stop the run with the
// interpreter's positioned message (same status, same text), never a raw signal: nil
// dereference, index out of range (also on a null array), division and remainder by zero,
// negative length and capacity, send on a closed channel, close of a nil or closed channel, and
// a recursion deeper than the goroutine stack.
#include <gtest/gtest.h>

#include <string>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/compiled_module.hpp"

namespace usgc::jitgen::x86_64 {
namespace {

struct Case {
  const char* name;
  const char* body;      // main's instructions after `entry:`; locals below
  const char* expected;  // part of the message
};

constexpr const char* kPrelude = R"(type Node { v: int, next: *Node }

func deep(%n: int) -> int {
  var %r: int
entry:
  %r = add %n, 1
  %r = call deep(%r)
  ret %r
}

func main() -> int {
  var %p: *Node
  var %a: []int
  var %b: [4]int
  var %c: chan int
  var %i: int
  var %z: int
entry:
)";

const Case kCases[] = {
    {"nil field", "  %i = load %p.v @7:9\n  ret %i\n", "nil pointer dereference (field v of %p)"},
    {"nil store", "  store %p.next, null\n  ret 0\n", "nil pointer dereference (field next of %p)"},
    {"index", "  %b = new [4]int\n  %i = 4\n  %z = load %b[%i]\n  ret %z\n",
     "index out of range [4] with length 4"},
    {"negative index", "  %b = new [4]int\n  %i = -1\n  store %b[%i], 3\n  ret 0\n",
     "index out of range [-1] with length 4"},
    {"null array", "  %z = load %a[2]\n  ret %z\n",
     "index out of range [2] with length 0 (%a is null)"},
    {"divide", "  %z = 0\n  %i = div 7, %z\n  ret %i\n", "integer divide by zero"},
    {"remainder", "  %z = 0\n  %i = rem 7, %z\n  ret %i\n", "integer divide by zero"},
    {"negative length", "  %i = -3\n  %a = newarray int, %i\n  ret 0\n",
     "newarray: negative length -3"},
    {"negative capacity", "  %i = -2\n  %c = makechan int, %i\n  ret 0\n",
     "makechan: negative capacity -2"},
    {"send on closed", "  %c = makechan int, 1\n  close %c\n  send %c, 1\n  ret 0\n",
     "send on closed channel"},
    {"close nil", "  close %c\n  ret 0\n", "close of nil channel"},
    {"close closed", "  %c = makechan int, 1\n  close %c\n  close %c\n  ret 0\n",
     "close of closed channel"},
};

TEST(JitRuntimeError, CompiledCodeStopsWithTheInterpretersPositionedMessage) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    std::string text = std::string(kPrelude) + c.body + "}\n";
    ir::ParseResult parsed = ir::parse_module(text, "errors.usir");
    ASSERT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
    escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
    std::string error;
    auto compiled = CompiledModule::compile(parsed.module, analysis, {}, &error);
    ASSERT_NE(compiled, nullptr) << error;
    interpreter::RunOptions options;
    options.checked = false;
    interpreter::RunResult jitted = run_compiled(*compiled, options);
    interpreter::RunResult interpreted = interpreter::run_program(parsed.module, analysis, options);
    EXPECT_EQ(jitted.status, interpreter::RunStatus::kRuntimeError);
    EXPECT_EQ(jitted.status, interpreted.status);
    EXPECT_EQ(jitted.message, interpreted.message);
    EXPECT_NE(jitted.message.find(c.expected), std::string::npos) << jitted.message;
    EXPECT_NE(jitted.message.find("errors.usir:"), std::string::npos) << "positioned";
  }
}

TEST(JitRuntimeError, RecursionDeeperThanTheStackStopsTheRunInsteadOfCrashing) {
  std::string text = std::string(kPrelude) + "  %i = call deep(0)\n  ret %i\n}\n";
  ir::ParseResult parsed = ir::parse_module(text, "deep.usir");
  ASSERT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
  std::string error;
  auto compiled = CompiledModule::compile(parsed.module, analysis, {}, &error);
  ASSERT_NE(compiled, nullptr) << error;
  interpreter::RunResult jitted = run_compiled(*compiled, {});
  EXPECT_EQ(jitted.status, interpreter::RunStatus::kLimitExceeded) << jitted.message;
  EXPECT_NE(jitted.message.find("call depth limit: calling deep"), std::string::npos)
      << jitted.message;
}

}  // namespace
}  // namespace usgc::jitgen::x86_64
