// tests/kernel_iface/fatal_test.cpp — the allocation-free formatter and the fatal path.
//
// Proves every conversion format_message understands (%s %d %u %ld %lu %zu %x %lx %p %c %%),
// what it does with anything else, that output is truncated and always NUL-terminated, and that
// USGC_CHECK prints one "usgc: " line and aborts with SIGABRT (so a core is dumped).
#include "kernel_iface/fatal.hpp"
#include "tests/support/death_test_support.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstdarg>
#include <cstring>
#include <string>

namespace usgc::kernel {
namespace {

using usgc_test::ThreadsafeDeathTests;

// Formats into a buffer of `buffer_size` bytes; returns the text and the length format_message
// reported (the test may allocate; the code under test does not).
struct Formatted {
  std::string text;
  size_t length;
};

Formatted format_with_size(size_t buffer_size, const char* format, ...) {
  char buffer[256];
  std::memset(buffer, 'X', sizeof(buffer));
  va_list args;
  va_start(args, format);
  size_t length = format_message(buffer, buffer_size, format, args);
  va_end(args);
  return Formatted{std::string(buffer), length};
}

std::string format(const char* format_string, ...) {
  char buffer[256];
  va_list args;
  va_start(args, format_string);
  size_t length = format_message(buffer, sizeof(buffer), format_string, args);
  va_end(args);
  EXPECT_EQ(length, std::strlen(buffer));
  return std::string(buffer);
}

TEST(FormatMessage, PlainTextIsCopied) {
  EXPECT_EQ(format("no conversions here"), "no conversions here");
}

TEST(FormatMessage, StringConversionAndNullString) {
  EXPECT_EQ(format("[%s]", "abc"), "[abc]");
  EXPECT_EQ(format("[%s]", ""), "[]");
  EXPECT_EQ(format("[%s]", static_cast<const char*>(nullptr)), "[(null)]");
}

TEST(FormatMessage, SignedConversionsIncludingExtremes) {
  EXPECT_EQ(format("%d", 0), "0");
  EXPECT_EQ(format("%d", -42), "-42");
  EXPECT_EQ(format("%d", INT_MAX), "2147483647");
  EXPECT_EQ(format("%d", INT_MIN), "-2147483648");
  EXPECT_EQ(format("%ld", LONG_MAX), "9223372036854775807");
  EXPECT_EQ(format("%ld", LONG_MIN), "-9223372036854775808");
}

TEST(FormatMessage, UnsignedConversions) {
  EXPECT_EQ(format("%u", 0u), "0");
  EXPECT_EQ(format("%u", UINT_MAX), "4294967295");
  EXPECT_EQ(format("%lu", ULONG_MAX), "18446744073709551615");
  EXPECT_EQ(format("%zu", static_cast<size_t>(123456789012345)), "123456789012345");
}

TEST(FormatMessage, HexConversions) {
  EXPECT_EQ(format("%x", 0u), "0");
  EXPECT_EQ(format("%x", 0xdeadbeefu), "deadbeef");
  EXPECT_EQ(format("%lx", 0x123456789abcdef0ul), "123456789abcdef0");
}

TEST(FormatMessage, PointerConversion) {
  EXPECT_EQ(format("%p", reinterpret_cast<void*>(0x7f00dead1000)), "0x7f00dead1000");
  EXPECT_EQ(format("%p", static_cast<void*>(nullptr)), "0x0");
}

TEST(FormatMessage, CharacterAndPercent) {
  EXPECT_EQ(format("%c%c", 'o', 'k'), "ok");
  EXPECT_EQ(format("100%%"), "100%");
}

TEST(FormatMessage, MixedConversionsInOneMessage) {
  EXPECT_EQ(format("free(): %p size %zu node %d: %s", reinterpret_cast<void*>(0x1000), size_t{64},
                   2, "bad"),
            "free(): 0x1000 size 64 node 2: bad");
}

TEST(FormatMessage, UnknownConversionIsPrintedLiterally) {
  EXPECT_EQ(format("%q"), "%q");
  EXPECT_EQ(format("%f"), "%f") << "floating point is not supported and consumes no argument";
}

TEST(FormatMessage, TrailingPercentStopsCleanly) {
  EXPECT_EQ(format("end%"), "end");
}

TEST(FormatMessage, OutputIsTruncatedToTheBufferAndNulTerminated) {
  Formatted small = format_with_size(5, "%s", "abcdefgh");
  EXPECT_EQ(small.text, "abcd");
  EXPECT_EQ(small.length, 4u);
  Formatted number = format_with_size(4, "%d", -123456);
  EXPECT_EQ(number.text, "-12");
  EXPECT_EQ(number.length, 3u);
  Formatted pointer = format_with_size(3, "%p", reinterpret_cast<void*>(0xabc));
  EXPECT_EQ(pointer.text, "0x");
  Formatted one = format_with_size(1, "anything");
  EXPECT_EQ(one.text, "");
  EXPECT_EQ(one.length, 0u);
}

TEST(FormatMessage, ZeroSizedBufferIsLeftUntouched) {
  char buffer[4] = {'a', 'b', 'c', '\0'};
  va_list args{};
  EXPECT_EQ(format_message(buffer, 0, "text", args), 0u);
  EXPECT_STREQ(buffer, "abc");
}

TEST(FatalPath, PrintMessageWritesOnePrefixedLine) {
  testing::internal::CaptureStderr();
  print_message("decommit of %zu bytes at %p failed: errno %d", size_t{4096},
                reinterpret_cast<void*>(0x2000), 22);
  std::string output = testing::internal::GetCapturedStderr();
  EXPECT_EQ(output, "usgc: decommit of 4096 bytes at 0x2000 failed: errno 22\n");
}

TEST(FatalPath, LongMessageIsTruncatedToOneLine) {
  std::string long_text(2000, 'z');
  testing::internal::CaptureStderr();
  print_message("%s", long_text.c_str());
  std::string output = testing::internal::GetCapturedStderr();
  ASSERT_FALSE(output.empty());
  EXPECT_EQ(output.rfind("usgc: zzz", 0), 0u);
  EXPECT_EQ(output.back(), '\n');
  EXPECT_EQ(output.find('\n'), output.size() - 1) << "exactly one line";
  EXPECT_LE(output.size(), 512u);
}

TEST(FatalPath, FailedCheckPrintsTheMessageAndAborts) {
  ThreadsafeDeathTests style;
  void* pointer = reinterpret_cast<void*>(0xdead0);
  EXPECT_EXIT(
      USGC_CHECK(pointer == nullptr, "free(): pointer %p was not allocated by usgc", pointer),
      testing::KilledBySignal(SIGABRT),
      "usgc: free\\(\\): pointer 0xdead0 was not allocated by usgc\n");
}

TEST(FatalPath, PassingCheckDoesNothing) {
  int evaluations = 0;
  USGC_CHECK(++evaluations == 1, "never printed");
  EXPECT_EQ(evaluations, 1) << "the condition is evaluated exactly once";
}

TEST(FatalPath, FatalAbortsWithSigabrt) {
  ThreadsafeDeathTests style;
  EXPECT_EXIT(fatal("heap corrupted at %p", reinterpret_cast<void*>(0x40)),
              testing::KilledBySignal(SIGABRT), "usgc: heap corrupted at 0x40");
}

// A reporter that can say more ends the process itself with the formatted message.
void report_and_exit(const char* message) {
  const char prefix[] = "reported: ";
  (void)!::write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
  (void)!::write(STDERR_FILENO, message, std::strlen(message));
  _exit(3);
}

void report_nothing(const char*) {}

TEST(FatalPath, ReporterGetsTheFormattedMessage) {
  ThreadsafeDeathTests style;
  EXPECT_EXIT(
      {
        set_fatal_reporter(report_and_exit);
        fatal("heap corrupted at %p", reinterpret_cast<void*>(0x40));
      },
      testing::ExitedWithCode(3), "reported: heap corrupted at 0x40");
}

TEST(FatalPath, AReporterThatReturnsLeavesTheUsualStop) {
  ThreadsafeDeathTests style;
  EXPECT_EXIT(
      {
        set_fatal_reporter(report_nothing);
        fatal("heap corrupted at %p", reinterpret_cast<void*>(0x40));
      },
      testing::KilledBySignal(SIGABRT), "usgc: heap corrupted at 0x40");
}

}  // namespace
}  // namespace usgc::kernel
