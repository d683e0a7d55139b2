// jitgen/wasm/asyncify.hpp — the coroutine transform of lowered modules whose goroutines may
// block: binaryen's asyncify pass (`wasm-opt --asyncify`, Debian package binaryen), the way
// Emscripten makes coroutines and fibers in WebAssembly.
//
// What it does to the module: every function that can reach the host import `host.suspend`
// (the lowered code calls it when a channel operation must wait) is instrumented to save its
// locals and position into a buffer and return (unwind), and later to re-enter and restore
// them (rewind); functions that cannot reach it are left as they are. The module then exports
// asyncify_start_unwind/stop_unwind/start_rewind/stop_rewind, which the node host's scheduling
// loop drives (tools/usgc-wasm-host.mjs) with each goroutine's own buffer (runtime/goroutines.c).
// Also runs wasm-opt's -O1 afterwards (asyncify's instrumentation is large unoptimized).
// Tool code; nothing here is on a hot path (the transform runs once, before the program).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace usgc::jitgen::wasm {

// True when binaryen's wasm-opt can be run (looked up in PATH).
bool asyncify_available();

// The transformed module, or nullopt with *error set (wasm-opt missing or failing).
std::optional<std::vector<uint8_t>> apply_asyncify(const std::vector<uint8_t>& module,
                                                   std::string* error);

}  // namespace usgc::jitgen::wasm
