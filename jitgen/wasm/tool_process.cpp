// jitgen/wasm/tool_process.cpp — external programs and files for the WebAssembly tool code
// (tool_process.hpp). Tool code; not on any hot path.
#include "jitgen/wasm/tool_process.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace usgc::jitgen::wasm {

int run_process(const std::vector<std::string>& args, std::string* error) {
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (spawned != 0) {
    *error = "cannot run " + args[0] + ": " + std::strerror(spawned);
    return -1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      *error = "waitpid for " + args[0] + ": " + std::strerror(errno);
      return -1;
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  *error = args[0] + " was killed by signal " + std::to_string(WTERMSIG(status));
  return -1;
}

bool write_file(const std::string& path, const std::vector<uint8_t>& bytes, std::string* error) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  ok = (std::fclose(file) == 0) && ok;
  if (!ok) *error = "cannot write " + path + ": " + std::strerror(errno);
  return ok;
}

bool read_file(const std::string& path, std::vector<uint8_t>* bytes, std::string* error) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  bytes->clear();
  uint8_t buffer[65536];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0)
    bytes->insert(bytes->end(), buffer, buffer + n);
  bool ok = !std::ferror(file);
  std::fclose(file);
  if (!ok) *error = "cannot read " + path + ": " + std::strerror(errno);
  return ok;
}

std::string make_temporary_file(const std::string& stem, std::string* error) {
  std::string pattern = "/tmp/" + stem + "-XXXXXX";
  std::vector<char> path(pattern.begin(), pattern.end());
  path.push_back('\0');
  int fd = mkstemp(path.data());
  if (fd < 0) {
    *error = std::string("mkstemp: ") + std::strerror(errno);
    return "";
  }
  close(fd);
  return path.data();
}

bool command_available(const std::string& command) {
  const char* path = std::getenv("PATH");
  std::string folders = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= folders.size()) {
    size_t end = folders.find(':', start);
    if (end == std::string::npos) end = folders.size();
    std::string folder = folders.substr(start, end - start);
    if (folder.empty()) folder = ".";
    if (access((folder + "/" + command).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace usgc::jitgen::wasm
