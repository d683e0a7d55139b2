// kernel_iface/fatal.cpp — allocation-free message formatting and fatal errors.
// See fatal.hpp for the invariants (no allocation, no lock, signal safe).
#include "kernel_iface/fatal.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "kernel_iface/uncancellable_io.hpp"

namespace usgc::kernel {
namespace {

struct Writer {
  char* buffer;
  size_t capacity;  // excluding the terminating NUL
  size_t length = 0;

  void put(char c) {
    if (length < capacity) buffer[length++] = c;
  }
  void put_string(const char* s) {
    if (s == nullptr) s = "(null)";
    while (*s != '\0') put(*s++);
  }
  void put_unsigned(unsigned long long value, unsigned base) {
    char digits[32];
    int count = 0;
    do {
      unsigned digit = static_cast<unsigned>(value % base);
      digits[count++] = static_cast<char>(digit < 10 ? '0' + digit : 'a' + digit - 10);
      value /= base;
    } while (value != 0);
    while (count > 0) put(digits[--count]);
  }
  void put_signed(long long value) {
    if (value < 0) {
      put('-');
      put_unsigned(0ULL - static_cast<unsigned long long>(value), 10);
    } else {
      put_unsigned(static_cast<unsigned long long>(value), 10);
    }
  }
};

}  // namespace

size_t format_message(char* buffer, size_t buffer_size, const char* format, va_list args) {
  if (buffer_size == 0) return 0;
  Writer out{buffer, buffer_size - 1};
  for (const char* p = format; *p != '\0'; ++p) {
    if (*p != '%') {
      out.put(*p);
      continue;
    }
    ++p;
    bool is_long = false;
    bool is_size = false;
    while (*p == 'l') {
      is_long = true;
      ++p;
    }
    if (*p == 'z') {
      is_size = true;
      ++p;
    }
    switch (*p) {
      case 'd':
        out.put_signed(is_long   ? va_arg(args, long)
                       : is_size ? va_arg(args, long)
                                 : va_arg(args, int));
        break;
      case 'u':
        out.put_unsigned(is_long || is_size ? va_arg(args, unsigned long) : va_arg(args, unsigned),
                         10);
        break;
      case 'x':
        out.put_unsigned(is_long || is_size ? va_arg(args, unsigned long) : va_arg(args, unsigned),
                         16);
        break;
      case 'p':
        out.put_string("0x");
        out.put_unsigned(reinterpret_cast<uintptr_t>(va_arg(args, void*)), 16);
        break;
      case 's':
        out.put_string(va_arg(args, const char*));
        break;
      case 'c':
        out.put(static_cast<char>(va_arg(args, int)));
        break;
      case '%':
        out.put('%');
        break;
      case '\0':
        --p;  // a trailing '%': stop at the terminator on the next iteration
        break;
      default:
        out.put('%');
        out.put(*p);
        break;
    }
  }
  buffer[out.length] = '\0';
  return out.length;
}

namespace {

// set_fatal_reporter's reporter (fatal.hpp); written once at start, read on the failure path.
std::atomic<FatalReporter> g_fatal_reporter{nullptr};

void write_line(const char* format, va_list args) {
  char line[512];
  static constexpr char kPrefix[] = "usgc: ";
  size_t prefix_length = sizeof(kPrefix) - 1;
  for (size_t i = 0; i < prefix_length; ++i) line[i] = kPrefix[i];
  size_t length = prefix_length + format_message(line + prefix_length,
                                                 sizeof(line) - prefix_length - 1, format, args);
  line[length++] = '\n';
  size_t written = 0;
  while (written < length) {
    ssize_t n = sys_write(STDERR_FILENO, line + written, length - written);
    if (n <= 0) break;  // nothing sensible to do about a failing stderr
    written += static_cast<size_t>(n);
  }
}

}  // namespace

void print_message(const char* format, ...) {
  va_list args;
  va_start(args, format);
  write_line(format, args);
  va_end(args);
}

void set_fatal_reporter(FatalReporter reporter) {
  g_fatal_reporter.store(reporter, std::memory_order_relaxed);
}

void fatal(const char* format, ...) {
  va_list args;
  if (FatalReporter reporter = g_fatal_reporter.load(std::memory_order_relaxed)) {
    char message[512];
    va_start(args, format);
    format_message(message, sizeof(message), format, args);
    va_end(args);
    reporter(message);  // returns when it has nothing to add
  }
  va_start(args, format);
  write_line(format, args);
  va_end(args);
  std::abort();
}

}  // namespace usgc::kernel
