// kernel_iface/uncancellable_io.hpp — open, read, pread, write, pwrite and close as plain system
// calls: never a thread-cancellation point.
//
// libc's wrappers of these calls are cancellation points (POSIX): a deferred cancel pending on the
// calling thread acts inside them and unwinds the thread from there. usgc makes these calls on
// paths a program's own thread runs inside malloc and free (the statistics block's /proc/self/statm
// and its shared-memory file, the decay's pidfd), inside a stop of the world (/proc/loadavg), a
// collection or a warning (trace and stderr lines). Through libc, a thread cancelled while it
// allocated ended inside malloc with usgc's state half updated (found 2026-12-06: unwound from the
// statistics block's open of /dev/shm, under a lock), where glibc's malloc never acts on a cancel
// and programs count on that. syscall(2) is not a cancellation point, so these behave as the
// wrappers do (the result, or -1 with errno) and never act on a cancel.
//
// Invariant: usgc's library code (kernel_iface and every layer above it) makes these calls only
// through here. The one cancellation point left on purpose is usgc_sleep_ns called off a goroutine
// (a plain sleep: acting on a cancel there is what a sleep does, and usgc holds nothing then).
// Async-signal-safe (plain system calls), as the wrappers are.
#pragma once

#include <fcntl.h>
#if !defined(__wasm__)
#include <sys/syscall.h>
#endif
#include <sys/types.h>
#include <unistd.h>

#include <cstddef>

namespace usgc::kernel {

#if defined(__wasm__)
// WebAssembly threads are never cancelled: the wrappers are these calls.
inline int sys_open(const char* path, int flags, mode_t mode = 0) {
  return ::open(path, flags, mode);
}
inline ssize_t sys_read(int fd, void* buffer, size_t bytes) {
  return ::read(fd, buffer, bytes);
}
inline ssize_t sys_pread(int fd, void* buffer, size_t bytes, off_t offset) {
  return ::pread(fd, buffer, bytes, offset);
}
inline ssize_t sys_write(int fd, const void* buffer, size_t bytes) {
  return ::write(fd, buffer, bytes);
}
inline ssize_t sys_pwrite(int fd, const void* buffer, size_t bytes, off_t offset) {
  return ::pwrite(fd, buffer, bytes, offset);
}
inline int sys_close(int fd) {
  return ::close(fd);
}
#else
inline int sys_open(const char* path, int flags, mode_t mode = 0) {
  return static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path, flags, mode));
}

inline ssize_t sys_read(int fd, void* buffer, size_t bytes) {
  return ::syscall(SYS_read, fd, buffer, bytes);
}

inline ssize_t sys_pread(int fd, void* buffer, size_t bytes, off_t offset) {
  return ::syscall(SYS_pread64, fd, buffer, bytes, offset);
}

inline ssize_t sys_write(int fd, const void* buffer, size_t bytes) {
  return ::syscall(SYS_write, fd, buffer, bytes);
}

inline ssize_t sys_pwrite(int fd, const void* buffer, size_t bytes, off_t offset) {
  return ::syscall(SYS_pwrite64, fd, buffer, bytes, offset);
}

inline int sys_close(int fd) {
  return static_cast<int>(::syscall(SYS_close, fd));
}

#endif

}  // namespace usgc::kernel
