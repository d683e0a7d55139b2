// kernel_iface/append_file.hpp — a log-style file that several writers extend line by line.
//
// The one user today is the perf map of compiled code (jitgen/code_visibility/perf_map.cpp),
// a text file in the temporary directory that perf(1) reads after the process ran. Files there
// live in a world-writable sticky directory, so opening one is defended the way a careful daemon
// opens a log file:
//   - O_APPEND: every write(2) lands at the end of the file, atomically with respect to other
//     appenders (other threads, another JIT in the same process), so lines never interleave as
//     long as each line goes out in one write (append_all retries a short write of a regular
//     file, which Linux does not produce below the file size limit);
//   - O_NOFOLLOW | O_CLOEXEC: a symlink planted under the name is never followed (ELOOP), and
//     the descriptor does not leak into exec'ed children;
//   - O_NONBLOCK: a FIFO planted under the name cannot hang the writer (ENXIO without a
//     reader); it has no effect on regular files;
//   - after open, the file must be a regular file owned by the effective user: anything else
//     (a FIFO, a device, another user's file) is refused with EPERM before a byte is written.
//   - the creation mode is the caller's (masked by the umask, which can only narrow it).
// Not on any hot path: system calls only, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

// Opens (creating with `mode` if absent) `path` for appending; see the file comment for the
// checks. Errors: the open(2)/fstat(2) errno, ELOOP for a symlink, EPERM for a file that is not
// a regular file owned by us. The caller closes the fd with close_file().
Result<int> open_append_file(const char* path, uint32_t mode);

// The same checks for a file written whole (a heap profile): opens `path` for writing, creating
// it with `mode` or truncating an existing regular file of ours. Errors as open_append_file.
Result<int> open_output_file(const char* path, uint32_t mode);

// Writes all `bytes` of `data` (one write(2) in practice; retried on EINTR and short writes).
Status append_all(int fd, const void* data, size_t bytes);

}  // namespace usgc::kernel
