// jitgen/escape/report.cpp — text and JSON forms of the escape decisions (report.hpp).
#include "jitgen/escape/report.hpp"

#include <cstdio>

namespace usgc::jitgen::escape {
namespace {

std::string json_string(const std::string& text) {
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

std::string percent_text(double percent) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f%%", percent);
  return buffer;
}

}  // namespace

std::string format_decisions(const EscapeAnalysis& analysis, bool with_reasons) {
  std::string out;
  for (const SiteDecision& site : analysis.sites) {
    out += format_position(analysis.file_name, site.position) + ": " + site.allocation + ": " +
           ownership_class_short_name(site.ownership) + " (" + site.short_reason + ")\n";
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
                  statistics.count(ownership), percent_text(statistics.percent(ownership)).c_str());
    out += line;
  }
  out += "  total              " + std::to_string(statistics.total_sites) + " allocation sites\n";
  return out;
}

std::string format_json(const EscapeAnalysis& analysis, bool with_reasons) {
  std::string out = "{\"file\":" + json_string(analysis.file_name) + ",\"sites\":[";
  bool first_site = true;
  for (const SiteDecision& site : analysis.sites) {
    out += first_site ? "\n  " : ",\n  ";
    first_site = false;
    out += "{\"position\":" + json_string(format_position(analysis.file_name, site.position)) +
           ",\"line\":" + std::to_string(site.position.line) +
           ",\"column\":" + std::to_string(site.position.column) +
           ",\"function\":" + json_string(site.function_name) +
           ",\"allocation\":" + json_string(site.allocation) +
           ",\"class\":" + json_string(ownership_class_name(site.ownership)) +
           ",\"reason\":" + json_string(site.short_reason);
    if (with_reasons) {
      out += ",\"chain\":[";
      for (size_t i = 0; i < site.reasons.size(); ++i) {
        if (i) out += ",";
        out += "{\"position\":" +
               json_string(format_position(analysis.file_name, site.reasons[i].position)) +
               ",\"fact\":" + json_string(site.reasons[i].fact) + "}";
      }
      out += "]";
    }
    out += "}";
  }
  out += "\n],\"summary\":{\"total\":" + std::to_string(analysis.statistics.total_sites);
  for (size_t index = 0; index < kOwnershipClassCount; ++index) {
    auto ownership = static_cast<OwnershipClass>(index);
    char percent[32];
    std::snprintf(percent, sizeof percent, "%.1f", analysis.statistics.percent(ownership));
    out += ",\"" + std::string(ownership_class_name(ownership)) +
           "\":{\"count\":" + std::to_string(analysis.statistics.count(ownership)) +
           ",\"percent\":" + percent + "}";
  }
  return out + "}}\n";
}

}  // namespace usgc::jitgen::escape
