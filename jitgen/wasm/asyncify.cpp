// jitgen/wasm/asyncify.cpp — binaryen's asyncify applied to a lowered module (asyncify.hpp).
// Tool code; not on any hot path.
#include "jitgen/wasm/asyncify.hpp"

#include <cstdio>

#include "jitgen/wasm/tool_process.hpp"

namespace usgc::jitgen::wasm {

bool asyncify_available() {
  return command_available("wasm-opt");
}

std::optional<std::vector<uint8_t>> apply_asyncify(const std::vector<uint8_t>& module,
                                                   std::string* error) {
  std::string input = make_temporary_file("usgc-asyncify-in", error);
  if (input.empty()) return std::nullopt;
  std::string output = make_temporary_file("usgc-asyncify-out", error);
  if (output.empty()) {
    std::remove(input.c_str());
    return std::nullopt;
  }
  std::optional<std::vector<uint8_t>> result;
  if (write_file(input, module, error)) {
    // Only host.suspend unwinds; the runtime's imports (channel operations, allocation) never
    // do, so the functions that reach nothing but them stay uninstrumented.
    int status = run_process({"wasm-opt", input, "--enable-mutable-globals", "--asyncify",
                              "--pass-arg=asyncify-imports@host.suspend", "-O1", "-o", output},
                             error);
    std::vector<uint8_t> bytes;
    if (status > 0) {
      *error = "wasm-opt --asyncify failed (exit " + std::to_string(status) + ")";
    } else if (status == 0 && read_file(output, &bytes, error)) {
      result = std::move(bytes);
    }
  }
  std::remove(input.c_str());
  std::remove(output.c_str());
  return result;
}

}  // namespace usgc::jitgen::wasm
