// tests/alloc/stats_export_test.cpp — the live statistics block, written by this process and read
// back through the reader usgc-top uses (alloc/stats_reader.hpp).
//
// Proves: a publication creates /dev/shm/usgc-<uid>-<pid> with mode 0600 holding this process's
// identity and figures matching usgc_malloc_get_stats; the seqlock advances by 2 per update and
// reads even; the refill-path check waits one interval before the first file (lazy creation);
// unpublish removes the file; USGC_STATS=0 creates nothing; a fork child publishes to its own
// file and never removes its parent's; blocks of dead processes and of reused pids are judged
// stale and removed, a block stuck mid-update (seqlock odd) too once its writer is gone;
// malformed files (garbage, short, other version, size mismatch, foreign names, symlinks) are
// skipped with a reason, never crash, never removed.
// (That the writer path never allocates is a property of its code: it calls only kernel_iface/
// functions, getenv and usgc_malloc_get_stats — see alloc/stats_export.cpp.)
#include "alloc/stats_export.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "alloc/stats_reader.hpp"
#include "kernel_iface/process_info.hpp"
#include "kernel_iface/shared_memory.hpp"
#include "usgc/stats_block.h"
#include "usgc/usgc.h"

namespace usgc::alloc {
namespace {

uint32_t my_uid() {
  return kernel::current_user_id();
}

std::string block_name(int pid) {
  char name[kStatsBlockNameBytes];
  format_stats_block_name(name, my_uid(), pid);
  return name;
}

bool block_exists(int pid) {
  return kernel::shared_memory_name_info(block_name(pid).c_str()).ok();
}

StatsReadResult read_block(int pid, usgc_stats_block* block) {
  return read_stats_block(block_name(pid).c_str(), my_uid(), block);
}

usgc_malloc_stats malloc_stats() {
  usgc_malloc_stats stats{};
  stats.version = USGC_MALLOC_STATS_VERSION;
  EXPECT_EQ(usgc_malloc_get_stats(&stats), 0);
  return stats;
}

// Writes `bytes` of `data` to /dev/shm/<name> (mode 0600).
void write_file(const std::string& name, const void* data, size_t bytes) {
  (void)kernel::shared_memory_unlink(name.c_str());
  kernel::Result<int> fd = kernel::shared_memory_create(name.c_str(), bytes);
  ASSERT_TRUE(fd.ok()) << name << ": " << std::strerror(fd.error());
  kernel::ScopedFile file(fd.value());
  ASSERT_EQ(::pwrite(file.get(), data, bytes, 0), static_cast<ssize_t>(bytes));
}

// A copy of this process's own valid block, to forge variants from.
usgc_stats_block own_block() {
  usgc_stats_block block{};
  EXPECT_TRUE(stats_export_publish_now().ok());
  EXPECT_EQ(read_block(kernel::current_process_id(), &block).error, StatsReadError::kNone);
  return block;
}

class StatsExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("USGC_STATS");
    stats_export_reset_for_testing();
  }
  void TearDown() override { stats_export_reset_for_testing(); }
};

TEST_F(StatsExportTest, PublishCreatesAPrivateBlockWithThisProcesssIdentity) {
  int pid = kernel::current_process_id();
  ASSERT_TRUE(stats_export_publish_now().ok());
  kernel::Result<kernel::SharedMemoryFileInfo> info =
      kernel::shared_memory_name_info(block_name(pid).c_str());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info.value().mode, 0600u);
  EXPECT_EQ(info.value().owner_uid, my_uid());
  EXPECT_EQ(info.value().size_bytes, sizeof(usgc_stats_block));
  usgc_stats_block block{};
  ASSERT_EQ(read_block(pid, &block).error, StatsReadError::kNone);
  EXPECT_EQ(block.magic, USGC_STATS_BLOCK_MAGIC);
  EXPECT_EQ(block.version, static_cast<uint32_t>(USGC_STATS_BLOCK_VERSION));
  EXPECT_EQ(block.pid, pid);
  EXPECT_EQ(block.uid, my_uid());
  EXPECT_EQ(block.sequence % 2, 0u);
  kernel::Result<kernel::ProcessStat> stat = kernel::process_stat(0);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(block.start_time_ticks, stat.value().start_time_ticks);
  EXPECT_EQ(std::string(block.command), std::string(program_invocation_short_name).substr(0, 15));
  EXPECT_GT(block.update_time_unix_ns, block.start_time_unix_ns);
  EXPECT_GT(block.rss_bytes, 0u);
  EXPECT_EQ(block.publish_interval_ms, kStatsDefaultIntervalMs);
  EXPECT_EQ(stats_block_writer_state(block), WriterState::kAlive);
  // The GC's fields exist and are zero until it does.
  EXPECT_EQ(block.goroutines, 0u);
  EXPECT_EQ(block.max_pause_ns, 0u);
  for (uint64_t bucket : block.pause_histogram) EXPECT_EQ(bucket, 0u);
}

TEST_F(StatsExportTest, FiguresMatchMallocStats) {
  std::vector<void*> blocks;
  for (int i = 0; i < 2000; ++i) blocks.push_back(usgc_malloc(1000));
  void* large = usgc_malloc(8u << 20);
  ASSERT_TRUE(stats_export_publish_now().ok());
  usgc_malloc_stats stats = malloc_stats();
  usgc_stats_block block{};
  ASSERT_EQ(read_block(kernel::current_process_id(), &block).error, StatsReadError::kNone);
  constexpr double kTolerance = 1 << 20;  // other threads of the test binary may allocate a little
  EXPECT_NEAR(static_cast<double>(block.bytes_in_use), static_cast<double>(stats.bytes_in_use),
              kTolerance);
  EXPECT_NEAR(static_cast<double>(block.bytes_large_in_use),
              static_cast<double>(stats.bytes_large_in_use), kTolerance);
  EXPECT_NEAR(static_cast<double>(block.bytes_reserved), static_cast<double>(stats.bytes_reserved),
              4.0 * kTolerance);
  EXPECT_NEAR(static_cast<double>(block.bytes_committed),
              static_cast<double>(stats.bytes_committed), 4.0 * kTolerance);
  EXPECT_LE(block.malloc_count, stats.malloc_count);
  EXPECT_GE(block.malloc_count + 1000, stats.malloc_count);
  EXPECT_EQ(block.segments, stats.segments);
  EXPECT_EQ(block.threads, stats.threads);
  EXPECT_EQ(block.numa_nodes, stats.numa_nodes);
  EXPECT_GE(block.bytes_large_in_use, 8u << 20);
  EXPECT_GE(block.bytes_in_use, 2000u * 1000u + (8u << 20));
  if (stats.numa_nodes == 1) {
    EXPECT_NE(block.flags & USGC_STATS_FLAG_NODE_BYTES, 0u);
    EXPECT_EQ(block.node_bytes_reserved[0], block.bytes_reserved);
  }
  for (void* p : blocks) usgc_free(p);
  usgc_free(large);
}

TEST_F(StatsExportTest, EachUpdateAdvancesTheSeqlockByTwo) {
  usgc_stats_block first = own_block();
  ASSERT_TRUE(stats_export_publish_now().ok());
  usgc_stats_block second{};
  ASSERT_EQ(read_block(kernel::current_process_id(), &second).error, StatsReadError::kNone);
  EXPECT_EQ(second.sequence, first.sequence + 2);
  EXPECT_EQ(second.publish_count, first.publish_count + 1);
  EXPECT_GE(second.update_monotonic_ns, first.update_monotonic_ns);
}

TEST_F(StatsExportTest, RefillCheckCreatesTheBlockOneIntervalAfterFirstSight) {
  int pid = kernel::current_process_id();
  ASSERT_FALSE(block_exists(pid));
  stats_export_maybe_publish();  // first sight: reads the configuration, schedules
  EXPECT_FALSE(block_exists(pid));
  uint64_t deadline = g_stats_next_publish_ms.load();
  EXPECT_NE(deadline, kStatsPublishNever);
  EXPECT_GT(deadline, 0u);
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!block_exists(pid) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stats_export_maybe_publish();
  }
  EXPECT_TRUE(block_exists(pid));
}

TEST_F(StatsExportTest, UnpublishRemovesTheFileAndStopsPublishing) {
  int pid = kernel::current_process_id();
  ASSERT_TRUE(stats_export_publish_now().ok());
  ASSERT_TRUE(block_exists(pid));
  stats_export_unpublish();
  EXPECT_FALSE(block_exists(pid));
  EXPECT_EQ(g_stats_next_publish_ms.load(), kStatsPublishNever);
  EXPECT_EQ(stats_export_publish_now().error(), ECANCELED);
  EXPECT_FALSE(block_exists(pid));
}

// Runs body in a fork child; the child's exit code is body's (0 = passed).
int run_in_child(int (*body)()) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(body());
  int status = 0;
  if (child < 0 || ::waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_F(StatsExportTest, StatsZeroCreatesNothing) {
  ASSERT_TRUE(stats_export_publish_now().ok());  // the parent's own block must survive
  int code = run_in_child([]() -> int {
    ::setenv("USGC_STATS", "0", 1);
    stats_export_reset_for_testing();  // the next check re-reads the environment
    int pid = kernel::current_process_id();
    for (int round = 0; round < 4; ++round) {
      stats_export_maybe_publish();
      void* p = usgc_malloc(100);
      usgc_free(p);
      std::this_thread::sleep_for(std::chrono::milliseconds(60));
    }
    if (g_stats_next_publish_ms.load() != kStatsPublishNever) return 2;
    if (stats_export_publish_now().error() != ECANCELED) return 3;
    if (block_exists(pid)) return 4;
    return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(block_exists(kernel::current_process_id()));
}

TEST_F(StatsExportTest, ForkChildPublishesItsOwnBlockAndLeavesItsParentsAlone) {
  int parent = kernel::current_process_id();
  ASSERT_TRUE(stats_export_publish_now().ok());
  static int parent_pid;
  parent_pid = parent;
  int code = run_in_child([]() -> int {
    int pid = kernel::current_process_id();
    if (!stats_export_publish_now().ok()) return 2;
    usgc_stats_block block{};
    if (read_block(pid, &block).error != StatsReadError::kNone) return 3;
    if (block.pid != pid) return 4;
    usgc_stats_block parents{};
    if (read_block(parent_pid, &parents).error != StatsReadError::kNone ||
        parents.pid != parent_pid)
      return 5;
    stats_export_unpublish();  // what the exit destructor does
    if (block_exists(pid)) return 6;
    return block_exists(parent_pid) ? 0 : 7;
  });
  EXPECT_EQ(code, 0);
  usgc_stats_block block{};
  EXPECT_EQ(read_block(parent, &block).error, StatsReadError::kNone);
  // A child that never published: its exit must not remove the inherited (parent's) file.
  code = run_in_child([]() -> int {
    stats_export_unpublish();
    return block_exists(parent_pid) ? 0 : 8;
  });
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(block_exists(parent));
}

struct Collected {
  std::map<std::string, StatsBlockEntry> entries;
};
void collect(const StatsBlockEntry& entry, void* context) {
  static_cast<Collected*>(context)->entries[entry.name] = entry;
}

TEST_F(StatsExportTest, BlockOfADeadProcessIsRecognizedAndRemoved) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Publish, then die without the exit destructor (as a process killed by a signal would).
    ::_exit(stats_export_publish_now().ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_TRUE(block_exists(child));
  Collected collected;
  ASSERT_TRUE(scan_stats_blocks(my_uid(), true, collect, &collected).ok());
  ASSERT_EQ(collected.entries.count(block_name(child)), 1u);
  const StatsBlockEntry& entry = collected.entries[block_name(child)];
  EXPECT_EQ(entry.read.error, StatsReadError::kNone);
  EXPECT_EQ(entry.writer, WriterState::kDead);
  EXPECT_TRUE(entry.removed);
  EXPECT_FALSE(block_exists(child));
  // Our own block is alive and stays.
  ASSERT_EQ(collected.entries.count(block_name(kernel::current_process_id())),
            0u);  // reset: none yet
}

// A child process that only waits (a live pid for a forged block's writer), and its end.
pid_t fork_waiting_child() {
  pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  return child;
}
void end_child(pid_t child) {
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

TEST_F(StatsExportTest, BlockWhosePidWasReusedIsRecognizedAndRemoved) {
  usgc_stats_block forged = own_block();
  const pid_t child = fork_waiting_child();
  ASSERT_GE(child, 0);
  // A block naming the live child's pid but another start time: its writer was an earlier
  // process that had the same pid.
  forged.pid = child;
  forged.start_time_ticks += 1;
  write_file(block_name(child), &forged, sizeof(forged));
  Collected collected;
  ASSERT_TRUE(scan_stats_blocks(my_uid(), true, collect, &collected).ok());
  end_child(child);
  ASSERT_EQ(collected.entries.count(block_name(child)), 1u);
  EXPECT_EQ(collected.entries[block_name(child)].writer, WriterState::kPidReused);
  EXPECT_TRUE(collected.entries[block_name(child)].removed);
  EXPECT_FALSE(block_exists(child));
  const StatsBlockEntry& own = collected.entries[block_name(kernel::current_process_id())];
  EXPECT_EQ(own.writer, WriterState::kAlive);
  EXPECT_FALSE(own.removed);
}

// A block stuck mid-update whose writer lives (as far as the reader can tell, a slow update) is
// skipped and kept; once the writer is gone the next scan removes it.
TEST_F(StatsExportTest, BlockStuckMidUpdateIsKeptWhileItsWriterLivesAndRemovedAfter) {
  usgc_stats_block forged = own_block();
  const pid_t child = fork_waiting_child();
  ASSERT_GE(child, 0);
  kernel::Result<kernel::ProcessStat> stat = kernel::process_stat(child);
  ASSERT_TRUE(stat.ok());
  forged.pid = child;
  forged.start_time_ticks = stat.value().start_time_ticks;
  forged.sequence |= 1;
  write_file(block_name(child), &forged, sizeof(forged));
  Collected alive;
  ASSERT_TRUE(scan_stats_blocks(my_uid(), true, collect, &alive).ok());
  end_child(child);
  ASSERT_EQ(alive.entries.count(block_name(child)), 1u);
  EXPECT_EQ(alive.entries[block_name(child)].read.error, StatsReadError::kUnstable);
  EXPECT_EQ(alive.entries[block_name(child)].writer, WriterState::kAlive);
  EXPECT_FALSE(alive.entries[block_name(child)].removed);
  Collected dead;
  ASSERT_TRUE(scan_stats_blocks(my_uid(), true, collect, &dead).ok());
  ASSERT_EQ(dead.entries.count(block_name(child)), 1u);
  EXPECT_EQ(dead.entries[block_name(child)].writer, WriterState::kDead);
  EXPECT_TRUE(dead.entries[block_name(child)].removed);
  EXPECT_FALSE(block_exists(child));
}

TEST_F(StatsExportTest, MalformedBlocksAreSkippedWithAReasonAndKept) {
  usgc_stats_block valid = own_block();
  std::string prefix = USGC_STATS_BLOCK_NAME_PREFIX + std::to_string(my_uid()) + "-";
  std::map<std::string, StatsReadError> expected;
  auto forge = [&](int pid, usgc_stats_block block, StatsReadError error,
                   size_t bytes = sizeof(usgc_stats_block)) {
    block.pid = pid;
    std::vector<char> data(bytes, 0);
    std::memcpy(data.data(), &block, std::min(bytes, sizeof(block)));
    write_file(prefix + std::to_string(pid), data.data(), bytes);
    expected[prefix + std::to_string(pid)] = error;
  };
  std::vector<char> garbage(1024);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 37 + 11);
  write_file(prefix + "999999", garbage.data(), garbage.size());
  expected[prefix + "999999"] = StatsReadError::kBadMagic;
  forge(999998, valid, StatsReadError::kShortFile, 10);
  usgc_stats_block other_version = valid;
  other_version.version = 99;
  forge(999997, other_version, StatsReadError::kBadVersion);
  forge(999996, valid, StatsReadError::kSizeMismatch, 2048);
  usgc_stats_block stuck = valid;
  stuck.sequence |= 1;  // a writer that died mid-update: judged below, removed as stale
  forge(999995, stuck, StatsReadError::kUnstable);
  expected.erase(prefix + "999995");
  usgc_stats_block wrong_identity = valid;
  forge(999994, wrong_identity, StatsReadError::kNone);  // pid fixed by forge: valid, dead writer
  expected.erase(prefix + "999994");
  wrong_identity.uid = my_uid() + 1;
  forge(999993, wrong_identity, StatsReadError::kIdentityMismatch);
  write_file(prefix + "12abc", garbage.data(), garbage.size());
  expected[prefix + "12abc"] = StatsReadError::kBadName;
  std::string link_path = std::string(USGC_STATS_BLOCK_DIRECTORY) + "/" + prefix + "999992";
  ::unlink(link_path.c_str());
  ASSERT_EQ(::symlink((prefix + std::to_string(valid.pid)).c_str(), link_path.c_str()), 0);
  expected[prefix + "999992"] = StatsReadError::kNotRegularFile;

  Collected collected;
  ASSERT_TRUE(scan_stats_blocks(my_uid(), true, collect, &collected).ok());
  for (const auto& [name, error] : expected) {
    ASSERT_EQ(collected.entries.count(name), 1u) << name;
    const StatsBlockEntry& entry = collected.entries[name];
    EXPECT_EQ(entry.read.error, error) << name << ": " << stats_read_error_text(entry.read.error);
    EXPECT_FALSE(entry.removed) << name;
    EXPECT_TRUE(kernel::shared_memory_name_info(name.c_str()).ok()) << name << " must be kept";
    EXPECT_STRNE(stats_read_error_text(entry.read.error), "");
  }
  EXPECT_EQ(collected.entries[prefix + "999997"].read.detail, 99u);
  // The well-formed block of the dead pid 999994 was removed as stale, and so was the one of the
  // dead pid 999995 stuck mid-update (before, it was skipped at every scan for ever).
  EXPECT_TRUE(collected.entries[prefix + "999994"].removed);
  EXPECT_EQ(collected.entries[prefix + "999995"].read.error, StatsReadError::kUnstable);
  EXPECT_EQ(collected.entries[prefix + "999995"].writer, WriterState::kDead);
  EXPECT_TRUE(collected.entries[prefix + "999995"].removed);
  EXPECT_FALSE(kernel::shared_memory_name_info((prefix + "999995").c_str()).ok());
  for (const auto& [name, error] : expected) (void)kernel::shared_memory_unlink(name.c_str());
}

}  // namespace
}  // namespace usgc::alloc
