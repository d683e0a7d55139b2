// tools/usgc_top/profile_request.hpp — asking a running process for its heap profile from
// usgc-top: `usgc-top --heap-profile PID` and the `h` key of the interactive view. The protocol
// and its trust rules are in alloc/stats_profile_request.hpp (the process chooses the file; only
// a request number crosses the block). Everything printed from the block goes through
// printable_text. Not on any hot path.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "tools/usgc_top/model.hpp"
#include "tools/usgc_top/options.hpp"

namespace usgc::top {

// A request sent and not yet settled.
struct ProfileRequest {
  int pid = 0;
  uint32_t number = 0;
  uint64_t block_inode = 0;  // the block file written to (another one: the process exec'd)
  std::chrono::steady_clock::time_point sent;
};

// Sends a request to pid. False with the reason in *message ("pid 12 does not profile ...").
bool send_profile_request(int pid, ProfileRequest* request, std::string* message);

enum class ProfileOutcome { kPending, kWritten, kFailed };

// The state of `request` in a block of its process (the caller found it by pid): pending, or
// settled with the one-line *message ("heap profile of pid 12 written to
// /home/u/usgc-12.heap.1.pb.gz").
ProfileOutcome profile_request_outcome(const ProfileRequest& request, const usgc_stats_block& block,
                                       std::string* message);

// --heap-profile PID: sends, waits up to the timeout, prints the path on stdout (0) or the
// reason on stderr (1).
int run_heap_profile_request(const Options& options);

}  // namespace usgc::top
