// jitgen/command_line/usgc_run_options.hpp — the command line of `usgc-run`, parsed once for
// both of its targets: the native one (tools/usgc-run.cpp: the x86-64 JIT or the interpreter)
// and WebAssembly (jitgen/wasm/run_wasm.cpp, --target=wasm). Each option is parsed and checked
// here (values, ranges, one program); which options a target accepts is the target's table
// (`applies_to`), so an option of the other target is refused with one message naming it.
// Tool code; nothing here is on a hot path.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace usgc::jitgen::command_line {

enum class Target : uint8_t { kNative, kWasm };

struct UsgcRunOptions {
  Target target = Target::kNative;
  std::string path;                // the .usir program
  std::string entry = "main";      // --entry F
  std::vector<int64_t> arguments;  // --arg N, in parameter order
  uint32_t gc_stress_every = 0;    // --gc-stress N
  uint32_t time_limit_ms = 0;      // --time-limit-ms N (native)
  bool interpret = false;          // --interp (native)
  bool unchecked = false;          // --unchecked (native, with --interp)
  bool counts = false;             // --counts
  bool disasm = false;             // --disasm (native)
  bool shrink_wrap = true;         // --no-shrink-wrap (native): frames at every entry
  bool stats = false;              // --stats (wasm)
  bool stub_counts = false;        // --stub-counts (wasm)
  std::string output;              // -o FILE (wasm)
  std::string wat;                 // --emit-wat FILE (wasm)
  bool help = false;               // -h, --help: print the usage, exit 0
};

// Parses argv. On a usage error prints `usgc-run: ...` (and the usage where it helps) on stderr
// and returns nullopt: the caller exits 2.
std::optional<UsgcRunOptions> parse_usgc_run_options(int argc, char** argv);

// The usage of `target` (its options only).
void print_usgc_run_usage(Target target, std::FILE* stream);

// A whole decimal number (a numeric option's value), or nullopt: empty, trailing characters or
// out of int64_t's range. Shared by usgc-run and usgc-escape.
std::optional<int64_t> parse_number(const char* text);

}  // namespace usgc::jitgen::command_line
