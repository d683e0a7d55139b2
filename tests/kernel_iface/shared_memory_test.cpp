// tests/kernel_iface/shared_memory_test.cpp — /dev/shm files and process facts.
//
// Proves the contract of kernel_iface/shared_memory.hpp and process_info.hpp: created files are
// mode 0600 whatever the umask, exclusive (EEXIST), shared between mappings, and "complete on
// appearance" through create_unnamed + link; names with '/' are refused; a symlink is never
// followed; listing finds exactly the prefix; kill(pid,0) tells a live process from a reaped one;
// /proc parsing gives this process's start time, command and resident size.
#include "kernel_iface/shared_memory.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "kernel_iface/process_info.hpp"

namespace usgc::kernel {
namespace {

std::string unique_name(const char* what) {
  return std::string("usgc-test-") + what + "-" + std::to_string(::getpid());
}

class SharedMemoryTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& name : names_) (void)shared_memory_unlink(name.c_str());
  }
  const char* track(const std::string& name) {
    names_.push_back(name);
    return names_.back().c_str();
  }
  std::vector<std::string> names_;
};

TEST_F(SharedMemoryTest, CreateIsMode0600EvenWithAPermissiveUmask) {
  const char* name = track(unique_name("mode"));
  mode_t saved = ::umask(0);
  Result<int> fd = shared_memory_create(name, 4096);
  ::umask(saved);
  ASSERT_TRUE(fd.ok()) << std::strerror(fd.error());
  ScopedFile file(fd.value());
  Result<SharedMemoryFileInfo> info = shared_memory_file_info(file.get());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info.value().mode, 0600u);
  EXPECT_EQ(info.value().size_bytes, 4096u);
  EXPECT_EQ(info.value().owner_uid, current_user_id());
  EXPECT_TRUE(info.value().is_regular_file);
}

TEST_F(SharedMemoryTest, CreateIsExclusive) {
  const char* name = track(unique_name("excl"));
  Result<int> first = shared_memory_create(name, 4096);
  ASSERT_TRUE(first.ok());
  ScopedFile file(first.value());
  Result<int> second = shared_memory_create(name, 4096);
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(second.error(), EEXIST);
}

TEST_F(SharedMemoryTest, NamesWithSlashesAreRefused) {
  EXPECT_EQ(shared_memory_create("../etc/x", 4096).error(), EINVAL);
  EXPECT_EQ(shared_memory_create("", 4096).error(), EINVAL);
  EXPECT_EQ(shared_memory_unlink("..").error(), EINVAL);
  EXPECT_EQ(shared_memory_open_read_only("a/b").error(), EINVAL);
}

TEST_F(SharedMemoryTest, TwoMappingsShareTheBytesAndReadAtSeesThem) {
  const char* name = track(unique_name("share"));
  Result<int> fd = shared_memory_create(name, 8192);
  ASSERT_TRUE(fd.ok());
  ScopedFile writer(fd.value());
  Result<void*> mapped = shared_memory_map(writer.get(), 8192, true);
  ASSERT_TRUE(mapped.ok());
  std::memcpy(static_cast<char*>(mapped.value()) + 4096, "hello", 6);
  Result<int> reader_fd = shared_memory_open_read_only(name);
  ASSERT_TRUE(reader_fd.ok());
  ScopedFile reader(reader_fd.value());
  Result<void*> view = shared_memory_map(reader.get(), 8192, false);
  ASSERT_TRUE(view.ok());
  EXPECT_STREQ(static_cast<const char*>(view.value()) + 4096, "hello");
  char buffer[16] = {};
  Result<size_t> got = read_at(reader.get(), buffer, 6, 4096);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value(), 6u);
  EXPECT_STREQ(buffer, "hello");
  Result<size_t> past_end = read_at(reader.get(), buffer, 16, 8190);
  ASSERT_TRUE(past_end.ok());
  EXPECT_EQ(past_end.value(), 2u);  // short read at end of file, not an error
  EXPECT_TRUE(shared_memory_unmap(view.value(), 8192).ok());
  EXPECT_TRUE(shared_memory_unmap(mapped.value(), 8192).ok());
}

TEST_F(SharedMemoryTest, UnnamedFileAppearsOnlyWhenLinked) {
  Result<int> fd = shared_memory_create_unnamed(4096);
  if (!fd.ok() && (fd.error() == EOPNOTSUPP || fd.error() == EISDIR))
    GTEST_SKIP() << "no O_TMPFILE on /dev/shm";
  ASSERT_TRUE(fd.ok()) << std::strerror(fd.error());
  ScopedFile file(fd.value());
  Result<void*> mapped = shared_memory_map(file.get(), 4096, true);
  ASSERT_TRUE(mapped.ok());
  std::memcpy(mapped.value(), "complete", 9);
  const char* name = track(unique_name("unnamed"));
  EXPECT_EQ(shared_memory_name_info(name).error(), ENOENT);
  ASSERT_TRUE(shared_memory_link(file.get(), name).ok());
  Result<SharedMemoryFileInfo> info = shared_memory_name_info(name);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info.value().mode, 0600u);
  Result<int> reader = shared_memory_open_read_only(name);
  ASSERT_TRUE(reader.ok());
  ScopedFile reader_file(reader.value());
  char buffer[9] = {};
  ASSERT_TRUE(read_at(reader_file.get(), buffer, 9, 0).ok());
  EXPECT_STREQ(buffer, "complete");
  EXPECT_EQ(shared_memory_link(file.get(), name).error(), EEXIST);  // never replaces
  EXPECT_TRUE(shared_memory_unmap(mapped.value(), 4096).ok());
}

TEST_F(SharedMemoryTest, OpenDoesNotFollowSymlinks) {
  const char* target = track(unique_name("target"));
  const char* link = track(unique_name("symlink"));
  Result<int> fd = shared_memory_create(target, 4096);
  ASSERT_TRUE(fd.ok());
  ScopedFile file(fd.value());
  std::string link_path = std::string(kSharedMemoryDirectory) + "/" + link;
  ASSERT_EQ(::symlink(target, link_path.c_str()), 0);
  EXPECT_EQ(shared_memory_open_read_only(link).error(), ELOOP);
  Result<SharedMemoryFileInfo> info = shared_memory_name_info(link);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info.value().is_regular_file);
  EXPECT_EQ(shared_memory_create(link, 4096).error(), EEXIST);
}

struct Seen {
  std::set<std::string> names;
};
void collect(const char* name, void* context) {
  static_cast<Seen*>(context)->names.insert(name);
}

TEST_F(SharedMemoryTest, ListFindsExactlyThePrefix) {
  std::string prefix = unique_name("list") + "-";
  for (const char* suffix : {"a", "b", "c"}) {
    Result<int> fd = shared_memory_create(track(prefix + suffix), 4096);
    ASSERT_TRUE(fd.ok());
    (void)close_file(fd.value());
  }
  Result<int> other = shared_memory_create(track(unique_name("other")), 4096);
  ASSERT_TRUE(other.ok());
  (void)close_file(other.value());
  Seen seen;
  ASSERT_TRUE(list_shared_memory(prefix.c_str(), collect, &seen).ok());
  EXPECT_EQ(seen.names, (std::set<std::string>{prefix + "a", prefix + "b", prefix + "c"}));
}

TEST_F(SharedMemoryTest, UnlinkRemovesAndReportsMissing) {
  std::string name = unique_name("unlink");
  Result<int> fd = shared_memory_create(name.c_str(), 4096);
  ASSERT_TRUE(fd.ok());
  (void)close_file(fd.value());
  EXPECT_TRUE(shared_memory_unlink(name.c_str()).ok());
  EXPECT_EQ(shared_memory_unlink(name.c_str()).error(), ENOENT);
}

TEST(ProcessInfo, LivenessTellsALiveProcessFromAReapedOne) {
  Result<bool> self = process_exists(current_process_id());
  ASSERT_TRUE(self.ok());
  EXPECT_TRUE(self.value());
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  Result<bool> gone = process_exists(child);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone.value());
  EXPECT_EQ(process_stat(child).error(), ENOENT);
  EXPECT_EQ(process_exists(0).error(), EINVAL);
}

TEST(ProcessInfo, StatOfSelfGivesAStableStartTime) {
  Result<ProcessStat> by_self = process_stat(0);
  Result<ProcessStat> by_pid = process_stat(current_process_id());
  ASSERT_TRUE(by_self.ok());
  ASSERT_TRUE(by_pid.ok());
  EXPECT_GT(by_self.value().start_time_ticks, 0u);
  EXPECT_EQ(by_self.value().start_time_ticks, by_pid.value().start_time_ticks);
  EXPECT_NE(by_self.value().state, 'Z');
  EXPECT_GT(clock_ticks_per_second(), 0u);
}

TEST(ProcessInfo, CommandAndResidentSize) {
  char command[16];
  Result<size_t> length = read_process_command(command, sizeof(command));
  ASSERT_TRUE(length.ok());
  EXPECT_GT(length.value(), 0u);
  EXPECT_EQ(std::strchr(command, '\n'), nullptr);
  EXPECT_EQ(std::string(command), std::string(program_invocation_short_name).substr(0, 15));
  Result<uint64_t> rss = read_resident_bytes();
  ASSERT_TRUE(rss.ok());
  EXPECT_GT(rss.value(), 0u);
}

}  // namespace
}  // namespace usgc::kernel
