// jitgen/escape/report.cpp — text and JSON forms of the escape decisions (report.hpp).
#include "jitgen/escape/report.hpp"

#include <cstdio>

namespace usgc::jitgen::escape {

std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string format_percent(double percent) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f%%", percent);
  return buffer;
}

std::string format_decisions(const EscapeAnalysis& analysis, bool with_reasons,
                             const std::vector<uint64_t>* allocations_per_site) {
  std::string out;
  for (const SiteDecision& site : analysis.sites) {
    out += format_position(analysis.file_name, site.position) + ": " + site.allocation + ": " +
           ownership_class_short_name(site.ownership) + " (" + site.short_reason + ")";
    if (allocations_per_site != nullptr) {
      uint64_t count = (*allocations_per_site)[site.site_index];
      out += " [" + std::to_string(count) + (count == 1 ? " allocation]" : " allocations]");
    }
    out += "\n";
    for (const CallerFrameCall& call : site.caller_frame_calls)
      out += "    stack when called at " + format_position(analysis.file_name, call.position) +
             ": allocated in the frame of " + call.function_name + ", which keeps the result\n";
    if (!with_reasons) continue;
    for (const ReasonStep& step : site.reasons) out += "    " + step.fact + "\n";
  }
  return out;
}

std::string format_summary(const EscapeAnalysis& analysis) {
  const EscapeStatistics& statistics = analysis.statistics;
  std::string out = "escape summary for " + analysis.file_name + ":\n";
  for (size_t index = 0; index < kOwnershipClassCount; ++index) {
    auto ownership = static_cast<OwnershipClass>(index);
    char line[96];
    std::snprintf(line, sizeof line, "  %-18s %5zu  %6s\n", ownership_class_name(ownership),
                  statistics.count(ownership),
                  format_percent(statistics.percent(ownership)).c_str());
    out += line;
  }
  out += "  total              " + std::to_string(statistics.total_sites) + " allocation sites\n";
  if (statistics.caller_frame_sites != 0)
    out += "  of which " + std::to_string(statistics.caller_frame_sites) +
           " stack at some calls (allocated in the caller's frame)\n";
  return out;
}

std::string format_json(const EscapeAnalysis& analysis, bool with_reasons,
                        const std::vector<uint64_t>* allocations_per_site,
                        const std::string& extra_json) {
  std::string out = "{\"file\":" + json_quote(analysis.file_name) + ",\"sites\":[";
  bool first_site = true;
  for (const SiteDecision& site : analysis.sites) {
    out += first_site ? "\n  " : ",\n  ";
    first_site = false;
    out += "{\"position\":" + json_quote(format_position(analysis.file_name, site.position)) +
           ",\"line\":" + std::to_string(site.position.line) +
           ",\"column\":" + std::to_string(site.position.column) +
           ",\"function\":" + json_quote(site.function_name) +
           ",\"allocation\":" + json_quote(site.allocation) +
           ",\"class\":" + json_quote(ownership_class_name(site.ownership)) +
           ",\"reason\":" + json_quote(site.short_reason);
    if (allocations_per_site != nullptr)
      out += ",\"allocations\":" + std::to_string((*allocations_per_site)[site.site_index]);
    if (!site.caller_frame_calls.empty()) {
      out += ",\"caller_frame_calls\":[";
      for (size_t i = 0; i < site.caller_frame_calls.size(); ++i) {
        const CallerFrameCall& call = site.caller_frame_calls[i];
        if (i) out += ",";
        out += "{\"position\":" + json_quote(format_position(analysis.file_name, call.position)) +
               ",\"line\":" + std::to_string(call.position.line) +
               ",\"column\":" + std::to_string(call.position.column) +
               ",\"function\":" + json_quote(call.function_name) + "}";
      }
      out += "]";
    }
    if (with_reasons) {
      out += ",\"chain\":[";
      for (size_t i = 0; i < site.reasons.size(); ++i) {
        if (i) out += ",";
        out += "{\"position\":" +
               json_quote(format_position(analysis.file_name, site.reasons[i].position)) +
               ",\"fact\":" + json_quote(site.reasons[i].fact) + "}";
      }
      out += "]";
    }
    out += "}";
  }
  out += "\n],\"summary\":{\"total\":" + std::to_string(analysis.statistics.total_sites) +
         ",\"caller_frame_sites\":" + std::to_string(analysis.statistics.caller_frame_sites);
  for (size_t index = 0; index < kOwnershipClassCount; ++index) {
    auto ownership = static_cast<OwnershipClass>(index);
    char percent[32];
    std::snprintf(percent, sizeof percent, "%.1f", analysis.statistics.percent(ownership));
    out += ",\"" + std::string(ownership_class_name(ownership)) +
           "\":{\"count\":" + std::to_string(analysis.statistics.count(ownership)) +
           ",\"percent\":" + percent + "}";
  }
  return out + "}" + extra_json + "}\n";
}

}  // namespace usgc::jitgen::escape
