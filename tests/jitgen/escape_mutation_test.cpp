// tests/jitgen/escape_mutation_test.cpp — the escape analysis on many programs, not just the
// corpus: corpus programs with instruction lines deleted, duplicated or swapped (those that still
// verify) are analysed without a crash, deterministically, with a reason for every site above
// STACK_LOCAL; and publishing one more local (`call unknown(%x)` inserted before some block's
// terminator) never lowers any site's class (the analysis is monotone in the facts it is given).
// Seeded (USGC_TEST_SEED repeats a run) and bounded in cases and in time.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"
#include "tests/jitgen/usir_test_support.hpp"
#include "tests/support/seeded_random.hpp"

namespace usgc::jitgen::escape {
namespace {

constexpr int kMaximumCases = 3000;
constexpr auto kTimeBudget = std::chrono::seconds(5);

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

bool is_instruction_line(const std::string& line) {
  return line.size() > 2 && line[0] == ' ' && line[1] == ' ' && line[2] != ' ' &&
         line.compare(2, 3, "var") != 0;
}

std::string mutate(std::vector<std::string> lines, testing::Random& random) {
  std::vector<size_t> candidates;
  for (size_t i = 0; i < lines.size(); ++i)
    if (is_instruction_line(lines[i])) candidates.push_back(i);
  if (candidates.empty()) return "";
  int mutations = static_cast<int>(random.between(1, 3));
  for (int round = 0; round < mutations; ++round) {
    size_t a = candidates[random.below(candidates.size())];
    size_t b = candidates[random.below(candidates.size())];
    switch (random.below(3)) {
      case 0:
        lines[a] = "";  // delete
        break;
      case 1:
        lines[a] = lines[b];  // duplicate b over a
        break;
      default:
        std::swap(lines[a], lines[b]);
    }
  }
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

std::vector<OwnershipClass> classes_by_site(const EscapeAnalysis& analysis) {
  std::vector<OwnershipClass> classes(analysis.sites.size());
  for (const SiteDecision& site : analysis.sites) classes[site.site_index] = site.ownership;
  return classes;
}

// Inserts `call unknown(%x)` for a random reference local %x before the terminator of a random
// block; false when the function has no reference local.
bool publish_one_more_local(ir::Module& module, testing::Random& random) {
  ir::Function& function = module.functions[random.below(module.functions.size())];
  std::vector<const ir::Local*> references;
  for (const ir::Local& local : function.locals)
    if (module.types.is_reference(local.type)) references.push_back(&local);
  if (references.empty()) return false;
  ir::Instruction call;
  call.opcode = ir::Opcode::Call;
  call.callee_unknown = true;
  call.callee_name = "unknown";
  call.operands.push_back(ir::Operand::local(references[random.below(references.size())]->name));
  ir::Block& block = function.blocks[random.below(function.blocks.size())];
  block.instructions.insert(block.instructions.end() - 1, call);
  return true;
}

TEST(EscapeMutation, MutatedCorpusProgramsAreAnalysedSafelyAndMonotonically) {
  uint64_t seed = testing::test_seed();
  testing::Random random(seed);
  std::vector<std::vector<std::string>> corpus;
  for (const auto& path : testing::usir_corpus_files())
    corpus.push_back(split_lines(testing::read_text_file(path)));
  ASSERT_FALSE(corpus.empty());
  auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
  int cases = 0, analysed = 0, monotone_checks = 0;
  for (; cases < kMaximumCases && std::chrono::steady_clock::now() < deadline; ++cases) {
    std::string text = mutate(corpus[random.below(corpus.size())], random);
    ir::ParseResult parsed = ir::parse_module(text, "m.usir");
    if (!parsed.ok()) continue;
    ++analysed;
    EscapeAnalysis first = analyze_escapes(parsed.module);
    EscapeAnalysis second = analyze_escapes(parsed.module);
    ASSERT_EQ(first.sites, second.sites) << testing::seed_note(seed) << "\n" << text;
    for (const SiteDecision& site : first.sites) {
      if (site.ownership != OwnershipClass::StackLocal) {
        ASSERT_FALSE(site.reasons.empty()) << testing::seed_note(seed) << "\n" << text;
      }
    }

    if (!publish_one_more_local(parsed.module, random)) continue;
    if (!ir::verify(parsed.module).empty()) continue;
    ++monotone_checks;
    std::vector<OwnershipClass> before = classes_by_site(first);
    std::vector<OwnershipClass> after = classes_by_site(analyze_escapes(parsed.module));
    ASSERT_EQ(before.size(), after.size());
    for (size_t site = 0; site < before.size(); ++site)
      ASSERT_GE(after[site], before[site])
          << "site " << site << " went down after one more publication; "
          << testing::seed_note(seed) << "\n"
          << ir::print_module(parsed.module);
  }
  EXPECT_GE(analysed, 50) << "too few mutants verified; " << testing::seed_note(seed);
  EXPECT_GE(monotone_checks, 20) << testing::seed_note(seed);
}

}  // namespace
}  // namespace usgc::jitgen::escape
