// tools/usgc_top/profile_request.cpp — see profile_request.hpp.
#include "tools/usgc_top/profile_request.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>

#include "alloc/stats_block_name.hpp"
#include "alloc/stats_profile_request.hpp"
#include "alloc/stats_reader.hpp"
#include "kernel_iface/process_info.hpp"
#include "tools/usgc_top/text.hpp"

namespace usgc::top {

namespace {

std::string pid_text(int pid) {
  return "pid " + std::to_string(pid);
}

// Where the answered file is, for a person: the block's path (escaped: the block is data), made
// absolute through /proc/<pid>/cwd when it is relative.
std::string profile_location(int pid, const usgc_stats_block& block) {
  std::string path =
      printable_text(block.profile_file, strnlen(block.profile_file, sizeof(block.profile_file)));
  if ((block.flags & USGC_STATS_FLAG_PROFILE_NAME_ONLY) != 0)
    return path + " (the file's name; its full path is too long for the statistics block)";
  if (!path.empty() && path[0] == '/') return path;
  std::error_code error;
  std::filesystem::path cwd =
      std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd", error);
  if (error) return path + " (in the working directory of " + pid_text(pid) + ")";
  std::string directory = cwd.string();
  return printable_text(directory) + (directory == "/" ? "" : "/") + path;
}

}  // namespace

bool send_profile_request(int pid, ProfileRequest* request, std::string* message) {
  uint64_t inode = 0;
  kernel::Result<uint32_t> sent =
      alloc::send_heap_profile_request(pid, kernel::current_user_id(), &inode);
  if (!sent.ok()) {
    switch (sent.error()) {
      case ENOENT:
        *message = "no usgc statistics block for " + pid_text(pid) +
                   " (not a usgc process of this user, USGC_STATS=0, or exited)";
        break;
      case ENOTSUP:
        *message = pid_text(pid) +
                   " does not profile its heap (start it with USGC_PROF=1; a usgc older than "
                   "heap-profile requests cannot answer either)";
        break;
      default:
        *message = "cannot send a heap-profile request to " + pid_text(pid) + ": " +
                   std::strerror(sent.error()) + " (errno " + std::to_string(sent.error()) + ")";
        break;
    }
    return false;
  }
  *request = ProfileRequest{pid, sent.value(), inode, std::chrono::steady_clock::now()};
  *message = "heap profile requested from " + pid_text(pid) + "...";
  return true;
}

ProfileOutcome profile_request_outcome(const ProfileRequest& request, const usgc_stats_block& block,
                                       std::string* message) {
  if (!alloc::heap_profile_request_answered(block, request.number)) return ProfileOutcome::kPending;
  if (block.profile_error != 0) {
    *message = pid_text(request.pid) +
               " could not write its heap profile: " + std::strerror(block.profile_error) +
               " (errno " + std::to_string(block.profile_error) + ")";
    return ProfileOutcome::kFailed;
  }
  *message = "heap profile of " + pid_text(request.pid) + " written to " +
             profile_location(request.pid, block);
  return ProfileOutcome::kWritten;
}

int run_heap_profile_request(const Options& options) {
  int pid = options.heap_profile_pid;
  ProfileRequest request;
  std::string message;
  if (!send_profile_request(pid, &request, &message)) {
    std::fprintf(stderr, "usgc-top: %s\n", message.c_str());
    return 1;
  }
  uint32_t uid = kernel::current_user_id();
  char name[alloc::kStatsBlockNameBytes];
  alloc::format_stats_block_name(name, uid, pid);
  auto deadline =
      request.sent + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(options.heap_profile_timeout_seconds));
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    usgc_stats_block block;
    alloc::StatsReadResult read = alloc::read_stats_block(name, uid, &block);
    if (read.error == alloc::StatsReadError::kVanished) {
      std::fprintf(stderr, "usgc-top: %s exited before it answered\n", pid_text(pid).c_str());
      return 1;
    }
    if (read.error == alloc::StatsReadError::kNone && read.inode != request.block_inode) {
      // Another block file for the pid: the process exec'd (its new image made a new block) and
      // the request was lost with the old one. Send it again, to the new block.
      ProfileRequest again;
      if (!send_profile_request(pid, &again, &message)) {
        std::fprintf(stderr, "usgc-top: %s\n", message.c_str());
        return 1;
      }
      request.number = again.number;
      request.block_inode = again.block_inode;
      continue;
    }
    if (read.error == alloc::StatsReadError::kNone) {
      ProfileOutcome outcome = profile_request_outcome(request, block, &message);
      if (outcome == ProfileOutcome::kWritten) {
        std::printf("usgc-top: %s\n", message.c_str());
        return 0;
      }
      if (outcome == ProfileOutcome::kFailed) {
        std::fprintf(stderr, "usgc-top: %s\n", message.c_str());
        return 1;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr,
                   "usgc-top: %s has not answered the heap-profile request within %.1f s (a "
                   "process answers from its allocator's slow path: it must be allocating)\n",
                   pid_text(pid).c_str(), options.heap_profile_timeout_seconds);
      return 1;
    }
  }
}

}  // namespace usgc::top
