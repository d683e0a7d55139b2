// kernel_iface/append_file.cpp — see append_file.hpp. Raw open/fstat/write/close, nothing else.
// libc's open and write are not syscall(3) leaves: inside a LibraryCallScope, so that an
// asynchronous safepoint never stops usgc's code there (it may hold a lock of usgc's).
#include "kernel_iface/append_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "kernel_iface/library_call_scope.hpp"
#include "kernel_iface/uncancellable_io.hpp"

namespace usgc::kernel {

namespace {

Result<int> open_checked(const char* path, int flags, uint32_t mode) {
  if (path == nullptr || path[0] == '\0') return Result<int>::failure(EINVAL);
  LibraryCallScope in_libc;
  int fd;
  do {
    fd = sys_open(path, flags | O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                  static_cast<mode_t>(mode & 07777));
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Result<int>::failure(errno);
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    int error = errno;
    sys_close(fd);
    return Result<int>::failure(error);
  }
  if (!S_ISREG(info.st_mode) || info.st_uid != ::geteuid()) {
    sys_close(fd);
    return Result<int>::failure(EPERM);
  }
  return Result<int>::success(fd);
}

}  // namespace

Result<int> open_append_file(const char* path, uint32_t mode) {
  return open_checked(path, O_APPEND, mode);
}

Result<int> open_output_file(const char* path, uint32_t mode) {
  // Truncated only after the checks: a file of another user or a device is never emptied.
  Result<int> opened = open_checked(path, 0, mode);
  if (!opened.ok()) return opened;
  if (::ftruncate(opened.value(), 0) != 0) {
    int error = errno;
    sys_close(opened.value());
    return Result<int>::failure(error);
  }
  return opened;
}

Status append_all(int fd, const void* data, size_t bytes) {
  const char* cursor = static_cast<const char*>(data);
  LibraryCallScope in_libc;
  while (bytes > 0) {
    ssize_t written = sys_write(fd, cursor, bytes);
    if (written < 0) {
      if (errno == EINTR) continue;
      return Status::failure(errno);
    }
    if (written == 0) return Status::failure(EIO);
    cursor += written;
    bytes -= static_cast<size_t>(written);
  }
  return Status::success();
}

}  // namespace usgc::kernel
