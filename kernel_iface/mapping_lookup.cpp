// kernel_iface/mapping_lookup.cpp — see mapping_lookup.hpp. Streams /proc/self/maps through a
// stack buffer, one line at a time ("start-end perms offset dev inode path").
#include "kernel_iface/mapping_lookup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernel_iface/uncancellable_io.hpp"

namespace usgc::kernel {
namespace {

// Parses lowercase hex up to `stop`; nullptr when there is no digit.
const char* parse_hex(const char* text, char stop, uintptr_t* value) {
  uintptr_t result = 0;
  const char* start = text;
  for (;; ++text) {
    char c = *text;
    if (c >= '0' && c <= '9') {
      result = result * 16 + static_cast<uintptr_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      result = result * 16 + static_cast<uintptr_t>(c - 'a' + 10);
    } else {
      break;
    }
  }
  if (text == start || *text != stop) return nullptr;
  *value = result;
  return text + 1;
}

// One line (NUL-terminated, no newline): 1 and *range when it holds `address`, 0 when not, -1
// when it cannot be parsed.
int match_line(const char* line, uintptr_t address, MappingRange* range) {
  uintptr_t start = 0;
  uintptr_t end = 0;
  const char* cursor = parse_hex(line, '-', &start);
  if (cursor != nullptr) cursor = parse_hex(cursor, ' ', &end);
  if (cursor == nullptr || end < start) return -1;
  if (address < start || address >= end) return 0;
  // "perms offset dev inode", then the path after spaces (none for anonymous memory).
  const char* path = cursor;
  for (int field = 0; field < 4 && path != nullptr; ++field) {
    path = std::strchr(path, ' ');
    if (path != nullptr) ++path;
  }
  while (path != nullptr && *path == ' ') ++path;
  *range = MappingRange{start, end, cursor[0] == 'r',
                        path != nullptr && std::strncmp(path, "[stack]", 7) == 0};
  return 1;
}

}  // namespace

Result<MappingRange> find_mapping_containing(uintptr_t address) {
  int fd = sys_open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Result<MappingRange>::failure(errno);
  // A line is at most about 4 KiB (a path of PATH_MAX); only its first 40-odd bytes matter, so a
  // line longer than the buffer is parsed from its head and the rest skipped.
  char buffer[1024];
  size_t held = 0;
  bool skipping = false;  // inside the tail of an over-long line
  int error = ENOENT;
  MappingRange range;
  for (;;) {
    ssize_t got = sys_read(fd, buffer + held, sizeof(buffer) - 1 - held);
    if (got < 0) {
      if (errno == EINTR) continue;
      error = errno;
      break;
    }
    if (got == 0) break;
    held += static_cast<size_t>(got);
    buffer[held] = '\0';
    char* line = buffer;
    int found = 0;
    for (char* newline; (newline = std::strchr(line, '\n')) != nullptr; line = newline + 1) {
      *newline = '\0';
      if (skipping) {
        skipping = false;
        continue;
      }
      found = match_line(line, address, &range);
      if (found != 0) break;
    }
    if (found != 0) {
      error = found > 0 ? 0 : EPROTO;
      break;
    }
    held = static_cast<size_t>(buffer + held - line);
    if (held == sizeof(buffer) - 1) {  // one line fills the buffer: keep its head, drop the tail
      if (!skipping) {
        found = match_line(buffer, address, &range);
        if (found != 0) {
          error = found > 0 ? 0 : EPROTO;
          break;
        }
      }
      skipping = true;
      held = 0;
    } else {
      std::memmove(buffer, line, held);
    }
  }
  sys_close(fd);
  if (error != 0) return Result<MappingRange>::failure(error);
  return Result<MappingRange>::success(range);
}

}  // namespace usgc::kernel
