// jitgen/interpreter/run_report.cpp — the printed forms of a run's counts (interpreter.hpp):
// the dynamic summary after the static one, and the "run" member of the JSON report. A pure
// function of the analysis and the result, like jitgen/escape/report.hpp.
#include <cstdio>

#include "jitgen/interpreter/interpreter.hpp"

namespace usgc::jitgen::interpreter {
namespace {

double share(uint64_t part, uint64_t total) {
  return total == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(total);
}

std::string run_description(const RunResult& result) {
  std::string text = run_status_name(result.status);
  text += ", " + std::to_string(result.steps) + " steps, " +
          std::to_string(result.goroutines_started) + " goroutine" +
          (result.goroutines_started == 1 ? "" : "s") + " started, " +
          std::to_string(result.private_collections) + " private and " +
          std::to_string(result.shared_collections) + " shared collections";
  return text;
}

}  // namespace

std::string format_dynamic_summary(const escape::EscapeAnalysis& analysis,
                                   const RunResult& result) {
  const uint64_t total = result.total_allocations();
  std::string out =
      "dynamic allocations of " + analysis.file_name + " (" + run_description(result) + "):\n";
  for (size_t index = 0; index < escape::kOwnershipClassCount; ++index) {
    auto ownership = static_cast<escape::OwnershipClass>(index);
    char line[96];
    std::snprintf(
        line, sizeof line, "  %-18s %9llu  %6s\n", escape::ownership_class_name(ownership),
        static_cast<unsigned long long>(result.allocations_per_class[index]),
        escape::format_percent(share(result.allocations_per_class[index], total)).c_str());
    out += line;
  }
  out += "  total              " + std::to_string(total) + " allocations";
  if (result.caller_frame_allocations != 0)
    out += "; " + std::to_string(result.caller_frame_allocations) +
           " STACK_LOCAL ones in a caller's frame";
  if (result.stack_substitutes != 0)
    out += " (" + std::to_string(result.stack_substitutes) +
           " STACK_LOCAL ones made private because the arena was full)";
  return out + "\n";
}

std::string format_dynamic_json(const escape::EscapeAnalysis& analysis, const RunResult& result) {
  (void)analysis;
  const uint64_t total = result.total_allocations();
  std::string out = "{\"status\":" + escape::json_quote(run_status_name(result.status)) +
                    ",\"message\":" + escape::json_quote(result.message);
  if (result.violation)
    out += ",\"violation\":{\"rule\":" + escape::json_quote(result.violation->rule) +
           ",\"site\":" + std::to_string(result.violation->site_index) + "}";
  if (result.returned_value) out += ",\"returned\":" + std::to_string(*result.returned_value);
  out += ",\"steps\":" + std::to_string(result.steps) +
         ",\"goroutines_started\":" + std::to_string(result.goroutines_started) +
         ",\"private_collections\":" + std::to_string(result.private_collections) +
         ",\"shared_collections\":" + std::to_string(result.shared_collections) +
         ",\"stack_substitutes\":" + std::to_string(result.stack_substitutes) +
         ",\"caller_frame_allocations\":" + std::to_string(result.caller_frame_allocations) +
         ",\"allocations\":{\"total\":" + std::to_string(total);
  for (size_t index = 0; index < escape::kOwnershipClassCount; ++index) {
    auto ownership = static_cast<escape::OwnershipClass>(index);
    char percent[32];
    std::snprintf(percent, sizeof percent, "%.1f",
                  share(result.allocations_per_class[index], total));
    out += ",\"" + std::string(escape::ownership_class_name(ownership)) +
           "\":{\"count\":" + std::to_string(result.allocations_per_class[index]) +
           ",\"percent\":" + percent + "}";
  }
  return out + "}}";
}

}  // namespace usgc::jitgen::interpreter
