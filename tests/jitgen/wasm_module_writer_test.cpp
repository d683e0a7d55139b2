// tests/jitgen/wasm_module_writer_test.cpp — the WebAssembly module writer (jitgen/wasm/
// module_writer.hpp) and the lowering's module-level behaviour: LEB128 against the format's
// examples, a hand-built module validated by wabt's wasm-validate and run by node, the writer's
// refusals, and every lowered corpus program validated (also after the coroutine transform). The
// checks that need wasm-validate or node skip with that reason when the tool is absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/wasm/asyncify.hpp"
#include "jitgen/wasm/lowering.hpp"
#include "jitgen/wasm/module_writer.hpp"
#include "tests/jitgen/usir_test_support.hpp"

namespace {

using usgc::jitgen::wasm::append_signed_leb;
using usgc::jitgen::wasm::append_unsigned_leb;
using usgc::jitgen::wasm::Code;
using usgc::jitgen::wasm::ModuleWriter;
using usgc::jitgen::wasm::ValueType;
namespace op = usgc::jitgen::wasm::opcode;

std::vector<uint8_t> unsigned_leb(uint64_t value) {
  std::vector<uint8_t> out;
  append_unsigned_leb(out, value);
  return out;
}
std::vector<uint8_t> signed_leb(int64_t value) {
  std::vector<uint8_t> out;
  append_signed_leb(out, value);
  return out;
}

bool have(const char* command) {
  std::string probe = std::string("command -v ") + command + " >/dev/null 2>&1";
  return std::system(probe.c_str()) == 0;
}

// Runs a shell command; its exit status and stdout.
int run(const std::string& command, std::string* output) {
  output->clear();
  std::FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string write_temporary(const std::vector<uint8_t>& bytes) {
  char path[] = "/tmp/usgc-wasm-test-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
  return path;
}

TEST(WasmModuleWriter, Leb128MatchesTheFormatsExamples) {
  EXPECT_EQ(unsigned_leb(0), (std::vector<uint8_t>{0x00}));
  EXPECT_EQ(unsigned_leb(127), (std::vector<uint8_t>{0x7F}));
  EXPECT_EQ(unsigned_leb(128), (std::vector<uint8_t>{0x80, 0x01}));
  EXPECT_EQ(unsigned_leb(624485), (std::vector<uint8_t>{0xE5, 0x8E, 0x26}));
  EXPECT_EQ(unsigned_leb(UINT32_MAX), (std::vector<uint8_t>{0xFF, 0xFF, 0xFF, 0xFF, 0x0F}));
  EXPECT_EQ(signed_leb(0), (std::vector<uint8_t>{0x00}));
  EXPECT_EQ(signed_leb(-1), (std::vector<uint8_t>{0x7F}));
  EXPECT_EQ(signed_leb(63), (std::vector<uint8_t>{0x3F}));
  EXPECT_EQ(signed_leb(64), (std::vector<uint8_t>{0xC0, 0x00}));
  EXPECT_EQ(signed_leb(-64), (std::vector<uint8_t>{0x40}));
  EXPECT_EQ(signed_leb(-65), (std::vector<uint8_t>{0xBF, 0x7F}));
  EXPECT_EQ(signed_leb(-123456), (std::vector<uint8_t>{0xC0, 0xBB, 0x78}));
  EXPECT_EQ(signed_leb(INT64_MIN).size(), 10u);
  EXPECT_EQ(signed_leb(INT64_MIN).back(), 0x7F);
  EXPECT_EQ(signed_leb(INT64_MAX).back(), 0x00);
}

TEST(WasmModuleWriter, RefusesImportsAfterFunctionsAndMissingBodies) {
  ModuleWriter writer;
  uint32_t f = writer.declare_function({{}, {}});
  EXPECT_EQ(f, 0u);
  EXPECT_EQ(writer.import_function("m", "g", {{}, {}}), UINT32_MAX);
  std::string error;
  EXPECT_TRUE(writer.finish(&error).empty());
  EXPECT_NE(error.find("function 0 is declared but has no body"), std::string::npos) << error;
}

// A module with every section the writer makes: types, an import, memory, a global, exports,
// code (a loop with br_if, memory access), data and a custom section.
std::vector<uint8_t> sample_module() {
  ModuleWriter w;
  const ValueType i64 = ValueType::kI64, i32 = ValueType::kI32;
  uint32_t log = w.import_function("host", "log", {{i64}, {}});
  w.define_memory(1, 2);
  uint32_t counter = w.add_global(i64, true, -5);
  uint32_t add = w.declare_function({{i64, i64}, {i64}});
  uint32_t sum = w.declare_function({{i64}, {i64}});
  uint32_t data = w.declare_function({{}, {i32}});
  Code c;
  c.local_get(0);
  c.local_get(1);
  c.op(op::kI64Add);
  c.global_get(counter);
  c.op(op::kI64Add);
  w.define_function(add, {}, c);
  // sum(n) = 1 + 2 + ... + n, logging n first.
  c = Code();
  c.local_get(0);
  c.call(log);
  c.block();
  c.loop();
  c.local_get(0);
  c.op(op::kI64Eqz);
  c.br_if(1);
  c.local_get(1);
  c.local_get(0);
  c.op(op::kI64Add);
  c.local_set(1);
  c.local_get(0);
  c.i64_const(1);
  c.op(op::kI64Sub);
  c.local_set(0);
  c.br(0);
  c.end();
  c.end();
  c.local_get(1);
  w.define_function(sum, {i64}, c);
  c = Code();
  c.i32_const(16);
  c.i32_load(0);
  c.i32_const(16);
  c.i32_load(4);
  c.op(op::kI32Add);
  w.define_function(data, {}, c);
  w.export_function("add", add);
  w.export_function("sum", sum);
  w.export_function("data", data);
  w.export_global("counter", counter);
  w.export_memory("memory");
  w.add_data(16, {1, 0, 0, 0, 41, 0, 0, 0});
  w.add_custom("usgc.test", {'h', 'i'});
  std::string error;
  std::vector<uint8_t> bytes = w.finish(&error);
  EXPECT_TRUE(error.empty()) << error;
  return bytes;
}

TEST(WasmModuleWriter, SampleModuleValidates) {
  if (!have("wasm-validate")) GTEST_SKIP() << "wabt's wasm-validate is not installed";
  std::string path = write_temporary(sample_module()), output;
  EXPECT_EQ(run("wasm-validate " + path, &output), 0) << output;
  std::remove(path.c_str());
}

TEST(WasmModuleWriter, SampleModuleRunsInNode) {
  if (!have("node")) GTEST_SKIP() << "node is not installed";
  std::string path = write_temporary(sample_module()), output;
  std::string script =
      "const fs=require('fs');const m=new WebAssembly.Module(fs.readFileSync('" + path +
      "'));const logged=[];const i=new WebAssembly.Instance(m,{host:{log:(v)=>logged.push(v)}});"
      "const e=i.exports;console.log(e.add(40n,7n),e.sum(100n),e.data(),logged.join(','),"
      "e.counter.value,new TextDecoder().decode(WebAssembly.Module.customSections(m,'usgc.test')"
      "[0]))";
  EXPECT_EQ(run("node -e \"" + script + "\"", &output), 0) << output;
  EXPECT_EQ(output, "42n 5050n 42 100 -5n hi\n");
  std::remove(path.c_str());
}

usgc::jitgen::ir::ParseResult parse_corpus(const std::string& name) {
  std::filesystem::path path = usgc::testing::source_root() / "tests/escape" / (name + ".usir");
  return usgc::jitgen::ir::parse_module(usgc::testing::read_text_file(path), path.string());
}

// A module with `go` or a channel operation says it needs the coroutine transform; one without
// does not (it runs as lowered, untransformed).
TEST(WasmLowering, SaysWhichModulesNeedTheCoroutineTransform) {
  for (const auto& [name, blocks] : std::map<std::string, bool>{
           {"process_data", true}, {"local_channel", true}, {"arrays", false}}) {
    usgc::jitgen::ir::ParseResult parsed = parse_corpus(name);
    ASSERT_TRUE(parsed.ok());
    auto analysis = usgc::jitgen::escape::analyze_escapes(parsed.module);
    std::string error;
    bool uses_goroutines = false;
    usgc::jitgen::wasm::LowerOptions options;
    options.uses_goroutines = &uses_goroutines;
    auto module = usgc::jitgen::wasm::lower_module(parsed.module, analysis, options, &error);
    ASSERT_TRUE(module.has_value()) << name << ": " << error;
    EXPECT_EQ(uses_goroutines, blocks) << name;
  }
}

TEST(WasmLowering, EveryCorpusProgramIsLoweredAndValidates) {
  if (!have("wasm-validate")) GTEST_SKIP() << "wabt's wasm-validate is not installed";
  size_t accepted = 0, refused = 0, transformed_count = 0;
  for (const std::filesystem::path& file : usgc::testing::usir_corpus_files()) {
    usgc::jitgen::ir::ParseResult parsed = usgc::jitgen::ir::parse_module(
        usgc::testing::read_text_file(file), file.filename().string());
    ASSERT_TRUE(parsed.ok()) << file;
    auto analysis = usgc::jitgen::escape::analyze_escapes(parsed.module);
    for (bool stress : {false, true}) {
      std::string error;
      usgc::jitgen::wasm::LowerOptions options;
      options.gc_stress = stress;
      bool uses_goroutines = false;
      options.uses_goroutines = &uses_goroutines;
      auto module = usgc::jitgen::wasm::lower_module(parsed.module, analysis, options, &error);
      if (!module) {
        ADD_FAILURE() << file << ": " << error;
        ++refused;
        continue;
      }
      ++accepted;
      std::string path = write_temporary(*module), output;
      EXPECT_EQ(run("wasm-validate " + path, &output), 0) << file << ":\n" << output;
      std::remove(path.c_str());
      // What runs is the transformed module (binaryen's asyncify): it validates too (checked
      // once per program: wasm-opt takes a while).
      if (stress || !uses_goroutines || !usgc::jitgen::wasm::asyncify_available()) continue;
      auto transformed = usgc::jitgen::wasm::apply_asyncify(*module, &error);
      ASSERT_TRUE(transformed.has_value()) << file << ": " << error;
      path = write_temporary(*transformed);
      EXPECT_EQ(run("wasm-validate " + path, &output), 0) << file << " (asyncified):\n" << output;
      std::remove(path.c_str());
      ++transformed_count;
    }
  }
  EXPECT_GE(accepted, 2 * 56u);
  EXPECT_EQ(refused, 0u);
  if (usgc::jitgen::wasm::asyncify_available()) {
    EXPECT_GE(transformed_count, 33u);  // the programs with goroutines or channels
  }
}

}  // namespace

namespace {

// The fast paths' wasm instruction counts, as emitted (docs/wasm.md's table): a change to a
// sequence changes them, and this says by how much.
TEST(WasmLowering, InlineSequencesKeepTheirInstructionCounts) {
  std::map<std::string, uint32_t> counts;
  for (const std::filesystem::path& file : usgc::testing::usir_corpus_files()) {
    usgc::jitgen::ir::ParseResult parsed = usgc::jitgen::ir::parse_module(
        usgc::testing::read_text_file(file), file.filename().string());
    ASSERT_TRUE(parsed.ok()) << file;
    auto analysis = usgc::jitgen::escape::analyze_escapes(parsed.module);
    usgc::jitgen::wasm::LowerOptions options;
    std::map<std::string, uint32_t> these;
    options.stub_instructions = &these;
    std::string error;
    if (!usgc::jitgen::wasm::lower_module(parsed.module, analysis, options, &error)) continue;
    for (const auto& [name, instructions] : these) {
      auto [it, inserted] = counts.emplace(name, instructions);
      EXPECT_EQ(it->second, instructions) << name << " differs in " << file;
    }
  }
  EXPECT_EQ(counts["private_alloc"], 25u);
  EXPECT_EQ(counts["poll"], 4u);
  EXPECT_EQ(counts["barrier"], 12u);
  EXPECT_EQ(counts["barrier_value_test"], 16u);
  EXPECT_EQ(counts["frame_pop"], 15u);
  EXPECT_EQ(counts["frame_pop_keep_arena"], 11u);
  EXPECT_EQ(counts["frame_push_0"], 29u);
  EXPECT_EQ(counts["frame_push_2"], 35u);
  EXPECT_EQ(counts["stack_alloc_2"], 31u);
  EXPECT_EQ(counts["stack_alloc_17"], 76u);
}

}  // namespace
