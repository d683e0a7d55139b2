// tools/usgc_top/screen.hpp — usgc-top's interactive view (ncurses): the table with a selection,
// the detail view of one process, sort keys, notes at the bottom. Draws the strings of views.hpp,
// so it shows exactly what --once prints (escaped the same way). Not on any hot path.
#pragma once

#include "tools/usgc_top/options.hpp"

namespace usgc::top {

// Runs until q (or -n refreshes); the terminal is restored on return. Returns the exit status.
int run_screen(const Options& options);

}  // namespace usgc::top
