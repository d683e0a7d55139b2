// tools/usgc-jit-stubs.cpp — where the JIT put each function and each stub of a .usir program,
// how long compiling took, and (unless --no-run) the program's run: the measuring driver of
// `make perfcheck` (tests/jitgen/perfcheck/) and of bench/jit_stub_costs.sh.
//
//   usgc-jit-stubs [--entry F] [--arg N]... [--no-run] [--counters] [--compile-repeat K] prog.usir
// Output, one fact a line (addresses absolute, hex, in this process; valid while it runs):
//   compile functions=<n> code_bytes=<n> parse_ns=<n> analysis_ns=<n> compile_ns=<n>
//           [warm_compile_ns=<n>]       the fastest of K-1 more compiles (--compile-repeat K):
//                                       compile_ns includes the process's first-use costs
//   function <start> <end> <name>       every compiled function (the entry thunk included)
//   stub <start> <end> <name>           every stub fast path the compiler marked
//   insn <address> <stub> <mnemonic> <operands>   every instruction inside a stub (capstone)
//   <F> returned <value>                after the run (as usgc-run prints it)
//   run_ns=<n>                          the run's wall time (runtime start-up included)
//   counter <name> <value>              with --counters: perf_event counts of the run, every
//                                       thread the runtime starts included (kernel_iface/
//                                       perf_counters.hpp): instructions, cycles, branch-misses,
//                                       L1-dcache-load-misses (user space) where the hardware
//                                       has them, task-clock, page-faults, context-switches
//   counters_unavailable <group> <reason>   a group perf_event_open refused, and why
// A profiler that sees instruction addresses (callgrind --dump-instr=yes) attributes its counts to
// stubs with these ranges. Exit status: 0, 1 when the run did not complete, 2 for a usage error,
// an unreadable or malformed program, or one the JIT cannot compile.
#include <capstone/capstone.h>
#include <time.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/compiled_module.hpp"
#include "kernel_iface/perf_counters.hpp"

namespace {

uint64_t now_ns() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
}

// One "insn" line per instruction of the stub `mark` (Intel syntax, as --disasm prints it).
void print_stub_instructions(csh handle, const uint8_t* code,
                             const usgc::jitgen::x86_64::StubMark& mark) {
  cs_insn* instructions = nullptr;
  size_t count = cs_disasm(handle, code + mark.begin, mark.end - mark.begin,
                           reinterpret_cast<uintptr_t>(code + mark.begin), 0, &instructions);
  for (size_t i = 0; i < count; ++i) {
    std::printf("insn %lx %s %s %s\n", static_cast<unsigned long>(instructions[i].address),
                mark.name, instructions[i].mnemonic, instructions[i].op_str);
  }
  if (count != 0) cs_free(instructions, count);
}

// A counter group for the run, or a "counters_unavailable" line.
void open_counters(usgc::kernel::PerfCounterGroup& group, const char* group_name,
                   std::span<const usgc::kernel::PerfEvent> events) {
  usgc::kernel::Status opened = group.open(events, usgc::kernel::PerfScope::kThreadAndNewThreads);
  if (!opened.ok()) {
    std::printf("counters_unavailable %s perf_event_open(%s): errno %d: %s\n", group_name,
                usgc::kernel::perf_event_name(group.failed_event()), opened.error(),
                usgc::kernel::describe_open_failure(group.failed_event(), opened.error()));
  }
}

void print_counters(const usgc::kernel::PerfCounterGroup& group) {
  usgc::kernel::PerfCounterValues values;
  if (!group.is_open()) return;
  usgc::kernel::Status read = group.read(values);
  if (!read.ok()) {
    std::printf("counters_unavailable read errno %d\n", read.error());
    return;
  }
  for (size_t i = 0; i < values.count; ++i) {
    std::printf("counter %s %.0f\n", usgc::kernel::perf_event_name(group.event(i)),
                values.scaled(i));
  }
}

int usage(const char* why) {
  std::fprintf(stderr,
               "usgc-jit-stubs: %s\nusage: usgc-jit-stubs [--entry F] [--arg N]... [--no-run] "
               "prog.usir\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace usgc::jitgen;
  interpreter::RunOptions options;
  options.checked = false;
  bool run = true;
  bool counters = false;
  long compile_repeat = 1;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string_view argument = argv[i];
    if (argument == "--no-run") {
      run = false;
    } else if (argument == "--counters") {
      counters = true;
    } else if (argument == "--compile-repeat" && i + 1 < argc) {
      compile_repeat = std::strtol(argv[++i], nullptr, 10);
      if (compile_repeat < 1 || compile_repeat > 1000000) {
        return usage("--compile-repeat takes a count from 1 to 1000000");
      }
    } else if (argument == "--entry" && i + 1 < argc) {
      options.entry = argv[++i];
    } else if (argument == "--arg" && i + 1 < argc) {
      char* end = nullptr;
      long long value = std::strtoll(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0') return usage("--arg takes a whole number");
      options.arguments.push_back(value);
    } else if (argument.size() > 1 && argument[0] == '-') {
      return usage("unknown option or missing value");
    } else if (path.empty()) {
      path = argument;
    } else {
      return usage("one program at a time");
    }
  }
  if (path.empty()) return usage("no .usir program given");
  std::ifstream stream(path, std::ios::binary);
  if (!stream) {
    std::fprintf(stderr, "usgc-jit-stubs: cannot read '%s'\n", path.c_str());
    return 2;
  }
  std::stringstream text;
  text << stream.rdbuf();

  uint64_t start = now_ns();
  ir::ParseResult parsed = ir::parse_module(text.str(), path);
  if (!parsed.ok()) {
    std::fputs(ir::format_diagnostics(parsed.diagnostics).c_str(), stderr);
    return 2;
  }
  uint64_t parsed_at = now_ns();
  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
  uint64_t analyzed_at = now_ns();
  std::string error;
  std::unique_ptr<x86_64::CompiledModule> compiled =
      x86_64::CompiledModule::compile(parsed.module, analysis, {}, &error);
  uint64_t compiled_at = now_ns();
  if (!compiled) {
    std::fprintf(stderr, "usgc-jit-stubs: %s: %s\n", path.c_str(), error.c_str());
    return 2;
  }
  std::printf("compile functions=%zu code_bytes=%zu parse_ns=%" PRIu64 " analysis_ns=%" PRIu64
              " compile_ns=%" PRIu64,
              compiled->functions().size(), compiled->code_bytes(), parsed_at - start,
              analyzed_at - parsed_at, compiled_at - analyzed_at);
  if (compile_repeat > 1) {
    uint64_t fastest = UINT64_MAX;
    for (long k = 1; k < compile_repeat; ++k) {
      uint64_t begin = now_ns();
      std::unique_ptr<x86_64::CompiledModule> again =
          x86_64::CompiledModule::compile(parsed.module, analysis, {}, &error);
      uint64_t took = now_ns() - begin;
      if (!again) {
        std::fprintf(stderr, "usgc-jit-stubs: %s: recompiling: %s\n", path.c_str(), error.c_str());
        return 2;
      }
      if (took < fastest) fastest = took;
    }
    std::printf(" warm_compile_ns=%" PRIu64, fastest);
  }
  std::printf("\n");
  auto address = [&](uint32_t offset) {
    return static_cast<unsigned long>(reinterpret_cast<uintptr_t>(compiled->code() + offset));
  };
  for (const x86_64::CompiledFunction& function : compiled->functions()) {
    std::printf("function %lx %lx %s\n", address(function.offset),
                address(function.offset + function.size), function.name.c_str());
  }
  for (const x86_64::StubMark& mark : compiled->marks()) {
    std::printf("stub %lx %lx %s\n", address(mark.begin), address(mark.end), mark.name);
  }
  csh handle;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) == CS_ERR_OK) {
    for (const x86_64::StubMark& mark : compiled->marks()) {
      print_stub_instructions(handle, compiled->code(), mark);
    }
    cs_close(&handle);
  }
  if (!run) return 0;
  // Opened before the runtime starts its worker threads, so they inherit the counters.
  using usgc::kernel::PerfEvent;
  usgc::kernel::PerfCounterGroup hardware;
  usgc::kernel::PerfCounterGroup software;
  if (counters) {
    const PerfEvent hardware_events[] = {PerfEvent::kInstructions, PerfEvent::kCycles,
                                         PerfEvent::kBranchMisses, PerfEvent::kL1dReadMisses};
    const PerfEvent software_events[] = {PerfEvent::kTaskClock, PerfEvent::kPageFaults,
                                         PerfEvent::kContextSwitches};
    open_counters(hardware, "hardware", hardware_events);
    open_counters(software, "software", software_events);
    if (hardware.is_open()) (void)hardware.enable();  // a failure shows as zero counts
    if (software.is_open()) (void)software.enable();
  }
  std::fflush(stdout);
  uint64_t run_start = now_ns();
  interpreter::RunResult result = x86_64::run_compiled(*compiled, options);
  uint64_t run_end = now_ns();
  if (hardware.is_open()) (void)hardware.disable();
  if (software.is_open()) (void)software.disable();
  if (result.status != interpreter::RunStatus::kCompleted) {
    std::fprintf(stderr, "%s\n", result.message.c_str());
    return result.status == interpreter::RunStatus::kSetupError ? 2 : 1;
  }
  if (result.returned_value) {
    std::printf("%s returned %lld\n", options.entry.c_str(),
                static_cast<long long>(*result.returned_value));
  } else {
    std::printf("%s returned\n", options.entry.c_str());
  }
  std::printf("run_ns=%" PRIu64 "\n", run_end - run_start);
  print_counters(hardware);
  print_counters(software);
  return 0;
}
