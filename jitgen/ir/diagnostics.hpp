// jitgen/ir/diagnostics.hpp — source positions and the diagnostics of the UltraScript IR
// (parser, verifier, builder). Not on any hot path: this is compiler front-end code and uses the
// standard library freely (it never runs inside the allocator).
//
// A diagnostic is printed `file:line:col: message` (the format compilers and editors read). The
// message says what was expected and what was found, or names the undefined / duplicated thing.
//
// Invariants:
//   * the diagnostic cap: a DiagnosticList holds at most `limit` diagnostics plus one final
//     "too many errors" line; reporting past the cap is a no-op, so no input can make the
//     front end produce unbounded output.
//   * positions are 1-based; line 0 means "no position" (IR made by the builder without one).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace usgc::jitgen::ir {

struct SourcePosition {
  uint32_t line = 0;    // 1-based; 0 = unknown
  uint32_t column = 0;  // 1-based
  bool known() const { return line != 0; }
  friend bool operator==(const SourcePosition&, const SourcePosition&) = default;
};

struct Diagnostic {
  std::string file_name;
  SourcePosition position;
  std::string message;
  // `file:line:col: message`, or `file: message` without a position.
  std::string to_string() const;
  friend bool operator==(const Diagnostic&, const Diagnostic&) = default;
};

inline constexpr size_t kDefaultDiagnosticLimit = 20;

class DiagnosticList {
 public:
  explicit DiagnosticList(std::string file_name, size_t limit = kDefaultDiagnosticLimit)
      : file_name_(std::move(file_name)), limit_(limit) {}

  // Keeps the diagnostic cap (see the file comment).
  void report(SourcePosition position, std::string message);
  bool full() const { return overflowed_; }
  size_t error_count() const { return diagnostics_.size(); }
  const std::string& file_name() const { return file_name_; }
  std::vector<Diagnostic> take() { return std::move(diagnostics_); }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::string file_name_;
  size_t limit_;
  bool overflowed_ = false;
  std::vector<Diagnostic> diagnostics_;
};

// All diagnostics, one per line, each ending in '\n'.
[[gnu::visibility("default")]] std::string format_diagnostics(
    const std::vector<Diagnostic>& diagnostics);

}  // namespace usgc::jitgen::ir
