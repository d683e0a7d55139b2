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
  var %t: bool
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
    // Known non-null (compiler.hpp): a check dropped after an allocation or a passed check must
    // come back once the local is assigned again, after a join, and around a back edge.
    {"nil after reassignment",
     "  %p = new Node\n  store %p.v, 1\n  %p = null\n  store %p.v, 2 @9:3\n  ret 0\n",
     "nil pointer dereference (field v of %p)"},
    {"nil after a join",
     "  %z = 1\n  %t = eq %z, 0\n  br %t, make, join\nmake:\n  %p = new Node\n"
     "  store %p.v, 1\n  jmp join\njoin:\n  %i = load %p.v\n  ret %i\n",
     "nil pointer dereference (field v of %p)"},
    {"nil around a back edge",
     "  %p = new Node\n  %i = 0\n  jmp head\nhead:\n  store %p.v, %i\n  %p = load %p.next\n"
     "  %i = add %i, 1\n  %t = lt %i, 3\n  br %t, head, out\nout:\n  ret 0\n",
     "nil pointer dereference (field v of %p)"},
    {"null array after reassignment",
     "  %a = newarray int, 2\n  store %a[0], 1\n  %a = null\n  %z = load %a[1]\n  ret %z\n",
     "index out of range [1] with length 0 (%a is null)"},
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

// A field or element access of a local known non-null compiles to no nil check at all: after an
// allocation into it, after a check of it that passed, in a block entered only from such a point.
// A parameter's first access keeps its check.
TEST(JitRuntimeError, AccessesOfKnownNonNullLocalsHaveNoNilCheck) {
  const char* text = R"(type Node { v: int, next: *Node }

func build() -> *Node {
  var %n: *Node
  var %a: []int
  var %big: bool
entry:
  %n = new Node
  store %n.v, 1
  store %n.next, null
  %a = newarray int, 2
  store %a[0], 1
  %big = gt 1, 0
  br %big, more, done
more:
  store %n.v, 2
  store %a[1], 2
  jmp done
done:
  ret %n
}

func get(%n: *Node) -> int {
  var %v: int
entry:
  %v = load %n.v
  store %n.v, 3
  ret %v
}

func main() -> int {
  var %n: *Node
  var %v: int
entry:
  %n = call build()
  %v = call get(%n)
  ret %v
}
)";
  ir::ParseResult parsed = ir::parse_module(text, "known.usir");
  ASSERT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
  std::string error;
  auto compiled = CompiledModule::compile(parsed.module, analysis, {}, &error);
  ASSERT_NE(compiled, nullptr) << error;
  uint32_t nil_checks[3] = {0, 0, 0};  // build, get, main
  for (uint32_t i = 0; i < compiled->error_site_count(); ++i) {
    const ErrorSite& site = compiled->error_site(i);
    if (site.kind == ErrorKind::kNilField) ++nil_checks[site.function];
  }
  EXPECT_EQ(nil_checks[0], 0u) << "build: every access is of a local known non-null";
  EXPECT_EQ(nil_checks[1], 1u) << "get: the parameter's first access only";
  interpreter::RunResult result = run_compiled(*compiled, {});
  EXPECT_EQ(result.status, interpreter::RunStatus::kCompleted) << result.message;
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
