// tools/usgc_top/text.cpp — escaping and units (see text.hpp).
#include "tools/usgc_top/text.hpp"

#include <cinttypes>
#include <cstdio>

namespace usgc::top {

std::string printable_text(const char* bytes, size_t length) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length);
  for (size_t i = 0; i < length; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string printable_text(const std::string& text) {
  return printable_text(text.data(), text.size());
}

std::string human_bytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "K", "M", "G", "T"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof(text), "%" PRIu64 "B", bytes);
  } else {
    std::snprintf(text, sizeof(text), "%.1f%s", value, kUnits[unit]);
  }
  return text;
}

std::string human_rate(double rate) {
  if (rate < 0) return "-";
  char text[32];
  if (rate >= 1e9) {
    std::snprintf(text, sizeof(text), "%.1fG", rate / 1e9);
  } else if (rate >= 1e6) {
    std::snprintf(text, sizeof(text), "%.1fM", rate / 1e6);
  } else if (rate >= 1e3) {
    std::snprintf(text, sizeof(text), "%.1fk", rate / 1e3);
  } else {
    std::snprintf(text, sizeof(text), "%.0f", rate);
  }
  return text;
}

std::string human_duration_ns(uint64_t ns) {
  char text[32];
  if (ns >= 1000000000ull) {
    std::snprintf(text, sizeof(text), "%.2fs", static_cast<double>(ns) / 1e9);
  } else if (ns >= 1000000) {
    std::snprintf(text, sizeof(text), "%.2fms", static_cast<double>(ns) / 1e6);
  } else {
    std::snprintf(text, sizeof(text), "%.1fus", static_cast<double>(ns) / 1e3);
  }
  return text;
}

}  // namespace usgc::top
