// tests/jitgen/escape_reasons_test.cpp — the escape analysis on small programs, one rule each:
// the class it decides and the reason chain it keeps (a go capture, a channel send, a global
// store, a return, an unknown call), the interprocedural summaries (a callee that publishes,
// returns or stores into its parameters; self and mutual recursion reaching a fixed point), the
// bounded-size rule and the propagation rule.
//
// The programs are a table (kCases): each row is one program and what must be decided for it,
// and one checker (check_case) runs every row. A row names the sites by their line and states
// their class and, where the rule is about the reason, the reason as the user sees it. The
// checker's own test (TableChecker) feeds it a wrong expectation and requires it to fail, so a
// row cannot pass by not being checked.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"

namespace usgc::jitgen::escape {
namespace {

EscapeAnalysis analyze_text(const std::string& text) {
  ir::ParseResult result = ir::parse_module(text, "t.usir");
  EXPECT_TRUE(result.ok()) << ir::format_diagnostics(result.diagnostics);
  return analyze_escapes(result.module);
}

// The decision of the site at `line` (its annotation or text line).
const SiteDecision& site_at(const EscapeAnalysis& analysis, uint32_t line) {
  for (const SiteDecision& site : analysis.sites)
    if (site.position.line == line) return site;
  static SiteDecision missing;
  ADD_FAILURE() << "no allocation site at line " << line;
  return missing;
}

std::string all_reasons(const SiteDecision& site) {
  std::string text;
  for (const ReasonStep& step : site.reasons) text += step.fact + "\n";
  return text;
}

const char* const kTypes = "type Box { value: int, next: *Box }\n";

// What one allocation site must be decided as. Empty strings and unset optionals are not checked.
struct SiteExpectation {
  uint32_t line = 0;  // the site's line in the whole program (kTypes is line 1)
  OwnershipClass ownership = OwnershipClass::StackLocal;
  std::string_view why = {};              // printed when the class is wrong
  std::string_view short_reason = {};     // SiteDecision::short_reason, exactly
  std::string_view reasons = {};          // the whole chain, one fact a line, exactly
  std::string_view reasons_contain = {};  // a fact the chain includes
  std::optional<size_t> reason_count = {};
  // The chain starts with the (first step of the) chain of the site at this line: the
  // propagation rule passes the reason on.
  std::optional<uint32_t> reasons_start_with_site = {};
};

// A function summary's level for one input.
struct SummaryExpectation {
  size_t function = 0;  // module order
  size_t input = 0;
  OwnershipClass level = OwnershipClass::StackLocal;
};

struct EscapeCase {
  const char* name;     // the gtest name of the row
  const char* program;  // after kTypes unless without_types
  bool without_types = false;
  std::vector<SiteExpectation> sites = {};
  std::vector<SummaryExpectation> summaries = {};
  std::string_view decisions = {};  // format_decisions(analysis, false), exactly
  size_t min_fixed_point_passes = 0;
};

void PrintTo(const EscapeCase& escape_case, std::ostream* out) {
  *out << escape_case.name;
}

void check_site(const EscapeAnalysis& analysis, const SiteExpectation& expected) {
  SCOPED_TRACE("the site at line " + std::to_string(expected.line));
  const SiteDecision& site = site_at(analysis, expected.line);
  EXPECT_EQ(site.ownership, expected.ownership) << expected.why;
  if (!expected.short_reason.empty()) {
    EXPECT_EQ(site.short_reason, expected.short_reason);
  }
  if (!expected.reasons.empty()) {
    EXPECT_EQ(all_reasons(site), expected.reasons);
  }
  if (!expected.reasons_contain.empty()) {
    EXPECT_NE(all_reasons(site).find(expected.reasons_contain), std::string::npos)
        << all_reasons(site);
  }
  if (expected.reason_count) {
    EXPECT_EQ(site.reasons.size(), *expected.reason_count);
  }
  if (expected.reasons_start_with_site) {
    const SiteDecision& source = site_at(analysis, *expected.reasons_start_with_site);
    ASSERT_FALSE(site.reasons.empty());
    ASSERT_FALSE(source.reasons.empty());
    EXPECT_EQ(site.reasons[0], source.reasons[0]);
  }
}

void check_case(const EscapeCase& escape_case) {
  std::string program = escape_case.without_types ? std::string(escape_case.program)
                                                  : std::string(kTypes) + escape_case.program;
  EscapeAnalysis analysis = analyze_text(program);
  for (const SiteExpectation& site : escape_case.sites) check_site(analysis, site);
  for (const SummaryExpectation& summary : escape_case.summaries) {
    SCOPED_TRACE("the summary of function " + std::to_string(summary.function));
    ASSERT_LT(summary.function, analysis.summaries.size());
    ASSERT_LT(summary.input, analysis.summaries[summary.function].input_level.size());
    EXPECT_EQ(analysis.summaries[summary.function].input_level[summary.input], summary.level);
  }
  if (!escape_case.decisions.empty()) {
    EXPECT_EQ(format_decisions(analysis, false), escape_case.decisions);
  }
  EXPECT_GE(analysis.fixed_point_passes, escape_case.min_fixed_point_passes);
}

using enum OwnershipClass;

const EscapeCase kCases[] = {
    {.name = "GoCaptureMakesSharedAndNamesTheSpawnAndTheVariable",
     .program = "func body() captures(%b: *Box) {\n"
                "entry:\n"
                "  ret\n"
                "}\n"
                "func f() {\n"
                "  var %shared: *Box\n"
                "entry:\n"
                "  %shared = new Box\n"
                "  go body() captures(%shared) @14:3\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 9,
                .ownership = GoroutineShared,
                .short_reason = "captured by a goroutine",
                .reasons = "captured by the goroutine spawned at t.usir:14:3 through variable "
                           "%shared\n",
                .reason_count = 1}},
     .decisions = "t.usir:9:3: new Box: shared (captured by a goroutine)\n"},

    {.name = "ChannelSendMakesShared",
     .program = "func f(%c: chan *Box) {\n"
                "  var %b: *Box\n"
                "entry:\n"
                "  %b = new Box\n"
                "  send %c, %b\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 5,
                .ownership = GoroutineShared,
                .reasons_contain = "sent on the channel %c at t.usir:6:3 through variable %b"}}},

    {.name = "GlobalStoreMakesGlobalAndPropagatesToWhatItReaches",
     .program = "global root: *Box\n"
                "func f() {\n"
                "  var %a: *Box\n"
                "  var %b: *Box\n"
                "entry:\n"
                "  %a = new Box\n"
                "  %b = new Box\n"
                "  store %a.next, %b\n"
                "  store @root, %a\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 7, .ownership = GlobalShared, .short_reason = "stored into global @root"},
               {.line = 8,
                .ownership = GlobalShared,
                .short_reason = "reachable from a global object",
                .reasons_contain = "stored into %a.next at t.usir:9:3",
                .reason_count = 2,
                .reasons_start_with_site = 7}}},

    {.name = "ReturnedObjectIsPrivateAndLocalOneStaysOnTheStack",
     .program = "func f() -> *Box {\n"
                "  var %kept: *Box\n"
                "  var %temp: *Box\n"
                "entry:\n"
                "  %kept = new Box\n"
                "  %temp = new Box\n"
                "  store %temp.next, %kept\n"
                "  ret %kept\n"
                "}\n",
     .sites = {{.line = 6,
                .ownership = GoroutinePrivate,
                .short_reason = "returned from f",
                .reasons = "returned from f at t.usir:9:3 through variable %kept\n"},
               {.line = 7, .ownership = StackLocal}}},

    {.name = "UnknownCallMakesItsArgumentsGlobalAndItsResultExternal",
     .program = "func f() {\n"
                "  var %a: *Box\n"
                "  var %b: *Box\n"
                "  var %r: *Box\n"
                "entry:\n"
                "  %a = new Box\n"
                "  call unknown(%a)\n"
                "  %b = new Box\n"
                "  %r = call unknown()\n"
                "  store %r.next, %b\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 7,
                .ownership = GlobalShared,
                .reasons = "passed as %a to a function the analysis cannot see at t.usir:8:3\n"},
               {.line = 9,
                .ownership = GlobalShared,
                .why = "stored into an object unknown code returned"}}},

    {.name = "CalleeThatPublishesItsParameterPublishesTheCallersObject",
     .program = "global root: *Box\n"
                "func keep(%p: *Box) {\n"
                "entry:\n"
                "  store @root, %p\n"
                "  ret\n"
                "}\n"
                "func f() {\n"
                "  var %b: *Box\n"
                "entry:\n"
                "  %b = new Box\n"
                "  call keep(%b)\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 11,
                .ownership = GlobalShared,
                .reasons = "passed as %b to keep (as %p) at t.usir:12:3\n"
                           "stored into global @root at t.usir:5:3 through variable %p\n"}},
     .summaries = {{.function = 0, .input = 0, .level = GlobalShared}}},

    {.name = "IdentityResultCarriesTheArgument",
     .program = "global root: *Box\n"
                "func identity(%p: *Box) -> *Box {\n"
                "entry:\n"
                "  ret %p\n"
                "}\n"
                "func f() {\n"
                "  var %b: *Box\n"
                "  var %same: *Box\n"
                "  var %local: *Box\n"
                "entry:\n"
                "  %b = new Box\n"
                "  %same = call identity(%b)\n"
                "  store @root, %same\n"
                "  %local = new Box\n"
                "  %local = call identity(%local)\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 12, .ownership = GlobalShared}, {.line = 15, .ownership = StackLocal}}},

    {.name = "CalleeStoringANewObjectIntoASharedParameterSharesIt",
     .program = "func attach(%p: *Box) {\n"
                "  var %n: *Box\n"
                "entry:\n"
                "  %n = new Box\n"
                "  store %p.next, %n\n"
                "  ret\n"
                "}\n"
                "func f(%c: chan *Box) {\n"
                "  var %b: *Box\n"
                "entry:\n"
                "  %b = new Box\n"
                "  call attach(%b)\n"
                "  send %c, %b\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 12, .ownership = GoroutineShared},
               {.line = 5,
                .ownership = GoroutineShared,
                .reasons_contain = "sent on the channel %c"}}},

    {.name = "CallersObjectStoredIntoTheCalleesReturnedObjectLeavesTheStack",
     .program = "func wrap(%p: *Box) -> *Box {\n"
                "  var %w: *Box\n"
                "entry:\n"
                "  %w = new Box\n"
                "  store %w.next, %p\n"
                "  ret %w\n"
                "}\n"
                "func f() {\n"
                "  var %b: *Box\n"
                "  var %wrapped: *Box\n"
                "entry:\n"
                "  %b = new Box\n"
                "  %wrapped = call wrap(%b)\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 5, .ownership = GoroutinePrivate},
               {.line = 13,
                .ownership = GoroutinePrivate,
                .why = "a stack object may not be referenced from a heap object",
                .reasons_contain = "wrap (called at t.usir:14:3) stores %p into new Box at "
                                   "t.usir:5:3"}}},

    {.name = "SynchronousClosureThatSendsItsCaptureShares",
     .program = "func body(%c: chan *Box) captures(%b: *Box) {\n"
                "entry:\n"
                "  send %c, %b\n"
                "  ret\n"
                "}\n"
                "func f(%c: chan *Box) {\n"
                "  var %b: *Box\n"
                "entry:\n"
                "  %b = new Box\n"
                "  call body(%c) captures(%b)\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 10,
                .ownership = GoroutineShared,
                .short_reason = "passed to body, where it is sent on a channel"}}},

    {.name = "GoroutineWhoseBodyStoresIntoAGlobalMakesGlobal",
     .program = "global root: *Box\n"
                "func body(%p: *Box) {\n"
                "entry:\n"
                "  store @root, %p\n"
                "  ret\n"
                "}\n"
                "func f() {\n"
                "  var %b: *Box\n"
                "entry:\n"
                "  %b = new Box\n"
                "  go body(%b)\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 11, .ownership = GlobalShared}}},

    // The parameter reaches the global only at the bottom of the recursion.
    {.name = "SelfRecursionReachesTheFixedPoint",
     .program = "global root: *Box\n"
                "func sink(%p: *Box, %n: int) {\n"
                "  var %done: bool\n"
                "  var %next: int\n"
                "entry:\n"
                "  %done = le %n, 0\n"
                "  br %done, bottom, again\n"
                "bottom:\n"
                "  store @root, %p\n"
                "  ret\n"
                "again:\n"
                "  %next = sub %n, 1\n"
                "  call sink(%p, %next)\n"
                "  ret\n"
                "}\n"
                "func f() {\n"
                "  var %b: *Box\n"
                "entry:\n"
                "  %b = new Box\n"
                "  call sink(%b, 10)\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 20, .ownership = GlobalShared}},
     .summaries = {{.function = 0, .input = 0, .level = GlobalShared}}},

    // ping -> pong -> ping ...; only pong sends, and only the caller of ping allocates. The send
    // is discovered in pong after ping was solved in the same pass, so a second pass is needed.
    {.name = "MutualRecursionReachesTheFixedPoint",
     .program = "func starter(%c: chan *Box) {\n"
                "  var %b: *Box\n"
                "entry:\n"
                "  %b = new Box\n"
                "  call ping(%b, %c)\n"
                "  ret\n"
                "}\n"
                "func ping(%p: *Box, %c: chan *Box) {\n"
                "entry:\n"
                "  call pong(%p, %c)\n"
                "  ret\n"
                "}\n"
                "func pong(%p: *Box, %c: chan *Box) {\n"
                "entry:\n"
                "  send %c, %p\n"
                "  call ping(%p, %c)\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 5,
                .ownership = GoroutineShared,
                .reasons = "passed as %b to ping (as %p) at t.usir:6:3\n"
                           "passed as %p to pong (as %p) at t.usir:11:3\n"
                           "sent on the channel %c at t.usir:16:3 through variable %p\n"}},
     .summaries = {{.function = 1, .input = 0, .level = GoroutineShared},
                   {.function = 2, .input = 0, .level = GoroutineShared}},
     .min_fixed_point_passes = 2},

    {.name = "OnlyConstantSizedArraysAndChannelsAreBounded",
     .program = "func f(%n: int) {\n"
                "  var %fixed: []int\n"
                "  var %dynamic: []int\n"
                "  var %channel: chan int\n"
                "entry:\n"
                "  %fixed = newarray int, 8\n"
                "  %dynamic = newarray int, %n\n"
                "  %channel = makechan int, %n\n"
                "  ret\n"
                "}\n",
     .without_types = true,
     .sites = {{.line = 6, .ownership = StackLocal},
               {.line = 7,
                .ownership = GoroutinePrivate,
                .short_reason = "size not bounded",
                .reasons = "its size is not bounded: the length %n at t.usir:7:3 is not a "
                           "constant\n"},
               {.line = 8, .ownership = GoroutinePrivate}}},

    {.name = "StoringIntoAReceivedObjectShares",
     .program = "func f(%c: chan *Box) {\n"
                "  var %got: *Box\n"
                "  var %b: *Box\n"
                "entry:\n"
                "  %got = recv %c\n"
                "  %b = new Box\n"
                "  store %got.next, %b\n"
                "  ret\n"
                "}\n",
     .sites = {{.line = 7, .ownership = GoroutineShared}}},
};

class EscapeReasons : public testing::TestWithParam<EscapeCase> {};

TEST_P(EscapeReasons, DecidesEverySiteWithItsReason) {
  check_case(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Programs, EscapeReasons, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<EscapeCase>& info) {
                           return std::string(info.param.name);
                         });

const EscapeCase& case_named(std::string_view name) {
  for (const EscapeCase& row : kCases)
    if (name == row.name) return row;
  ADD_FAILURE() << "no row named " << name;
  return kCases[0];
}

// How many failures checking `row` reports (intercepted: they do not fail this test).
int failures_checking(const EscapeCase& row) {
  testing::TestPartResultArray results;
  {
    testing::ScopedFakeTestPartResultReporter intercept(
        testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    check_case(row);
  }
  int failures = 0;
  for (int i = 0; i < results.size(); ++i)
    if (results.GetTestPartResult(i).failed()) ++failures;
  return failures;
}

// The checker fails a row whose expectation is wrong, for each kind of expectation, and passes it
// unchanged, so a row of kCases cannot pass by not being looked at.
TEST(EscapeReasonsTableChecker, FailsEveryKindOfWrongExpectation) {
  const EscapeCase& global = case_named("GlobalStoreMakesGlobalAndPropagatesToWhatItReaches");
  const EscapeCase& unknown = case_named("UnknownCallMakesItsArgumentsGlobalAndItsResultExternal");
  const EscapeCase& publish =
      case_named("CalleeThatPublishesItsParameterPublishesTheCallersObject");
  const EscapeCase& capture = case_named("GoCaptureMakesSharedAndNamesTheSpawnAndTheVariable");
  for (const EscapeCase* row : {&global, &unknown, &publish, &capture})
    EXPECT_EQ(failures_checking(*row), 0) << row->name;

  std::vector<std::pair<std::string, EscapeCase>> wrong_rows;
  auto wrong = [&](const char* what, const EscapeCase& right, auto change) {
    EscapeCase row = right;
    change(row);
    wrong_rows.emplace_back(what, row);
  };
  wrong("class", global, [](EscapeCase& row) { row.sites[1].ownership = GoroutineShared; });
  wrong("line", global, [](EscapeCase& row) { row.sites[1].line = 3; });
  wrong("short reason", global,
        [](EscapeCase& row) { row.sites[1].short_reason = "does not escape"; });
  wrong("reasons", global, [](EscapeCase& row) { row.sites[1].reasons = "returned from f\n"; });
  wrong("reasons contain", global,
        [](EscapeCase& row) { row.sites[1].reasons_contain = "sent on the channel"; });
  wrong("reason count", global, [](EscapeCase& row) { row.sites[1].reason_count = 1; });
  wrong("reasons start with", unknown,
        [](EscapeCase& row) { row.sites[1].reasons_start_with_site = 7; });
  wrong("summary", publish, [](EscapeCase& row) { row.summaries[0].level = GoroutineShared; });
  wrong("decisions", capture,
        [](EscapeCase& row) { row.decisions = "t.usir:9:3: new Box: stack (does not escape)\n"; });
  wrong("fixed-point passes", capture, [](EscapeCase& row) { row.min_fixed_point_passes = 1000; });
  for (const auto& [what, row] : wrong_rows)
    EXPECT_GE(failures_checking(row), 1) << "a wrong " << what << " in " << row.name;
}

TEST(EscapeReasons, BuilderModulesAreAnalysedToo) {
  ir::ModuleBuilder builder("prog.us");
  builder.add_struct("Point", {{"x", builder.int_type()}});
  ir::FunctionBuilder main = builder.add_function("main");
  main.local("p", builder.pointer_to("Point"));
  main.block("entry");
  main.new_object("p", builder.struct_type("Point"), ir::SourcePosition{3, 5});
  main.ret();
  ir::BuildResult result = builder.finish();
  ASSERT_TRUE(result.diagnostics.empty()) << ir::format_diagnostics(result.diagnostics);
  EscapeAnalysis analysis = analyze_escapes(result.module);
  EXPECT_EQ(format_decisions(analysis, false), "prog.us:3:5: new Point: stack (does not escape)\n");
}

}  // namespace
}  // namespace usgc::jitgen::escape
