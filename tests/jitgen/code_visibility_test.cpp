// tests/jitgen/code_visibility_test.cpp — compiled code made visible to perf and debuggers:
// the perf map lines (USGC_PERF_MAP=1), the GDB JIT descriptor and the ELF symbol file each
// module hands to the debugger, thread-safe registration, and refusal of bad input.
// Code under test: jitgen/code_visibility/. The code announced is a real function placed in
// executable memory by the test (tests/jitgen/executable_code_blob.hpp) and called through.
// tests/jitgen/code_visibility_gdb.test.sh checks the same registration from gdb itself.
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "jitgen/code_visibility/code_visibility.hpp"
#include "jitgen/code_visibility/gdb_jit_interface.hpp"
#include "jitgen/code_visibility/perf_map.hpp"
#include "tests/jitgen/executable_code_blob.hpp"

namespace usgc::jitgen {
namespace {

using test::ExecutableCodeBlob;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string hex(uintptr_t value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%lx", static_cast<unsigned long>(value));
  return text;
}

// Where the callback was called from (the blob's return address), for the call-through check.
std::atomic<uintptr_t> g_callback_return_address{0};
[[gnu::noinline]] int record_caller_and_double(int value) {
  g_callback_return_address.store(reinterpret_cast<uintptr_t>(__builtin_return_address(0)),
                                  std::memory_order_relaxed);
  return 2 * value;
}

// A symbol found in a module's ELF symbol file: absolute address, size, type.
struct ElfSymbolView {
  uintptr_t address = 0;
  uint64_t size = 0;
  unsigned type = 0;
  bool found = false;
};

// Reads the symbol file of `entry` as a debugger would: header, section headers, .symtab with
// its linked .strtab, symbol values relative to their (ALLOC) section's sh_addr.
ElfSymbolView find_elf_symbol(const jit_code_entry* entry, const std::string& name) {
  ElfSymbolView view;
  const auto* base = reinterpret_cast<const uint8_t*>(entry->symfile_addr);
  if (entry->symfile_size < sizeof(Elf64_Ehdr)) return view;
  Elf64_Ehdr header;
  std::memcpy(&header, base, sizeof(header));
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64 ||
      header.e_machine != EM_X86_64 || header.e_shentsize != sizeof(Elf64_Shdr)) {
    return view;
  }
  std::vector<Elf64_Shdr> sections(header.e_shnum);
  std::memcpy(sections.data(), base + header.e_shoff, header.e_shnum * sizeof(Elf64_Shdr));
  for (const Elf64_Shdr& section : sections) {
    if (section.sh_type != SHT_SYMTAB) continue;
    const Elf64_Shdr& strings = sections.at(section.sh_link);
    for (size_t i = 1; i < section.sh_size / sizeof(Elf64_Sym); ++i) {
      Elf64_Sym symbol;
      std::memcpy(&symbol, base + section.sh_offset + i * sizeof(Elf64_Sym), sizeof(symbol));
      const char* symbol_name =
          reinterpret_cast<const char*>(base + strings.sh_offset + symbol.st_name);
      if (name != symbol_name) continue;
      const Elf64_Shdr& text = sections.at(symbol.st_shndx);
      EXPECT_EQ(text.sh_type, static_cast<uint32_t>(SHT_NOBITS));
      EXPECT_EQ(text.sh_flags, static_cast<uint64_t>(SHF_ALLOC | SHF_EXECINSTR));
      EXPECT_LE(symbol.st_value + symbol.st_size, text.sh_size);
      view.address = text.sh_addr + symbol.st_value;
      view.size = symbol.st_size;
      view.type = ELF64_ST_TYPE(symbol.st_info);
      view.found = true;
    }
  }
  return view;
}

// The registered entry whose symbol file names `name`, or null.
const jit_code_entry* entry_naming(const std::string& name) {
  for (const jit_code_entry* entry = __jit_debug_descriptor.first_entry; entry != nullptr;
       entry = entry->next_entry) {
    if (find_elf_symbol(entry, name).found) return entry;
  }
  return nullptr;
}

size_t registered_entry_count() {
  size_t count = 0;
  const jit_code_entry* previous = nullptr;
  for (const jit_code_entry* entry = __jit_debug_descriptor.first_entry; entry != nullptr;
       entry = entry->next_entry) {
    EXPECT_EQ(entry->prev_entry, previous) << "the descriptor's list is doubly linked";
    previous = entry;
    ++count;
  }
  return count;
}

class CodeVisibilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    map_path_ = perf_map_path(static_cast<int>(getpid()));
    ::unlink(map_path_.c_str());
    ASSERT_TRUE(blob_.ok()) << "could not place test code in executable memory";
  }
  void TearDown() override {
    ::unsetenv("USGC_PERF_MAP");
    ::unlink(map_path_.c_str());
  }
  std::string map_path_;
  ExecutableCodeBlob blob_{2, 64};
};

TEST_F(CodeVisibilityTest, PerfMapHasOneLinePerAnnouncedFunctionInPerfsFormat) {
  // The code runs and calls back from inside the blob: these are real functions.
  ASSERT_EQ(blob_.function(0)(record_caller_and_double, 20), 41);
  uintptr_t start = reinterpret_cast<uintptr_t>(blob_.start(0));
  uintptr_t caller = g_callback_return_address.load(std::memory_order_relaxed);
  EXPECT_GT(caller, start);
  EXPECT_LT(caller, start + ExecutableCodeBlob::size_bytes());

  ::setenv("USGC_PERF_MAP", "1", 1);
  std::vector<CompiledSymbol> symbols = {
      {"perf_map_test::first", blob_.start(0), ExecutableCodeBlob::size_bytes()},
      {"perf_map_test::second function", blob_.start(1), ExecutableCodeBlob::size_bytes()},
  };
  VisibleModule* module = announce_compiled_module("perf_map_test", symbols);
  ASSERT_NE(module, nullptr);
  std::string map = read_file(map_path_);
  for (const CompiledSymbol& symbol : symbols) {
    std::string line = hex(reinterpret_cast<uintptr_t>(symbol.start)) + " " +
                       hex(symbol.size_bytes) + " " + symbol.name + "\n";
    EXPECT_NE(map.find(line), std::string::npos) << "missing line: " << line << "in:\n" << map;
  }
  EXPECT_EQ(map.find("0x"), std::string::npos) << "perf's format has no 0x prefix";
  struct stat info;
  ASSERT_EQ(::stat(map_path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_EQ(info.st_uid, ::geteuid());

  // A second module appends; the first module's lines stay.
  CompiledSymbol third{"perf_map_test::third", blob_.start(1), 8};
  VisibleModule* second_module = announce_compiled_module("perf_map_test_2", {&third, 1});
  ASSERT_NE(second_module, nullptr);
  std::string grown = read_file(map_path_);
  EXPECT_EQ(grown.substr(0, map.size()), map);
  EXPECT_NE(grown.find(hex(reinterpret_cast<uintptr_t>(third.start)) + " 8 perf_map_test::third\n"),
            std::string::npos);
  withdraw_compiled_module(second_module);
  withdraw_compiled_module(module);
}

TEST_F(CodeVisibilityTest, PerfMapIsWrittenOnlyWhenAskedFor) {
  ::setenv("USGC_PERF_MAP", "0", 1);
  CompiledSymbol symbol{"perf_map_off", blob_.start(0), ExecutableCodeBlob::size_bytes()};
  VisibleModule* module = announce_compiled_module("perf_map_off", {&symbol, 1});
  ASSERT_NE(module, nullptr);
  EXPECT_NE(::access(map_path_.c_str(), F_OK), 0) << map_path_ << " written with USGC_PERF_MAP=0";
  withdraw_compiled_module(module);
}

TEST_F(CodeVisibilityTest, PerfMapNeverFollowsASymlinkPlantedUnderItsName) {
  char directory[] = "/tmp/usgc-perf-map-test-XXXXXX";
  ASSERT_NE(::mkdtemp(directory), nullptr);
  std::string target = std::string(directory) + "/target";
  { std::ofstream create(target); }
  ASSERT_EQ(::symlink(target.c_str(), map_path_.c_str()), 0);

  CompiledSymbol symbol{"perf_map_symlink", blob_.start(0), ExecutableCodeBlob::size_bytes()};
  kernel::Status appended = append_to_perf_map({&symbol, 1});
  EXPECT_FALSE(appended.ok());
  EXPECT_EQ(appended.error(), ELOOP);
  ::setenv("USGC_PERF_MAP", "1", 1);
  // The debugger registration does not depend on the perf map.
  VisibleModule* module = announce_compiled_module("perf_map_symlink", {&symbol, 1});
  EXPECT_NE(module, nullptr);
  EXPECT_EQ(read_file(target), "") << "the symlink's target was written";
  withdraw_compiled_module(module);
  ::unlink(target.c_str());
  ::rmdir(directory);
}

TEST_F(CodeVisibilityTest, PerfMapRefusesAFileThatIsNotARegularFileWithoutBlocking) {
  ASSERT_EQ(::mkfifo(map_path_.c_str(), 0600), 0);
  CompiledSymbol symbol{"perf_map_fifo", blob_.start(0), ExecutableCodeBlob::size_bytes()};
  // No reader: a blocking open would hang here; the writer opens non-blocking and gets ENXIO.
  kernel::Status without_reader = append_to_perf_map({&symbol, 1});
  EXPECT_EQ(without_reader.error(), ENXIO);
  // With a reader the open succeeds, and the file is refused for not being a regular file.
  int reader = ::open(map_path_.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  kernel::Status with_reader = append_to_perf_map({&symbol, 1});
  EXPECT_EQ(with_reader.error(), EPERM);
  char byte;
  EXPECT_LE(::read(reader, &byte, 1), 0) << "a line was written into the FIFO";
  ::close(reader);
}

TEST_F(CodeVisibilityTest, GdbDescriptorHoldsAnElfSymbolFileNamingEachFunction) {
  EXPECT_EQ(__jit_debug_descriptor.version, 1u);
  size_t before = registered_entry_count();
  std::vector<CompiledSymbol> symbols = {
      {"gdb_test::low", blob_.start(0), ExecutableCodeBlob::size_bytes()},
      {"gdb_test::high", blob_.start(1), ExecutableCodeBlob::size_bytes()},
  };
  VisibleModule* module = announce_compiled_module("gdb_test", symbols);
  ASSERT_NE(module, nullptr);
  EXPECT_EQ(registered_entry_count(), before + 1);
  EXPECT_EQ(__jit_debug_descriptor.action_flag, static_cast<uint32_t>(JIT_NOACTION));
  const jit_code_entry* entry = entry_naming("gdb_test::low");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(__jit_debug_descriptor.first_entry, entry) << "a new entry goes to the list's head";
  EXPECT_EQ(__jit_debug_descriptor.relevant_entry, entry);
  for (const CompiledSymbol& symbol : symbols) {
    ElfSymbolView view = find_elf_symbol(entry, symbol.name);
    ASSERT_TRUE(view.found) << symbol.name;
    EXPECT_EQ(view.address, reinterpret_cast<uintptr_t>(symbol.start)) << symbol.name;
    EXPECT_EQ(view.size, symbol.size_bytes) << symbol.name;
    EXPECT_EQ(view.type, static_cast<unsigned>(STT_FUNC)) << symbol.name;
  }
  withdraw_compiled_module(module);
  EXPECT_EQ(registered_entry_count(), before);
  EXPECT_EQ(entry_naming("gdb_test::low"), nullptr);
  EXPECT_EQ(__jit_debug_descriptor.action_flag, static_cast<uint32_t>(JIT_NOACTION));
}

TEST_F(CodeVisibilityTest, WithdrawingFromTheMiddleKeepsTheOtherModules) {
  size_t before = registered_entry_count();
  CompiledSymbol a{"middle_test::a", blob_.start(0), 4};
  CompiledSymbol b{"middle_test::b", blob_.start(0), 8};
  CompiledSymbol c{"middle_test::c", blob_.start(1), 8};
  VisibleModule* first = announce_compiled_module("a", {&a, 1});
  VisibleModule* middle = announce_compiled_module("b", {&b, 1});
  VisibleModule* last = announce_compiled_module("c", {&c, 1});
  ASSERT_TRUE(first && middle && last);
  withdraw_compiled_module(middle);
  EXPECT_EQ(registered_entry_count(), before + 2);
  EXPECT_NE(entry_naming("middle_test::a"), nullptr);
  EXPECT_EQ(entry_naming("middle_test::b"), nullptr);
  EXPECT_NE(entry_naming("middle_test::c"), nullptr);
  withdraw_compiled_module(last);
  withdraw_compiled_module(first);
  EXPECT_EQ(registered_entry_count(), before);
}

TEST_F(CodeVisibilityTest, ConcurrentAnnouncementsAndWithdrawalsKeepTheListConsistent) {
  size_t before = registered_entry_count();
  constexpr int kThreads = 4;
  constexpr int kRounds = 300;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        CompiledSymbol symbol{"concurrent_" + std::to_string(t), blob_.start(t % 2), 16};
        VisibleModule* kept = announce_compiled_module("concurrent", {&symbol, 1});
        VisibleModule* dropped = announce_compiled_module("concurrent", {&symbol, 1});
        if (kept == nullptr || dropped == nullptr) failures.fetch_add(1);
        withdraw_compiled_module(dropped);
        withdraw_compiled_module(kept);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(registered_entry_count(), before);
}

TEST_F(CodeVisibilityTest, InvalidSymbolsAnnounceNothing) {
  ::setenv("USGC_PERF_MAP", "1", 1);
  size_t before = registered_entry_count();
  const void* code = blob_.start(0);
  std::vector<std::vector<CompiledSymbol>> invalid = {
      {},
      {{"", code, 16}},
      {{"null_start", nullptr, 16}},
      {{"zero_size", code, 0}},
      {{"new\nline", code, 16}},
      {{std::string("nul\0inside", 10), code, 16}},
      {{"wraps", reinterpret_cast<const void*>(UINTPTR_MAX - 4), 16}},
      {{"valid", code, 16}, {"", code, 16}},
  };
  for (const auto& symbols : invalid) {
    testing::internal::CaptureStderr();
    VisibleModule* module = announce_compiled_module("invalid", symbols);
    std::string message = testing::internal::GetCapturedStderr();
    EXPECT_EQ(module, nullptr);
    EXPECT_NE(message.find("announce_compiled_module(\"invalid\")"), std::string::npos) << message;
    withdraw_compiled_module(module);  // null: nothing
  }
  EXPECT_EQ(registered_entry_count(), before);
  EXPECT_NE(::access(map_path_.c_str(), F_OK), 0) << "invalid modules reached the perf map";
}

}  // namespace
}  // namespace usgc::jitgen
