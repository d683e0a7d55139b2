// gc/heap_validate.hpp — the heap verifier on demand (usgc_heap_validate, usgc/validate.h).
//
// usgc_heap_validate raises a request count and runs a full shared collection; every shared
// collection that starts while a request is pending sweeps and verifies in its pause (as under
// USGC_VERIFY) and records what the verifier walked. The requester reads the record after its
// collection returned. Off the hot paths: one relaxed load per shared collection.
#pragma once

#include "gc/verifier.hpp"

namespace usgc::gc {

// True while a usgc_heap_validate call waits for its collection (shared_collector.cpp asks).
bool validation_requested();
// Stores what a verification walked. Only in the stopped world, by the collecting thread.
void record_validation(const VerifyCounts& counts);

}  // namespace usgc::gc
