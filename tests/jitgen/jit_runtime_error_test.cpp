// tests/jitgen/jit_runtime_error_test.cpp — runtime errors in compiled code stop the run with the
// interpreter's positioned message (same status, same text), never a raw signal: nil
// dereference, index out of range (also on a null array), division and remainder by zero,
// negative length and capacity, send on a closed channel, close of a nil or closed channel, and
// a recursion deeper than the goroutine stack. An error several calls deep unwinds straight to
// the entry thunk (docs/jit.md, "Errors unwind to the entry"): on the entry goroutine and on a
// spawned one, with the shadow stack and the stack arena as they were at entry, and the
// goroutine's heap usable after it; a stop reaches a goroutine that only recurses.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/compiled_module.hpp"
#include "jitgen/x86_64/jit_runtime.hpp"
#include "usgc/gc.h"

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

// A module, its analysis and its code (the code refers to both: kept together, on the heap).
struct Compiled {
  ir::Module module;
  escape::EscapeAnalysis analysis;
  std::unique_ptr<CompiledModule> code;
};

std::unique_ptr<Compiled> compile_text(const std::string& text, const char* name,
                                       const CompileOptions& options = {}) {
  ir::ParseResult parsed = ir::parse_module(text, name);
  EXPECT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
  if (!parsed.ok()) return nullptr;
  auto compiled = std::make_unique<Compiled>();
  compiled->module = std::move(parsed.module);
  compiled->analysis = escape::analyze_escapes(compiled->module);
  std::string error;
  compiled->code = CompiledModule::compile(compiled->module, compiled->analysis, options, &error);
  EXPECT_NE(compiled->code, nullptr) << error;
  if (compiled->code == nullptr) return nullptr;
  return compiled;
}

TEST(JitRuntimeError, CompiledCodeStopsWithTheInterpretersPositionedMessage) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<Compiled> compiled =
        compile_text(std::string(kPrelude) + c.body + "}\n", "errors.usir");
    ASSERT_NE(compiled, nullptr);
    interpreter::RunOptions options;
    options.checked = false;
    interpreter::RunResult jitted = run_compiled(*compiled->code, options);
    interpreter::RunResult interpreted =
        interpreter::run_program(compiled->module, compiled->analysis, options);
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
  std::unique_ptr<Compiled> compiled = compile_text(text, "known.usir");
  ASSERT_NE(compiled, nullptr);
  uint32_t nil_checks[3] = {0, 0, 0};  // build, get, main
  for (uint32_t i = 0; i < compiled->code->error_site_count(); ++i) {
    const ErrorSite& site = compiled->code->error_site(i);
    if (site.kind == ErrorKind::kNilField) ++nil_checks[site.function];
  }
  EXPECT_EQ(nil_checks[0], 0u) << "build: every access is of a local known non-null";
  EXPECT_EQ(nil_checks[1], 1u) << "get: the parameter's first access only";
  interpreter::RunResult result = run_compiled(*compiled->code, {});
  EXPECT_EQ(result.status, interpreter::RunStatus::kCompleted) << result.message;
}

TEST(JitRuntimeError, RecursionDeeperThanTheStackStopsTheRunInsteadOfCrashing) {
  std::unique_ptr<Compiled> compiled =
      compile_text(std::string(kPrelude) + "  %i = call deep(0)\n  ret %i\n}\n", "deep.usir");
  ASSERT_NE(compiled, nullptr);
  interpreter::RunResult jitted = run_compiled(*compiled->code, {});
  EXPECT_EQ(jitted.status, interpreter::RunStatus::kLimitExceeded) << jitted.message;
  EXPECT_NE(jitted.message.find("call depth limit: calling deep"), std::string::npos)
      << jitted.message;
}

// c fails three calls below main (a nil field of a node b passed down), with references rooted in
// every frame on the way and a STACK_LOCAL object in b's frame (the arena top moved).
constexpr const char* kDeepErrorProgram = R"(type Node { v: int, next: *Node }

func c(%p: *Node, %k: int) -> int {
  var %q: *Node
  var %v: int
entry:
  %q = load %p.next
  %v = load %q.v @6:3
  ret %v
}

func b(%p: *Node, %k: int) -> int {
  var %s: *Node
  var %r: int
entry:
  %s = new Node
  store %s.v, %k
  %r = call c(%p, %k)
  %k = load %s.v
  %r = add %r, %k
  ret %r
}

func a(%k: int) -> int {
  var %p: *Node
  var %r: int
entry:
  %p = new Node
  %r = call b(%p, %k)
  ret %r
}

func worker(%k: int, %out: chan int) {
  var %r: int
entry:
  %r = call a(%k)
  send %out, %r
  ret
}

func main(%spawn: int) -> int {
  var %r: int
  var %out: chan int
  var %go: bool
entry:
  %go = ne %spawn, 0
  br %go, spawned, here
here:
  %r = call a(1)
  ret %r
spawned:
  %out = makechan int, 0
  go worker(1, %out)
  %r = recv %out
  ret %r
}
)";

// Wraps the compiled entry: the entry goroutine's shadow stack and arena before and after it, and
// a private collection with an object rooted after it (the heap still usable).
struct EntryProbe {
  JitRun jit;
  usgc_frame* frames_before = nullptr;
  usgc_frame* frames_after = nullptr;
  char* arena_before = nullptr;
  char* arena_after = nullptr;
  bool kept_after_collection = false;
};

void probe_entry(interpreter::RunState& run, void* context) {
  auto& probe = *static_cast<EntryProbe*>(context);
  // The arena floor first (run_compiled_entry would make it: compiled_module.hpp), so the arena
  // top measured here is the one the entry starts from.
  if (usgc_current_mutator->arena_top == nullptr)
    (void)usgc_alloc_stack_slow(probe.jit.module->arena_floor_layout());
  probe.frames_before = usgc_current_mutator->frames;
  probe.arena_before = usgc_current_mutator->arena_top;
  run_compiled_entry(run, &probe.jit);
  probe.frames_after = usgc_current_mutator->frames;
  probe.arena_after = usgc_current_mutator->arena_top;
  void* roots[1] = {nullptr};
  usgc_frame frame = {nullptr, roots, 1, nullptr};
  usgc_frame_push(&frame);
  roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, 4, USGC_GOROUTINE_PRIVATE);
  if (roots[0] != nullptr) {
    usgc_gc_collect(USGC_GC_PRIVATE);
    probe.kept_after_collection =
        usgc_ownership_of(roots[0]) == USGC_GOROUTINE_PRIVATE && usgc_array_length(roots[0]) == 4;
  }
  usgc_frame_pop(&frame);
}

TEST(JitRuntimeError, AnErrorThreeCallsDeepUnwindsToTheEntryOnEveryGoroutine) {
  bool stack_site = false;
  for (bool gc_stress : {false, true}) {
    CompileOptions compile_options;
    compile_options.gc_stress = gc_stress;
    std::unique_ptr<Compiled> compiled =
        compile_text(kDeepErrorProgram, "deep_error.usir", compile_options);
    ASSERT_NE(compiled, nullptr);
    for (const escape::SiteDecision& site : compiled->analysis.sites)
      stack_site = stack_site || site.ownership == escape::OwnershipClass::StackLocal;
    for (int64_t spawn : {0, 1}) {
      SCOPED_TRACE("spawn " + std::to_string(spawn) + ", gc_stress " + std::to_string(gc_stress));
      interpreter::RunOptions options;
      options.checked = false;
      options.arguments = {spawn};
      options.gc_stress_every = gc_stress ? 1 : 0;
      EntryProbe probe;
      probe.jit.module = compiled->code.get();
      interpreter::RunResult jitted = interpreter::run_program_with(
          compiled->module, compiled->analysis, options, probe_entry, &probe);
      interpreter::RunResult interpreted =
          interpreter::run_program(compiled->module, compiled->analysis, options);
      EXPECT_EQ(jitted.status, interpreter::RunStatus::kRuntimeError) << jitted.message;
      EXPECT_EQ(jitted.message, interpreted.message);
      EXPECT_NE(jitted.message.find("deep_error.usir:6:3: runtime error: nil pointer dereference "
                                    "(field v of %q)"),
                std::string::npos)
          << jitted.message;
      EXPECT_EQ(probe.frames_after, probe.frames_before) << "every compiled frame unlinked";
      EXPECT_EQ(probe.arena_after, probe.arena_before) << "b's STACK_LOCAL object popped";
      EXPECT_TRUE(probe.kept_after_collection) << "the goroutine's heap after the unwind";
    }
  }
  // The stack object is b's, so the arena moved under the error.
  EXPECT_TRUE(stack_site) << "b's node is decided STACK_LOCAL";
}

// A stop made on one goroutine reaches another that only recurses (no loop, no channel operation:
// nothing but its calls could see the stop): spin(62) makes 2^62 calls, so this run ends only if
// the stop reaches spin at a call (the stop hook's stack limit; before it, the flag test after
// each call). worker tells main it is in compiled code before it spins, so the stop finds it
// there.
constexpr const char* kSpinProgram = R"(type Node { v: int, next: *Node }

func spin(%n: int) -> int {
  var %a: int
  var %b: int
  var %small: bool
entry:
  %small = le %n, 0
  br %small, leaf, inner
leaf:
  ret 1
inner:
  %n = sub %n, 1
  %a = call spin(%n)
  %b = call spin(%n)
  %a = add %a, %b
  ret %a
}

func worker(%started: chan int) {
  var %r: int
entry:
  send %started, 1
  %r = call spin(62)
  send %started, %r
  ret
}

func main() -> int {
  var %started: chan int
  var %p: *Node
  var %v: int
entry:
  %started = makechan int, 1
  go worker(%started)
  %v = recv %started
  %v = load %p.v @34:3
  ret %v
}
)";

TEST(JitRuntimeError, AStopReachesAGoroutineThatOnlyRecurses) {
  std::unique_ptr<Compiled> compiled = compile_text(kSpinProgram, "spin.usir");
  ASSERT_NE(compiled, nullptr);
  for (uint32_t procs : {1u, 2u}) {
    SCOPED_TRACE("procs " + std::to_string(procs));
    interpreter::RunOptions options;
    options.checked = false;
    options.procs = procs;
    interpreter::RunResult result = run_compiled(*compiled->code, options);
    EXPECT_EQ(result.status, interpreter::RunStatus::kRuntimeError) << result.message;
    EXPECT_NE(result.message.find("spin.usir:34:3: runtime error: nil pointer dereference"),
              std::string::npos)
        << result.message;
    EXPECT_EQ(result.goroutines_started, 1u);
  }
}

}  // namespace
}  // namespace usgc::jitgen::x86_64
