// jitgen/wasm/tool_process.hpp — what the WebAssembly tool code needs of the host system: run an
// external program (node, wasm-opt, wasm2wat) and wait for it, write and read whole files, make
// a temporary file. Tool code (usgc-run --target=wasm); nothing here is on a hot path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace usgc::jitgen::wasm {

// Runs args[0] (looked up in PATH) with stdout and stderr inherited, waits; its exit status, or
// -1 with *error set when it cannot be started or was killed by a signal.
int run_process(const std::vector<std::string>& args, std::string* error);

bool write_file(const std::string& path, const std::vector<uint8_t>& bytes, std::string* error);
bool read_file(const std::string& path, std::vector<uint8_t>* bytes, std::string* error);

// A new empty file under /tmp named after `stem`; "" with *error set on failure.
std::string make_temporary_file(const std::string& stem, std::string* error);

// True when `command` is found in PATH as an executable.
bool command_available(const std::string& command);

}  // namespace usgc::jitgen::wasm
