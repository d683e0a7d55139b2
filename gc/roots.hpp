// gc/roots.hpp — where collections start: a goroutine's roots, and the process's global roots.
//
// A goroutine's roots (for its private collection, and as one part of a shared collection):
// its shadow-stack frames' slots, its local handles, its start object, and the references held
// by the STACK_LOCAL objects in its arena. The process's roots: global root slots, global
// handles, and what the runtime adds (reference channels' buffers and waiting senders).
// Values that are not object pointers (null; a free handle slot, tagged odd) are skipped here,
// so visitors see only objects.
#pragma once

#include <cstdint>

#include "gc/mutator.hpp"
#include "gc/object_graph.hpp"

namespace usgc::gc {

// visit(void** slot) for every root slot of `m` holding an object.
template <typename Visit>
void for_each_mutator_root(Mutator& m, Visit&& visit) {
  for (usgc_frame* frame = m.abi.frames; frame != nullptr; frame = frame->previous) {
    // Slots are kReferenceWordBytes apart (natively frame->slots[i]; wasm32: 8-byte words).
    // A compact frame (usgc/object.h: compiled code's) holds its count in the slots word and
    // its slots right after its two words.
    auto* slots = reinterpret_cast<char*>(frame->slots);
    size_t count = frame->count;
    if (const auto word = reinterpret_cast<uintptr_t>(frame->slots); word & USGC_FRAME_COMPACT) {
      slots = reinterpret_cast<char*>(&frame->count);
      count = word >> 1;
    }
    for (size_t i = 0; i < count; ++i) {
      auto** slot = reinterpret_cast<void**>(slots + i * kReferenceWordBytes);
      // Acquire (load_reference): a reference channel's hand-off stores into a parked receiver's
      // slot while a concurrent mark reads it (runtime/channel.cpp copy_element).
      if (is_object_pointer(load_reference(slot))) visit(slot);
    }
  }
  for (uint32_t i = 0; i < m.handles.used; ++i) {
    if (is_object_pointer(m.handles.slots[i])) visit(&m.handles.slots[i]);
  }
  if (is_object_pointer(m.start_object)) visit(&m.start_object);
  if (m.arena != nullptr && m.abi.arena_top != nullptr) {
    char* record = m.arena->slots_begin();
    char* top = m.abi.arena_top;
    while (record < top) {
      uint64_t header = *reinterpret_cast<uint64_t*>(record);
      if (header == 0) break;  // defensive: a torn arena ends the walk
      void* object = record + kHeaderBytes;
      for_each_reference_field(object, header, [&](void** field) {
        if (is_object_pointer(*field)) visit(field);
      });
      record += (object_extent_bytes(object, header) + 7) & ~size_t{7};
    }
  }
}

// visit(void** slot) for every global root slot and global handle holding an object, and the
// runtime's roots. In the stopped world (or with no goroutine running, in tests).
void for_each_global_root(void (*visit)(void** slot, void* context), void* context);
// The two halves of it: global root slots and global handles (shaded at the start of a
// concurrent mark), and the runtime's roots (scanned by a marker while goroutines run; the
// runtime shades every reference that moves through a channel meanwhile).
void for_each_global_slot_and_handle(void (*visit)(void** slot, void* context), void* context);
void for_each_runtime_root(void (*visit)(void** slot, void* context), void* context);

template <typename Visit>
void for_each_global_root(Visit&& visit) {
  for_each_global_root(
      [](void** slot, void* context) {
        if (is_object_pointer(*slot)) (*static_cast<Visit*>(context))(slot);
      },
      &visit);
}

}  // namespace usgc::gc
