// jitgen/command_line/usgc_run_options.cpp — usgc-run's command line (usgc_run_options.hpp).
// Tool code; not on any hot path.
#include "jitgen/command_line/usgc_run_options.hpp"

#include <cerrno>
#include <cstdlib>
#include <string_view>

namespace usgc::jitgen::command_line {
namespace {

// One option: its spelling, whether it takes a value, the targets it applies to, its usage line.
struct OptionSpec {
  std::string_view name;
  bool takes_value;
  bool native, wasm;
  const char* usage;
};

constexpr OptionSpec kOptions[] = {
    {"--interp", false, true, false,
     "  --interp           run with the interpreter instead of the JIT\n"},
    {"--unchecked", false, true, false, "  --unchecked        with --interp: no decision checks\n"},
    {"--entry", true, true, true, "  --entry F          the function to run (default main)\n"},
    {"--arg", true, true, true,
     "  --arg N            an int/bool argument of F (repeat for each parameter)\n"},
    {"--gc-stress", true, true, true,
     "  --gc-stress N      run a collection every N allocations of a goroutine\n"},
    {"--time-limit-ms", true, true, false,
     "  --time-limit-ms N  stop the run after N milliseconds\n"},
    {"--counts", false, true, true,
     "  --counts           print the allocations of every site and class\n"},
    {"--disasm", false, true, false,
     "  --disasm           print the compiled code with its stubs marked (no run)\n"},
    {"--no-shrink-wrap", false, true, false,
     "  --no-shrink-wrap   push every compiled function's frame at its entry\n"},
    {"-o", true, false, true,
     "  -o FILE            write the WebAssembly module to FILE (no run)\n"},
    {"--emit-wat", true, false, true,
     "  --emit-wat FILE    write its text form to FILE (wabt's wasm2wat; no run)\n"},
    {"--stats", false, false, true,
     "  --stats            print the collector's statistics after the run\n"},
    {"--stub-counts", false, false, true,
     "  --stub-counts      print the wasm instructions of each inline sequence (no run)\n"},
};

const OptionSpec* find_option(std::string_view name) {
  for (const OptionSpec& spec : kOptions)
    if (spec.name == name) return &spec;
  return nullptr;
}

}  // namespace

void print_usgc_run_usage(Target target, std::FILE* stream) {
  std::fputs(target == Target::kWasm ? "usage: usgc-run --target=wasm [options] prog.usir\n"
                                     : "usage: usgc-run [options] prog.usir\n",
             stream);
  for (const OptionSpec& spec : kOptions)
    if (target == Target::kWasm ? spec.wasm : spec.native) std::fputs(spec.usage, stream);
  if (target == Target::kNative)
    std::fputs(
        "  --target=wasm      lower to WebAssembly and run in node (usgc-run "
        "--target=wasm --help)\n",
        stream);
}

std::optional<UsgcRunOptions> parse_usgc_run_options(int argc, char** argv) {
  UsgcRunOptions options;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--target=wasm") options.target = Target::kWasm;
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (argument == "--target=wasm") continue;
    if (argument == "-h" || argument == "--help") {
      options.help = true;
      return options;
    }
    const OptionSpec* spec = find_option(argument);
    if (spec == nullptr && argument.size() > 1 && argument[0] == '-') {
      std::fprintf(stderr, "usgc-run: unknown option '%s'\n", argv[i]);
      print_usgc_run_usage(options.target, stderr);
      return std::nullopt;
    }
    if (spec == nullptr) {
      if (!options.path.empty()) {
        std::fprintf(stderr, "usgc-run: one program at a time ('%s' and '%s' given)\n",
                     options.path.c_str(), argv[i]);
        return std::nullopt;
      }
      options.path = argument;
      continue;
    }
    if (!(options.target == Target::kWasm ? spec->wasm : spec->native)) {
      if (options.target == Target::kWasm) {
        std::fprintf(stderr, "usgc-run: option '%s' is not supported with --target=wasm\n",
                     argv[i]);
      } else {
        std::fprintf(stderr, "usgc-run: option '%s' needs --target=wasm\n", argv[i]);
      }
      print_usgc_run_usage(options.target, stderr);
      return std::nullopt;
    }
    const char* value = nullptr;
    if (spec->takes_value) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "usgc-run: %s needs a value\n", argv[i]);
        return std::nullopt;
      }
      value = argv[++i];
    }
    if (argument == "--interp") {
      options.interpret = true;
    } else if (argument == "--unchecked") {
      options.unchecked = true;
    } else if (argument == "--counts") {
      options.counts = true;
    } else if (argument == "--disasm") {
      options.disasm = true;
    } else if (argument == "--no-shrink-wrap") {
      options.shrink_wrap = false;
    } else if (argument == "--stats") {
      options.stats = true;
    } else if (argument == "--stub-counts") {
      options.stub_counts = true;
    } else if (argument == "--entry") {
      options.entry = value;
    } else if (argument == "-o") {
      options.output = value;
    } else if (argument == "--emit-wat") {
      options.wat = value;
    } else {  // the numbers: --arg, --gc-stress, --time-limit-ms
      std::optional<int64_t> number = parse_number(value);
      if (!number) {
        std::fprintf(stderr, "usgc-run: %s takes a whole number, not '%s'\n", argv[i - 1], value);
        return std::nullopt;
      }
      if (argument == "--arg") {
        options.arguments.push_back(*number);
        continue;
      }
      if (*number < 0 || *number > UINT32_MAX) {
        std::fprintf(stderr, "usgc-run: %s must be between 0 and %u, not %lld\n", argv[i - 1],
                     UINT32_MAX, static_cast<long long>(*number));
        return std::nullopt;
      }
      (argument == "--gc-stress" ? options.gc_stress_every : options.time_limit_ms) =
          static_cast<uint32_t>(*number);
    }
  }
  if (options.path.empty()) {
    std::fprintf(stderr, "usgc-run: no .usir program given\n");
    print_usgc_run_usage(options.target, stderr);
    return std::nullopt;
  }
  return options;
}

std::optional<int64_t> parse_number(const char* text) {
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return std::nullopt;
  return value;
}

}  // namespace usgc::jitgen::command_line
