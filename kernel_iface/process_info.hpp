// kernel_iface/process_info.hpp — what one process can learn about itself or another one of the
// same user: its id, whether it is alive, when it started, its command name and resident size.
//
// Used by the statistics block (alloc/stats_export.hpp writes the figures of this process;
// alloc/stats_reader.hpp judges whether the writer of a block still lives). Every function reads
// /proc with raw open/read into a stack buffer — no stdio, no allocation — so the allocator's
// slow paths may call them.
//
// Identity of a process over time: a pid is reused after its process died, so (pid, start time
// in clock ticks since boot, field 22 of /proc/<pid>/stat) names one process for the life of
// the machine. "Alive" means kill(pid, 0) finds it and it is not a zombie.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

// getpid(2): not cached by glibc, so a fork child sees its own pid at once. A system call.
int current_process_id();
// getuid(2).
uint32_t current_user_id();

// kill(pid, 0): true if the process exists (EPERM counts as existing: it belongs to someone
// else), false on ESRCH. Zombies exist; see process_stat() for their state.
Result<bool> process_exists(int pid);

struct ProcessStat {
  char state;                 // 'R', 'S', 'D', 'Z' (zombie), ...
  uint64_t start_time_ticks;  // since boot, in clock_ticks_per_second() units
};
// Parses /proc/<pid>/stat (pid 0: this process). ENOENT when the process is gone.
Result<ProcessStat> process_stat(int pid);

// The clock tick of /proc times (AT_CLKTCK; 100 on Linux).
uint64_t clock_ticks_per_second();

// This process's command name (/proc/self/comm, at most 15 characters, no newline) into
// buffer (NUL-terminated); the length.
Result<size_t> read_process_command(char* buffer, size_t buffer_size);

// This process's resident set size in bytes (/proc/self/statm, second field × page size).
Result<uint64_t> read_resident_bytes();

// Reads a small file (procfs) into buffer, NUL-terminated and truncated to buffer_size - 1
// bytes; the length read.
// The path of this process's executable (readlink of /proc/self/exe), NUL-terminated; ENAMETOOLONG
// when it does not fit. No allocation.
Result<size_t> read_executable_path(char* buffer, size_t buffer_size);

Result<size_t> read_small_file(const char* path, char* buffer, size_t buffer_size);

}  // namespace usgc::kernel
