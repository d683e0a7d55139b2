// tests/jitgen/escape_corpus_test.cpp — the escape analysis decides, for every allocation site of
// every corpus program (tests/escape/<name>.usir), the class written by hand in
// tests/escape/<name>.expected (`line:col class`, `#` comments); every program has such a file and
// every site is listed, so adding a program means adding a .usir and a .expected. Also: the
// analysis is deterministic (two runs and the printed forms are equal) and the statistics add up.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"
#include "tests/jitgen/usir_test_support.hpp"

namespace usgc::jitgen::escape {
namespace {

struct ExpectedFile {
  std::map<std::pair<uint32_t, uint32_t>, OwnershipClass> classes;  // (line, col) -> class
  // (line, col) -> the calls (line, col) that allocate the site in the caller's frame:
  // `8:3 private stack@24:3` (CallerFrameCall, jitgen/escape/decision.hpp).
  std::map<std::pair<uint32_t, uint32_t>, std::vector<std::pair<uint32_t, uint32_t>>>
      caller_frame_calls;
  std::vector<std::string> errors;
};

ExpectedFile read_expected(const std::filesystem::path& path) {
  ExpectedFile expected;
  std::istringstream text(testing::read_text_file(path));
  std::string line;
  for (int number = 1; std::getline(text, line); ++number) {
    if (size_t hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::string position, ownership;
    if (!(words >> position)) continue;
    uint32_t site_line = 0, site_column = 0;
    char colon = 0;
    std::istringstream position_stream(position);
    std::optional<OwnershipClass> parsed;
    if ((position_stream >> site_line >> colon >> site_column) && colon == ':' &&
        (words >> ownership) && (parsed = parse_ownership_class(ownership))) {
      if (!expected.classes.emplace(std::pair{site_line, site_column}, *parsed).second)
        expected.errors.push_back(path.string() + ":" + std::to_string(number) + ": duplicate");
      for (std::string call; words >> call;) {
        uint32_t call_line = 0, call_column = 0;
        char at = 0, separator = 0;
        std::istringstream call_stream(call);
        if (call.rfind("stack@", 0) == 0 && call_stream.ignore(5) &&
            (call_stream >> at >> call_line >> separator >> call_column) && at == '@' &&
            separator == ':') {
          expected.caller_frame_calls[{site_line, site_column}].push_back({call_line, call_column});
        } else {
          expected.errors.push_back(path.string() + ":" + std::to_string(number) +
                                    ": expected `stack@line:col`, found '" + call + "'");
        }
      }
    } else {
      expected.errors.push_back(path.string() + ":" + std::to_string(number) +
                                ": expected `line:col class`, found '" + line + "'");
    }
  }
  return expected;
}

EscapeAnalysis analyze_file(const std::filesystem::path& path) {
  ir::ParseResult result =
      ir::parse_module(testing::read_text_file(path), path.filename().string());
  EXPECT_TRUE(result.ok()) << ir::format_diagnostics(result.diagnostics);
  return analyze_escapes(result.module);
}

TEST(EscapeCorpus, EverySiteGetsTheHandWrittenClass) {
  std::vector<std::filesystem::path> files = testing::usir_corpus_files();
  ASSERT_GE(files.size(), 14u);
  size_t sites_checked = 0;
  for (const auto& path : files) {
    std::filesystem::path expected_path = path;
    expected_path.replace_extension(".expected");
    ASSERT_TRUE(std::filesystem::exists(expected_path))
        << path << " has no " << expected_path.filename() << " (expected decisions)";
    ExpectedFile expected = read_expected(expected_path);
    for (const std::string& error : expected.errors) ADD_FAILURE() << error;
    EscapeAnalysis analysis = analyze_file(path);
    std::map<std::pair<uint32_t, uint32_t>, OwnershipClass> remaining = expected.classes;
    for (const SiteDecision& site : analysis.sites) {
      auto entry = remaining.find({site.position.line, site.position.column});
      if (entry == remaining.end()) {
        ADD_FAILURE() << format_position(analysis.file_name, site.position) << ": "
                      << site.allocation << " is not listed in " << expected_path.filename();
        continue;
      }
      EXPECT_EQ(ownership_class_name(site.ownership),
                std::string(ownership_class_name(entry->second)))
          << format_position(analysis.file_name, site.position) << ": " << site.allocation << " ("
          << site.short_reason << ")";
      std::vector<std::pair<uint32_t, uint32_t>> calls;
      for (const CallerFrameCall& call : site.caller_frame_calls)
        calls.push_back({call.position.line, call.position.column});
      EXPECT_EQ(calls, expected.caller_frame_calls[entry->first])
          << format_position(analysis.file_name, site.position) << ": " << site.allocation
          << ": the calls that allocate it in the caller's frame (stack@line:col in "
          << expected_path.filename() << ")";
      remaining.erase(entry);
      ++sites_checked;
    }
    for (const auto& [position, ownership] : remaining)
      ADD_FAILURE() << expected_path.filename() << " lists " << position.first << ":"
                    << position.second << " but there is no allocation site there";
  }
  EXPECT_GE(sites_checked, 36u);
}

TEST(EscapeCorpus, EveryDecisionAboveStackHasAReason) {
  for (const auto& path : testing::usir_corpus_files()) {
    EscapeAnalysis analysis = analyze_file(path);
    for (const SiteDecision& site : analysis.sites) {
      EXPECT_FALSE(site.short_reason.empty());
      if (site.ownership == OwnershipClass::StackLocal)
        EXPECT_TRUE(site.reasons.empty()) << site.allocation;
      else
        EXPECT_FALSE(site.reasons.empty())
            << format_position(analysis.file_name, site.position) << " has no reason chain";
    }
  }
}

TEST(EscapeCorpus, TwoRunsDecideTheSame) {
  for (const auto& path : testing::usir_corpus_files()) {
    EscapeAnalysis first = analyze_file(path);
    EscapeAnalysis second = analyze_file(path);
    EXPECT_EQ(first.sites, second.sites) << path;
    EXPECT_EQ(format_decisions(first, true), format_decisions(second, true));
    EXPECT_EQ(format_json(first, true), format_json(second, true));
  }
}

TEST(EscapeCorpus, DecisionsAreSortedByPositionAndStatisticsAddUp) {
  for (const auto& path : testing::usir_corpus_files()) {
    EscapeAnalysis analysis = analyze_file(path);
    size_t per_class_total = 0;
    for (size_t index = 0; index < kOwnershipClassCount; ++index)
      per_class_total += analysis.statistics.sites_per_class[index];
    EXPECT_EQ(per_class_total, analysis.sites.size());
    EXPECT_EQ(analysis.statistics.total_sites, analysis.sites.size());
    for (size_t i = 1; i < analysis.sites.size(); ++i) {
      const ir::SourcePosition& a = analysis.sites[i - 1].position;
      const ir::SourcePosition& b = analysis.sites[i].position;
      EXPECT_TRUE(a.line < b.line || (a.line == b.line && a.column <= b.column)) << path;
    }
  }
}

}  // namespace
}  // namespace usgc::jitgen::escape
