// gc/heap_validate.cpp — usgc_heap_validate: the heap verifier on demand (heap_validate.hpp).
//
// Shared state: g_validation.requests (callers waiting for a verified collection; any thread,
// relaxed: the collection that must see it is started by the same caller afterwards),
// g_validation.record and g_validation.record_sequence (written by the collector in the stopped
// world before the world restarts; read by a caller after its collection returned, which orders
// them: the release store of the sequence pairs with the caller's acquire load).
#include "gc/heap_validate.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>

#include "gc/allocation.hpp"
#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "usgc/validate.h"

namespace usgc::gc {
namespace {

// Heap validation requests (usgc_heap_validate) and the last verification's record.
struct Validation {
  // Callers of usgc_heap_validate waiting for a collection: incremented and decremented by them,
  // read by the collector (relaxed: the collection the caller starts sees its own increment).
  std::atomic<uint32_t> requests{0};
  // The last verification: written by the collector while the world is stopped, before
  // record_sequence's release increment; read by usgc_heap_validate after its acquire load.
  VerifyCounts record;
  std::atomic<uint64_t> record_sequence{0};  // verifications recorded so far
};
constinit Validation g_validation;

}  // namespace

bool validation_requested() {
  return g_validation.requests.load(std::memory_order_relaxed) != 0;
}

void record_validation(const VerifyCounts& counts) {
  g_validation.record = counts;
  // Release: pairs with usgc_heap_validate's acquire load; the record is complete.
  g_validation.record_sequence.fetch_add(1, std::memory_order_release);
}

}  // namespace usgc::gc

extern "C" USGC_GC_API int usgc_heap_validate(usgc_heap_report* report) {
  using namespace usgc::gc;
  if (report == nullptr || report->version != USGC_HEAP_REPORT_VERSION) return EINVAL;
  if (current_mutator() == nullptr) return EPERM;
  // Acquire: pairs with record_validation's release (the record read below is complete).
  uint64_t before = g_validation.record_sequence.load(std::memory_order_acquire);
  g_validation.requests.fetch_add(1, std::memory_order_relaxed);
  // A full shared collection: it (or another one that starts meanwhile) sees the request.
  int error = usgc_gc_collect(USGC_GC_SHARED);
  uint64_t after = g_validation.record_sequence.load(std::memory_order_acquire);
  g_validation.requests.fetch_sub(1, std::memory_order_relaxed);
  if (error != 0) return error;
  if (after == before) return EAGAIN;  // cannot happen: the collection ran with the request up
  std::memset(report, 0, sizeof *report);
  report->version = USGC_HEAP_REPORT_VERSION;
  report->objects_checked = g_validation.record.objects;
  report->bytes_checked = g_validation.record.bytes;
  report->references_checked = g_validation.record.references;
  report->roots_checked = g_validation.record.roots;
  report->goroutines_checked = g_validation.record.goroutines;
  report->verifications = after - before;
  return 0;
}
