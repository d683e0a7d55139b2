// gc/object_graph.hpp — the reference fields of an object, from its header and registered type:
// the one place that knows where references are (markers, publication, verifier, arena walks).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gc/object_header.hpp"
#include "gc/type_registry.hpp"

namespace usgc::gc {

// Calls fn(void** field) for every reference field of `object` (whose header is `header`).
template <typename Fn>
inline void for_each_reference_field(void* object, uint64_t header, Fn&& fn) {
  const TypeDescriptor& type = type_at(type_of(header));
  if (is_array(header)) {
    if (type.kind != USGC_KIND_POINTER_ARRAY) return;
    uint64_t length = *static_cast<uint64_t*>(object);
    char* elements = static_cast<char*>(object) + kArrayLengthBytes;
    for (uint64_t i = 0; i < length; ++i)
      fn(reinterpret_cast<void**>(elements + i * kReferenceWordBytes));
    return;
  }
  char* base = static_cast<char*>(object);
  for (uint32_t i = 0; i < type.pointer_count; ++i)
    fn(reinterpret_cast<void**>(base + type.pointer_offsets[i]));
}

// A root or field value that is an object (not null, not a tagged handle slot).
inline bool is_object_pointer(const void* value) {
  return value != nullptr && (reinterpret_cast<uintptr_t>(value) & 7) == 0;
}

// One step of a private trace (the private collector's and the old-generation cycle's): the
// children's headers are fetched together first, then visit(child) runs for every private child
// (the misses overlap). Returns true when a field refers to a shared or global object (the
// caller keeps the remembered-shared bit exact).
template <typename Visit>
inline bool trace_private_children(void* object, uint64_t header, Visit&& visit) {
  bool refers_to_shared = false;
  for_each_reference_field(object, header, [&](void** field) {
    if (void* value = *field) __builtin_prefetch(static_cast<char*>(value) - kHeaderBytes, 1);
  });
  for_each_reference_field(object, header, [&](void** field) {
    void* value = *field;
    if (!is_object_pointer(value)) return;
    if (is_shared_class(header_of(value)))
      refers_to_shared = true;
    else
      visit(value);
  });
  return refers_to_shared;
}

// Bytes the object occupies from its header on (before rounding to a slot).
inline size_t object_extent_bytes(const void* object, uint64_t header) {
  const TypeDescriptor& type = type_at(type_of(header));
  return object_bytes(type, is_array(header),
                      is_array(header) ? *static_cast<const uint64_t*>(object) : 0);
}

// Reads a reference field of an object another thread may store into (shared objects). Acquire:
// pairs with the write barrier's release store of a shared field (usgc_write_slow, after it
// published the value): the referent's header, fields and block format, written by the publisher
// before, are seen by the marker that follows the reference (on x86-64 the same mov as relaxed).
inline void* load_reference(void** field) {
  return __atomic_load_n(field, __ATOMIC_ACQUIRE);
}

}  // namespace usgc::gc
