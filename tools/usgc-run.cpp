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
// Output: `F returned N` when F returns an int or bool (`F returned` otherwise).
// Exit status: 0 when the program completed; 1 when it did not (a runtime error, a deadlock, a
// limit: the positioned message on stderr); 2 for a usage error, an unreadable or malformed file
// or a module that cannot be compiled.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/ir/source_file.hpp"
#include "jitgen/wasm/run_wasm.hpp"
#include "jitgen/x86_64/compiled_module.hpp"

namespace {

constexpr int kExitRunFailed = 1;
constexpr int kExitUsage = 2;

void print_usage(std::FILE* stream) {
  std::fputs(
      "usage: usgc-run [options] prog.usir\n"
      "  --interp           run with the interpreter instead of the JIT\n"
      "  --unchecked        with --interp: no decision checks\n"
      "  --entry F          the function to run (default main)\n"
      "  --arg N            an int/bool argument of F (repeat for each parameter)\n"
      "  --gc-stress N      run a collection every N allocations of a goroutine\n"
      "  --time-limit-ms N  stop the run after N milliseconds\n"
      "  --counts           print the allocations of every site and class\n"
      "  --disasm           print the compiled code with its stubs marked (no run)\n"
      "  --no-shrink-wrap   push every compiled function's frame at its entry\n",
      stream);
}

std::optional<int64_t> parse_number(const char* text) {
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return std::nullopt;
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace usgc::jitgen;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--target=wasm") return wasm::run_wasm_command(argc, argv);
  bool interpret = false, counts = false, disasm = false, shrink_wrap = true;
  interpreter::RunOptions options;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string_view argument = argv[i];
    auto number = [&]() -> std::optional<int64_t> {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "usgc-run: %s needs a value\n", argv[i]);
        return std::nullopt;
      }
      ++i;
      std::optional<int64_t> value = parse_number(argv[i]);
      if (!value)
        std::fprintf(stderr, "usgc-run: %s takes a whole number, not '%s'\n", argv[i - 1], argv[i]);
      return value;
    };
    if (argument == "--interp") {
      interpret = true;
    } else if (argument == "--unchecked") {
      options.checked = false;
    } else if (argument == "--counts") {
      counts = true;
    } else if (argument == "--disasm") {
      disasm = true;
    } else if (argument == "--no-shrink-wrap") {
      shrink_wrap = false;
    } else if (argument == "--entry") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "usgc-run: --entry needs a value\n");
        return kExitUsage;
      }
      options.entry = argv[++i];
    } else if (argument == "--arg") {
      std::optional<int64_t> value = number();
      if (!value) return kExitUsage;
      options.arguments.push_back(*value);
    } else if (argument == "--gc-stress" || argument == "--time-limit-ms") {
      std::optional<int64_t> value = number();
      if (!value) return kExitUsage;
      if (*value < 0 || *value > UINT32_MAX) {
        std::fprintf(stderr, "usgc-run: %s must be between 0 and %u, not %lld\n", argv[i - 1],
                     UINT32_MAX, static_cast<long long>(*value));
        return kExitUsage;
      }
      (argument == "--gc-stress" ? options.gc_stress_every : options.time_limit_ms) =
          static_cast<uint32_t>(*value);
    } else if (argument == "-h" || argument == "--help") {
      print_usage(stdout);
      return 0;
    } else if (argument.size() > 1 && argument[0] == '-') {
      std::fprintf(stderr, "usgc-run: unknown option '%s'\n", argv[i]);
      print_usage(stderr);
      return kExitUsage;
    } else if (!path.empty()) {
      std::fprintf(stderr, "usgc-run: one program at a time ('%s' and '%s' given)\n", path.c_str(),
                   argv[i]);
      return kExitUsage;
    } else {
      path = argument;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "usgc-run: no .usir program given\n");
    print_usage(stderr);
    return kExitUsage;
  }
  std::string text;
  std::string read_error;
  if (!ir::read_source_file(path, &text, &read_error)) {
    std::fprintf(stderr, "usgc-run: %s\n", read_error.c_str());
    return kExitUsage;
  }
  ir::ParseResult parsed = ir::parse_module(text, path);
  if (!parsed.ok()) {
    std::fputs(ir::format_diagnostics(parsed.diagnostics).c_str(), stderr);
    std::fprintf(stderr, "usgc-run: %s is malformed; not run\n", path.c_str());
    return kExitUsage;
  }
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
    compile_options.shrink_wrap = shrink_wrap;
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
