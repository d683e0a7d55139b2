// kernel_iface/process_info.cpp — see process_info.hpp. Raw system calls and stack buffers only.
#include "kernel_iface/process_info.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernel_iface/uncancellable_io.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

// Skips spaces, parses a decimal; nullptr when none.
const char* parse_decimal(const char* text, uint64_t* value) {
  while (*text == ' ') ++text;
  if (*text < '0' || *text > '9') return nullptr;
  uint64_t result = 0;
  while (*text >= '0' && *text <= '9') result = result * 10 + static_cast<uint64_t>(*text++ - '0');
  *value = result;
  return text;
}

// "/proc/<pid>/stat" (or /proc/self/stat for pid 0) into path.
void stat_path_of(int pid, char* path) {
  if (pid == 0) {
    std::strcpy(path, "/proc/self/stat");
    return;
  }
  char digits[12];
  size_t count = 0;
  auto value = static_cast<unsigned>(pid);
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  size_t length = 0;
  for (const char* p = "/proc/"; *p != '\0'; ++p) path[length++] = *p;
  while (count != 0) path[length++] = digits[--count];
  for (const char* p = "/stat"; *p != '\0'; ++p) path[length++] = *p;
  path[length] = '\0';
}

}  // namespace

int current_process_id() {
  return static_cast<int>(::getpid());
}

uint32_t current_user_id() {
  return static_cast<uint32_t>(::getuid());
}

Result<bool> process_exists(int pid) {
  if (pid <= 0) return Result<bool>::failure(EINVAL);
  if (::kill(pid, 0) == 0) return Result<bool>::success(true);
  if (errno == ESRCH) return Result<bool>::success(false);
  if (errno == EPERM) return Result<bool>::success(true);
  return Result<bool>::failure(errno);
}

Result<size_t> read_executable_path(char* buffer, size_t buffer_size) {
  if (buffer_size == 0) return Result<size_t>::failure(EINVAL);
  ssize_t length = ::readlink("/proc/self/exe", buffer, buffer_size);
  if (length < 0) return Result<size_t>::failure(errno);
  if (static_cast<size_t>(length) >= buffer_size) return Result<size_t>::failure(ENAMETOOLONG);
  buffer[length] = '\0';
  return Result<size_t>::success(static_cast<size_t>(length));
}

Result<size_t> read_small_file(const char* path, char* buffer, size_t buffer_size) {
  if (buffer_size == 0) return Result<size_t>::failure(EINVAL);
  int fd = sys_open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Result<size_t>::failure(errno);
  size_t done = 0;
  while (done + 1 < buffer_size) {
    ssize_t got = sys_read(fd, buffer + done, buffer_size - 1 - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      sys_close(fd);
      return Result<size_t>::failure(error);
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  sys_close(fd);
  buffer[done] = '\0';
  return Result<size_t>::success(done);
}

Result<ProcessStat> process_stat(int pid) {
  if (pid < 0) return Result<ProcessStat>::failure(EINVAL);
  char path[32];
  stat_path_of(pid, path);
  char text[2048];
  Result<size_t> read = read_small_file(path, text, sizeof(text));
  if (!read.ok()) return Result<ProcessStat>::failure(read.error());
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so fields count from the
  // last ')'. Field 3 is the state, field 22 the start time.
  const char* close = std::strrchr(text, ')');
  if (close == nullptr || close[1] != ' ' || close[2] == '\0')
    return Result<ProcessStat>::failure(EPROTO);
  ProcessStat stat{close[2], 0};
  const char* cursor = close + 3;
  for (int field = 4; field < 22; ++field) {
    while (*cursor == ' ') ++cursor;
    while (*cursor != ' ' && *cursor != '\0') ++cursor;
    if (*cursor == '\0') return Result<ProcessStat>::failure(EPROTO);
  }
  if (parse_decimal(cursor, &stat.start_time_ticks) == nullptr)
    return Result<ProcessStat>::failure(EPROTO);
  return Result<ProcessStat>::success(stat);
}

uint64_t clock_ticks_per_second() {
  unsigned long ticks = ::getauxval(AT_CLKTCK);
  return ticks == 0 ? 100 : static_cast<uint64_t>(ticks);
}

Result<size_t> read_process_command(char* buffer, size_t buffer_size) {
  Result<size_t> read = read_small_file("/proc/self/comm", buffer, buffer_size);
  if (!read.ok()) return read;
  size_t length = read.value();
  while (length != 0 && (buffer[length - 1] == '\n' || buffer[length - 1] == '\0'))
    buffer[--length] = '\0';
  return Result<size_t>::success(length);
}

Result<uint64_t> read_resident_bytes() {
  char text[128];
  Result<size_t> read = read_small_file("/proc/self/statm", text, sizeof(text));
  if (!read.ok()) return Result<uint64_t>::failure(read.error());
  uint64_t total_pages = 0;
  uint64_t resident_pages = 0;
  const char* cursor = parse_decimal(text, &total_pages);
  if (cursor == nullptr || parse_decimal(cursor, &resident_pages) == nullptr) {
    return Result<uint64_t>::failure(EPROTO);
  }
  return Result<uint64_t>::success(resident_pages * os_page_size());
}

}  // namespace usgc::kernel
