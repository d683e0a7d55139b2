// jitgen/wasm/lowering.hpp — verified .usir modules lowered to a binary WebAssembly module that
// runs on the wasm runtime (jitgen/wasm/runtime/usgc_wasm_runtime.c) through the node host
// (tools/usgc-wasm-host.mjs). docs/wasm.md describes the ABI and what is supported.
//
// The lowered module imports the runtime's memory and slow paths (module "usgc") and one host
// function (module "host": runtime_error), exports `init` (type registration, tables) and one
// function per .usir function (`usir:NAME`, every parameter and the result an i64), and carries a
// custom section `usgc.meta` (JSON: entry signatures, sites with their classes, error messages)
// that the host reads to print what a native run prints.
//
// Invariants: programs that use unknown code are refused with a positioned error; goroutines
// and channels are calls into the runtime (a blocking one suspends the goroutine through the
// host's `suspend` import, made a coroutine switch by asyncify); everything it accepts it lowers
// with the native JIT's sequences: private TLAB bump + limit + header store, stack arena bump, the
// same-goroutine barrier test with the slow path a call, usgc_frame-shaped shadow-stack frames
// for every reference local, the flag-word poll at entry and on back edges.
// Compile time only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"

namespace usgc::jitgen::wasm {

struct LowerOptions {
  bool gc_stress = false;  // call the runtime's stress hook before every allocation
  // When set: the wasm instructions of each inline sequence's fast path (the slow-path arm not
  // counted), as emitted, by name: "private_alloc", "stack_alloc_<payload words>",
  // "barrier", "barrier_value_test", "poll", "frame_push_<slots>", "frame_pop",
  // "frame_pop_keep_arena". Counted from the emitter, so deterministic.
  std::map<std::string, uint32_t>* stub_instructions = nullptr;
  // When set: becomes true if a goroutine of the module may block (`go`, `send`, `recv`): the
  // module then needs the coroutine transform (asyncify.hpp) before it runs.
  bool* uses_goroutines = nullptr;
  // For tests of the collector's own check only: the barrier without its value test (as if the
  // escape decisions were wrong and the code trusted them), so a STACK_LOCAL object can reach a
  // private object unchecked and be found by the collector deeper in a graph a later store,
  // send or `go` publishes (reported at that operation's position).
  bool omit_stack_value_tests = false;
};

// The module's bytes, or nullopt with *error set ("file:line:col: ..." for a refused construct).
std::optional<std::vector<uint8_t>> lower_module(const ir::Module& module,
                                                 const escape::EscapeAnalysis& analysis,
                                                 const LowerOptions& options, std::string* error);

}  // namespace usgc::jitgen::wasm
