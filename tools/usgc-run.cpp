// tools/usgc-run.cpp — runs a .usir program: compiled by the x86-64 JIT (jitgen/x86_64, the
// default) or by the interpreter (--interp), on the usgc runtime.
//
//   usgc-run [options] prog.usir
//     --interp           run with the interpreter (checked mode, as usgc-escape --run) instead
//     --unchecked        with --interp: no decision checks (what compiled code does)
//     --entry F          the function to run (default main)
//     --arg N            an int/bool argument of F (repeatable, in parameter order)
//     --gc-stress N      a collection every N allocations of a goroutine
//     --time-limit-ms N  stop the run after N ms
//     --counts           after the result, one line per allocation site:
//                        `site FILE:LINE:COL CLASS ALLOCATIONS`, then `class CLASS ALLOCATIONS`
//                        (the JIT compiles its allocation counters only with --counts)
//     --disasm           print each compiled function's code, stubs marked, and do not run
//     --no-shrink-wrap   every compiled function pushes its frame at entry (for comparison)
//     --target=wasm      lower to WebAssembly instead (jitgen/wasm/run_wasm.hpp: -o, --emit-wat)
// The command line of both targets is parsed by jitgen/command_line/usgc_run_options.hpp.
// Output: `F returned N` when F returns an int or bool (`F returned` otherwise).
// Exit status: 0 when the program completed; 1 when it did not (a runtime error, a deadlock, a
// limit: the positioned message on stderr); 2 for a usage error, an unreadable or malformed file
// or a module that cannot be compiled.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "jitgen/command_line/usgc_run_options.hpp"
#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/ir/source_file.hpp"
#include "jitgen/wasm/run_wasm.hpp"
#include "jitgen/x86_64/compiled_module.hpp"

namespace {

constexpr int kExitRunFailed = 1;
constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
  using namespace usgc::jitgen;
  // One parser for both targets (jitgen/command_line/usgc_run_options.hpp).
  std::optional<command_line::UsgcRunOptions> command =
      command_line::parse_usgc_run_options(argc, argv);
  if (!command) return kExitUsage;
  if (command->target == command_line::Target::kWasm) return wasm::run_wasm_command(*command);
  if (command->help) {
    command_line::print_usgc_run_usage(command_line::Target::kNative, stdout);
    return 0;
  }
  const bool interpret = command->interpret, counts = command->counts, disasm = command->disasm;
  const std::string& path = command->path;
  interpreter::RunOptions options;
  options.checked = !command->unchecked;
  options.entry = command->entry;
  options.arguments = command->arguments;
  options.gc_stress_every = command->gc_stress_every;
  options.time_limit_ms = command->time_limit_ms;
  ir::ParseResult parsed;
  if (!ir::load_program(path, "usgc-run", "not run", &parsed)) return kExitUsage;
  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);

  interpreter::RunResult result;
  if (interpret) {
    if (disasm) {
      std::fprintf(stderr, "usgc-run: --disasm needs the JIT (not --interp)\n");
      return kExitUsage;
    }
    result = interpreter::run_program(parsed.module, analysis, options);
  } else {
    x86_64::CompileOptions compile_options;
    compile_options.gc_stress = options.gc_stress_every != 0;
    // The per-site counters cost an `inc` per allocation: compiled in only when printed.
    compile_options.count_allocations = counts;
    compile_options.shrink_wrap = command->shrink_wrap;
    std::string compile_error;
    std::unique_ptr<x86_64::CompiledModule> compiled =
        x86_64::CompiledModule::compile(parsed.module, analysis, compile_options, &compile_error);
    if (!compiled) {
      std::fprintf(stderr, "usgc-run: %s\n", compile_error.c_str());
      return kExitUsage;
    }
    if (disasm) {
      std::fputs(compiled->disassemble().c_str(), stdout);
      return 0;
    }
    result = x86_64::run_compiled(*compiled, options);
  }
  if (result.status == interpreter::RunStatus::kSetupError) {
    std::fprintf(stderr, "%s\n", result.message.c_str());
    return kExitUsage;
  }
  if (result.status == interpreter::RunStatus::kCompleted) {
    if (result.returned_value) {
      std::printf("%s returned %lld\n", options.entry.c_str(),
                  static_cast<long long>(*result.returned_value));
    } else {
      std::printf("%s returned\n", options.entry.c_str());
    }
  }
  if (counts) {
    for (const escape::SiteDecision& site : analysis.sites)
      std::printf("site %s %s %llu\n",
                  escape::format_position(analysis.file_name, site.position).c_str(),
                  escape::ownership_class_short_name(site.ownership),
                  static_cast<unsigned long long>(result.allocations_per_site[site.site_index]));
    for (size_t c = 0; c < escape::kOwnershipClassCount; ++c)
      std::printf("class %s %llu\n",
                  escape::ownership_class_short_name(static_cast<escape::OwnershipClass>(c)),
                  static_cast<unsigned long long>(result.allocations_per_class[c]));
  }
  std::fflush(stdout);
  if (result.status != interpreter::RunStatus::kCompleted) {
    std::fprintf(stderr, "%s\n", result.message.c_str());
    return kExitRunFailed;
  }
  return 0;
}
