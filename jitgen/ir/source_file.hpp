// jitgen/ir/source_file.hpp — reading a .usir program from a file, bounded: the one reader of the
// tools that take a program path (usgc-escape, usgc-run).
//
// Invariant: at most kMaximumSourceBytes + 1 bytes are ever read, so /dev/zero, a FIFO or a file
// that grows while it is read cannot make a tool allocate without bound or hang; only regular
// files are read. Not on any hot path.
#pragma once

#include <cstdint>
#include <string>

namespace usgc::jitgen::ir {

inline constexpr uint64_t kMaximumSourceBytes = uint64_t{16} << 20;

// Reads `path` into *text. On failure returns false and sets *error to one line without a tool
// prefix, e.g. "cannot read 'x.usir': not a regular file (a directory)".
bool read_source_file(const std::string& path, std::string* text, std::string* error);

}  // namespace usgc::jitgen::ir
