// jitgen/ir/diagnostics.cpp — formatting and the diagnostic cap (see diagnostics.hpp).
#include "jitgen/ir/diagnostics.hpp"

namespace usgc::jitgen::ir {

std::string Diagnostic::to_string() const {
  std::string text = file_name;
  if (position.known()) {
    text += ':' + std::to_string(position.line) + ':' + std::to_string(position.column);
  }
  text += ": ";
  text += message;
  return text;
}

void DiagnosticList::report(SourcePosition position, std::string message) {
  if (overflowed_) return;
  if (diagnostics_.size() >= limit_) {
    // The diagnostic cap: one last line, then silence.
    diagnostics_.push_back({file_name_, position, "too many errors, stopping"});
    overflowed_ = true;
    return;
  }
  diagnostics_.push_back({file_name_, position, std::move(message)});
}

std::string format_diagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string text;
  for (const Diagnostic& diagnostic : diagnostics) {
    text += diagnostic.to_string();
    text += '\n';
  }
  return text;
}

}  // namespace usgc::jitgen::ir
