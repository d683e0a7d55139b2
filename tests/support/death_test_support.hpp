// tests/support/death_test_support.hpp — helpers the death tests of several suites share
// (header-only, so the preload test binary, which links nothing of usgc, can use it too).
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>

namespace usgc_test {

// While alive, death tests run in a freshly exec'd copy of the binary ("threadsafe" style):
// other tests may have left threads (io_uring workers, stress threads) that make a plain
// fork() child unreliable.
class ThreadsafeDeathTests {
 public:
  ThreadsafeDeathTests() : saved_(GTEST_FLAG_GET(death_test_style)) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
  }
  ~ThreadsafeDeathTests() { GTEST_FLAG_SET(death_test_style, saved_); }

 private:
  std::string saved_;
};

// Matches captured stderr that holds exactly one line matching `pattern` (ECMAScript regex).
class ExactlyOneLineMatching : public testing::MatcherInterface<const std::string&> {
 public:
  explicit ExactlyOneLineMatching(std::string pattern) : pattern_(std::move(pattern)) {}
  bool MatchAndExplain(const std::string& output,
                       testing::MatchResultListener* listener) const override {
    const std::regex regex(pattern_);
    std::istringstream lines(output);
    std::string line;
    int matching = 0;
    while (std::getline(lines, line)) {
      if (std::regex_search(line, regex)) ++matching;
    }
    *listener << "has " << matching << " matching lines";
    return matching == 1;
  }
  void DescribeTo(std::ostream* os) const override {
    *os << "has exactly one line matching " << pattern_;
  }

 private:
  std::string pattern_;
};

inline testing::Matcher<const std::string&> exactly_one_line_matching(std::string pattern) {
  return testing::MakeMatcher(new ExactlyOneLineMatching(std::move(pattern)));
}

// Through an empty asm, so the compiler neither warns about nor reasons from the misuse.
inline void* launder(void* pointer) {
  asm volatile("" : "+r"(pointer));
  return pointer;
}

// Stores `value` through a null pointer: the SIGSEGV that the fault-handler tests provoke on
// purpose. Not checked by UBSan, whose null check would report the store and stop the process
// before the fault the test is about (make ubsan).
[[gnu::noinline, gnu::no_sanitize("null")]] inline void store_through_null(int value) {
  *static_cast<volatile int*>(launder(nullptr)) = value;
}

}  // namespace usgc_test
