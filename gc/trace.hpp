// gc/trace.hpp — USGC_TRACE=gc: one line per collection on stderr, in the spirit of Go's
// GODEBUG=gctrace=1. Formats (sizes in MiB with 3 decimals, times in ms):
//   usgc: gc P<n> @<s>s private g<id> (<reason>): <before>-><after> MiB, <objects> marked, pause
//   <ms> ms usgc: gc S<n> @<s>s shared[-minor] g<id> (<reason>): <before>-><after> MiB,
//   <goroutines> goroutines,
//         <objects> marked by <markers> markers, pause <ms> ms (ttsp <ms>, stop <ms>, mark <ms>),
//         sweep <ms> ms
// "before" of a private collection is what its last collection left plus the runs taken since;
// of a shared one, the shared heap's live bytes after the last plus the bytes allocated since.
#pragma once

#include <cstddef>
#include <cstdint>

namespace usgc::gc {

void trace_private_collection(uint64_t number, uint64_t goroutine_id, const char* reason,
                              size_t before_bytes, size_t after_bytes, size_t objects_marked,
                              uint64_t pause_ns);

struct SharedTrace {
  uint64_t number;
  uint64_t goroutine_id;
  const char* reason;
  bool minor;
  size_t before_bytes;
  size_t after_bytes;
  uint64_t pause_ns;
  uint64_t time_to_safepoint_ns;
  uint64_t stop_ns;
  uint64_t mark_ns;
  uint64_t sweep_ns;
  size_t objects_marked;
  uint32_t markers;
  size_t goroutines;
};
void trace_shared_collection(const SharedTrace& trace);

}  // namespace usgc::gc
