// tools/usgc_top/json.hpp — usgc-top --json: one JSON array of the processes. Keys are only
// ever added (scripts depend on them); GC keys that need a collection are null until the first
// one. Text fields carry printable_text output (so "\x1b" in a command is the four characters
// backslash, x, 1, b, written as "\\x1b" in JSON). Not on any hot path.
#pragma once

#include "tools/usgc_top/model.hpp"

namespace usgc::top {

// Prints the snapshot's processes on stdout.
void print_json(const Snapshot& snapshot);

}  // namespace usgc::top
