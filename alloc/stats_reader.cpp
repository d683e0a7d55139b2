// alloc/stats_reader.cpp — see stats_reader.hpp.
//
// The seqlock, reader side, through pread (the writer is another process; the kernel's copies
// are the loads): s1 = sequence; copy the whole block; s2 = sequence. Accept when s1 == s2 and
// even. Each pread is a system call, which orders the loads on either side of it; the acquire
// fences below state the order the protocol needs (and are what an in-process mapping reader
// would need): the first read happens before the copy, the copy before the second read.
#include "alloc/stats_reader.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>

#include "kernel_iface/process_info.hpp"
#include "kernel_iface/shared_memory.hpp"

namespace usgc::alloc {
namespace {

constexpr size_t kSequenceOffset = offsetof(usgc_stats_block, sequence);

kernel::Result<uint64_t> read_sequence(int fd) {
  uint64_t sequence = 0;
  kernel::Result<size_t> got = kernel::read_at(fd, &sequence, sizeof(sequence), kSequenceOffset);
  if (!got.ok()) return kernel::Result<uint64_t>::failure(got.error());
  if (got.value() != sizeof(sequence)) return kernel::Result<uint64_t>::failure(ENODATA);
  return kernel::Result<uint64_t>::success(sequence);
}

StatsReadResult result(StatsReadError error, uint64_t detail, uint64_t inode) {
  return StatsReadResult{error, detail, inode};
}

}  // namespace

const char* stats_read_error_text(StatsReadError error) {
  switch (error) {
    case StatsReadError::kNone:
      return "ok";
    case StatsReadError::kBadName:
      return "bad name";
    case StatsReadError::kVanished:
      return "vanished";
    case StatsReadError::kOpenFailed:
      return "cannot open";
    case StatsReadError::kNotRegularFile:
      return "not a regular file";
    case StatsReadError::kWrongOwner:
      return "owned by another user";
    case StatsReadError::kShortFile:
      return "short file";
    case StatsReadError::kBadMagic:
      return "bad magic";
    case StatsReadError::kBadVersion:
      return "bad version";
    case StatsReadError::kSizeMismatch:
      return "size mismatch";
    case StatsReadError::kIdentityMismatch:
      return "pid or uid differ from the file name";
    case StatsReadError::kUnstable:
      return "never stable (writer stuck mid-update)";
    case StatsReadError::kReadFailed:
      return "read failed";
  }
  return "unknown error";
}

const char* writer_state_text(WriterState state) {
  switch (state) {
    case WriterState::kAlive:
      return "alive";
    case WriterState::kDead:
      return "dead";
    case WriterState::kZombie:
      return "zombie";
    case WriterState::kPidReused:
      return "pid reused";
  }
  return "unknown";
}

StatsReadResult read_stats_block(const char* name, uint32_t uid, usgc_stats_block* block) {
  int pid = parse_stats_block_pid(name, uid);
  if (pid < 0) return result(StatsReadError::kBadName, 0, 0);
  kernel::Result<int> opened = kernel::shared_memory_open_read_only(name);
  if (!opened.ok()) {
    if (opened.error() == ENOENT) return result(StatsReadError::kVanished, 0, 0);
    // O_NOFOLLOW on a symlink: ELOOP. Say what it is rather than "cannot open".
    if (opened.error() == ELOOP) return result(StatsReadError::kNotRegularFile, 0, 0);
    return result(StatsReadError::kOpenFailed, static_cast<uint64_t>(opened.error()), 0);
  }
  kernel::ScopedFile file(opened.value());
  kernel::Result<kernel::SharedMemoryFileInfo> info = kernel::shared_memory_file_info(file.get());
  if (!info.ok())
    return result(StatsReadError::kReadFailed, static_cast<uint64_t>(info.error()), 0);
  uint64_t inode = info.value().inode;
  if (!info.value().is_regular_file) return result(StatsReadError::kNotRegularFile, 0, inode);
  if (info.value().owner_uid != uid)
    return result(StatsReadError::kWrongOwner, info.value().owner_uid, inode);
  uint64_t file_bytes = info.value().size_bytes;
  if (file_bytes < sizeof(usgc_stats_block))
    return result(StatsReadError::kShortFile, file_bytes, inode);

  for (int attempt = 0; attempt < kStatsReadAttempts; ++attempt) {
    kernel::Result<uint64_t> before = read_sequence(file.get());
    if (!before.ok())
      return result(StatsReadError::kReadFailed, static_cast<uint64_t>(before.error()), inode);
    // Acquire fence: the copy below is not performed before the first sequence read.
    std::atomic_thread_fence(std::memory_order_acquire);
    kernel::Result<size_t> got = kernel::read_at(file.get(), block, sizeof(*block), 0);
    if (!got.ok())
      return result(StatsReadError::kReadFailed, static_cast<uint64_t>(got.error()), inode);
    if (got.value() != sizeof(*block))
      return result(StatsReadError::kShortFile, got.value(), inode);
    // Acquire fence: the copy is complete before the second sequence read.
    std::atomic_thread_fence(std::memory_order_acquire);
    kernel::Result<uint64_t> after = read_sequence(file.get());
    if (!after.ok())
      return result(StatsReadError::kReadFailed, static_cast<uint64_t>(after.error()), inode);
    // The identity checks do not depend on the seqlock (the header never changes after
    // creation), so a file that is not a block at all fails here rather than as "unstable".
    if (block->magic != USGC_STATS_BLOCK_MAGIC) return result(StatsReadError::kBadMagic, 0, inode);
    if (block->version != USGC_STATS_BLOCK_VERSION)
      return result(StatsReadError::kBadVersion, block->version, inode);
    if (block->size_bytes != file_bytes || block->size_bytes < sizeof(usgc_stats_block)) {
      return result(StatsReadError::kSizeMismatch, block->size_bytes, inode);
    }
    if (block->pid != pid || block->uid != uid)
      return result(StatsReadError::kIdentityMismatch, 0, inode);
    if (before.value() == after.value() && (before.value() & 1) == 0 &&
        block->sequence == before.value()) {
      return result(StatsReadError::kNone, 0, inode);
    }
    for (int spin = 0; spin < 1000 << (attempt < 10 ? attempt : 10); ++spin) __builtin_ia32_pause();
  }
  return result(StatsReadError::kUnstable, 0, inode);
}

WriterState stats_block_writer_state(const usgc_stats_block& block) {
  kernel::Result<bool> exists = kernel::process_exists(block.pid);
  if (exists.ok() && !exists.value()) return WriterState::kDead;
  kernel::Result<kernel::ProcessStat> stat = kernel::process_stat(block.pid);
  if (!stat.ok()) return stat.error() == ENOENT ? WriterState::kDead : WriterState::kAlive;
  if (stat.value().state == 'Z' || stat.value().state == 'X') return WriterState::kZombie;
  if (block.start_time_ticks != 0 && stat.value().start_time_ticks != block.start_time_ticks) {
    return WriterState::kPidReused;
  }
  return WriterState::kAlive;
}

kernel::Status remove_stale_stats_block(const char* name, uint64_t inode) {
  kernel::Result<kernel::SharedMemoryFileInfo> info = kernel::shared_memory_name_info(name);
  if (!info.ok()) return info.status();
  // Still the file we judged (a new process of the same pid would have made a new inode), ours.
  if (info.value().inode != inode || !info.value().is_regular_file)
    return kernel::Status::failure(ESTALE);
  if (info.value().owner_uid != kernel::current_user_id()) return kernel::Status::failure(EPERM);
  return kernel::shared_memory_unlink(name);
}

namespace {

struct ScanContext {
  uint32_t uid;
  bool remove_stale;
  StatsBlockVisitor visit;
  void* context;
};

void scan_one(const char* name, void* raw_context) {
  auto* scan = static_cast<ScanContext*>(raw_context);
  StatsBlockEntry entry{};
  size_t length = std::strlen(name);
  if (length >= sizeof(entry.name)) length = sizeof(entry.name) - 1;
  std::memcpy(entry.name, name, length);
  entry.name[length] = '\0';
  entry.pid = parse_stats_block_pid(name, scan->uid);
  entry.read = read_stats_block(name, scan->uid, &entry.block);
  if (entry.read.error == StatsReadError::kVanished) return;
  entry.writer = WriterState::kAlive;
  // A block never read stable passed the identity checks (magic, version, size, pid and uid
  // against the name) and its pid and start time never change after creation: its writer is
  // judged too, so the block of a process killed mid-update (its sequence odd for ever) is stale
  // and removed, not skipped at every scan.
  if (entry.read.error == StatsReadError::kNone || entry.read.error == StatsReadError::kUnstable) {
    entry.writer = stats_block_writer_state(entry.block);
    if (scan->remove_stale && writer_state_is_stale(entry.writer)) {
      entry.removed = remove_stale_stats_block(name, entry.read.inode).ok();
    }
  }
  scan->visit(entry, scan->context);
}

}  // namespace

kernel::Status scan_stats_blocks(uint32_t uid, bool remove_stale, StatsBlockVisitor visit,
                                 void* context) {
  char prefix[kStatsBlockNameBytes];
  format_stats_block_prefix(prefix, uid);
  ScanContext scan{uid, remove_stale, visit, context};
  return kernel::list_shared_memory(prefix, scan_one, &scan);
}

}  // namespace usgc::alloc
