// tests/jitgen/wasm_publication_site_test.cpp — a STACK_LOCAL object deeper inside a graph that a
// lowered store, global store or `go` publishes stops the run in node with the collector's
// message (gc/publication.cpp) at the source position of that operation
// (jitgen/wasm/runtime/publication_site.cpp), exit 1, like every positioned runtime error.
//
// Correct escape decisions never let this happen, so the test makes them wrong: the inner
// object's site is forced to STACK_LOCAL and its holder's to GOROUTINE_PRIVATE, and the lowering
// omits the barrier's value test (LowerOptions::omit_stack_value_tests), so the stack object
// reaches the private holder unchecked, as it would under a bug. With the value test (the
// default) the same program stops at the inner store instead, with the lowered code's own
// message: the test proves both positions. Skips when node or the wasm runtime (make wasm) is
// absent, the `go` case when binaryen's wasm-opt is.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/wasm/asyncify.hpp"
#include "jitgen/wasm/lowering.hpp"

namespace {

namespace escape = usgc::jitgen::escape;
namespace wasm = usgc::jitgen::wasm;

bool have(const char* command) {
  std::string probe = std::string("command -v ") + command + " >/dev/null 2>&1";
  return std::system(probe.c_str()) == 0;
}

// build/wasm beside build/tests/unit_tests.
std::filesystem::path wasm_build_directory() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "wasm";
}

struct RunResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

// Lowers `source` with the sites named in `forced` (by their position's line) in those classes,
// runs the module in node's host; the host's status and output.
RunResult lower_and_run(const std::string& source,
                        const std::vector<std::pair<uint32_t, escape::OwnershipClass>>& forced,
                        bool omit_value_tests) {
  RunResult result;
  usgc::jitgen::ir::ParseResult parsed = usgc::jitgen::ir::parse_module(source, "published.usir");
  EXPECT_TRUE(parsed.ok());
  if (!parsed.ok()) return result;
  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
  for (const auto& [line, ownership] : forced) {
    bool found = false;
    for (escape::SiteDecision& site : analysis.sites) {
      if (site.position.line != line) continue;
      site.ownership = ownership;
      found = true;
    }
    EXPECT_TRUE(found) << "no allocation site on line " << line;
  }
  wasm::LowerOptions options;
  options.omit_stack_value_tests = omit_value_tests;
  bool uses_goroutines = false;
  options.uses_goroutines = &uses_goroutines;
  std::string error;
  auto module = wasm::lower_module(parsed.module, analysis, options, &error);
  EXPECT_TRUE(module.has_value()) << error;
  if (!module) return result;
  if (uses_goroutines) {
    module = wasm::apply_asyncify(*module, &error);
    EXPECT_TRUE(module.has_value()) << error;
    if (!module) return result;
  }
  char path[] = "/tmp/usgc-wasm-published-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, module->data(), module->size()), static_cast<ssize_t>(module->size()));
  close(fd);
  std::filesystem::path build = wasm_build_directory();
  std::string command = "node " + (build / "usgc-wasm-host.mjs").string() +
                        " --runtime=" + (build / "usgc-wasm-runtime.wasm").string() + " " + path +
                        " 2>&1";
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe != nullptr) {
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
    int status = pclose(pipe);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::remove(path);
  return result;
}

// Line numbers matter: the sites are forced by line, the messages checked by position.
const char kProgram[] =
    "type Cell { value: int, next: *Cell }\n"  // 1
    "global root: *Cell\n"                     // 2
    "func keep(%c: *Cell) {\n"                 // 3
    "entry:\n"                                 // 4
    "  ret\n"                                  // 5
    "}\n"                                      // 6
    "func main() -> int {\n"                   // 7
    "  var %inner: *Cell\n"                    // 8
    "  var %outer: *Cell\n"                    // 9
    "  var %shared: *Cell\n"                   // 10
    "entry:\n"                                 // 11
    "  %inner = new Cell\n"                    // 12: forced STACK_LOCAL
    "  %outer = new Cell\n"                    // 13: forced GOROUTINE_PRIVATE
    "  %shared = new Cell\n"                   // 14: GOROUTINE_SHARED
    "  store %outer.next, %inner\n"            // 15: the stack object into the private one
    "  PUBLISH\n"                              // 16: the publication under test
    "  ret 0\n"                                // 17
    "}\n";

std::string program_with(const std::string& publication) {
  std::string text = kProgram;
  text.replace(text.find("PUBLISH"), 7, publication);
  return text;
}

const std::vector<std::pair<uint32_t, escape::OwnershipClass>> kForced = {
    {12, escape::OwnershipClass::StackLocal},
    {13, escape::OwnershipClass::GoroutinePrivate},
    {14, escape::OwnershipClass::GoroutineShared}};

class WasmPublicationSite : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("node")) GTEST_SKIP() << "node is not installed";
    if (!std::filesystem::exists(wasm_build_directory() / "usgc-wasm-runtime.wasm"))
      GTEST_SKIP() << "the wasm runtime is not built (make wasm)";
  }
};

void expect_collector_stop_at(const RunResult& run, const std::string& position) {
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_NE(run.output.find("published.usir:" + position + ": runtime error: "), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("STACK_LOCAL object 0x"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("a stack object must not escape its frame"), std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("returned"), std::string::npos) << run.output;
}

TEST_F(WasmPublicationSite, GlobalStoreOfAGraphHoldingAStackObjectStopsAtTheStore) {
  RunResult run = lower_and_run(program_with("store @root, %outer"), kForced, true);
  expect_collector_stop_at(run, "16:3");
}

TEST_F(WasmPublicationSite, BarrierStoreIntoASharedObjectStopsAtTheStore) {
  RunResult run = lower_and_run(program_with("store %shared.next, %outer"), kForced, true);
  expect_collector_stop_at(run, "16:3");
}

TEST_F(WasmPublicationSite, GoWithAGraphHoldingAStackObjectStopsAtTheGo) {
  if (!wasm::asyncify_available()) GTEST_SKIP() << "binaryen's wasm-opt is not installed";
  RunResult run = lower_and_run(program_with("go keep(%outer)"), kForced, true);
  expect_collector_stop_at(run, "16:3");
}

// The control: the value test in place, the lowered code stops the inner store itself.
TEST_F(WasmPublicationSite, WithTheValueTestTheInnerStoreIsStoppedFirst) {
  RunResult run = lower_and_run(program_with("store @root, %outer"), kForced, false);
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_NE(run.output.find("published.usir:15:3: runtime error: a STACK_LOCAL object stored into "
                            "a heap object (escape analysis bug)"),
            std::string::npos)
      << run.output;
}

// And the program itself is fine with the analysis' own decisions.
TEST_F(WasmPublicationSite, WithTheAnalysisDecisionsTheProgramRuns) {
  RunResult run = lower_and_run(program_with("store @root, %outer"), {}, false);
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("main returned 0"), std::string::npos) << run.output;
}

}  // namespace
