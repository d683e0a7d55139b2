// alloc/stats_reader.hpp — reading statistics blocks (include/usgc/stats_block.h) written by
// other processes: the one reader that usgc-top and the tests share.
//
// Trust: a file in /dev/shm may be anything — truncated, from another version, planted by
// another user, mid-update, or left by a dead process. The reader accepts a block only if:
//   - its name is "usgc-<uid>-<pid>" for the caller's uid, and the file is a regular file owned
//     by that uid (st_uid), opened without following symlinks or blocking;
//   - it holds at least sizeof(usgc_stats_block) bytes, the right magic and version, a
//     size_bytes equal to the file's size, and the pid and uid of its name;
//   - a seqlock read succeeds: sequence even and unchanged around a full copy, within
//     kStatsReadAttempts tries.
// Anything else is a StatsReadError the caller reports in one line and skips; never a crash
// (pread only, no mapping, so a file truncated under us cannot SIGBUS).
//
// Staleness: a block whose writer is dead (kill(pid,0) says ESRCH, or it is a zombie) or whose
// pid now belongs to another process (different start time) is stale; scan_stats_blocks() can
// remove such files (only the caller's own, only the very file it read: same inode).
//
// Context: tools and tests. Nothing here allocates, but nothing in the allocator calls it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "alloc/stats_block_name.hpp"
#include "kernel_iface/result.hpp"
#include "usgc/stats_block.h"

namespace usgc::alloc {

inline constexpr int kStatsReadAttempts = 16;

enum class StatsReadError : uint8_t {
  kNone,
  kBadName,         // not "usgc-<uid>-<pid>" of this uid
  kVanished,        // removed between listing and opening (the process exited): not a problem
  kOpenFailed,      // detail: errno
  kNotRegularFile,  // a symlink, FIFO, directory...
  kWrongOwner,      // st_uid is not the caller's; detail: the owner
  kShortFile,       // detail: file size
  kBadMagic,
  kBadVersion,        // detail: the version found
  kSizeMismatch,      // size_bytes differs from the file size; detail: size_bytes
  kIdentityMismatch,  // pid or uid in the block differ from the name
  kUnstable,          // the seqlock never read even and unchanged
  kReadFailed,        // detail: errno
};

// "bad version", "short file", ... (a static string).
const char* stats_read_error_text(StatsReadError error);

struct StatsReadResult {
  StatsReadError error;
  uint64_t detail;  // see StatsReadError
  uint64_t inode;   // of the file read (0 if it was not opened)
};

// Reads the block of file `name` (in /dev/shm) into *block.
StatsReadResult read_stats_block(const char* name, uint32_t uid, usgc_stats_block* block);

enum class WriterState : uint8_t {
  kAlive,      // the writer runs (or we cannot tell otherwise)
  kDead,       // no such process
  kZombie,     // exited (killed) but not reaped
  kPidReused,  // the pid belongs to a later process (other start time)
};
const char* writer_state_text(WriterState state);
inline bool writer_state_is_stale(WriterState state) {
  return state != WriterState::kAlive;
}

// Judges a block read with read_stats_block.
WriterState stats_block_writer_state(const usgc_stats_block& block);

// Removes `name` if it is still the file with `inode` and owned by the caller.
kernel::Status remove_stale_stats_block(const char* name, uint64_t inode);

struct StatsBlockEntry {
  char name[kStatsBlockNameBytes + 16];  // longer names are cut (they are malformed anyway)
  int pid;                               // from the name; -1 when the name is malformed
  StatsReadResult read;
  WriterState writer;  // meaningful when read.error is kNone or kUnstable (kAlive otherwise)
  bool removed;        // stale, and removed by this scan
  usgc_stats_block block;
};
using StatsBlockVisitor = void (*)(const StatsBlockEntry& entry, void* context);

// Visits every /dev/shm entry named "usgc-<uid>-..." (read, judged and, with remove_stale,
// stale ones removed). Entries with kVanished are not visited.
kernel::Status scan_stats_blocks(uint32_t uid, bool remove_stale, StatsBlockVisitor visit,
                                 void* context);

}  // namespace usgc::alloc
