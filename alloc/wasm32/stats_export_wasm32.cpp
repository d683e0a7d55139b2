// alloc/wasm32/stats_export_wasm32.cpp — the statistics block (stats_export.hpp) on the
// WebAssembly target (wasm32-wasi, built only by tools/build-wasm-runtime.sh): not published.
//
// Natively each process publishes its statistics in /dev/shm for usgc-top; a wasm instance has
// no shared memory with other processes and no process id, so nothing is published:
// g_stats_next_publish_ms is kStatsPublishNever from the start, and stats_export_maybe_publish
// (called on every page refill) returns after its one relaxed load. The host prints the
// runtime's statistics instead (usgc-run --stats). Hot path: that one load on refills.
#include "alloc/stats_export.hpp"

#include "kernel_iface/fatal.hpp"

namespace usgc::alloc {

std::atomic<uint64_t> g_stats_next_publish_ms{kStatsPublishNever};

void stats_export_publish_due(uint64_t, uint64_t) {
  kernel::fatal("usgc (wasm32): stats_export_publish_due with publication off");
}

}  // namespace usgc::alloc
