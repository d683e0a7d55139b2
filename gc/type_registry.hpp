// gc/type_registry.hpp — registered object types: size and reference offsets, so tracing is
// precise.
//
// A type is registered once and never changes; ids are dense (1..65535), 1 and 2 are the
// built-in reference and byte arrays. Registration takes a lock and publishes the new entry with
// a release store of the count; lookups are lock-free (an acquire load is not even needed on the
// tracing path: an object of type t exists only after t's registration returned to the mutator
// that allocated it, and the object's publication orders everything before it).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gc/size_classes.hpp"
#include "usgc/gc.h"

namespace usgc::gc {

struct TypeDescriptor {
  usgc_type_kind kind = USGC_KIND_OBJECT;
  uint32_t size_bytes = 0;  // object payload, or element size of an array type
  uint32_t pointer_count = 0;
  const uint32_t* pointer_offsets = nullptr;  // ascending; owned by the registry
  uint32_t size_class = kNoSizeClass;         // objects: class of header + payload
  uint32_t slot_bytes = 0;                    // objects: the class's slot (or exact large size)
  char name[48] = {};
};

inline constexpr uint32_t kRefArrayType = USGC_TYPE_REF_ARRAY;
inline constexpr uint32_t kByteArrayType = USGC_TYPE_BYTE_ARRAY;

// Registers the built-in types (idempotent); called by gc_initialize.
void register_builtin_types();
// 0 with *error_number set (EINVAL, ENOSPC) on failure.
uint32_t register_type(const usgc_type_info& info, int* error_number);
// What is wrong with a layout (written into buffer, returned), or nullptr when it is valid:
// objects up to 1 GiB with distinct 8-aligned offsets each leaving 8 bytes inside the object,
// scalar arrays of 1..4096-byte elements, pointer arrays of 8-byte elements; arrays take no
// offsets. No size computation in it can wrap.
const char* layout_problem(const usgc_type_info& info, char* buffer, size_t buffer_bytes);
// Highest registered id, release-published after the descriptor is complete (type_registry.cpp).
extern std::atomic<uint32_t> g_type_count;
// The table (type_registry.cpp): index = type id; entries never change once registered.
extern TypeDescriptor g_types[USGC_MAX_TYPES + 1];
// The descriptor of a type known to exist (an object's header names it): on every traced object.
inline const TypeDescriptor& type_at(uint32_t type_id) {
  return g_types[type_id];
}
// nullptr for an unknown id (usgc_alloc's check: inline, it is on every allocation through the
// API).
inline const TypeDescriptor* find_type(uint32_t type_id) {
  // Acquire: pairs with register_locked's release store: the descriptor is complete.
  if (type_id == 0 || type_id > g_type_count.load(std::memory_order_acquire)) return nullptr;
  return &g_types[type_id];
}

// Bytes of the object with this header and payload (header included, before rounding to a slot).
inline size_t object_bytes(const TypeDescriptor& type, bool array, uint64_t array_length) {
  constexpr size_t kHeader = 8,
                   kLength = 8;  // gc/object_header.hpp: kHeaderBytes, kArrayLengthBytes
  if (!array) return kHeader + ((type.size_bytes + 7) & ~size_t{7});
  return kHeader + kLength + ((array_length * type.size_bytes + 7) & ~size_t{7});
}

}  // namespace usgc::gc
