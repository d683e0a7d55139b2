// jitgen/wasm/run_wasm.cpp — `usgc-run --target=wasm` (run_wasm.hpp): options, lowering, and
// the node process that runs the module. Tool code; nothing here is on a hot path.
#include "jitgen/wasm/run_wasm.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "jitgen/command_line/usgc_run_options.hpp"
#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/ir/source_file.hpp"
#include "jitgen/wasm/asyncify.hpp"
#include "jitgen/wasm/lowering.hpp"
#include "jitgen/wasm/tool_process.hpp"

namespace usgc::jitgen::wasm {

namespace {

constexpr int kExitUsage = 2;

// The folder of the running executable ("" when /proc/self/exe cannot be read).
std::string executable_folder() {
  char buffer[4096];
  ssize_t length = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (length <= 0) return "";
  std::string path(buffer, static_cast<size_t>(length));
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool file_exists(const std::string& path) {
  return access(path.c_str(), R_OK) == 0;
}

}  // namespace

int run_wasm_command(const command_line::UsgcRunOptions& command) {
  if (command.help) {
    command_line::print_usgc_run_usage(command_line::Target::kWasm, stdout);
    return 0;
  }
  const std::string& path = command.path;
  const std::string& output = command.output;
  const std::string& wat = command.wat;
  const std::string& entry = command.entry;
  const uint32_t gc_stress = command.gc_stress_every;
  const bool stub_counts = command.stub_counts;
  std::vector<std::string> host_options;
  for (int64_t argument : command.arguments)
    host_options.push_back("--arg=" + std::to_string(argument));
  if (command.counts) host_options.emplace_back("--counts");
  if (command.stats) host_options.emplace_back("--stats");
  ir::ParseResult parsed;
  if (!ir::load_program(path, "usgc-run", "not run", &parsed)) return kExitUsage;
  std::string error;
  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
  LowerOptions options;
  options.gc_stress = gc_stress != 0;
  std::map<std::string, uint32_t> stubs;
  if (stub_counts) options.stub_instructions = &stubs;
  bool uses_goroutines = false;
  options.uses_goroutines = &uses_goroutines;
  std::optional<std::vector<uint8_t>> module =
      lower_module(parsed.module, analysis, options, &error);
  if (!module) {
    std::fprintf(stderr, "usgc-run: %s\n", error.c_str());
    return kExitUsage;
  }
  if (stub_counts) {
    for (const auto& [name, instructions] : stubs)
      std::printf("stub %s %u\n", name.c_str(), instructions);
    return 0;
  }
  if (uses_goroutines) {  // goroutines become coroutines (asyncify.hpp)
    if (!asyncify_available()) {
      std::fprintf(stderr,
                   "usgc-run: %s: goroutines and channels on the WebAssembly target need "
                   "binaryen's wasm-opt (apt-get install binaryen); not lowered\n",
                   path.c_str());
      return kExitUsage;
    }
    module = apply_asyncify(*module, &error);
    if (!module) {
      std::fprintf(stderr, "usgc-run: %s: %s\n", path.c_str(), error.c_str());
      return kExitUsage;
    }
  }
  if (!output.empty() || !wat.empty()) {
    std::string binary = output;
    char temporary[] = "/tmp/usgc-wat-XXXXXX";
    if (binary.empty()) {
      int fd = mkstemp(temporary);
      if (fd < 0) {
        std::fprintf(stderr, "usgc-run: mkstemp: %s\n", std::strerror(errno));
        return kExitUsage;
      }
      close(fd);
      binary = temporary;
    }
    if (!write_file(binary, *module, &error)) {
      std::fprintf(stderr, "usgc-run: %s\n", error.c_str());
      return kExitUsage;
    }
    int status = 0;
    if (!wat.empty()) status = run_process({"wasm2wat", binary, "-o", wat}, &error);
    if (output.empty()) std::remove(temporary);
    if (status != 0) {
      std::fprintf(stderr, "usgc-run: --emit-wat: %s\n",
                   status < 0 ? error.c_str() : "wasm2wat failed (is wabt installed?)");
      return kExitUsage;
    }
    return 0;
  }

  const std::string folder = executable_folder() + "/wasm";
  const std::string host = folder + "/usgc-wasm-host.mjs";
  const std::string runtime = folder + "/usgc-wasm-runtime.wasm";
  if (!file_exists(host) || !file_exists(runtime)) {
    std::fprintf(stderr,
                 "usgc-run: --target=wasm needs %s and %s (make wasm builds them; it needs clang "
                 "with the wasm32 target, lld and wasi-libc)\n",
                 host.c_str(), runtime.c_str());
    return kExitUsage;
  }
  char temporary[] = "/tmp/usgc-run-XXXXXX";
  int fd = mkstemp(temporary);
  if (fd < 0) {
    std::fprintf(stderr, "usgc-run: mkstemp: %s\n", std::strerror(errno));
    return kExitUsage;
  }
  close(fd);
  if (!write_file(temporary, *module, &error)) {
    std::fprintf(stderr, "usgc-run: %s\n", error.c_str());
    std::remove(temporary);
    return kExitUsage;
  }
  std::fflush(stdout);
  std::vector<std::string> args = {"node", host, "--runtime=" + runtime, "--entry=" + entry,
                                   "--gc-stress=" + std::to_string(gc_stress)};
  args.insert(args.end(), host_options.begin(), host_options.end());
  args.emplace_back(temporary);
  int status = run_process(args, &error);
  std::remove(temporary);
  if (status < 0) {
    std::fprintf(stderr, "usgc-run: %s (is node installed?)\n", error.c_str());
    return kExitUsage;
  }
  return status;
}

}  // namespace usgc::jitgen::wasm
