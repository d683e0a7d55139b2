// gc/gc_api.cpp — the C API of usgc/gc.h over the collector (usgc_go_object and reference
// channels are the runtime's: runtime/gc_runtime.cpp).
#include <cerrno>
#include <cstring>

#include "gc/allocation.hpp"
#include "gc/gc_state.hpp"
#include "gc/shared_heap.hpp"
#include "gc/type_registry.hpp"
#include "numa/numa.hpp"
#include "safepoint/fork_child.hpp"

using namespace usgc::gc;

namespace {

void* allocate(uint32_t type_id, bool array, size_t length, usgc_ownership ownership,
               const char* operation) {
  if (usgc::safepoint::in_fork_child()) return fail_in_fork_child(operation);
  Mutator* m = current_mutator();
  if (m == nullptr)
    return fail(EPERM,
                "%s: the calling thread is not a goroutine (use usgc_run_main, usgc_go or "
                "usgc_attach_thread)",
                operation);
  const TypeDescriptor* type = find_type(type_id);
  if (type == nullptr) return fail(EINVAL, "%s: type %u is not registered", operation, type_id);
  bool array_type = type->kind != USGC_KIND_OBJECT;
  if (array != array_type) {
    return fail(
        EINVAL, "%s: type %u (%s) is %s", operation, type_id, type->name,
        array_type ? "an array type: use usgc_alloc_array" : "not an array type: use usgc_alloc");
  }
  if (static_cast<unsigned>(ownership) > USGC_GLOBAL_SHARED)
    return fail(EINVAL, "%s: %d is not an ownership class", operation, static_cast<int>(ownership));
  // 1 TiB of elements (1 GiB with 32-bit sizes: wasm32), so object_bytes cannot wrap.
  constexpr uint64_t kMaxArrayBytes = uint64_t{1} << (sizeof(size_t) == 4 ? 30 : 40);
  if (array && length > kMaxArrayBytes / type->size_bytes) {
    return fail(ENOMEM, "%s: an array of %zu elements of %u bytes is too large", operation, length,
                type->size_bytes);
  }
  size_t bytes = object_bytes(*type, array, length);
  uint32_t size_class = array ? size_class_of(bytes) : type->size_class;
  uint64_t header = make_header(static_cast<Ownership>(ownership), type_id, array, 0);
  void* object = nullptr;
  switch (ownership) {
    case USGC_STACK_LOCAL:
      object = allocate_stack_local(*m, header, bytes);
      break;
    case USGC_GOROUTINE_PRIVATE:
      object = allocate_private(*m, header, bytes, size_class);
      break;
    case USGC_GOROUTINE_SHARED:
    case USGC_GLOBAL_SHARED:
      // The length before the header is published (gc/allocation.hpp).
      return allocate_shared(*m, header, bytes, size_class, length);
  }
  if (object != nullptr && array) *static_cast<uint64_t*>(object) = length;
  return object;
}

}  // namespace

extern "C" {

USGC_GC_API usgc_type_id usgc_register_type(const usgc_type_info* info) {
  if (usgc::safepoint::in_fork_child()) {
    fail_in_fork_child("usgc_register_type");
    return 0;
  }
  if (info == nullptr) {
    fail(EINVAL, "usgc_register_type: info is NULL");
    return 0;
  }
  char why[160];
  if (layout_problem(*info, why, sizeof(why)) != nullptr) {
    char name[48] = "?";  // as the registry keeps it (47 bytes)
    if (info->name != nullptr) std::strncpy(name, info->name, sizeof(name) - 1);
    fail(EINVAL, "usgc_register_type: type \"%s\": %s", name, why);
    return 0;
  }
  int error = 0;
  uint32_t id = register_type(*info, &error);
  if (id == 0) {
    fail(error, "usgc_register_type: %s",
         error == EINVAL   ? "bad layout (a pointer offset is named twice)"
         : error == ENOSPC ? "the type table is full (65535 types)"
                           : "out of memory");
  }
  return id;
}

USGC_GC_API void* usgc_alloc(usgc_type_id type, usgc_ownership ownership) {
  return allocate(type, false, 0, ownership, "usgc_alloc");
}

USGC_GC_API void* usgc_alloc_array(usgc_type_id type, size_t length, usgc_ownership ownership) {
  return allocate(type, true, length, ownership, "usgc_alloc_array");
}

USGC_GC_API const char* usgc_last_error(void) {
  return last_error();
}

USGC_GC_API int usgc_type_layout_of(usgc_type_id type_id, usgc_type_layout* layout) {
  const TypeDescriptor* type = find_type(type_id);
  if (type == nullptr || layout == nullptr || type->kind != USGC_KIND_OBJECT) return EINVAL;
  layout->size_class = type->size_class;
  layout->slot_bytes = type->slot_bytes;
  layout->header_bits = make_header(Ownership::kPrivate, type_id, false, 0);
  return 0;
}

USGC_GC_API int usgc_gc_collect(usgc_gc_kind kind) {
  if (usgc::safepoint::in_fork_child()) return error_in_fork_child("usgc_gc_collect");
  Mutator* m = current_mutator();
  if (kind != USGC_GC_PRIVATE && kind != USGC_GC_SHARED && kind != USGC_GC_SHARED_MINOR)
    return EINVAL;
  if (m == nullptr) return EPERM;
  count_add(g_counters.explicit_collections, 1);
  if (kind == USGC_GC_PRIVATE)
    collect_private(*m, "explicit", /*full_requested=*/true);
  else
    collect_shared("explicit", kAlwaysCollect, /*full_requested=*/kind == USGC_GC_SHARED,
                   /*minor_requested=*/kind == USGC_GC_SHARED_MINOR);
  return 0;
}

USGC_GC_API int usgc_gc_get_stats(usgc_gc_stats* stats) {
  if (stats == nullptr || stats->version != USGC_GC_STATS_VERSION) return EINVAL;
  std::memset(stats, 0, sizeof *stats);
  stats->version = USGC_GC_STATS_VERSION;
  export_counters(read_counters(g_counters), *stats);
  stats->bytes_committed = heap_bytes_in_use();
  stats->heap_limit_bytes = heap_limit_bytes();
  return 0;
}

USGC_GC_API int usgc_gc_get_node_stats(usgc_gc_node_stats* nodes, uint32_t capacity,
                                       uint32_t* node_count) {
  if (node_count == nullptr || (nodes == nullptr && capacity > 0)) return EINVAL;
  int count = usgc::numa::topology().node_count;
  if (node_pool_span() > count) count = node_pool_span();
  for (int node = 0; node < count && static_cast<uint32_t>(node) < capacity; ++node) {
    NodePoolBytes figures = node_pool_bytes(node);
    nodes[node].bytes_committed = figures.bytes_committed;
    nodes[node].bytes_in_use = figures.bytes_in_use;
    nodes[node].free_blocks = figures.free_blocks;
  }
  *node_count = static_cast<uint32_t>(count);
  return 0;
}

}  // extern "C"

namespace usgc::gc {

void contribute_statistics(usgc_stats_block* block) {
  const GcCounterValues values = read_counters(g_counters);
  publish_counters(values, *block);
  block->gc_time_ns = values.private_pause_total_ns + values.shared_pause_total_ns;
  block->gc_bytes_committed = heap_bytes_in_use();
  usgc_gc_node_stats nodes[numa::kMaxNodes];
  uint32_t node_count = 0;
  if (usgc_gc_get_node_stats(nodes, numa::kMaxNodes, &node_count) != 0) return;
  // The pool's committed bytes: blocks taken, free blocks whose pages may be resident, large
  // mappings, less the slot pages of free blocks returned to the OS (gc/block.hpp).
  uint64_t committed_bytes = 0;
  for (uint32_t node = 0; node < node_count && node < numa::kMaxNodes; ++node)
    committed_bytes += nodes[node].bytes_committed;
  block->gc_bytes_committed = committed_bytes;
  auto kib = [](uint64_t bytes) {
    return static_cast<uint32_t>(bytes / 1024 > UINT32_MAX ? UINT32_MAX : bytes / 1024);
  };
  uint64_t committed[USGC_STATS_MAX_NODES] = {};
  uint64_t in_use[USGC_STATS_MAX_NODES] = {};
  for (uint32_t node = 0; node < node_count && node < numa::kMaxNodes; ++node) {
    uint32_t slot = node < USGC_STATS_MAX_NODES ? node : USGC_STATS_MAX_NODES - 1;
    committed[slot] += nodes[node].bytes_committed;
    in_use[slot] += nodes[node].bytes_in_use;
  }
  for (int slot = 0; slot < USGC_STATS_MAX_NODES; ++slot) {
    block->gc_node_committed_kib[slot] = kib(committed[slot]);
    block->gc_node_in_use_kib[slot] = kib(in_use[slot]);
  }
}

}  // namespace usgc::gc
