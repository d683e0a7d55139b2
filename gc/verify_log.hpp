// gc/verify_log.hpp — the heap verifier's history: a ring of the shared marking's events, kept
// only with USGC_VERIFY, so that a verifier failure can say which path missed an object.
//
// What is recorded (one 32-byte record each, in one process-wide ring of kVerifyLogRecords):
//   mark-begin / mark-end     a shared mark's start and termination stops (epoch, kind)
//   scan                      a goroutine's roots scanned for a shared mark: by whom (a marker,
//                             its switch or resume, the start stop) and in which scan epoch
//   publish                   an object made shared in place (by which goroutine, the block's
//                             mark epoch before, and whether a shared mark ran)
//   renew                     a block's bitmap and cards cleared for a new mark epoch
//   shade                     the deletion barrier or a scan marked an object (or found it marked)
//   shared-store              a store into a shared or global object (target, value, old value)
//   free-shared               a private sweep freed a published object its block held
//   scan-root                 a goroutine's root slot (or remembered field) held the object when
//                             a scan read it
// On a verifier failure, verifier.cpp prints the records that name the object or its block, and
// the cycle boundaries between them (print_verify_history).
//
// Invariants: nothing is recorded unless g_config.verify (read once per event; written once at
// usgc_init): release builds without USGC_VERIFY pay one predictable branch on the slow paths
// that record (publication, the barrier's shared store, scans, renewals), none on the inline fast
// paths (allocation, the same-goroutine barrier, polls), which record nothing. The ring is
// allocated on the first event (usgc_calloc, 32 MiB of address space, touched as written) and
// never freed. Records are written without a lock: a slot is claimed with a relaxed fetch_add of
// the sequence, its fields stored relaxed, then its sequence number with release; a reader (the
// failure path, in a stopped world or aborting) skips a record whose sequence is not the one
// expected, so a torn or overwritten record is never printed as another.
// Execution context: any (mutators, markers, the stopped world); never in a signal handler.
#pragma once

#include <cstdint>

#include "gc/gc_state.hpp"

namespace usgc::gc {

enum class VerifyEvent : uint8_t {
  kMarkBegin,
  kMarkEnd,
  kScan,
  kPublish,
  kRenew,
  kShade,
  kSharedStore,
  kFreeShared,
  kScanRoot,
};

// Who scanned a goroutine (kScan's `b`).
enum class ScanBy : uint8_t { kMarker, kSelfOrSwitch, kStartStop };

[[gnu::cold, gnu::noinline]] void verify_log_record(VerifyEvent event, const void* a, const void* b,
                                                    uint64_t c, uint64_t d);
inline void verify_log(VerifyEvent event, const void* a, const void* b = nullptr, uint64_t c = 0,
                       uint64_t d = 0) {
  if (__builtin_expect(g_config.verify, 0)) verify_log_record(event, a, b, c, d);
}

// Prints (kernel::print_message, no allocation) the newest records that name `object` or its
// block, the scans of goroutine `goroutine_id` (0: none), and the mark boundaries among them.
void print_verify_history(const void* object, uint64_t goroutine_id);

}  // namespace usgc::gc
