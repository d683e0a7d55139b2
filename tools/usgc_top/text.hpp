// tools/usgc_top/text.hpp — usgc-top's text primitives: the escaping of text others control
// (printable_text) and human-readable units. No state; not on any hot path.
//
// Invariant (the terminal-safety rule of usgc-top): every byte that another party chose (a file
// name in /dev/shm, a command name, any byte of a block) reaches the terminal only through
// printable_text, in every output mode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace usgc::top {

// The text with every byte outside printable ASCII (0x20..0x7e), and the backslash itself, as
// \xNN: safe to print on a terminal whoever chose the bytes (no escape sequence, no C1 control,
// no invalid UTF-8), and unambiguous (a literal "\x1b" in the input prints as "\x5cx1b").
std::string printable_text(const char* bytes, size_t length);
std::string printable_text(const std::string& text);

// 1536 -> "1.5K"; below 1 KiB, exact bytes ("512B").
std::string human_bytes(uint64_t bytes);
// Per-second rates: "1.2M", "-" when unknown (negative).
std::string human_rate(double rate);
// "12.3us", "4.56ms", "1.20s".
std::string human_duration_ns(uint64_t ns);

}  // namespace usgc::top
