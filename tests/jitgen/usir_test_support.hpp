// tests/jitgen/usir_test_support.hpp — finding and reading the .usir corpus (tests/escape/) and
// docs/usir.md from the unit tests, whether they run from the source root (tests/run_all.sh) or
// from elsewhere (then the root is found from the test binary: <root>/<build>/tests/unit_tests).
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace usgc::testing {

inline std::filesystem::path source_root() {
  namespace fs = std::filesystem;
  if (fs::exists("tests/escape")) return fs::current_path();
  std::error_code error;
  fs::path binary = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    fs::path candidate = binary.parent_path().parent_path().parent_path();
    if (fs::exists(candidate / "tests/escape")) return candidate;
  }
  return fs::current_path();
}

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::stringstream contents;
  contents << stream.rdbuf();
  return contents.str();
}

// Every tests/escape/*.usir, sorted by name.
inline std::vector<std::filesystem::path> usir_corpus_files() {
  std::vector<std::filesystem::path> files;
  std::filesystem::path directory = source_root() / "tests/escape";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    if (entry.path().extension() == ".usir") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace usgc::testing
