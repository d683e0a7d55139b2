// kernel_iface/shared_memory.cpp — see shared_memory.hpp. Only system calls and stack buffers:
// nothing here allocates, so the allocator's slow paths may call it before constructors ran.
#include "kernel_iface/shared_memory.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernel_iface/uncancellable_io.hpp"

namespace usgc::kernel {
namespace {

constexpr size_t kPathBytes = sizeof(kSharedMemoryDirectory) + 1 + kSharedMemoryNameMax + 1;

bool is_valid_name(const char* name) {
  if (name == nullptr || name[0] == '\0') return false;
  if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) return false;
  size_t length = std::strlen(name);
  return length <= kSharedMemoryNameMax && std::memchr(name, '/', length) == nullptr;
}

// "/dev/shm/<name>" into path (kPathBytes); false for an invalid name.
bool path_of(const char* name, char* path) {
  if (!is_valid_name(name)) return false;
  size_t directory_length = sizeof(kSharedMemoryDirectory) - 1;
  std::memcpy(path, kSharedMemoryDirectory, directory_length);
  path[directory_length] = '/';
  std::strcpy(path + directory_length + 1, name);  // length checked by is_valid_name
  return true;
}

// Decimal digits of value after prefix into buffer (no snprintf: keep to known-safe calls).
void append_decimal(char* buffer, const char* prefix, unsigned value) {
  size_t length = std::strlen(prefix);
  std::memcpy(buffer, prefix, length);
  char digits[12];
  size_t count = 0;
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (count != 0) buffer[length++] = digits[--count];
  buffer[length] = '\0';
}

// Exactly 0600 whatever the umask, then the size. Closes fd on failure.
Result<int> finish_new_file(int fd, size_t bytes) {
  if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int error = errno;
    sys_close(fd);
    return Result<int>::failure(error);
  }
  return Result<int>::success(fd);
}

SharedMemoryFileInfo info_of(const struct stat& status) {
  return SharedMemoryFileInfo{
      static_cast<uint64_t>(status.st_size), static_cast<uint64_t>(status.st_ino),
      static_cast<uint32_t>(status.st_uid), static_cast<uint32_t>(status.st_mode & 07777),
      S_ISREG(status.st_mode)};
}

}  // namespace

Result<int> shared_memory_create_unnamed(size_t bytes) {
  int fd = sys_open(kSharedMemoryDirectory, O_TMPFILE | O_RDWR | O_CLOEXEC, S_IRUSR | S_IWUSR);
  if (fd < 0) return Result<int>::failure(errno);
  return finish_new_file(fd, bytes);
}

Status shared_memory_link(int fd, const char* name) {
  char path[kPathBytes];
  if (fd < 0 || !path_of(name, path)) return Status::failure(EINVAL);
  char fd_path[32];
  append_decimal(fd_path, "/proc/self/fd/", static_cast<unsigned>(fd));
  // linkat never replaces: EEXIST if the name is taken, whatever it is (symlink included).
  if (::linkat(AT_FDCWD, fd_path, AT_FDCWD, path, AT_SYMLINK_FOLLOW) != 0)
    return Status::failure(errno);
  return Status::success();
}

Result<int> shared_memory_create(const char* name, size_t bytes) {
  char path[kPathBytes];
  if (!path_of(name, path)) return Result<int>::failure(EINVAL);
  int fd = sys_open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, S_IRUSR | S_IWUSR);
  if (fd < 0) return Result<int>::failure(errno);
  Result<int> finished = finish_new_file(fd, bytes);
  if (!finished.ok()) ::unlink(path);  // our own half-made file
  return finished;
}

Result<int> shared_memory_open_read_only(const char* name) {
  char path[kPathBytes];
  if (!path_of(name, path)) return Result<int>::failure(EINVAL);
  int fd = sys_open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Result<int>::failure(errno);
  return Result<int>::success(fd);
}

Result<int> shared_memory_open_read_write(const char* name) {
  char path[kPathBytes];
  if (!path_of(name, path)) return Result<int>::failure(EINVAL);
  int fd = sys_open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Result<int>::failure(errno);
  return Result<int>::success(fd);
}

Result<void*> shared_memory_map(int fd, size_t bytes, bool writable) {
  if (fd < 0 || bytes == 0) return Result<void*>::failure(EINVAL);
  int protection = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  void* address = ::mmap(nullptr, bytes, protection, MAP_SHARED, fd, 0);
  if (address == MAP_FAILED) return Result<void*>::failure(errno);
  return Result<void*>::success(address);
}

Status shared_memory_unmap(void* address, size_t bytes) {
  if (::munmap(address, bytes) != 0) return Status::failure(errno);
  return Status::success();
}

Status shared_memory_unlink(const char* name) {
  char path[kPathBytes];
  if (!path_of(name, path)) return Status::failure(EINVAL);
  if (::unlink(path) != 0) return Status::failure(errno);
  return Status::success();
}

Result<SharedMemoryFileInfo> shared_memory_file_info(int fd) {
  struct stat status;
  if (::fstat(fd, &status) != 0) return Result<SharedMemoryFileInfo>::failure(errno);
  return Result<SharedMemoryFileInfo>::success(info_of(status));
}

Result<SharedMemoryFileInfo> shared_memory_name_info(const char* name) {
  char path[kPathBytes];
  if (!path_of(name, path)) return Result<SharedMemoryFileInfo>::failure(EINVAL);
  struct stat status;
  if (::lstat(path, &status) != 0) return Result<SharedMemoryFileInfo>::failure(errno);
  return Result<SharedMemoryFileInfo>::success(info_of(status));
}

Result<size_t> read_at(int fd, void* buffer, size_t bytes, uint64_t offset) {
  size_t done = 0;
  while (done < bytes) {
    ssize_t got = sys_pread(fd, static_cast<char*>(buffer) + done, bytes - done,
                            static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return Result<size_t>::failure(errno);
    }
    if (got == 0) break;  // end of file
    done += static_cast<size_t>(got);
  }
  return Result<size_t>::success(done);
}

Status write_at(int fd, const void* buffer, size_t bytes, uint64_t offset) {
  size_t done = 0;
  while (done < bytes) {
    ssize_t put = sys_pwrite(fd, static_cast<const char*>(buffer) + done, bytes - done,
                             static_cast<off_t>(offset + done));
    if (put < 0) {
      if (errno == EINTR) continue;
      return Status::failure(errno);
    }
    if (put == 0) return Status::failure(EIO);
    done += static_cast<size_t>(put);
  }
  return Status::success();
}

Status close_file(int fd) {
  // Linux closes the fd even when close reports EINTR: never retry.
  if (sys_close(fd) != 0 && errno != EINTR) return Status::failure(errno);
  return Status::success();
}

Status list_shared_memory(const char* prefix, SharedMemoryVisitor visit, void* context) {
  if (prefix == nullptr || visit == nullptr) return Status::failure(EINVAL);
  int fd = sys_open(kSharedMemoryDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::failure(errno);
  size_t prefix_length = std::strlen(prefix);
  alignas(8) char buffer[8192];
  for (;;) {
    ssize_t got = ::getdents64(fd, buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      sys_close(fd);
      return Status::failure(error);
    }
    if (got == 0) break;
    for (ssize_t offset = 0; offset < got;) {
      const auto* entry = reinterpret_cast<const struct dirent64*>(buffer + offset);
      offset += entry->d_reclen;
      if (std::strncmp(entry->d_name, prefix, prefix_length) == 0) visit(entry->d_name, context);
    }
  }
  sys_close(fd);
  return Status::success();
}

}  // namespace usgc::kernel
