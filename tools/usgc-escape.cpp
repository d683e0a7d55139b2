// tools/usgc-escape.cpp — prints the escape analysis' decision for every allocation site of a
// .usir program, in the manner of `go build -gcflags=-m`:
//
//   usgc-escape [-m | -m=1 | -m=2] [--json] [--run [run options]] prog.usir
//
//   prog.usir:12:5: new Point: stack (does not escape)
//   prog.usir:14:3: new Result: shared (captured by a goroutine)
//
// -m=2 adds each decision's reason chain, one fact per line, indented by four spaces; --json
// prints one JSON object instead (with -m=2: the chains too). The text output ends with a
// summary — counts and percentages per class — on stdout after one blank line, so the whole
// report is one stream that `grep ': stack'` or `tail` can read; --json carries it as "summary".
//
// --run executes the program (jitgen/interpreter: goroutines, channels and the GC heap of usgc,
// every allocation in the class decided for its site) in checked mode, which stops at the first
// decision the run proves wrong; each site line then ends with `[N allocations]` and a dynamic
// summary (allocations per class) follows the static one ("run" in --json). Run options:
// --entry F (default main), --arg N (repeatable: F's int/bool parameters), --unchecked,
// --max-steps N, --time-limit-ms N, --gc-stress N (a collection every N allocations).
//
// Exit status: 0 after a report (with --run: the program completed); 1 when the program did not
// complete (a runtime error, a check violation, a deadlock or a limit: one line on stderr,
// `file:line:col: ...`; the report is printed all the same); 2 for a usage error, an unreadable
// file, a program that cannot run as asked (no such entry, wrong arguments), or malformed input
// (the parser's diagnostics, `file:line:col: message`, on stderr). Never crashes on any input: the
// parser bounds its work and the analysis only runs on verified modules.
//
// Resource bounds (each a one-line error, never an abort): the program must be a regular file of
// at most 16 MiB (not a device, pipe or directory: exit 2); `new [N]T` takes N up to 2^24 (exit 2
// with --run); --run limits the GC heap to 1 GiB unless USGC_HEAP_MAX or --heap-max says
// otherwise (an allocation past it stops the run: exit 1); running out of memory anywhere else is
// reported as such (exit 2).

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <string_view>

#include "jitgen/command_line/usgc_run_options.hpp"
#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/ir/source_file.hpp"
#include "kernel_iface/environment.hpp"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitRunFailed = 1;
constexpr const char* kDefaultRunHeapMax = "1G";  // USGC_HEAP_MAX's syntax

using usgc::jitgen::command_line::parse_number;

void print_usage(FILE* stream) {
  std::fprintf(
      stream,
      "usage: usgc-escape [-m | -m=1 | -m=2] [--json] [--run [run options]] prog.usir\n"
      "  prints the ownership class the escape analysis gives each allocation site\n"
      "  -m, -m=1   one line per site (the default)\n"
      "  -m=2       also the reason chain of each decision\n"
      "  --json     machine-readable output\n"
      "  --run      also execute the program in checked mode and count allocations\n"
      "run options:\n"
      "  --entry F            the function to run (default main)\n"
      "  --arg N              an int/bool argument of F (repeat for each parameter)\n"
      "  --unchecked          do not trap wrong decisions (the runtime's own checks stay)\n"
      "  --max-steps N        stop after N instructions\n"
      "  --time-limit-ms N    stop after N ms\n"
      "  --gc-stress N        run a collection every N allocations of a goroutine\n"
      "  --heap-max SIZE      the GC heap limit (USGC_HEAP_MAX syntax; default: USGC_HEAP_MAX, "
      "else 1G)\n");
}

int run_tool(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_tool(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "usgc-escape: out of memory (the program is too large to analyze)\n");
    return kExitUsage;
  }
}

namespace {

int run_tool(int argc, char** argv) {
  using namespace usgc::jitgen;
  bool with_reasons = false;
  bool json = false;
  bool run = false;
  interpreter::RunOptions options;
  std::string path;
  const char* heap_max = nullptr;
  // The value of option argv[i]; nullptr (after a message) when it is missing or not a number.
  auto value_of = [&](int& i, bool numeric) -> const char* {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usgc-escape: %s needs a value\n", argv[i]);
      return nullptr;
    }
    ++i;
    if (numeric && !parse_number(argv[i])) {
      std::fprintf(stderr, "usgc-escape: %s takes a whole number, not '%s'\n", argv[i - 1],
                   argv[i]);
      return nullptr;
    }
    return argv[i];
  };
  auto non_negative = [&](const char* text, const char* option) -> std::optional<uint64_t> {
    int64_t value = *parse_number(text);
    if (value < 0 || value > UINT32_MAX) {
      std::fprintf(stderr, "usgc-escape: %s must be between 0 and %u, not %s\n", option, UINT32_MAX,
                   text);
      return std::nullopt;
    }
    return static_cast<uint64_t>(value);
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view argument = argv[i];
    if (argument == "--run") {
      run = true;
    } else if (argument == "--unchecked") {
      options.checked = false;
    } else if (argument == "--entry") {
      const char* value = value_of(i, false);
      if (value == nullptr) return kExitUsage;
      options.entry = value;
    } else if (argument == "--arg") {
      const char* value = value_of(i, true);
      if (value == nullptr) return kExitUsage;
      options.arguments.push_back(*parse_number(value));
    } else if (argument == "--heap-max") {
      const char* value = value_of(i, false);
      if (value == nullptr) return kExitUsage;
      char why[160];
      uint64_t bytes = 0;
      if (!usgc::kernel::parse_environment_value(
              usgc::kernel::environment_variable(usgc::kernel::EnvironmentVariableId::kHeapMax),
              value, &bytes, why, sizeof(why))) {
        std::fprintf(stderr, "usgc-escape: --heap-max %s: %s\n", value, why);
        return kExitUsage;
      }
      heap_max = value;
    } else if (argument == "--max-steps" || argument == "--time-limit-ms" ||
               argument == "--gc-stress") {
      const char* value = value_of(i, true);
      if (value == nullptr) return kExitUsage;
      std::optional<uint64_t> number = non_negative(value, argv[i - 1]);
      if (!number) return kExitUsage;
      if (argument == "--max-steps")
        options.max_steps = *number;
      else if (argument == "--time-limit-ms")
        options.time_limit_ms = static_cast<uint32_t>(*number);
      else
        options.gc_stress_every = static_cast<uint32_t>(*number);
    } else if (argument == "-m" || argument == "-m=1") {
      with_reasons = false;
    } else if (argument == "-m=2") {
      with_reasons = true;
    } else if (argument == "--json") {
      json = true;
    } else if (argument == "-h" || argument == "--help") {
      print_usage(stdout);
      return 0;
    } else if (argument.size() > 1 && argument[0] == '-') {
      std::fprintf(stderr, "usgc-escape: unknown option '%s'\n", argv[i]);
      print_usage(stderr);
      return kExitUsage;
    } else if (!path.empty()) {
      std::fprintf(stderr, "usgc-escape: one program at a time ('%s' and '%s' given)\n",
                   path.c_str(), argv[i]);
      print_usage(stderr);
      return kExitUsage;
    } else {
      path = argument;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "usgc-escape: no .usir program given\n");
    print_usage(stderr);
    return kExitUsage;
  }

  // A regular file of at most 16 MiB (jitgen/ir/source_file.hpp).
  ir::ParseResult parsed;
  if (!ir::load_program(path, "usgc-escape", "no analysis", &parsed)) return kExitUsage;

  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
  if (!run) {
    if (json) {
      std::fputs(escape::format_json(analysis, with_reasons).c_str(), stdout);
    } else {
      std::fputs(escape::format_decisions(analysis, with_reasons).c_str(), stdout);
      std::fputs("\n", stdout);
      std::fputs(escape::format_summary(analysis).c_str(), stdout);
    }
    return 0;
  }

  // The GC heap limit of the run, read by usgc_init (USGC_HEAP_MAX, checked there).
  if (heap_max != nullptr) {
    ::setenv("USGC_HEAP_MAX", heap_max, 1);
  } else if (std::getenv("USGC_HEAP_MAX") == nullptr) {
    ::setenv("USGC_HEAP_MAX", kDefaultRunHeapMax, 1);
  }
  interpreter::RunResult result = interpreter::run_program(parsed.module, analysis, options);
  if (result.status == interpreter::RunStatus::kSetupError) {  // nothing ran: no report
    std::fprintf(stderr, "%s\n", result.message.c_str());
    return kExitUsage;
  }
  if (json) {
    std::fputs(escape::format_json(analysis, with_reasons, &result.allocations_per_site,
                                   ",\"run\":" + interpreter::format_dynamic_json(analysis, result))
                   .c_str(),
               stdout);
  } else {
    std::fputs(
        escape::format_decisions(analysis, with_reasons, &result.allocations_per_site).c_str(),
        stdout);
    std::fputs("\n", stdout);
    std::fputs(escape::format_summary(analysis).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fputs(interpreter::format_dynamic_summary(analysis, result).c_str(), stdout);
    if (result.returned_value)
      std::printf("%s returned %lld\n", options.entry.c_str(),
                  static_cast<long long>(*result.returned_value));
  }
  std::fflush(stdout);
  if (result.status != interpreter::RunStatus::kCompleted) {
    std::fprintf(stderr, "%s\n", result.message.c_str());
    return kExitRunFailed;
  }
  return 0;
}

}  // namespace
