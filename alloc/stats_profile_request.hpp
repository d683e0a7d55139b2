// alloc/stats_profile_request.hpp — the watcher's side of a heap-profile request: how usgc-top
// (or a test) asks a running process of the same user, through its statistics block, to write its
// heap profile now, and reads the answer (the process's side is in stats_export.cpp and
// heap_profile.cpp; the protocol is in include/usgc/stats_block.h, "Heap-profile requests").
//
// Trust, both ways:
//   - the watcher writes only into a block that read_stats_block accepted (the caller's uid, a
//     regular file it owns, well formed, of that pid), and only into that very file (the inode it
//     read), and only the 4 bytes of profile_request;
//   - the process takes nothing from the block but the request number: the file name, the
//     directory and the moment are its own (a request is answered at most once per second). A
//     block written by anyone else can at worst make it write its own profile under its own name.
//
// Context: tools and tests (system calls, no allocation). Not on any hot path.
#pragma once

#include <cstdint>

#include "kernel_iface/result.hpp"
#include "usgc/stats_block.h"

namespace usgc::alloc {

// Sends a request to process `pid` (a block of `uid`). The number to wait for, or:
// ENOENT no block for pid (or not readable as this user's), ENOTSUP the process does not profile
// its heap (no USGC_PROF=1, or a usgc without requests), or the errno of the open/write.
// *inode (if given) is the block file's: a watcher that later reads another inode for the pid
// knows the process replaced its block (it exec'd: the request was lost) and sends again.
kernel::Result<uint32_t> send_heap_profile_request(int pid, uint32_t uid,
                                                   uint64_t* inode = nullptr);

// The request was answered in `block` (an answer to a later request answers it too).
inline bool heap_profile_request_answered(const usgc_stats_block& block, uint32_t request) {
  return static_cast<int32_t>(block.profile_answer - request) >= 0;
}

}  // namespace usgc::alloc
