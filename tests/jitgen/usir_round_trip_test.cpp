// tests/jitgen/usir_round_trip_test.cpp — the printer's round-trip invariant (printer.hpp):
// print(parse(print(parse(x)))) == print(parse(x)) for every corpus file, `@line:col` annotations
// survive on the same instructions, and in canonical text each instruction's text position is the
// line it is printed on.
#include <gtest/gtest.h>

#include <sstream>

#include "jitgen/ir/ir.hpp"
#include "tests/jitgen/usir_test_support.hpp"

namespace usgc::jitgen::ir {
namespace {

std::vector<const Instruction*> all_instructions(const Module& module) {
  std::vector<const Instruction*> instructions;
  for (const Function& function : module.functions)
    for (const Block& block : function.blocks)
      for (const Instruction& instruction : block.instructions)
        instructions.push_back(&instruction);
  return instructions;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

TEST(UsirRoundTrip, PrintingIsAFixedPointForEveryCorpusFile) {
  std::vector<std::filesystem::path> files = testing::usir_corpus_files();
  ASSERT_FALSE(files.empty());
  for (const auto& path : files) {
    ParseResult first = parse_module(testing::read_text_file(path), path.filename().string());
    ASSERT_TRUE(first.ok()) << format_diagnostics(first.diagnostics);
    std::string canonical = print_module(first.module);
    ParseResult second = parse_module(canonical, path.filename().string());
    ASSERT_TRUE(second.ok()) << path << "\n" << format_diagnostics(second.diagnostics) << canonical;
    EXPECT_EQ(print_module(second.module), canonical) << path;
  }
}

TEST(UsirRoundTrip, SourcePositionsSurviveOnTheSameInstructions) {
  for (const auto& path : testing::usir_corpus_files()) {
    ParseResult first = parse_module(testing::read_text_file(path), path.string());
    ParseResult second = parse_module(print_module(first.module), path.string());
    std::vector<const Instruction*> before = all_instructions(first.module);
    std::vector<const Instruction*> after = all_instructions(second.module);
    ASSERT_EQ(before.size(), after.size()) << path;
    for (size_t index = 0; index < before.size(); ++index) {
      EXPECT_EQ(before[index]->opcode, after[index]->opcode) << path;
      EXPECT_EQ(before[index]->source_position, after[index]->source_position) << path;
    }
  }
}

TEST(UsirRoundTrip, CanonicalTextPositionsPointAtThePrintedLine) {
  for (const auto& path : testing::usir_corpus_files()) {
    ParseResult first = parse_module(testing::read_text_file(path), path.string());
    std::string canonical = print_module(first.module);
    std::vector<std::string> lines = split_lines(canonical);
    ParseResult second = parse_module(canonical, path.string());
    for (const Instruction* instruction : all_instructions(second.module)) {
      SourcePosition position = instruction->text_position;
      ASSERT_TRUE(position.known());
      ASSERT_LE(position.line, lines.size());
      EXPECT_EQ(position.column, 3u) << "instructions are indented by two spaces";
      EXPECT_EQ(lines[position.line - 1], "  " + print_instruction(second.module, *instruction))
          << path;
    }
  }
}

TEST(UsirRoundTrip, ExampleInDocsIsTheCorpusProcessData) {
  std::string docs = testing::read_text_file(testing::source_root() / "docs/usir.md");
  const std::string fence = "```usir\n";
  size_t start = docs.find(fence);
  ASSERT_NE(start, std::string::npos) << "docs/usir.md has no ```usir example";
  start += fence.size();
  size_t end = docs.find("```", start);
  ASSERT_NE(end, std::string::npos);
  ParseResult from_docs = parse_module(docs.substr(start, end - start), "usir.md");
  ASSERT_TRUE(from_docs.ok()) << format_diagnostics(from_docs.diagnostics);
  ParseResult from_corpus = parse_module(
      testing::read_text_file(testing::source_root() / "tests/escape/process_data.usir"),
      "process_data.usir");
  EXPECT_EQ(print_module(from_docs.module), print_module(from_corpus.module));
}

}  // namespace
}  // namespace usgc::jitgen::ir
