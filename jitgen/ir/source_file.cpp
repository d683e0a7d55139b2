// jitgen/ir/source_file.cpp — see source_file.hpp.
#include "jitgen/ir/source_file.hpp"

#include <sys/stat.h>

#include <cerrno>
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
  text->resize(kMaximumSourceBytes + 1);
  stream.read(text->data(), static_cast<std::streamsize>(text->size()));
  if (stream.bad()) {
    *error = cannot + "read error";
    return false;
  }
  text->resize(static_cast<size_t>(stream.gcount()));
  if (text->size() > kMaximumSourceBytes) {
    *error = cannot + "above the limit of " + std::to_string(kMaximumSourceBytes) + " bytes";
    return false;
  }
  return true;
}

}  // namespace usgc::jitgen::ir
