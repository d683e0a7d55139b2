// tools/usgc_top/views.hpp — usgc-top's plain-text views of the model: the table row of a
// process and the lines of its detail view. Shared by the --once output and the interactive
// screen (which draws the same strings). Every piece of text from a block is a number or went
// through printable_text (command_of). Not on any hot path.
#pragma once

#include <string>
#include <vector>

#include "tools/usgc_top/model.hpp"

namespace usgc::top {

// The command name of the block's process (its comm, up to 15 bytes, chosen by that process),
// escaped with printable_text.
std::string command_of(const usgc_stats_block& block);
// The bound of the bucket holding the given quantile ("< 1 us", "< 2^i us", ">= 262.14ms"), or "-".
std::string histogram_quantile_text(const uint64_t* buckets, double quantile);
std::string row_header();
std::string row_text(const Process& process);
// Lines of the detail view (also printed by --once -p PID).
std::vector<std::string> detail_lines(const Process& process);

}  // namespace usgc::top
