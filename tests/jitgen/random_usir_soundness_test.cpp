// tests/jitgen/random_usir_soundness_test.cpp — the escape analysis is sound and deterministic on
// random programs (its "Soundness" check): every program of random_usir_program.hpp parses,
// verifies and is canonical text; analysing it twice, and once more after printing and parsing
// it again (a new module at new addresses), gives identical decisions (class, reasons,
// caller-frame calls); and it runs to completion in checked mode, so no decision the run can
// observe is wrong. The oracle has teeth: the same programs with decisions lowered by hand trap
// with CheckViolations. Over all seeds every ownership class, caller-frame decisions and every
// construct the analysis reasons about occur, statically and in the runs.
//
// Seeds: kBaseSeed + 0 .. count-1, count from USGC_RANDOM_USIR_SEEDS (default kDefaultSeeds).
// The program shapes of the channel-contents rule (GeneratorOptions::allow_*, the two channel
// bugs this generator found, fixed in jitgen/escape/channel_world.hpp) are on;
// USGC_RANDOM_USIR_ALLOW_GLOBAL_ON_CHANNELS=0 / USGC_RANDOM_USIR_ALLOW_RECEIVED_TO_GLOBAL=0 turn
// them off. A failure prints the
// seed, the channel mode and the program: save the text as a file and run
// `usgc-escape --run file.usir` to reproduce it. A runtime check that aborts the process meanwhile
// (the heap verifier of USGC_VERIFY, on in debug builds) prints the same, and the lowering, first.
// The lowered runs take the clean runs' options: a quarter run a collection at every allocation,
// so collections meet the wrong decisions' objects in every build, not by the timing of a load.
//
// Invariant the tests rely on: the sweep (every seed generated, analysed and run once) is made
// once per process and shared by the tests below; each test asserts one property of it.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/ir/ir.hpp"
#include "kernel_iface/fatal.hpp"
#include "tests/jitgen/random_usir_program.hpp"

namespace usgc::jitgen::interpreter {
namespace {

using escape::EscapeAnalysis;
using escape::OwnershipClass;
using escape::SiteDecision;
using random_usir::GeneratorOptions;
using random_usir::RandomUsirProgram;

constexpr uint64_t kBaseSeed = 0x6'0000;  // the soundness suite's own seed range
constexpr uint32_t kDefaultSeeds = 300;
constexpr uint32_t kTimeLimitMs = 30000;  // a hang fails the run instead of the suite

uint32_t seed_count() {
  const char* text = std::getenv("USGC_RANDOM_USIR_SEEDS");
  return text != nullptr && std::atoi(text) > 0 ? static_cast<uint32_t>(std::atoi(text))
                                                : kDefaultSeeds;
}

// On unless the variable is "0".
bool environment_flag(const char* name) {
  const char* text = std::getenv(name);
  return text == nullptr || std::string(text) != "0";
}

GeneratorOptions generator_options() {
  GeneratorOptions options;
  options.allow_global_on_channels = environment_flag("USGC_RANDOM_USIR_ALLOW_GLOBAL_ON_CHANNELS");
  options.allow_received_published_globally =
      environment_flag("USGC_RANDOM_USIR_ALLOW_RECEIVED_TO_GLOBAL");
  return options;
}

std::string describe_program(const RandomUsirProgram& program) {
  return "seed " + std::to_string(program.seed) +
         " (channel mode: " + random_usir::channel_mode_name(program.channel_mode) + "), " +
         program.file_name + ":\n" + program.text;
}

std::string describe_run(const RunResult& result) {
  return std::string(run_status_name(result.status)) +
         (result.message.empty() ? "" : ": " + result.message);
}

// The first difference between two analyses of the same program, or "".
std::string first_difference(const EscapeAnalysis& a, const EscapeAnalysis& b) {
  if (a.sites.size() != b.sites.size())
    return std::to_string(a.sites.size()) + " sites vs " + std::to_string(b.sites.size());
  for (size_t i = 0; i < a.sites.size(); ++i) {
    const SiteDecision& x = a.sites[i];
    const SiteDecision& y = b.sites[i];
    if (x == y) continue;
    std::string what = x.ownership != y.ownership                     ? "class"
                       : x.reasons != y.reasons                       ? "reasons"
                       : x.caller_frame_calls != y.caller_frame_calls ? "caller-frame calls"
                                                                      : "position, site or reason";
    return "site " + std::to_string(x.site_index) + " (" + x.allocation + " at " +
           escape::format_position(a.file_name, x.position) + "): " + what +
           " differ: " + escape::ownership_class_short_name(x.ownership) + " (" + x.short_reason +
           ") vs " + escape::ownership_class_short_name(y.ownership) + " (" + y.short_reason + ")";
  }
  if (a.statistics.sites_per_class != b.statistics.sites_per_class ||
      a.statistics.caller_frame_sites != b.statistics.caller_frame_sites)
    return "statistics differ";
  return "";
}

// Syntactic and analysed constructs of one program: name -> occurrences.
void count_constructs(const ir::Module& module, const EscapeAnalysis& analysis,
                      std::map<std::string, uint64_t>& counts) {
  const ir::TypeTable& types = module.types;
  auto is_object = [&](ir::TypeId type) {
    return type.valid() && types.kind(type) == ir::TypeKind::Pointer;
  };
  for (const ir::StructDefinition& definition : module.structs)
    for (const ir::Field& field : definition.fields) {
      if (is_object(field.type)) ++counts["struct field *S"];
      if (types.kind(field.type) == ir::TypeKind::Array) ++counts["struct field []*S"];
    }
  for (size_t f = 0; f < module.functions.size(); ++f) {
    const ir::Function& function = module.functions[f];
    auto local_type = [&](const ir::Operand& operand) {
      return function.locals[operand.local_index].type;
    };
    auto local_kind = [&](const ir::Operand& operand) {
      return function.locals[operand.local_index].kind;
    };
    for (const ir::Block& block : function.blocks)
      for (const ir::Instruction& instruction : block.instructions) {
        const std::vector<ir::Operand>& operands = instruction.operands;
        switch (instruction.opcode) {
          case ir::Opcode::New:
            ++counts[types.kind(instruction.allocated_type) == ir::TypeKind::Array ? "new [N]T"
                                                                                   : "new S"];
            break;
          case ir::Opcode::NewArray:
            ++counts[operands[0].kind == ir::OperandKind::Integer ? "newarray, constant length"
                                                                  : "newarray, variable length"];
            break;
          case ir::Opcode::StoreField:
            ++counts[operands[1].kind == ir::OperandKind::Local &&
                             types.is_reference(local_type(operands[1]))
                         ? "store reference into field"
                         : "store scalar into field"];
            if (local_kind(operands[0]) != ir::LocalKind::Variable)
              ++counts["store into a parameter or capture"];
            break;
          case ir::Opcode::LoadField:
            ++counts["load field"];
            break;
          case ir::Opcode::StoreIndex:
            ++counts["store element"];
            break;
          case ir::Opcode::LoadIndex:
            ++counts["load element"];
            break;
          case ir::Opcode::Length:
            ++counts["len"];
            break;
          case ir::Opcode::StoreGlobal:
            ++counts["store global"];
            break;
          case ir::Opcode::LoadGlobal:
            ++counts["load global"];
            break;
          case ir::Opcode::Call:
          case ir::Opcode::Go: {
            const bool go = instruction.opcode == ir::Opcode::Go;
            if (instruction.callee_unknown) {
              ++counts[go ? "go unknown" : "call unknown"];
              break;
            }
            if (instruction.callee_index == f) ++counts["self recursion"];
            if (!go && !instruction.result_name.empty() &&
                is_object(function.locals[instruction.result_index].type))
              ++counts["call returning an object"];
            if (go && !operands.empty()) ++counts["go with arguments"];
            if (go && !instruction.captures.empty()) ++counts["go with captures"];
            if (!go && !instruction.captures.empty()) ++counts["call with captures"];
            for (const ir::Block& other :
                 module.functions[instruction.callee_index].blocks)  // f -> g -> f
              for (const ir::Instruction& back : other.instructions)
                if (instruction.callee_index != f && back.opcode == ir::Opcode::Call &&
                    !back.callee_unknown && back.callee_index == f)
                  ++counts["mutual recursion"];
            break;
          }
          case ir::Opcode::MakeChan:
            ++counts["makechan"];
            break;
          case ir::Opcode::Send:
            if (operands[1].kind == ir::OperandKind::Local && is_object(local_type(operands[1])))
              ++counts["send object"];
            break;
          case ir::Opcode::Receive:
            if (is_object(function.locals[instruction.result_index].type))
              ++counts["receive object"];
            break;
          case ir::Opcode::Close:
            ++counts["close"];
            break;
          default:
            break;
        }
      }
  }
  // What the analysis concluded from them (short reasons and reason chains).
  for (const SiteDecision& site : analysis.sites) {
    for (const char* reason :
         {"returned from", "stored into an object of the caller", "size not bounded",
          "captured by a goroutine", "passed to a goroutine", "sent on a channel",
          "stored into global", "passed to an unknown", "stored into an object a global reaches",
          "reachable from a private", "reachable from a shared", "reachable from a global"})
      if (site.short_reason.rfind(reason, 0) == 0) ++counts[std::string("reason: ") + reason];
    if (site.short_reason.find(", where it is ") != std::string::npos)
      ++counts["reason: escapes in a callee"];
    for (const escape::ReasonStep& step : site.reasons)
      if (step.fact.find("an object received from a channel") != std::string::npos) {
        ++counts["reason: stored into a received object"];
        break;
      }
  }
}

struct Sweep {
  std::vector<RandomUsirProgram> programs;
  std::vector<std::string> parse_failures, determinism_failures, run_failures;
  std::vector<RunResult> runs;  // by program; kSetupError for programs that did not parse
  uint64_t runs_with_gc_stress = 0, runs_without_escape_points = 0;
  std::array<uint64_t, escape::kOwnershipClassCount> sites_per_class{}, allocations_per_class{};
  uint64_t caller_frame_sites = 0, caller_frame_allocations = 0, goroutines = 0, steps = 0;
  std::map<std::string, uint64_t> constructs;
};

// What the run in progress is, for the fatal reporter: a runtime check that aborts the process
// (the heap verifier, say) names the program and the lowering before the abort.
const std::string* g_running = nullptr;

void report_running_program(const char* message) {
  if (g_running == nullptr) return;
  std::fprintf(stderr, "usgc: %s\nwhile running %s", message, g_running->c_str());
  std::fflush(stderr);
  std::abort();
}

RunResult run_reporting_aborts(const ir::Module& module, const EscapeAnalysis& analysis,
                               const RunOptions& options, const std::string& running) {
  usgc::kernel::set_fatal_reporter(report_running_program);
  g_running = &running;
  RunResult result = run_program(module, analysis, options);
  g_running = nullptr;
  usgc::kernel::set_fatal_reporter(nullptr);
  return result;
}

// The options of program i's checked run: some under GC stress, some with the use rules only.
RunOptions run_options(size_t i) {
  RunOptions options;
  options.time_limit_ms = kTimeLimitMs;
  if (i % 4 == 1) options.gc_stress_every = 1;
  if (i % 5 == 2) options.check_escape_points = false;
  return options;
}

Sweep make_sweep() {
  Sweep sweep;
  const GeneratorOptions options = generator_options();
  for (uint32_t i = 0; i < seed_count(); ++i) {
    RandomUsirProgram program = random_usir::generate_random_program(kBaseSeed + i, options);
    sweep.programs.push_back(program);
    sweep.runs.emplace_back();
    ir::ParseResult parsed = ir::parse_module(program.text, program.file_name);
    if (!parsed.ok()) {
      sweep.parse_failures.push_back(ir::format_diagnostics(parsed.diagnostics) +
                                     describe_program(program));
      continue;
    }
    const std::string printed = ir::print_module(parsed.module);
    if (printed != program.text) {
      sweep.parse_failures.push_back("not in canonical form; printed:\n" + printed + "generated " +
                                     describe_program(program));
    }
    const EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
    const EscapeAnalysis again = escape::analyze_escapes(parsed.module);
    ir::ParseResult reparsed = ir::parse_module(printed, program.file_name);
    std::string difference = first_difference(analysis, again);
    if (difference.empty() && reparsed.ok())
      difference = first_difference(analysis, escape::analyze_escapes(reparsed.module));
    if (!reparsed.ok())
      difference =
          "the printed module does not parse: " + ir::format_diagnostics(reparsed.diagnostics);
    if (!difference.empty())
      sweep.determinism_failures.push_back(difference + "\n" + describe_program(program));

    const RunOptions run = run_options(i);
    RunResult result = run_reporting_aborts(
        parsed.module, analysis, run, "the analysis' decisions on " + describe_program(program));
    sweep.runs_with_gc_stress += run.gc_stress_every != 0;
    sweep.runs_without_escape_points += !run.check_escape_points;
    if (result.status != RunStatus::kCompleted)
      sweep.run_failures.push_back(describe_run(result) + "\n" + describe_program(program));
    for (const SiteDecision& site : analysis.sites) {
      ++sweep.sites_per_class[static_cast<size_t>(site.ownership)];
      sweep.caller_frame_sites += !site.caller_frame_calls.empty();
    }
    for (size_t c = 0; c < escape::kOwnershipClassCount; ++c)
      sweep.allocations_per_class[c] += result.allocations_per_class[c];
    sweep.caller_frame_allocations += result.caller_frame_allocations;
    sweep.goroutines += result.goroutines_started;
    sweep.steps += result.steps;
    count_constructs(parsed.module, analysis, sweep.constructs);
    sweep.runs.back() = std::move(result);
  }
  return sweep;
}

const Sweep& sweep() {
  static const Sweep instance = make_sweep();
  return instance;
}

// Reports at most a few failures in full (each carries a whole program).
void expect_no_failures(const std::vector<std::string>& failures, const char* what) {
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << sweep().programs.size()
                                << " programs " << what;
  for (size_t i = 0;
       i < failures.size() && i < (std::getenv("USGC_RANDOM_USIR_ALL") ? failures.size() : 3); ++i)
    ADD_FAILURE() << failures[i];
}

TEST(RandomUsirSoundness, TheGeneratorIsDeterministicAndSeedsDiffer) {
  const GeneratorOptions options = generator_options();
  std::set<std::string> texts;
  for (uint64_t seed = kBaseSeed; seed < kBaseSeed + 64; ++seed) {
    RandomUsirProgram first = random_usir::generate_random_program(seed, options);
    RandomUsirProgram second = random_usir::generate_random_program(seed, options);
    EXPECT_EQ(first.text, second.text) << "seed " << seed;
    texts.insert(first.text);
  }
  EXPECT_EQ(texts.size(), 64u) << "64 seeds, distinct programs";
}

TEST(RandomUsirSoundness, ProgramsParseVerifyAndAreCanonical) {
  expect_no_failures(sweep().parse_failures, "do not parse cleanly or are not canonical");
}

TEST(RandomUsirSoundness, TheAnalysisIsDeterministic) {
  expect_no_failures(sweep().determinism_failures,
                     "get different decisions from different analyses");
}

TEST(RandomUsirSoundness, EveryProgramRunsCleanInCheckedMode) {
  expect_no_failures(sweep().run_failures, "do not run to completion in checked mode");
  EXPECT_GT(sweep().runs_with_gc_stress, 0u);
  EXPECT_GT(sweep().runs_without_escape_points, 0u);
}

// A decision lowered by hand on every site it applies to (the oracle's teeth): `lower` changes
// the decision and says whether it did.
struct Lowering {
  const char* name;
  bool check_escape_points;
  uint32_t minimum_trapped_percent;  // of the programs whose clean run allocated a lowered site
  bool (*lower)(SiteDecision& site, const ir::Module& module);
};

bool is_new(const SiteDecision& site) {
  return site.allocation.rfind("new ", 0) == 0;
}
bool reason_is(const SiteDecision& site, const char* prefix) {
  return site.short_reason.rfind(prefix, 0) == 0;
}

// Every `call` of the site's function allocates it in the caller's frame: the object is never
// stored anywhere (caller_frame.hpp), so on the callee's own stack it is only used after its
// frame popped.
bool only_caller_frame_calls(const SiteDecision& site, const ir::Module& module) {
  if (site.caller_frame_calls.empty()) return false;
  size_t calls = 0;
  for (const ir::Function& function : module.functions)
    for (const ir::Block& block : function.blocks)
      for (const ir::Instruction& instruction : block.instructions)
        calls += instruction.opcode == ir::Opcode::Call && !instruction.callee_unknown &&
                 instruction.callee_index == site.function_index;
  return calls == site.caller_frame_calls.size();
}

const Lowering kLowerings[] = {
    {"every heap `new` site on the stack", true, 95,
     [](SiteDecision& site, const ir::Module&) {
       if (!is_new(site) || site.ownership == OwnershipClass::StackLocal) return false;
       site.ownership = OwnershipClass::StackLocal;
       site.caller_frame_calls.clear();
       return true;
     }},
    {"private `new` sites on the stack", true, 80,
     [](SiteDecision& site, const ir::Module&) {
       if (!is_new(site) || site.ownership != OwnershipClass::GoroutinePrivate) return false;
       site.ownership = OwnershipClass::StackLocal;
       site.caller_frame_calls.clear();
       return true;
     }},
    {"shared sites private", true, 80,
     [](SiteDecision& site, const ir::Module&) {
       if (site.ownership != OwnershipClass::GoroutineShared) return false;
       site.ownership = OwnershipClass::GoroutinePrivate;
       return true;
     }},
    // Without the escape-point rules a stack object stored into a heap object reaches the write
    // barrier, which aborts the process (usgc_write's USGC_CHECK): only heap classes are lowered.
    {"shared sites private, use rules only", false, 80,
     [](SiteDecision& site, const ir::Module&) {
       if (site.ownership != OwnershipClass::GoroutineShared) return false;
       site.ownership = OwnershipClass::GoroutinePrivate;
       return true;
     }},
    // Sites whose class comes from the object they are stored into: caught at that store.
    {"sites reachable from shared objects private", true, 75,
     [](SiteDecision& site, const ir::Module&) {
       if (!reason_is(site, "reachable from a shared") &&
           !reason_is(site, "stored into an object other goroutines"))
         return false;
       site.ownership = OwnershipClass::GoroutinePrivate;
       return true;
     }},
    {"sites reachable from global objects shared", true, 50,
     [](SiteDecision& site, const ir::Module&) {
       if (!reason_is(site, "reachable from a global") &&
           !reason_is(site, "stored into an object a global reaches"))
         return false;
       site.ownership = OwnershipClass::GoroutineShared;
       return true;
     }},
    // Often the caller never touches the result after the call, so there is nothing to catch.
    {"caller-frame sites on their own stack, use rules only", false, 5,
     [](SiteDecision& site, const ir::Module& module) {
       if (!only_caller_frame_calls(site, module)) return false;
       site.ownership = OwnershipClass::StackLocal;
       site.caller_frame_calls.clear();
       return true;
     }},
    {"global sites shared", true, 80,
     [](SiteDecision& site, const ir::Module&) {
       if (site.ownership != OwnershipClass::GlobalShared) return false;
       site.ownership = OwnershipClass::GoroutineShared;
       return true;
     }},
};

// Checked mode proves lowered decisions wrong: of the programs whose clean run allocated a
// lowered site, most trap with a CheckViolation, the rest complete (the wrong decision was never
// exposed on the path taken); nothing else happens (a wrong decision never crashes, hangs or
// corrupts a run before checked mode catches it). The rules that fire cover every family.
TEST(RandomUsirSoundness, LoweredDecisionsAreTrappedInCheckedMode) {
  const Sweep& s = sweep();
  std::map<std::string, uint64_t> rules;
  for (const Lowering& lowering : kLowerings) {
    uint64_t applicable = 0, trapped = 0, completed = 0;
    for (size_t i = 0; i < s.programs.size(); ++i) {
      if (s.runs[i].status != RunStatus::kCompleted) continue;
      const RandomUsirProgram& program = s.programs[i];
      ir::ParseResult parsed = ir::parse_module(program.text, program.file_name);
      EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
      bool exercised = false;
      for (SiteDecision& site : analysis.sites)
        if (lowering.lower(site, parsed.module) &&
            s.runs[i].allocations_per_site[site.site_index] > 0)
          exercised = true;
      if (!exercised) continue;
      ++applicable;
      // The clean run's options (a quarter under GC stress: the collections meet the wrong
      // decisions' objects), with the lowering's rules.
      RunOptions options = run_options(i);
      options.check_escape_points = lowering.check_escape_points;
      const std::string running = std::string("the lowering \"") + lowering.name + "\"" +
                                  (options.gc_stress_every != 0 ? " under GC stress" : "") +
                                  " on " + describe_program(program);
      const RunResult result = run_reporting_aborts(parsed.module, analysis, options, running);
      if (result.status == RunStatus::kCheckViolation) {
        ++trapped;
        ++rules[result.violation->rule];
      } else if (result.status == RunStatus::kCompleted) {
        ++completed;
      } else {
        ADD_FAILURE() << lowering.name << ": " << describe_run(result) << "\n"
                      << describe_program(program);
      }
    }
    std::printf("random usir, %s: %llu programs exercise it, %llu trapped, %llu completed\n",
                lowering.name, static_cast<unsigned long long>(applicable),
                static_cast<unsigned long long>(trapped),
                static_cast<unsigned long long>(completed));
    // With received objects unrestricted more sites are global, so fewer have some lowerings'
    // preconditions: every lowering still needs one program in eight.
    EXPECT_GT(applicable, s.programs.size() / 8) << lowering.name;
    EXPECT_GE(trapped * 100, applicable * lowering.minimum_trapped_percent)
        << lowering.name << ": fewer than " << lowering.minimum_trapped_percent << "% trapped";
  }
  for (const auto& [rule, count] : rules)
    std::printf("  %-24s %llu\n", rule.c_str(), static_cast<unsigned long long>(count));
  for (const char* rule :
       {"frame-escape/return", "frame-escape/store", "class-order/store", "publish/send",
        "publish/spawn", "publish/global", "publish/unknown", "frame/dead", "header/published"})
    EXPECT_GT(rules[rule], 0u) << "no lowered decision trapped by " << rule;
}

std::string class_figures(const std::array<uint64_t, escape::kOwnershipClassCount>& counts) {
  std::string text;
  for (size_t c = 0; c < escape::kOwnershipClassCount; ++c)
    text += std::string(c == 0 ? "" : ", ") +
            escape::ownership_class_short_name(static_cast<OwnershipClass>(c)) + " " +
            std::to_string(counts[c]);
  return text;
}

// Every class and caller-frame decisions, decided and allocated; every construct generated.
TEST(RandomUsirSoundness, EveryClassCallerFramesAndEveryConstructOccur) {
  const Sweep& s = sweep();
  std::printf(
      "random usir: %zu programs, %llu steps, %llu goroutines; sites: %s, caller-frame %llu; "
      "allocations: %s, in a caller's frame %llu\n",
      s.programs.size(), static_cast<unsigned long long>(s.steps),
      static_cast<unsigned long long>(s.goroutines), class_figures(s.sites_per_class).c_str(),
      static_cast<unsigned long long>(s.caller_frame_sites),
      class_figures(s.allocations_per_class).c_str(),
      static_cast<unsigned long long>(s.caller_frame_allocations));
  for (size_t c = 0; c < escape::kOwnershipClassCount; ++c) {
    const char* name = escape::ownership_class_short_name(static_cast<OwnershipClass>(c));
    EXPECT_GT(s.sites_per_class[c], 0u) << "no site decided " << name;
    EXPECT_GT(s.allocations_per_class[c], 0u) << "no allocation made " << name;
  }
  EXPECT_GT(s.caller_frame_sites, 0u) << "no caller-frame decision";
  EXPECT_GT(s.caller_frame_allocations, 0u) << "no allocation in a caller's frame";
  EXPECT_GT(s.goroutines, 0u);
  for (const char* construct : {"struct field *S",
                                "struct field []*S",
                                "new S",
                                "new [N]T",
                                "newarray, constant length",
                                "newarray, variable length",
                                "store reference into field",
                                "store scalar into field",
                                "store into a parameter or capture",
                                "load field",
                                "store element",
                                "load element",
                                "len",
                                "store global",
                                "load global",
                                "call unknown",
                                "go unknown",
                                "self recursion",
                                "mutual recursion",
                                "call returning an object",
                                "go with arguments",
                                "go with captures",
                                "call with captures",
                                "makechan",
                                "send object",
                                "receive object",
                                "close",
                                "reason: returned from",
                                "reason: stored into an object of the caller",
                                "reason: size not bounded",
                                "reason: captured by a goroutine",
                                "reason: passed to a goroutine",
                                "reason: sent on a channel",
                                "reason: stored into global",
                                "reason: passed to an unknown",
                                "reason: stored into an object a global reaches",
                                "reason: reachable from a private",
                                "reason: reachable from a shared",
                                "reason: reachable from a global",
                                "reason: escapes in a callee",
                                "reason: stored into a received object"}) {
    auto found = s.constructs.find(construct);
    EXPECT_TRUE(found != s.constructs.end() && found->second > 0)
        << "never generated: " << construct;
  }
  for (const auto& [construct, count] : s.constructs)
    std::printf("  %-48s %llu\n", construct.c_str(), static_cast<unsigned long long>(count));
}

}  // namespace
}  // namespace usgc::jitgen::interpreter
