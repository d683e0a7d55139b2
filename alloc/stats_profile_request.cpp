// alloc/stats_profile_request.cpp — see stats_profile_request.hpp.
#include "alloc/stats_profile_request.hpp"

#include <cerrno>
#include <cstddef>

#include "alloc/stats_block_name.hpp"
#include "alloc/stats_reader.hpp"
#include "kernel_iface/shared_memory.hpp"

namespace usgc::alloc {

kernel::Result<uint32_t> send_heap_profile_request(int pid, uint32_t uid, uint64_t* inode) {
  using Answer = kernel::Result<uint32_t>;
  if (pid <= 0) return Answer::failure(EINVAL);
  char name[kStatsBlockNameBytes];
  format_stats_block_name(name, uid, pid);
  usgc_stats_block block;
  StatsReadResult read = read_stats_block(name, uid, &block);
  if (read.error != StatsReadError::kNone) return Answer::failure(ENOENT);
  if ((block.flags & USGC_STATS_FLAG_HEAP_PROFILE) == 0) return Answer::failure(ENOTSUP);
  // A request still pending is joined, not multiplied; 0 is never a request (a fresh block's
  // answer is 0).
  uint32_t request = block.profile_request;
  if (heap_profile_request_answered(block, request) || request == 0) {
    request = block.profile_answer + 1;
    if (request == 0) request = 1;
  }
  kernel::Result<int> opened = kernel::shared_memory_open_read_write(name);
  if (!opened.ok()) return Answer::failure(opened.error());
  kernel::ScopedFile file(opened.value());
  // The very file read_stats_block accepted, still ours and whole.
  kernel::Result<kernel::SharedMemoryFileInfo> info = kernel::shared_memory_file_info(file.get());
  if (!info.ok()) return Answer::failure(info.error());
  if (!info.value().is_regular_file || info.value().inode != read.inode ||
      info.value().owner_uid != uid || info.value().size_bytes < sizeof(usgc_stats_block)) {
    return Answer::failure(ESTALE);
  }
  kernel::Status written = kernel::write_at(file.get(), &request, sizeof(request),
                                            offsetof(usgc_stats_block, profile_request));
  if (!written.ok()) return Answer::failure(written.error());
  if (inode != nullptr) *inode = read.inode;
  return Answer::success(request);
}

}  // namespace usgc::alloc
