// jitgen/interpreter/interpreter.hpp — the umbrella header of the .usir interpreter
// ("Executable IR"): run_program() executes a verified UltraScript module on the usgc runtime —
// goroutines through usgc_go_object, channels through usgc channels, every allocation in the
// ownership class the escape analysis chose for its site, every reference store through the
// write barrier — and counts the allocations of every site. In checked mode it traps, with the
// site named, every decision the run proves wrong (decision_checks.hpp lists the rules).
//
// Semantics (Go's, where the IR has the same construct; docs/usir.md, "Running programs"):
//   * the program ends when the entry function (default `main`) returns; goroutines still running
//     are stopped then, at their next call, back edge or channel operation (Go kills them);
//   * arguments and captures are passed by value; `go` copies them into the new goroutine;
//   * int arithmetic wraps (two's complement); `div`/`rem` by zero, a nil dereference, an index
//     out of range, a negative `newarray` length or `makechan` capacity, `close` of a nil or closed
//     channel and `send` on a closed one are runtime errors that stop the program (Go panics);
//   * `recv` on a closed, drained channel yields the zero value; `send`/`recv` on a nil channel
//     block forever;
//   * `call unknown(...)` and `go unknown(...)` stand for code the analysis cannot see: the
//     reference arguments become reachable from a global table (unknown_world.hpp); a call's
//     result is the newest object of the result type in that table, or null / 0 / false;
//   * all goroutines blocked in channel operations with none completing for `deadlock_ms` is a
//     deadlock (Go: "all goroutines are asleep").
// Invariants:
//   * the module must be verified and `analysis` must be analyze_escapes(module) (the resolution
//     invariant of jitgen/ir/module.hpp; the site numbering of jitgen/escape).
//   * one run at a time per process (the runtime is a process singleton); run_program starts the
//     runtime if it is not running and stops it again, and is called from a thread that is not a
//     goroutine.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"

namespace usgc::jitgen::interpreter {

struct RunOptions {
  std::string entry = "main";
  std::vector<int64_t> arguments;  // the entry's int/bool parameters in order; references get null
  bool checked = true;             // trap wrong decisions (decision_checks.hpp)
  // Checked mode at the escape points (frame-escape, class-order, publish rules). false leaves
  // only the rules checked at each use of an object (owner, frame/dead, header), so a wrong
  // decision is reported where it does harm instead of where it escapes (tests use this).
  bool check_escape_points = true;
  uint64_t max_steps = 0;       // instructions over all goroutines; 0: no limit
  uint32_t time_limit_ms = 0;   // wall time; 0: no limit
  uint32_t deadlock_ms = 1000;  // all goroutines blocked this long with no channel progress
  // Every this many allocations a goroutine runs a collection (private, shared minor, shared
  // full in turn), so the decisions are tested under collections; 0: only the GC's own triggers.
  uint32_t gc_stress_every = 0;
  uint32_t procs = 0;           // Ps when run_program starts the runtime (0: USGC_PROCS/cores)
  uint32_t max_call_depth = 0;  // 0: as deep as the goroutine stack safely allows
};

enum class RunStatus : uint8_t {
  kCompleted,       // the entry returned
  kRuntimeError,    // the program panicked (message says why and where)
  kCheckViolation,  // checked mode proved a decision wrong (violation says which)
  kDeadlock,
  kLimitExceeded,  // max_steps, time_limit_ms or the call depth
  kSetupError,     // no such entry, wrong arguments, the runtime could not start
};
[[gnu::visibility("default")]] const char* run_status_name(
    RunStatus status);  // "completed", "runtime error", ...

// A decision the run proved wrong: `rule` names the check (decision_checks.hpp), `site_index` the
// allocation site whose decision it was, `position` the instruction that exposed it.
struct CheckViolation {
  std::string rule;
  uint32_t site_index = 0;
  ir::SourcePosition position;
  std::string message;  // complete, with positions: "f.usir:9:3: checked mode: new Point at ..."
};

struct RunResult {
  RunStatus status = RunStatus::kSetupError;
  std::string message;  // empty when completed; else one line "file:line:col: what happened"
  std::optional<CheckViolation> violation;
  std::optional<int64_t> returned_value;       // the entry's int/bool result, when it has one
  std::vector<uint64_t> allocations_per_site;  // by site index (escape::SiteDecision::site_index)
  // By the class the allocation was made in: the site's decision, or STACK_LOCAL at a call that
  // allocates the site in the caller's frame (escape::CallerFrameCall).
  std::array<uint64_t, escape::kOwnershipClassCount> allocations_per_class{};
  uint64_t caller_frame_allocations = 0;  // of the STACK_LOCAL ones, made in a caller's frame
  // STACK_LOCAL allocations the runtime placed as private stack substitutes (arena full).
  uint64_t stack_substitutes = 0;
  uint64_t goroutines_started = 0;   // besides the entry's
  uint64_t steps = 0;                // instructions executed (all goroutines)
  uint64_t private_collections = 0;  // during the run
  uint64_t shared_collections = 0;
  uint64_t total_allocations() const;
};

[[gnu::visibility("default")]] RunResult run_program(const ir::Module& module,
                                                     const escape::EscapeAnalysis& analysis,
                                                     const RunOptions& options = {});

// The dynamic part of a report: one line per class with allocations and their share, the stack
// substitutes, goroutines and steps; after the static summary of escape/report.hpp.
std::string format_dynamic_summary(const escape::EscapeAnalysis& analysis, const RunResult& result);
// The same as a JSON object (the "run" member of usgc-escape --json --run).
std::string format_dynamic_json(const escape::EscapeAnalysis& analysis, const RunResult& result);

}  // namespace usgc::jitgen::interpreter
