// gc/type_registry.cpp — see type_registry.hpp.
#include "gc/type_registry.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
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

bool valid_layout(const usgc_type_info& info) {
  switch (info.kind) {
    case USGC_KIND_OBJECT:
      if (info.size > (uint64_t{1} << 30)) return false;
      if (info.pointer_count > 0 && info.pointer_offsets == nullptr) return false;
      for (size_t i = 0; i < info.pointer_count; ++i) {
        size_t offset = info.pointer_offsets[i];
        if (offset % 8 != 0 || offset + 8 > info.size) return false;
      }
      return true;
    case USGC_KIND_SCALAR_ARRAY:
      return info.size > 0 && info.size <= 4096 && info.pointer_count == 0;
    case USGC_KIND_POINTER_ARRAY:
      return info.size == sizeof(void*) && info.pointer_count == 0;
  }
  return false;
}

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
      offsets[i] = static_cast<uint32_t>(info.pointer_offsets[i]);
    std::sort(offsets, offsets + info.pointer_count);
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
  usgc_type_info refs = {"[]ref", USGC_KIND_POINTER_ARRAY, sizeof(void*), nullptr, 0};
  usgc_type_info bytes = {"[]byte", USGC_KIND_SCALAR_ARRAY, 1, nullptr, 0};
  register_locked(refs, &ignored);
  register_locked(bytes, &ignored);
}

uint32_t register_type(const usgc_type_info& info, int* error_number) {
  if (!valid_layout(info)) {
    *error_number = EINVAL;
    return 0;
  }
  register_builtin_types();
  kernel::FutexMutexGuard guard(g_registration_lock);
  return register_locked(info, error_number);
}

}  // namespace usgc::gc
