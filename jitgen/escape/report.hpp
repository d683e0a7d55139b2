// jitgen/escape/report.hpp — the printed forms of an EscapeAnalysis, shared by usgc-escape and
// the tests:
//   * text, in the manner of `go build -gcflags=-m`: one line per site, sorted by position,
//     `prog.usir:12:5: new Point: stack (does not escape)`, then one line indented by four
//     spaces per call that allocates it in the caller's frame (`    stack when called at ...`);
//     verbose (-m=2) adds the reason chain, one fact per line indented by four spaces;
//   * the summary: after a blank line, one line per class with count and percentage, then a total;
//   * JSON: one object {file, sites: [...], summary: {...}}, keys in a fixed order.
// With `allocations_per_site` (the dynamic counts of a run, by site index: usgc-escape --run),
// each site line ends with `[N allocations]` and each JSON site has "allocations"; `extra_json`
// is appended to the JSON object's members as it is (`,"run":{...}`).
// Invariant: the output is a pure function of the analysis (the determinism invariant carries
// over to the printed forms).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jitgen/escape/analysis.hpp"

namespace usgc::jitgen::escape {

std::string format_decisions(const EscapeAnalysis& analysis, bool with_reasons,
                             const std::vector<uint64_t>* allocations_per_site = nullptr);
std::string format_summary(const EscapeAnalysis& analysis);
std::string format_json(const EscapeAnalysis& analysis, bool with_reasons,
                        const std::vector<uint64_t>* allocations_per_site = nullptr,
                        const std::string& extra_json = "");
// A JSON string literal of `text` (quotes and escapes).
std::string json_quote(const std::string& text);
// "12.5%".
std::string format_percent(double percent);

}  // namespace usgc::jitgen::escape
