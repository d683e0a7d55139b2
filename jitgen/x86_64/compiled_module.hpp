// jitgen/x86_64/compiled_module.hpp — the x86-64 baseline JIT's C++ API: compile a verified
// .usir module with its escape decisions into native code, look up an entry, run it on usgc
// goroutines, disassemble it. Exported from libusgc (default visibility) for embedders.
//
//   ir::ParseResult parsed = ir::parse_module(text, "prog.usir");
//   escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
//   std::string error;
//   auto compiled = x86_64::CompiledModule::compile(parsed.module, analysis, {}, &error);
//   interpreter::RunResult result = x86_64::run_compiled(*compiled, options);  // like run_program
//
// What is compiled (compiler.hpp): every function of the module, plus one variant of a function
// per distinct set of sites that some call allocates in its caller's frame ("stack when called
// at": that variant allocates those sites STACK_LOCAL and its epilogue keeps the arena).
// Code memory (kernel_iface/code_memory.hpp) is written while mapped read-write, then sealed
// read+execute before anything runs it: never writable and executable at once. Once sealed, its
// functions are announced to profilers and debuggers (jitgen/code_visibility: the perf map with
// USGC_PERF_MAP=1, the GDB JIT interface), and withdrawn before the code is unmapped. The module
// owns the code and unmaps it in its destructor; the module, the ir::Module and the analysis it was
// compiled from must outlive every run of it.
// Invariant: one run at a time per process (the interpreter's rule: the runtime is a process
// singleton); run_compiled is called from a thread that is not a goroutine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "jitgen/code_visibility/code_visibility.hpp"
#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/interpreter/program_layout.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/jit_runtime.hpp"

#define USGC_JIT_API __attribute__((visibility("default")))

namespace usgc::jitgen::x86_64 {

struct CompileOptions {
  // Emit a call before each allocation that runs a collection every RunOptions::gc_stress_every
  // allocations of the goroutine (the interpreter's --gc-stress; off: no call at all).
  bool gc_stress = false;
  // Count the allocations of every site (RunResult::allocations_per_site / _per_class: one
  // `inc` per allocation). Off: no counting code at all, and the run reports zero allocations.
  bool count_allocations = true;
  // Shrink-wrap the shadow-stack frame (docs/jit.md, "Frames only where they are needed"): a
  // function whose entry leads to a return without any call, poll or runtime call runs that
  // path without pushing its frame. Off: every function pushes its frame at entry.
  bool shrink_wrap = true;
  // Tests: called once the code is written, while its mapping is still read-write (not yet
  // executable), with the mapping's address and size.
  void (*after_code_written)(const void* mapping, size_t bytes, void* argument) = nullptr;
  void* hook_argument = nullptr;
};

// A marked range of code: one stub's inline fast path ("private_alloc", "barrier", "poll", ...),
// so the disassembly shows the stub boundaries and tests can check each sequence.
struct StubMark {
  uint32_t begin = 0;  // byte offsets in the module's code
  uint32_t end = 0;
  const char* name = "";
};

struct CompiledFunction {
  std::string name;                          // "f", or "f[caller frame: 3,5]" for a variant
  uint32_t function_index = UINT32_MAX;      // UINT32_MAX: the entry thunk
  std::vector<uint32_t> caller_frame_sites;  // sorted; empty for the function itself
  uint32_t offset = 0;
  uint32_t size = 0;
};

class USGC_JIT_API CompiledModule {
 public:
  // nullptr with *error set when the module cannot be compiled (a type usgc refuses, no memory
  // for code, a mapping that cannot be sealed).
  static std::unique_ptr<CompiledModule> compile(const ir::Module& module,
                                                 const escape::EscapeAnalysis& analysis,
                                                 const CompileOptions& options, std::string* error);
  ~CompiledModule();
  CompiledModule(const CompiledModule&) = delete;
  CompiledModule& operator=(const CompiledModule&) = delete;

  // The code of a function (its own variant), or nullptr when the module has none of that name.
  const void* entry(std::string_view function_name) const;

  const ir::Module& module() const { return module_; }
  const escape::EscapeAnalysis& analysis() const { return analysis_; }
  const interpreter::ProgramLayout& layout() const { return layout_; }
  const CompileOptions& options() const { return options_; }
  const uint8_t* code() const { return code_; }
  size_t code_bytes() const { return code_bytes_; }
  const void* mapping() const { return mapping_; }
  size_t mapping_bytes() const { return mapping_bytes_; }
  const std::vector<CompiledFunction>& functions() const { return functions_; }
  const std::vector<StubMark>& marks() const { return marks_; }

  // Each function's code in Intel syntax, one instruction a line, with `; ---- stub NAME`
  // lines around every stub's fast path (capstone).
  std::string disassemble() const;

  // ---- for the runtime side (jit_runtime.cpp, run_compiled) ----
  const OperationSite& operation(uint32_t index) const { return operations_[index]; }
  const ErrorSite& error_site(uint32_t index) const { return errors_[index]; }
  size_t error_site_count() const { return errors_.size(); }  // the checks compiled (tests)
  using EnterThunk = uint64_t (*)(const void* code, JitGoroutine* goroutine, const uint64_t* inputs,
                                  uint64_t count);
  EnterThunk enter_thunk() const { return reinterpret_cast<EnterThunk>(code_); }
  const void* function_code(uint32_t function_index) const {
    return code_ + base_offsets_[function_index];
  }
  // Where the module's unwind stub starts (the exits of a stopping run: compiler.hpp,
  // emit_enter_thunk): the unwind, then the runtime-error report. Compiled functions jump there.
  uint32_t unwind_offset() const { return unwind_offset_; }

 private:
  CompiledModule(const ir::Module& module, const escape::EscapeAnalysis& analysis,
                 interpreter::ProgramLayout layout, const CompileOptions& options);
  friend class Compiler;

  const ir::Module& module_;
  const escape::EscapeAnalysis& analysis_;
  interpreter::ProgramLayout layout_;
  CompileOptions options_;
  std::unique_ptr<usgc_type_layout[]> site_layouts_;  // by site; stable: code embeds addresses
  usgc_type_layout arena_floor_layout_{};
  std::vector<OperationSite> operations_;
  std::vector<ErrorSite> errors_;
  std::vector<CompiledFunction> functions_;
  std::vector<uint32_t> base_offsets_;  // by function index
  uint32_t unwind_offset_ = 0;
  std::vector<StubMark> marks_;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  bool registered_for_safepoints_ = false;  // polling code (usgc/safepoint.h), until unmapped
  VisibleModule* visible_ = nullptr;  // perf map / GDB JIT registration, withdrawn before unmap
  const uint8_t* code_ = nullptr;
  size_t code_bytes_ = 0;

 public:
  const usgc_type_layout* arena_floor_layout() const { return &arena_floor_layout_; }
};

// Runs options.entry of a compiled module the way interpreter::run_program runs it (same
// RunResult: status, positioned message, returned value, allocations per site and class).
// Differences: no checked mode (compiled code makes no decision checks: the result is the same
// as the interpreter's with checked = false), `steps` is 0 and max_steps / max_call_depth are
// not enforced (the goroutine stack is: a call that would overflow it stops the run with
// kLimitExceeded). RunOptions::gc_stress_every needs CompileOptions::gc_stress.
USGC_JIT_API interpreter::RunResult run_compiled(const CompiledModule& compiled,
                                                 const interpreter::RunOptions& options);

}  // namespace usgc::jitgen::x86_64
