// jitgen/ir/source_file.hpp — reading a .usir program from a file, bounded, and parsing it: the one
// reader of the tools that take a program path (usgc-escape, usgc-run and its wasm target).
//
// Invariant: at most kMaximumSourceBytes + 1 bytes are ever read, so /dev/zero, a FIFO or a file
// that grows while it is read cannot make a tool allocate without bound or hang; only regular
// files are read. Not on any hot path.
#pragma once

#include <cstdint>
#include <string>

#include "jitgen/ir/parser.hpp"

namespace usgc::jitgen::ir {

inline constexpr uint64_t kMaximumSourceBytes = uint64_t{16} << 20;

// Reads `path` into *text. On failure returns false and sets *error to one line without a tool
// prefix, e.g. "cannot read 'x.usir': not a regular file (a directory)".
bool read_source_file(const std::string& path, std::string* text, std::string* error);

// Reads and parses the program at `path` into *parsed. On failure prints to stderr, each line
// prefixed by `tool` ("usgc-run: cannot read ..."; or the parser's diagnostics then "usgc-run:
// x.usir is malformed; <refused>") and returns false.
bool load_program(const std::string& path, const char* tool, const char* refused,
                  ParseResult* parsed);

}  // namespace usgc::jitgen::ir
