// jitgen/wasm/run_wasm.hpp — the `usgc-run --target=wasm` command: lowers a .usir program to
// WebAssembly (lowering.hpp), writes it (-o FILE, --emit-wat FILE through wabt's wasm2wat), or
// runs it in node with the host beside usgc-run (wasm/usgc-wasm-host.mjs and the runtime
// wasm/usgc-wasm-runtime.wasm, built by `make wasm`). Tool code; not on any hot path.
#pragma once

#include "jitgen/command_line/usgc_run_options.hpp"

namespace usgc::jitgen::wasm {

// usgc-run's parsed command line (its target kWasm). Returns the process exit status: 0 ran to
// completion (or wrote the module), 1 the run failed, 2 usage, unreadable, refused or no toolchain.
int run_wasm_command(const command_line::UsgcRunOptions& command);

}  // namespace usgc::jitgen::wasm
