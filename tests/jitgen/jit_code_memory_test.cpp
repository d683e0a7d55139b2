// tests/jitgen/jit_code_memory_test.cpp — compiled code is never writable and executable at once:
// /proc/self/maps, read while the code is being written (the compile hook) and after, shows no
// mapping with both w and x; the code's own mapping is rw- while written, r-x after, and gone
// once the module is destroyed.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/compiled_module.hpp"
#include "tests/jitgen/usir_test_support.hpp"

namespace usgc::jitgen::x86_64 {
namespace {

struct Mapping {
  uintptr_t begin = 0, end = 0;
  std::string permissions;
};

std::vector<Mapping> read_maps() {
  std::ifstream maps("/proc/self/maps");
  std::vector<Mapping> mappings;
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream fields(line);
    std::string range, permissions;
    fields >> range >> permissions;
    size_t dash = range.find('-');
    Mapping mapping;
    mapping.begin = std::stoull(range.substr(0, dash), nullptr, 16);
    mapping.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    mapping.permissions = permissions;
    mappings.push_back(mapping);
  }
  return mappings;
}

std::vector<std::string> writable_and_executable(const std::vector<Mapping>& mappings) {
  std::vector<std::string> found;
  for (const Mapping& mapping : mappings)
    if (mapping.permissions.find('w') != std::string::npos &&
        mapping.permissions.find('x') != std::string::npos)
      found.push_back(std::to_string(mapping.begin) + " " + mapping.permissions);
  return found;
}

// The permissions of the mapping holding [address, address + bytes), or "" when none does.
std::string permissions_of(const std::vector<Mapping>& mappings, const void* address,
                           size_t bytes) {
  auto begin = reinterpret_cast<uintptr_t>(address);
  for (const Mapping& mapping : mappings)
    if (mapping.begin <= begin && begin + bytes <= mapping.end) return mapping.permissions;
  return "";
}

struct WhileWritten {
  int calls = 0;
  std::string code_permissions;
  std::vector<std::string> writable_and_executable;
};

TEST(JitCodeMemory, CodeIsNeverWritableAndExecutableAtOnce) {
  const auto path = usgc::testing::source_root() / "tests/escape/process_data.usir";
  ir::ParseResult parsed =
      ir::parse_module(usgc::testing::read_text_file(path), "process_data.usir");
  ASSERT_TRUE(parsed.ok());
  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
  EXPECT_TRUE(writable_and_executable(read_maps()).empty()) << "before compiling";

  WhileWritten seen;
  CompileOptions options;
  options.hook_argument = &seen;
  options.after_code_written = [](const void* mapping, size_t bytes, void* argument) {
    auto& seen = *static_cast<WhileWritten*>(argument);
    std::vector<Mapping> mappings = read_maps();
    ++seen.calls;
    seen.code_permissions = permissions_of(mappings, mapping, bytes);
    seen.writable_and_executable = writable_and_executable(mappings);
  };
  std::string error;
  auto compiled = CompiledModule::compile(parsed.module, analysis, options, &error);
  ASSERT_NE(compiled, nullptr) << error;
  EXPECT_EQ(seen.calls, 1);
  EXPECT_EQ(seen.code_permissions.substr(0, 3), "rw-") << "while the code is written";
  EXPECT_TRUE(seen.writable_and_executable.empty())
      << "while writing: " << seen.writable_and_executable.front();

  std::vector<Mapping> after = read_maps();
  EXPECT_EQ(permissions_of(after, compiled->mapping(), compiled->mapping_bytes()).substr(0, 3),
            "r-x");
  EXPECT_TRUE(writable_and_executable(after).empty());
  interpreter::RunResult result = run_compiled(*compiled, {});
  EXPECT_EQ(result.status, interpreter::RunStatus::kCompleted) << result.message;
  EXPECT_TRUE(writable_and_executable(read_maps()).empty()) << "after a run";

  const void* mapping = compiled->mapping();
  const size_t bytes = compiled->mapping_bytes();
  compiled.reset();
  EXPECT_NE(permissions_of(read_maps(), mapping, bytes).substr(0, 3), "r-x")
      << "the code is unmapped with its module";
}

}  // namespace
}  // namespace usgc::jitgen::x86_64
