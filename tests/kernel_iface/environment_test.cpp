// tests/kernel_iface/environment_test.cpp — the one reader of USGC_* variables
// (kernel_iface/environment.hpp): every variable of the table against empty, garbage, negative,
// overflowing, huge and valid values; bounds checked on the 64-bit value before narrowing; one
// refusal line naming the variable, the value and the range; secure_getenv semantics for empty
// values. (tests/runtime/environment_matrix.test.sh runs the same matrix through a real program.)
#include "kernel_iface/environment.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

namespace usgc::kernel {
namespace {

// Sets a variable for one test and restores the previous value.
class ScopedVariable {
 public:
  ScopedVariable(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      had_ = true;
      old_ = old;
    }
    ::setenv(name, value, 1);
  }
  ~ScopedVariable() {
    if (had_)
      ::setenv(name_, old_.c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

// What the reader returned and printed for one value of one variable.
struct Reading {
  uint64_t value;
  std::string message;
};

Reading read_with(EnvironmentVariableId id, const char* text, uint64_t default_value) {
  ScopedVariable variable(environment_variable(id).name, text);
  forget_refused_environment_values();
  ::testing::internal::CaptureStderr();
  uint64_t value = environment_variable(id).kind == EnvironmentKind::kChoice
                       ? read_environment_choice(id, static_cast<uint32_t>(default_value))
                       : read_environment_number(id, default_value);
  return {value, ::testing::internal::GetCapturedStderr()};
}

EnvironmentVariableId id_at(uint32_t index) {
  return static_cast<EnvironmentVariableId>(index);
}

TEST(Environment, EveryVariableIsNamedUsgcAndUnique) {
  for (uint32_t i = 0; i < kEnvironmentVariableCount; ++i) {
    const EnvironmentVariable& variable = environment_variable(id_at(i));
    EXPECT_EQ(std::strncmp(variable.name, "USGC_", 5), 0) << variable.name;
    for (uint32_t j = 0; j < i; ++j)
      EXPECT_STRNE(variable.name, environment_variable(id_at(j)).name);
    if (variable.kind == EnvironmentKind::kNumber || variable.kind == EnvironmentKind::kSize) {
      EXPECT_LE(variable.minimum, variable.maximum) << variable.name;
    }
  }
  EXPECT_STREQ(environment_variable(EnvironmentVariableId::kStackGuard).name, "USGC_STACK_GUARD");
  EXPECT_STREQ(environment_variable(EnvironmentVariableId::kSafepointArming).name,
               "USGC_SAFEPOINT_ARMING");
}

// The matrix: each variable x each class of bad value is refused (the default is returned, one
// line names variable, value and range); empty is the default, silently.
TEST(Environment, MatrixOfBadValuesIsRefusedWithOneLine) {
  const char* const bad_values[] = {
      "abc",                   // garbage
      "-1",                    // negative (strtoull would take it as SIZE_MAX)
      "18446744073709551616",  // overflows 64 bits
      "18446744073709551615",  // huge: above every range
      "17179869184G",          // overflows with a suffix
      " 5",                    // a space
      "5x",                    // trailing garbage
  };
  constexpr uint64_t kSentinelDefault = 1;  // a valid index for choices, a number for the rest
  for (uint32_t i = 0; i < kEnvironmentVariableCount; ++i) {
    const EnvironmentVariable& variable = environment_variable(id_at(i));
    if (variable.kind == EnvironmentKind::kPath) continue;  // every one of these is a file name
    for (const char* text : bad_values) {
      Reading reading = read_with(id_at(i), text, kSentinelDefault);
      EXPECT_EQ(reading.value, kSentinelDefault) << variable.name << "=" << text;
      std::string want = std::string("usgc: ") + variable.name + "=\"" + text + "\" refused: want ";
      EXPECT_EQ(reading.message.rfind(want, 0), 0u)
          << variable.name << "=" << text << ": " << reading.message;
      EXPECT_NE(reading.message.find("; using the default ("), std::string::npos)
          << reading.message;
      EXPECT_EQ(std::count(reading.message.begin(), reading.message.end(), '\n'), 1)
          << reading.message;
    }
    Reading empty = read_with(id_at(i), "", kSentinelDefault);
    EXPECT_EQ(empty.value, kSentinelDefault) << variable.name;
    EXPECT_EQ(empty.message, "") << variable.name;
  }
}

// A file name variable (USGC_PROF_FILE): too long or with a control byte is refused with one line
// (the byte escaped), and the default is used; a plain name is taken silently.
TEST(Environment, PathVariablesRefuseControlBytesAndOverlongNames) {
  const EnvironmentVariableId id = EnvironmentVariableId::kProfFile;
  ASSERT_EQ(environment_variable(id).kind, EnvironmentKind::kPath);
  std::string overlong(5000, 'a');
  const char* const bad[] = {"a\nb", "\x1b[31mred", overlong.c_str()};
  for (const char* text : bad) {
    ScopedVariable variable("USGC_PROF_FILE", text);
    forget_refused_environment_values();
    ::testing::internal::CaptureStderr();
    const char* value = read_environment_path(id, "the-default");
    std::string message = ::testing::internal::GetCapturedStderr();
    EXPECT_STREQ(value, "the-default");
    EXPECT_EQ(message.rfind("usgc: USGC_PROF_FILE=\"", 0), 0u) << message;
    EXPECT_NE(message.find("refused: want a file name of 1..4095 bytes"), std::string::npos)
        << message;
    EXPECT_EQ(message.find('\x1b'), std::string::npos) << "the value is escaped";
    EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 1) << message;
  }
  ScopedVariable variable("USGC_PROF_FILE", "/tmp/some dir/p.heap.pb.gz");
  forget_refused_environment_values();
  ::testing::internal::CaptureStderr();
  EXPECT_STREQ(read_environment_path(id, "the-default"), "/tmp/some dir/p.heap.pb.gz");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(Environment, ValidValuesAreTakenSilently) {
  struct Case {
    EnvironmentVariableId id;
    const char* text;
    uint64_t value;
  };
  const Case cases[] = {
      {EnvironmentVariableId::kDecayMs, "0", 0},
      {EnvironmentVariableId::kDecayMs, "3600000", 3600000},
      {EnvironmentVariableId::kDecommit, "madvise", 2},
      {EnvironmentVariableId::kStats, "off", 0},
      {EnvironmentVariableId::kStats, "yes", 1},
      {EnvironmentVariableId::kStatsIntervalMs, "1", 1},
      {EnvironmentVariableId::kProcs, "1024", 1024},
      {EnvironmentVariableId::kStackSize, "16K", 16384},
      {EnvironmentVariableId::kStackSize, "1GiB", 1u << 30},
      {EnvironmentVariableId::kStackGuard, "4096", 4096},
      {EnvironmentVariableId::kStackGuard, "64MB", 64u << 20},
      {EnvironmentVariableId::kPreemptUs, "0", 0},
      {EnvironmentVariableId::kPreemptUs, "60000000", 60000000},
      {EnvironmentVariableId::kGcPercent, "off", kEnvironmentOff},
      {EnvironmentVariableId::kGcPercent, "100000", 100000},
      {EnvironmentVariableId::kHeapMax, "64T", uint64_t{64} << 40},
      {EnvironmentVariableId::kHeapMax, "1m", 1u << 20},
      {EnvironmentVariableId::kTrace, "gc", 1},
      {EnvironmentVariableId::kVerify, "1", 1},
      {EnvironmentVariableId::kSafepointArming, "swap", 1},
      {EnvironmentVariableId::kProf, "1", 1},
      {EnvironmentVariableId::kProfSample, "1", 1},
      {EnvironmentVariableId::kProfSample, "512K", 512u << 10},
      {EnvironmentVariableId::kProfSample, "1G", 1u << 30},
      {EnvironmentVariableId::kLeaks, "yes", 1},
  };
  for (const Case& c : cases) {
    Reading reading = read_with(c.id, c.text, 0);
    EXPECT_EQ(reading.value, c.value) << environment_variable(c.id).name << "=" << c.text;
    EXPECT_EQ(reading.message, "") << environment_variable(c.id).name << "=" << c.text;
  }
}

// One past each bound is refused: the range is checked on the full value, before narrowing
// (USGC_PROCS=4294967297 was 1, USGC_PREEMPT_US=4294967296 was 0, USGC_STACK_GUARD=-1 was 0).
TEST(Environment, OnePastEachBoundIsRefused) {
  struct Case {
    EnvironmentVariableId id;
    const char* text;
  };
  const Case cases[] = {
      {EnvironmentVariableId::kProcs, "0"},
      {EnvironmentVariableId::kProcs, "1025"},
      {EnvironmentVariableId::kProcs, "4294967297"},
      {EnvironmentVariableId::kPreemptUs, "4294967296"},
      {EnvironmentVariableId::kStackGuard, "4095"},
      {EnvironmentVariableId::kStackGuard, "0"},
      {EnvironmentVariableId::kStackSize, "8191"},
      {EnvironmentVariableId::kStackSize, "1025M"},
      {EnvironmentVariableId::kHeapMax, "1048575"},
      {EnvironmentVariableId::kHeapMax, "65T"},
      {EnvironmentVariableId::kStatsIntervalMs, "0"},
      {EnvironmentVariableId::kDecayMs, "3600001"},
      {EnvironmentVariableId::kGcPercent, "0"},
      {EnvironmentVariableId::kGcPercent, "100001"},
  };
  for (const Case& c : cases) {
    Reading reading = read_with(c.id, c.text, 7);
    EXPECT_EQ(reading.value, 7u) << environment_variable(c.id).name << "=" << c.text;
    EXPECT_NE(reading.message.find("refused"), std::string::npos) << reading.message;
  }
}

TEST(Environment, MessageStatesTheRangeAndEscapesTheValue) {
  Reading guard = read_with(EnvironmentVariableId::kStackGuard, "-1", 16384);
  EXPECT_EQ(guard.message,
            "usgc: USGC_STACK_GUARD=\"-1\" refused: want 4K..64M bytes (digits, optional K/M/G/T "
            "suffix); using the default (16K)\n");
  Reading procs = read_with(EnvironmentVariableId::kProcs, "\x1b[2J", 2);
  EXPECT_EQ(procs.message,
            "usgc: USGC_PROCS=\"\\x1b[2J\" refused: want 1..1024 Ps (decimal digits); using the "
            "default (2)\n");
  Reading percent = read_with(EnvironmentVariableId::kGcPercent, "lots", 100);
  EXPECT_NE(percent.message.find("want 1..100000 % (decimal digits) or off"), std::string::npos)
      << percent.message;
  Reading arming = read_with(EnvironmentVariableId::kSafepointArming, "both", 0);
  EXPECT_NE(arming.message.find("want one of mprotect, swap; using the default (mprotect)"),
            std::string::npos)
      << arming.message;
  std::string long_value(500, 'x');
  Reading cut = read_with(EnvironmentVariableId::kDecayMs, long_value.c_str(), 250);
  EXPECT_NE(cut.message.find(std::string(64, 'x') + "...\""), std::string::npos) << cut.message;
  EXPECT_LT(cut.message.size(), 300u);
}

TEST(Environment, TheSameBadValueIsRefusedOnce) {
  forget_refused_environment_values();
  ScopedVariable variable("USGC_PROCS", "many");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(read_environment_number(EnvironmentVariableId::kProcs, 3), 3u);
  EXPECT_EQ(read_environment_number(EnvironmentVariableId::kProcs, 3), 3u);
  std::string twice = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(std::count(twice.begin(), twice.end(), '\n'), 1) << twice;
  ::setenv("USGC_PROCS", "more", 1);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(read_environment_number(EnvironmentVariableId::kProcs, 3), 3u);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("\"more\" refused"), std::string::npos);
}

TEST(Environment, ParserRefusesWithoutWrapping) {
  const EnvironmentVariable& size = environment_variable(EnvironmentVariableId::kHeapMax);
  uint64_t value = 0;
  char why[160];
  EXPECT_FALSE(parse_environment_value(size, "16777216T", &value, why, sizeof(why)));  // 2^64
  EXPECT_FALSE(parse_environment_value(size, "99999999999999999999", &value, why, sizeof(why)));
  EXPECT_FALSE(parse_environment_value(size, "+5M", &value, why, sizeof(why)));
  EXPECT_FALSE(parse_environment_value(size, "5MK", &value, why, sizeof(why)));
  EXPECT_STREQ(why, "want 1M..64T bytes (digits, optional K/M/G/T suffix)");
  EXPECT_TRUE(parse_environment_value(size, "2G", &value, nullptr, 0));
  EXPECT_EQ(value, uint64_t{2} << 30);
}

}  // namespace
}  // namespace usgc::kernel
