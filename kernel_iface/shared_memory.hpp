// kernel_iface/shared_memory.hpp — files in /dev/shm that one process maps and others read.
//
// The only place in usgc that creates, opens, maps, links, unlinks and lists shared-memory
// files (the statistics block of alloc/stats_export.hpp is the one user today). Names are
// plain file names inside /dev/shm ("usgc-1000-4242"), never paths: a name holding '/' is EINVAL.
//
// Invariants:
//   - Created files have mode 0600 exactly (fchmod after open, so the umask cannot widen or
//     narrow it) and are opened O_CLOEXEC | O_NOFOLLOW: a planted symlink is never followed.
//   - "complete on appearance": create_unnamed() + link() make a file that is fully initialized
//     before any reader can see its name (O_TMPFILE, then linkat through /proc/self/fd). Kernels
//     or mounts without O_TMPFILE fall back to create() (O_CREAT | O_EXCL), where a reader may
//     briefly see a zero-filled file.
//   - Allocation-free: every function except list_shared_memory() uses only system calls and
//     stack buffers, so the allocator may call them (slow paths only; they are system calls).
//     list_shared_memory() also allocates nothing (getdents64 into a caller-sized stack buffer),
//     but it is meant for tools, not the allocator: nothing in alloc/ calls it.
//
// Every call returns a Status/Result with the errno of the failed system call.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

// The directory every name lives in.
inline constexpr const char kSharedMemoryDirectory[] = "/dev/shm";
// Longest name accepted (without the directory).
inline constexpr size_t kSharedMemoryNameMax = 96;

// An anonymous 0600 file of `bytes` (zero-filled) in /dev/shm, not yet visible to anyone.
// EOPNOTSUPP/EISDIR/EINVAL when the kernel or filesystem has no O_TMPFILE (use create()).
Result<int> shared_memory_create_unnamed(size_t bytes);

// Gives an unnamed file its name. EEXIST if the name is taken (nothing is replaced).
// ENOENT when /proc is not mounted (the link goes through /proc/self/fd/N).
Status shared_memory_link(int fd, const char* name);

// A new 0600 file named `name` of `bytes`, zero-filled (O_CREAT | O_EXCL). EEXIST if taken.
Result<int> shared_memory_create(const char* name, size_t bytes);

// Opens an existing file read-only, without following symlinks and without blocking (a FIFO
// planted under the name cannot hang the reader).
Result<int> shared_memory_open_read_only(const char* name);
// The same, read-write (a watcher's request word in a statistics block; tools only).
Result<int> shared_memory_open_read_write(const char* name);

// Maps `bytes` of fd shared (MAP_SHARED), read-write or read-only.
Result<void*> shared_memory_map(int fd, size_t bytes, bool writable);
Status shared_memory_unmap(void* address, size_t bytes);

Status shared_memory_unlink(const char* name);

struct SharedMemoryFileInfo {
  uint64_t size_bytes;
  uint64_t inode;
  uint32_t owner_uid;
  uint32_t mode;  // permission bits only (st_mode & 07777)
  bool is_regular_file;
};
Result<SharedMemoryFileInfo> shared_memory_file_info(int fd);
// The same for a name (lstat: a symlink reports is_regular_file = false).
Result<SharedMemoryFileInfo> shared_memory_name_info(const char* name);

// pread of up to `bytes` at `offset`, retried on EINTR; the count read (short at end of file).
Result<size_t> read_at(int fd, void* buffer, size_t bytes, uint64_t offset);
// pwrite of all `bytes` at `offset`, retried on EINTR; EIO if the file takes fewer.
Status write_at(int fd, const void* buffer, size_t bytes, uint64_t offset);

Status close_file(int fd);

// Calls visit(name, context) for every entry of /dev/shm whose name starts with `prefix`.
// Tools only (see the file comment). Entries created or removed during the walk may or may not
// be seen, as with readdir.
using SharedMemoryVisitor = void (*)(const char* name, void* context);
Status list_shared_memory(const char* prefix, SharedMemoryVisitor visit, void* context);

// Owns an fd (tools and tests; the allocator keeps raw fds in constant-initialized globals).
class ScopedFile {
 public:
  ScopedFile() = default;
  explicit ScopedFile(int fd) : fd_(fd) {}
  ~ScopedFile() { reset(); }
  ScopedFile(const ScopedFile&) = delete;
  ScopedFile& operator=(const ScopedFile&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) (void)close_file(fd_);  // close of an fd we own: nothing to act on
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

}  // namespace usgc::kernel
