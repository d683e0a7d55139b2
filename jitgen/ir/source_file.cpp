// jitgen/ir/source_file.cpp — see source_file.hpp.
#include "jitgen/ir/source_file.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace usgc::jitgen::ir {

bool read_source_file(const std::string& path, std::string* text, std::string* error) {
  const std::string cannot = "cannot read '" + path + "': ";
  struct stat status;
  if (::stat(path.c_str(), &status) != 0) {
    *error = cannot + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(status.st_mode)) {
    *error = cannot + "not a regular file (" +
             (S_ISDIR(status.st_mode) ? "a directory" : "a device, pipe or socket") + ")";
    return false;
  }
  if (static_cast<uint64_t>(status.st_size) > kMaximumSourceBytes) {
    *error = cannot + std::to_string(status.st_size) + " bytes, above the limit of " +
             std::to_string(kMaximumSourceBytes);
    return false;
  }
  std::ifstream stream(path, std::ios::binary);
  if (!stream) {
    *error = cannot + "no such file or not readable";
    return false;
  }
  // At most one byte past the limit: a file that grew since the stat is refused, not read whole.
  // Read in chunks into a string sized for the file, not a zero-filled limit-sized buffer (the
  // limit's worth of zeroing and page faults was most of a small program's start-up).
  text->clear();
  text->reserve(static_cast<size_t>(status.st_size) + 1);
  char chunk[64 * 1024];
  while (text->size() <= kMaximumSourceBytes) {
    const size_t wanted = std::min(sizeof chunk, kMaximumSourceBytes + 1 - text->size());
    stream.read(chunk, static_cast<std::streamsize>(wanted));
    if (stream.bad()) {
      *error = cannot + "read error";
      return false;
    }
    const size_t got = static_cast<size_t>(stream.gcount());
    text->append(chunk, got);
    if (got < wanted) break;  // end of file
  }
  if (text->size() > kMaximumSourceBytes) {
    *error = cannot + "above the limit of " + std::to_string(kMaximumSourceBytes) + " bytes";
    return false;
  }
  return true;
}

bool load_program(const std::string& path, const char* tool, const char* refused,
                  ParseResult* parsed) {
  std::string text;
  std::string error;
  if (!read_source_file(path, &text, &error)) {
    std::fprintf(stderr, "%s: %s\n", tool, error.c_str());
    return false;
  }
  *parsed = parse_module(text, path);
  if (parsed->ok()) return true;
  std::fputs(format_diagnostics(parsed->diagnostics).c_str(), stderr);
  std::fprintf(stderr, "%s: %s is malformed; %s\n", tool, path.c_str(), refused);
  return false;
}

}  // namespace usgc::jitgen::ir
