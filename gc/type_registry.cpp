// gc/type_registry.cpp — see type_registry.hpp.
#include "gc/type_registry.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "gc/object_header.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "usgc/usgc.h"

namespace usgc::gc {

// The table is static storage: 65536 descriptors, touched only as types are registered.
TypeDescriptor g_types[USGC_MAX_TYPES + 1];
std::atomic<uint32_t> g_type_count{0};  // highest registered id; release-published

namespace {

constexpr uint32_t kTableSize = USGC_MAX_TYPES + 1;  // index 0 unused
kernel::FutexMutex<kernel::LockRank::kTypeRegistration> g_registration_lock;

constexpr size_t kMaximumObjectBytes = size_t{1} << 30;
constexpr size_t kMaximumScalarElementBytes = 4096;

// Formats the problem into the caller's buffer and returns it.
const char* problem(char* buffer, size_t buffer_bytes, const char* format, ...)
    __attribute__((format(printf, 3, 4)));
const char* problem(char* buffer, size_t buffer_bytes, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, buffer_bytes, format, args);
  va_end(args);
  return buffer;
}

}  // namespace

// Every check is written so that no sum or product can wrap: an offset is compared with the size
// by subtraction after checking it is below it (offset (size_t)-8 is refused, not wrapped to 0).
//
// The kind is read as the int a C caller stored: any int may arrive through the C API, and in C++
// loading an enum object that holds a value outside the enumeration's range is undefined (the
// compiler may drop the default case below; UBSan reported "load of value 77").
const char* layout_problem(const usgc_type_info& info, char* buffer, size_t buffer_bytes) {
  static_assert(sizeof(usgc_type_kind) == sizeof(int), "a C enum is an int");
  int kind;
  std::memcpy(&kind, &info.kind, sizeof kind);
  switch (kind) {
    case USGC_KIND_OBJECT: {
      if (info.size > kMaximumObjectBytes)
        return problem(buffer, buffer_bytes, "object size %zu is above %zu bytes", info.size,
                       kMaximumObjectBytes);
      // Distinct 8-aligned offsets inside the object: at most size / 8 of them.
      if (info.pointer_count > info.size / 8)
        return problem(buffer, buffer_bytes,
                       "%zu pointer offsets do not fit an object of %zu bytes (at most one per "
                       "8 bytes)",
                       info.pointer_count, info.size);
      if (info.pointer_count > 0 && info.pointer_offsets == nullptr)
        return problem(buffer, buffer_bytes, "pointer_offsets is NULL with pointer_count %zu",
                       info.pointer_count);
      for (size_t i = 0; i < info.pointer_count; ++i) {
        size_t offset = info.pointer_offsets[i];
        if (offset % 8 != 0)
          return problem(buffer, buffer_bytes, "pointer offset %zu (index %zu) is not 8-aligned",
                         offset, i);
        if (offset >= info.size || info.size - offset < 8)
          return problem(buffer, buffer_bytes,
                         "pointer offset %zu does not leave 8 bytes inside the object of %zu "
                         "bytes",
                         offset, info.size);
      }
      return nullptr;
    }
    case USGC_KIND_SCALAR_ARRAY:
      if (info.size == 0 || info.size > kMaximumScalarElementBytes)
        return problem(buffer, buffer_bytes, "scalar array element size %zu is not 1..%zu",
                       info.size, kMaximumScalarElementBytes);
      if (info.pointer_count != 0)
        return problem(buffer, buffer_bytes, "array types take no pointer offsets (got %zu)",
                       info.pointer_count);
      return nullptr;
    case USGC_KIND_POINTER_ARRAY:
      if (info.size != kReferenceWordBytes || info.pointer_count != 0)
        return problem(buffer, buffer_bytes,
                       "a pointer array has element size 8 and no offsets (got %zu, %zu offsets)",
                       info.size, info.pointer_count);
      return nullptr;
  }
  return problem(buffer, buffer_bytes, "kind %d is not a usgc_type_kind", kind);
}

namespace {

uint32_t register_locked(const usgc_type_info& info, int* error_number) {
  uint32_t id = g_type_count.load(std::memory_order_relaxed) + 1;
  if (id >= kTableSize) {
    *error_number = ENOSPC;
    return 0;
  }
  TypeDescriptor& type = g_types[id];
  type.kind = info.kind;
  type.size_bytes = static_cast<uint32_t>(info.size);
  type.pointer_count = static_cast<uint32_t>(info.pointer_count);
  if (info.pointer_count > 0) {
    auto* offsets = static_cast<uint32_t*>(usgc_malloc(info.pointer_count * sizeof(uint32_t)));
    if (offsets == nullptr) {
      *error_number = ENOMEM;
      return 0;
    }
    for (size_t i = 0; i < info.pointer_count; ++i)
      offsets[i] = static_cast<uint32_t>(info.pointer_offsets[i]);  // < 2^30 (layout_problem)
    std::sort(offsets, offsets + info.pointer_count);
    // A slot named twice would be traced (and, in a shared object, published) twice.
    if (std::adjacent_find(offsets, offsets + info.pointer_count) != offsets + info.pointer_count) {
      usgc_free(offsets);
      *error_number = EINVAL;
      return 0;
    }
    type.pointer_offsets = offsets;
  }
  if (info.kind == USGC_KIND_OBJECT) {
    size_t bytes = object_bytes(type, false, 0);
    type.size_class = size_class_of(bytes);
    type.slot_bytes = type.size_class == kNoSizeClass ? static_cast<uint32_t>(bytes)
                                                      : kSlotBytes[type.size_class];
  }
  const char* name = info.name != nullptr ? info.name : "?";
  std::strncpy(type.name, name, sizeof(type.name) - 1);
  // Release: a thread that sees the new count sees the whole descriptor.
  g_type_count.store(id, std::memory_order_release);
  return id;
}

}  // namespace

void register_builtin_types() {
  kernel::FutexMutexGuard guard(g_registration_lock);
  if (g_type_count.load(std::memory_order_relaxed) >= kByteArrayType) return;
  int ignored = 0;
  usgc_type_info refs = {"[]ref", USGC_KIND_POINTER_ARRAY, kReferenceWordBytes, nullptr, 0};
  usgc_type_info bytes = {"[]byte", USGC_KIND_SCALAR_ARRAY, 1, nullptr, 0};
  register_locked(refs, &ignored);
  register_locked(bytes, &ignored);
}

uint32_t register_type(const usgc_type_info& info, int* error_number) {
  char ignored[8];
  if (layout_problem(info, ignored, sizeof(ignored)) != nullptr) {
    *error_number = EINVAL;
    return 0;
  }
  register_builtin_types();
  kernel::FutexMutexGuard guard(g_registration_lock);
  return register_locked(info, error_number);
}

}  // namespace usgc::gc
