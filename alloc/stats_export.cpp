// alloc/stats_export.cpp — see stats_export.hpp for when and why; this file is the how.
//
// State (all constant-initialized, valid before constructors):
//   g_stats_next_publish_ms  the deadline; see the header.
//   g_writer_pid             the writer lock: 0 free, else the pid of the process whose thread
//                            holds it. try_lock only. A value that is not our pid was inherited
//                            through fork() from a thread that does not exist here: taken over.
//   g_export                 everything else; read and written only while holding the lock.
//
// The seqlock, writer side (readers: alloc/stats_reader.cpp):
//   sequence := s + 1 (odd); release fence; figures; sequence := s + 2 (even, release store).
// Only the lock holder writes, so the counter needs no read-modify-write.
#include "alloc/stats_export.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "alloc/heap_profile.hpp"
#include "alloc/segment.hpp"
#include "alloc/stats_block_name.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/process_info.hpp"
#include "kernel_iface/shared_memory.hpp"
#include "usgc/stats_block.h"
#include "usgc/usgc.h"

namespace usgc::alloc {

constinit std::atomic<uint64_t> g_stats_next_publish_ms{0};

namespace {

enum class ConfigState : uint8_t { kUnread, kOn, kOff };

struct ExportState {
  ConfigState config = ConfigState::kUnread;
  uint32_t interval_ms = kStatsDefaultIntervalMs;
  usgc_stats_block* block = nullptr;  // our mapping of the file, or null
  int block_pid = 0;                  // the pid that created `block` (differs in a fork child)
  bool created_file = false;          // block_pid's process made the file and must unlink it
  bool failure_reported = false;
  bool stopped = false;  // unpublished at exit: never publish again
  char name[kStatsBlockNameBytes] = {};
  // Heap-profile requests (stats_block.h): the last request taken (never read back from the
  // block, which others may write), profiles written on request, when the last was taken (coarse
  // ms; at most one a second), and whether one is being written now (outside the lock).
  uint32_t profile_request_taken = 0;
  uint32_t profile_files = 0;
  uint64_t profile_taken_ms = 0;
  bool profile_writing = false;
};

constinit std::atomic<int> g_writer_pid{0};
constinit ExportState g_export;
// The configured interval: written under the lock, read relaxed by the deadline election.
constinit std::atomic<uint32_t> g_interval_ms{kStatsDefaultIntervalMs};

bool writer_try_lock(int pid) {
  int holder = 0;
  // Acquire (both CASes): the new holder sees g_export as the previous holder left it.
  if (g_writer_pid.compare_exchange_strong(holder, pid, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
    return true;
  }
  if (holder == pid) return false;  // another thread of this process is publishing
  // Inherited from the parent through fork(): its holder thread does not exist in this process.
  return g_writer_pid.compare_exchange_strong(holder, pid, std::memory_order_acquire,
                                              std::memory_order_relaxed);
}

void writer_unlock() {
  // Release: publishes this holder's writes to g_export to the next holder.
  g_writer_pid.store(0, std::memory_order_release);
}

// USGC_STATS and USGC_STATS_INTERVAL_MS (kernel_iface/environment.hpp; 1..3600000 ms, so the
// narrowing below is exact).
void read_configuration() {
  using kernel::EnvironmentVariableId;
  g_export.config = kernel::read_environment_number(EnvironmentVariableId::kStats, 1) == 0
                        ? ConfigState::kOff
                        : ConfigState::kOn;
  g_export.interval_ms = static_cast<uint32_t>(kernel::read_environment_number(
      EnvironmentVariableId::kStatsIntervalMs, kStatsDefaultIntervalMs));
  g_interval_ms.store(g_export.interval_ms, std::memory_order_relaxed);
}

// The figures, taken before the seqlock opens so the block stays odd only for the stores.
struct Figures {
  usgc_malloc_stats stats;
  uint64_t rss_bytes;
  uint64_t realtime_ns;
  uint64_t monotonic_ns;
};

std::atomic<StatsContributor> g_stats_contributor{nullptr};

Figures take_figures() {
  Figures figures{};
  figures.stats.version = USGC_MALLOC_STATS_VERSION;
  if (malloc_stats_read(&figures.stats, false) != 0) figures.stats = usgc_malloc_stats{};
  kernel::Result<uint64_t> rss = kernel::read_resident_bytes();
  figures.rss_bytes = rss.ok() ? rss.value() : 0;
  figures.realtime_ns = kernel::realtime_ns();
  figures.monotonic_ns = kernel::monotonic_ns();
  return figures;
}

// Plain stores of the figures; the caller brackets them with the seqlock.
void write_figures(usgc_stats_block* block, const Figures& figures) {
  const usgc_malloc_stats& stats = figures.stats;
  block->update_time_unix_ns = figures.realtime_ns;
  block->update_monotonic_ns = figures.monotonic_ns;
  block->publish_count = block->publish_count + 1;
  block->bytes_reserved = stats.bytes_reserved;
  block->bytes_committed = stats.bytes_committed;
  block->bytes_in_use = stats.bytes_in_use;
  block->bytes_large_in_use = stats.bytes_large_in_use;
  block->malloc_count = stats.malloc_count;
  block->free_count = stats.free_count;
  block->remote_free_count = stats.remote_free_count;
  block->segments = stats.segments;
  block->decommits_io_uring = stats.decommits_io_uring;
  block->decommits_madvise = stats.decommits_madvise;
  block->bytes_decommitted = stats.bytes_decommitted;
  block->threads = stats.threads;
  block->rss_bytes = figures.rss_bytes;
  block->numa_nodes = stats.numa_nodes;
  // Per-node reserved bytes from the segment counters; nodes past the table's end are summed
  // into its last entry.
  for (int node = 0; node < kCountedNodes; ++node) {
    uint64_t bytes = g_segment_counters.node_bytes_reserved[node].load(std::memory_order_relaxed);
    int slot = node < USGC_STATS_MAX_NODES ? node : USGC_STATS_MAX_NODES - 1;
    block->node_bytes_reserved[slot] =
        (node < USGC_STATS_MAX_NODES ? 0 : block->node_bytes_reserved[slot]) + bytes;
  }
  block->flags |= USGC_STATS_FLAG_NODE_BYTES;
  if (g_heap_profile_options.profile) block->flags |= USGC_STATS_FLAG_HEAP_PROFILE;
  // Figures of the layers above (goroutines, time to safepoint), when they are running.
  if (StatsContributor contributor = g_stats_contributor.load(std::memory_order_acquire))
    contributor(block);
}

void publish_figures(usgc_stats_block* block) {
  Figures figures = take_figures();
  std::atomic_ref<uint64_t> sequence(block->sequence);
  uint64_t stable = sequence.load(std::memory_order_relaxed);  // even: only we write it
  sequence.store(stable + 1, std::memory_order_relaxed);
  // Release fence: the odd value is ordered before every figure store below, so a reader that
  // copies any new figure then sees the sequence odd or advanced, and retries.
  std::atomic_thread_fence(std::memory_order_release);
  write_figures(block, figures);
  // Release: every figure store is ordered before the even value a reader accepts.
  sequence.store(stable + 2, std::memory_order_release);
}

// Heap-profile requests. Under the writer lock: the request a watcher left in the block that
// should be answered now, or 0 (none, not profiling, one being written, or one answered less than
// a second ago). Only the number is read from the block.
uint32_t take_profile_request(int pid, uint64_t now_ms) {
  if (!g_heap_profile_options.profile || g_export.block == nullptr || g_export.block_pid != pid ||
      g_export.stopped || g_export.profile_writing)
    return 0;
  // Relaxed: the request is a number; nothing else the watcher wrote is read with it.
  uint32_t request =
      std::atomic_ref<uint32_t>(g_export.block->profile_request).load(std::memory_order_relaxed);
  if (request == 0 || request == g_export.profile_request_taken) return 0;  // 0: never a request
  if (g_export.profile_taken_ms != 0 && now_ms - g_export.profile_taken_ms < 1000) return 0;
  g_export.profile_request_taken = request;
  g_export.profile_taken_ms = now_ms;
  g_export.profile_writing = true;
  return request;
}

// The path into the block's field: whole if it fits, else its last component (cut to its last
// bytes if even that is too long) with USGC_STATS_FLAG_PROFILE_NAME_ONLY.
void store_profile_path(usgc_stats_block* block, const char* path) {
  size_t length = std::strlen(path);
  const char* shown = path;
  bool name_only = false;
  if (length >= USGC_STATS_PROFILE_FILE_BYTES) {
    const char* slash = std::strrchr(path, '/');
    shown = slash != nullptr ? slash + 1 : path;
    size_t name_length = std::strlen(shown);
    if (name_length >= USGC_STATS_PROFILE_FILE_BYTES)
      shown += name_length - (USGC_STATS_PROFILE_FILE_BYTES - 1);
    name_only = true;
  }
  std::memset(block->profile_file, 0, sizeof(block->profile_file));
  std::memcpy(block->profile_file, shown, std::strlen(shown));
  if (name_only) {
    block->flags |= USGC_STATS_FLAG_PROFILE_NAME_ONLY;
  } else {
    block->flags &= ~USGC_STATS_FLAG_PROFILE_NAME_ONLY;
  }
}

// Identity fields and first figures of a fresh (zero) block, before anyone can read it.
void initialize_block(usgc_stats_block* block, int pid, uint32_t uid) {
  block->magic = USGC_STATS_BLOCK_MAGIC;
  block->version = USGC_STATS_BLOCK_VERSION;
  block->size_bytes = USGC_STATS_BLOCK_BYTES;
  block->pid = pid;
  block->uid = uid;
  kernel::Result<kernel::ProcessStat> stat = kernel::process_stat(0);
  if (stat.ok()) {
    block->start_time_ticks = stat.value().start_time_ticks;
    uint64_t since_boot_ns =
        stat.value().start_time_ticks * (1000000000u / kernel::clock_ticks_per_second());
    uint64_t age_ns = kernel::boottime_ns() - since_boot_ns;
    block->start_time_unix_ns = kernel::realtime_ns() - age_ns;
  }
  if (!kernel::read_process_command(block->command, sizeof(block->command)).ok()) {
    std::memcpy(block->command, "?", 2);
  }
  block->publish_interval_ms = g_export.interval_ms;
  publish_figures(block);
}

void report_failure_once(const char* what, int error) {
  if (g_export.failure_reported || error == ENOENT) return;  // no /dev/shm: silently off
  g_export.failure_reported = true;
  kernel::print_message(
      "statistics block %s/%s: %s failed (errno %d); usgc-top will not list this process "
      "(USGC_STATS=0 turns publication off)",
      kernel::kSharedMemoryDirectory, g_export.name, what, error);
}

// Maps fd, fills the block; on success the block is g_export.block. Closes fd either way.
kernel::Status map_and_initialize(int fd, int pid, uint32_t uid) {
  kernel::Result<void*> mapped = kernel::shared_memory_map(fd, USGC_STATS_BLOCK_BYTES, true);
  (void)kernel::close_file(fd);  // the mapping keeps the file
  if (!mapped.ok()) return mapped.status();
  auto* block = static_cast<usgc_stats_block*>(mapped.value());
  initialize_block(block, pid, uid);
  g_export.block = block;
  g_export.block_pid = pid;
  return kernel::Status::success();
}

void drop_block() {
  if (g_export.block != nullptr) {
    // Unmapping our own view cannot fail short of a bug; the file is not affected.
    (void)kernel::shared_memory_unmap(g_export.block, USGC_STATS_BLOCK_BYTES);
  }
  g_export.block = nullptr;
  g_export.created_file = false;
}

// Creates, fills and names this process's block. Prefers an unnamed file linked when complete;
// falls back to O_CREAT|O_EXCL. A leftover file of our pid (a process that exec'd into this one,
// or one that died) is replaced.
kernel::Status create_block(int pid) {
  uint32_t uid = kernel::current_user_id();
  format_stats_block_name(g_export.name, uid, pid);
  kernel::Result<int> unnamed = kernel::shared_memory_create_unnamed(USGC_STATS_BLOCK_BYTES);
  if (unnamed.ok()) {
    int fd = unnamed.value();
    kernel::Result<void*> mapped = kernel::shared_memory_map(fd, USGC_STATS_BLOCK_BYTES, true);
    if (!mapped.ok()) {
      (void)kernel::close_file(fd);
      return mapped.status();
    }
    auto* block = static_cast<usgc_stats_block*>(mapped.value());
    initialize_block(block, pid, uid);
    kernel::Status linked = kernel::shared_memory_link(fd, g_export.name);
    if (!linked.ok() && linked.error() == EEXIST &&
        kernel::shared_memory_unlink(g_export.name).ok()) {
      linked = kernel::shared_memory_link(fd, g_export.name);
    }
    (void)kernel::close_file(fd);
    if (linked.ok()) {
      g_export.block = block;
      g_export.block_pid = pid;
      g_export.created_file = true;
      return linked;
    }
    (void)kernel::shared_memory_unmap(block, USGC_STATS_BLOCK_BYTES);
    if (linked.error() == EEXIST || linked.error() == EPERM)
      return linked;  // a name we may not take
    // Otherwise (no /proc to link through): the named fallback below.
  }
  kernel::Result<int> named = kernel::shared_memory_create(g_export.name, USGC_STATS_BLOCK_BYTES);
  if (!named.ok() && named.error() == EEXIST && kernel::shared_memory_unlink(g_export.name).ok()) {
    named = kernel::shared_memory_create(g_export.name, USGC_STATS_BLOCK_BYTES);
  }
  if (!named.ok()) return named.status();
  kernel::Status status = map_and_initialize(named.value(), pid, uid);
  if (!status.ok()) {
    (void)kernel::shared_memory_unlink(g_export.name);
    return status;
  }
  g_export.created_file = true;
  return status;
}

// Under the writer lock. `force`: publish now even where the lifecycle would wait an interval.
kernel::Status publish_locked(uint64_t now_ms, bool force) {
  int pid = kernel::current_process_id();
  if (g_export.stopped) return kernel::Status::failure(ECANCELED);
  if (g_export.config == ConfigState::kUnread) {
    read_configuration();
    if (g_export.config == ConfigState::kOff) {
      g_stats_next_publish_ms.store(kStatsPublishNever, std::memory_order_relaxed);
      return kernel::Status::failure(ECANCELED);
    }
    if (!force) {  // first sight: a process living less than one interval publishes nothing
      g_stats_next_publish_ms.store(now_ms + g_export.interval_ms, std::memory_order_relaxed);
      return kernel::Status::success();
    }
  }
  if (g_export.config == ConfigState::kOff) return kernel::Status::failure(ECANCELED);
  if (g_export.block != nullptr && g_export.block_pid != pid) {
    // Fork child: the mapping is the parent's file. Let go of it, never write or unlink it.
    drop_block();
    if (!force) {
      g_stats_next_publish_ms.store(now_ms + g_export.interval_ms, std::memory_order_relaxed);
      return kernel::Status::success();
    }
  }
  if (g_export.block == nullptr) {
    kernel::Status created = create_block(pid);
    if (!created.ok()) {
      report_failure_once("create", created.error());
      g_stats_next_publish_ms.store(kStatsPublishNever, std::memory_order_relaxed);  // give up
      return created;
    }
    return created;  // initialize_block published the first figures
  }
  publish_figures(g_export.block);
  return kernel::Status::success();
}

void unpublish_locked(int pid) {
  if (g_export.block != nullptr && g_export.block_pid == pid && g_export.created_file) {
    (void)kernel::shared_memory_unlink(g_export.name);  // already gone (removed by hand): fine
  }
  drop_block();
}

// The lock for exit and tests: other threads may be mid-publish; wait for them a little.
bool writer_lock_patiently(int pid) {
  for (int attempt = 0; attempt < 1000000; ++attempt) {
    if (writer_try_lock(pid)) return true;
    __builtin_ia32_pause();
  }
  return false;
}

// Outside the writer lock (a profile takes milliseconds, and the exit must not wait for it):
// writes the profile `number`, then publishes the answer to `request` under the lock and the
// seqlock.
void answer_profile_request(int pid, uint32_t request, uint32_t number) {
  char path[512];
  int error = heap_profile_write_requested(number, path, sizeof(path));
  for (int attempt = 0; attempt < 100; ++attempt) {  // the holder publishes figures: brief
    if (!writer_lock_patiently(pid)) continue;
    g_export.profile_writing = false;
    if (error == 0 && number > g_export.profile_files) g_export.profile_files = number;
    usgc_stats_block* block = g_export.block;
    if (block != nullptr && g_export.block_pid == pid && !g_export.stopped) {
      std::atomic_ref<uint64_t> sequence(block->sequence);
      uint64_t stable = sequence.load(std::memory_order_relaxed);  // even: only we write it
      sequence.store(stable + 1, std::memory_order_relaxed);
      // Release fence, release store: as in publish_figures.
      std::atomic_thread_fence(std::memory_order_release);
      block->profile_error = error;
      block->profile_files = g_export.profile_files;
      store_profile_path(block, error == 0 ? path : "");
      block->profile_answer = request;
      sequence.store(stable + 2, std::memory_order_release);
    }
    writer_unlock();
    return;
  }
}

// Runs at exit (after main returns or exit()), not after _exit or a fatal signal.
__attribute__((destructor)) void stats_export_at_exit() {
  stats_export_unpublish();
}

}  // namespace

void stats_export_publish_due(uint64_t deadline_seen, uint64_t now_ms) {
  // Relaxed CAS: it only elects one thread per deadline; the writer lock orders the state.
  uint64_t next = now_ms + g_interval_ms.load(std::memory_order_relaxed);
  if (!g_stats_next_publish_ms.compare_exchange_strong(deadline_seen, next,
                                                       std::memory_order_relaxed))
    return;
  int saved_errno = errno;  // a successful malloc leaves errno alone
  int pid = kernel::current_process_id();
  if (writer_try_lock(pid)) {
    (void)publish_locked(now_ms, false);  // failures were reported once and turned publication off
    uint32_t request = take_profile_request(pid, now_ms);
    uint32_t number = g_export.profile_files + 1;
    writer_unlock();
    if (request != 0) answer_profile_request(pid, request, number);
  }
  errno = saved_errno;
}

kernel::Status stats_export_publish_now() {
  int saved_errno = errno;
  int pid = kernel::current_process_id();
  if (!writer_try_lock(pid)) return kernel::Status::failure(EBUSY);
  kernel::Status status = publish_locked(kernel::coarse_monotonic_ms(), true);
  if (status.ok()) {
    g_stats_next_publish_ms.store(kernel::coarse_monotonic_ms() + g_export.interval_ms,
                                  std::memory_order_relaxed);
  }
  writer_unlock();
  errno = saved_errno;
  return status;
}

void stats_export_unpublish() {
  g_stats_next_publish_ms.store(kStatsPublishNever, std::memory_order_relaxed);  // no new rounds
  int saved_errno = errno;
  int pid = kernel::current_process_id();
  if (writer_lock_patiently(pid)) {
    unpublish_locked(pid);
    g_export.stopped = true;
    writer_unlock();
  }
  errno = saved_errno;
}

void stats_export_set_contributor(StatsContributor contributor) {
  g_stats_contributor.store(contributor, std::memory_order_release);
}

void stats_export_reset_for_testing() {
  int pid = kernel::current_process_id();
  if (!writer_lock_patiently(pid)) return;
  unpublish_locked(pid);
  g_export.config = ConfigState::kUnread;
  g_export.failure_reported = false;
  g_export.stopped = false;
  g_export.profile_request_taken = 0;
  g_export.profile_taken_ms = 0;
  g_stats_next_publish_ms.store(0, std::memory_order_relaxed);
  writer_unlock();
}

}  // namespace usgc::alloc
