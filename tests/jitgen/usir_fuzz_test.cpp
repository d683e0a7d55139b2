// tests/jitgen/usir_fuzz_test.cpp — the parser never crashes: corpus files mutated at random
// (bytes deleted, duplicated, swapped or inserted; whitespace-separated tokens deleted, duplicated
// or swapped) only ever produce diagnostics (well-formed, capped) or a clean module that
// round-trips. Seeded (USGC_TEST_SEED repeats a run) and bounded in cases and in time.
#include <gtest/gtest.h>

#include <chrono>

#include "jitgen/ir/ir.hpp"
#include "tests/jitgen/usir_test_support.hpp"
#include "tests/support/seeded_random.hpp"

namespace usgc::jitgen::ir {
namespace {

constexpr int kMaximumCases = 20000;
constexpr auto kTimeBudget = std::chrono::seconds(20);

std::vector<std::string> split_tokens(const std::string& text) {
  // Alternating runs of non-space and space characters, so joining restores the text.
  std::vector<std::string> pieces;
  for (size_t start = 0; start < text.size();) {
    bool space = text[start] == ' ' || text[start] == '\n';
    size_t end = start;
    while (end < text.size() && (text[end] == ' ' || text[end] == '\n') == space) ++end;
    pieces.push_back(text.substr(start, end - start));
    start = end;
  }
  return pieces;
}

std::string mutate(std::string text, testing::Random& random) {
  static const char kInteresting[] = "{}()[],:.=*%@-\n 0123456789azAZ_/\xff";
  int mutations = static_cast<int>(random.between(1, 4));
  for (int round = 0; round < mutations; ++round) {
    if (text.empty()) text = "x";
    size_t at = random.below(text.size());
    size_t length = std::min<size_t>(random.between(1, 8), text.size() - at);
    switch (random.below(7)) {
      case 0:
        text.erase(at, length);
        break;
      case 1:
        text.insert(at, text.substr(at, length));
        break;
      case 2:
        std::swap(text[at], text[random.below(text.size())]);
        break;
      case 3:
        text.insert(text.begin() + at, kInteresting[random.below(sizeof kInteresting - 1)]);
        break;
      default: {
        std::vector<std::string> pieces = split_tokens(text);
        if (pieces.size() < 2) break;
        size_t first = random.below(pieces.size());
        size_t second = random.below(pieces.size());
        int token_mutation = static_cast<int>(random.below(3));
        if (token_mutation == 0)
          pieces.erase(pieces.begin() + first);
        else if (token_mutation == 1)
          pieces.insert(pieces.begin() + first, pieces[second]);
        else
          std::swap(pieces[first], pieces[second]);
        text.clear();
        for (const std::string& piece : pieces) text += piece;
      }
    }
  }
  return text;
}

TEST(UsirFuzz, MutatedCorpusOnlyEverProducesDiagnostics) {
  std::vector<std::string> corpus;
  for (const auto& path : testing::usir_corpus_files())
    corpus.push_back(testing::read_text_file(path));
  ASSERT_FALSE(corpus.empty());
  uint64_t seed = testing::test_seed();
  testing::Random random(seed);
  auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
  int cases = 0, clean = 0;
  for (; cases < kMaximumCases && std::chrono::steady_clock::now() < deadline; ++cases) {
    std::string text = mutate(corpus[random.below(corpus.size())], random);
    ParseResult result = parse_module(text, "fuzz.usir");
    size_t line_count = 1;
    for (char c : text) line_count += c == '\n';
    ASSERT_LE(result.diagnostics.size(), kDefaultDiagnosticLimit + 1) << testing::seed_note(seed);
    for (const Diagnostic& diagnostic : result.diagnostics) {
      ASSERT_FALSE(diagnostic.message.empty()) << testing::seed_note(seed);
      ASSERT_LE(diagnostic.position.line, line_count + 1)
          << diagnostic.to_string() << " " << testing::seed_note(seed);
    }
    if (!result.ok()) continue;
    ++clean;
    // A mutation that is still a valid program must round-trip like the corpus.
    std::string canonical = print_module(result.module);
    ParseResult again = parse_module(canonical, "fuzz.usir");
    ASSERT_TRUE(again.ok()) << format_diagnostics(again.diagnostics) << "--- input:\n"
                            << text << testing::seed_note(seed);
    ASSERT_EQ(print_module(again.module), canonical) << testing::seed_note(seed);
  }
  EXPECT_GE(cases, 1000) << "too few cases in the time budget; " << testing::seed_note(seed);
  RecordProperty("cases", cases);
  RecordProperty("still_valid", clean);
}

}  // namespace
}  // namespace usgc::jitgen::ir
