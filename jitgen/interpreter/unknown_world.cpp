// jitgen/interpreter/unknown_world.cpp — the stand-in for code the analysis cannot see
// (unknown_world.hpp).
#include "jitgen/interpreter/unknown_world.hpp"

namespace usgc::jitgen::interpreter {

bool create_unknown_world(RunState& run) {
  run.unknown_world = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kWorldSlots, USGC_GLOBAL_SHARED);
  if (run.unknown_world == nullptr) return false;
  // No allocation between the two calls: the array cannot be collected before it is a root.
  return usgc_global_root_add(&run.unknown_world) == 0;
}

void destroy_unknown_world(RunState& run) {
  if (run.unknown_world == nullptr) return;
  usgc_global_root_remove(&run.unknown_world);
  run.unknown_world = nullptr;
}

void keep_in_unknown_world(RunState& run, void* value) {
  if (value == nullptr) return;
  uint64_t slot = run.unknown_world_next.fetch_add(1, std::memory_order_relaxed) % kWorldSlots;
  usgc_array_write(run.unknown_world, slot, value);
}

void* newest_in_unknown_world(const RunState& run, ir::TypeId type) {
  uint64_t next = run.unknown_world_next.load(std::memory_order_relaxed);
  uint64_t kept = next < kWorldSlots ? next : kWorldSlots;
  for (uint64_t back = 1; back <= kept; ++back) {
    void* object = usgc_array_read(run.unknown_world, (next - back) % kWorldSlots);
    if (object == nullptr) continue;
    const SiteLayout* site = run.layout.site_of_object(object);
    if (site != nullptr && site->value_type == type) return object;
  }
  return nullptr;
}

}  // namespace usgc::jitgen::interpreter
