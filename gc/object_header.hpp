// gc/object_header.hpp — the C++ view of the object header ABI declared in usgc/object.h.
//
// The header word at object - 8 is the only per-object metadata. Who writes it:
//   - the allocator, once, when the object is made (a slot's header goes 0 -> header);
//   - the owning goroutine: its private mark bit (private collector) and the class/owner bits
//     when it publishes the object (in place: PRIVATE -> SHARED or GLOBAL, owner -> 0);
//   - a sweeper, when it frees the slot (header -> 0);
//   - the owning goroutine again: the remembered-set flags of its old PRIVATE objects (in the
//     visit field) and their owner field (young heap id -> old id) when it promotes them.
// Shared markers never write (or follow) a private object's header: shared collections do not
// trace private heaps (gc/private_generations.hpp).
// Nobody else writes a header, so a goroutine reads its own objects' headers with plain loads;
// another goroutine reads a shared object's header only after acquiring a reference to it,
// which the publishing store released after the header flip (see gc/publication.cpp).
// Shared marks of shared objects live in the block's bitmap (gc/block.hpp), so private and shared
// collections never write the same bits.
#pragma once

#include <cstdint>

#include "usgc/object.h"

namespace usgc::gc {

enum class Ownership : uint8_t {
  kStackLocal = USGC_STACK_LOCAL,
  kPrivate = USGC_GOROUTINE_PRIVATE,
  kShared = USGC_GOROUTINE_SHARED,
  kGlobal = USGC_GLOBAL_SHARED,
};

inline constexpr uint64_t kClassMask = USGC_HEADER_CLASS_MASK;
inline constexpr uint64_t kPrivateMark = USGC_HEADER_PRIVATE_MARK;
inline constexpr uint64_t kArrayFlag = USGC_HEADER_ARRAY;
inline constexpr uint64_t kPublishedFlag = USGC_HEADER_PUBLISHED;
inline constexpr uint64_t kStackSubstituteFlag = USGC_HEADER_STACK_SUBSTITUTE;
inline constexpr unsigned kTypeShift = USGC_HEADER_TYPE_SHIFT;
inline constexpr uint64_t kTypeMask = USGC_HEADER_TYPE_MASK;
inline constexpr unsigned kOwnerShift = USGC_HEADER_OWNER_SHIFT;
inline constexpr unsigned kVisitShift = USGC_HEADER_VISIT_SHIFT;
inline constexpr uint64_t kVisitMask = USGC_HEADER_VISIT_MASK;
inline constexpr uint64_t kKnownBits = kClassMask | kPrivateMark | kArrayFlag | kPublishedFlag |
                                       USGC_HEADER_PINNED | kStackSubstituteFlag |
                                       (kTypeMask << kTypeShift) | (kVisitMask << kVisitShift) |
                                       (~uint64_t{0} << kOwnerShift);
inline constexpr size_t kHeaderBytes = 8;
inline constexpr size_t kArrayLengthBytes = 8;  // arrays: the length word after the header
// A reference field, pointer-array element or shadow-stack frame slot is an 8-byte word on every
// target: natively a pointer; on wasm32 (the WebAssembly target) the reference is its low half,
// the high half zero, so field offsets and array layouts are the same everywhere.
inline constexpr size_t kReferenceWordBytes = 8;
static_assert(sizeof(void*) == kReferenceWordBytes || sizeof(void*) == 4,
              "references are 8-byte words (64-bit targets) or their low half (wasm32)");

static_assert(kClassMask == 3 && kPrivateMark == 4 && kArrayFlag == 8 && kPublishedFlag == 16 &&
                  kStackSubstituteFlag == 64,
              "header bits ABI");
static_assert(kTypeShift == 8 && kTypeMask == 0xFFFF && kOwnerShift == 32, "header fields ABI");
static_assert((kClassMask & (kTypeMask << kTypeShift)) == 0, "class and type do not overlap");
static_assert(kVisitShift == 24 &&
                  ((kVisitMask << kVisitShift) &
                   ((kTypeMask << kTypeShift) | (~uint64_t{0} << kOwnerShift))) == 0,
              "the visit epoch sits between type and owner");
inline uint32_t visit_epoch_of(uint64_t header) {
  return static_cast<uint32_t>((header >> kVisitShift) & kVisitMask);
}

// Generations of a private heap (gc/private_generations.hpp). Heap ids are even; a goroutine's
// old (promoted) private objects carry its *old id*, heap_id | 1, in the owner field, so the
// inline barrier's first compare fails for them; its second (old_private_key below) lets a store
// of null or of an old private object of mine through, and sends the rest to the slow path,
// which records them.
// Both ids are the goroutine's: "is this mine?" in C++ is same_goroutine().
inline constexpr uint64_t kOldOwnerBit = 1;
inline uint64_t old_id_of(uint64_t heap_id) {
  return heap_id | kOldOwnerBit;
}
// usgc_mutator.old_private_key (usgc/object.h): the header bits under USGC_HEADER_OLD_KEY_MASK
// of an old private object of the goroutine with `heap_id` while stores into old objects need no
// deletion barrier (no old-generation cycle marking); kNoOldPrivateKey (matches no masked header)
// while one marks. The owner writes it (mutator registration, set_phase of its old cycle).
inline constexpr uint64_t kNoOldPrivateKey = UINT64_MAX;
inline uint64_t old_private_key_of(uint64_t heap_id, bool old_cycle_marking) {
  if (old_cycle_marking) return kNoOldPrivateKey;
  return (heap_id | kOldOwnerBit) << kOwnerShift | static_cast<uint64_t>(USGC_GOROUTINE_PRIVATE);
}
static_assert((kNoOldPrivateKey & USGC_HEADER_OLD_KEY_MASK) != kNoOldPrivateKey,
              "the marking key matches no masked header");
inline bool same_goroutine(uint64_t owner, uint64_t heap_id) {
  return (owner | kOldOwnerBit) == (heap_id | kOldOwnerBit);
}
// The visit field (bits 24..31) of a PRIVATE object holds its remembered-set flags, written only
// by the owner: the object is on its goroutine's remembered_shared / remembered_young log.
inline constexpr uint64_t kRememberedShared = uint64_t{1} << kVisitShift;
inline constexpr uint64_t kRememberedYoung = uint64_t{2} << kVisitShift;
// Scratch flag of the incremental old-generation cycle (gc/private_old_cycle.hpp): set and
// cleared again inside one step of its termination, to list each object once.
inline constexpr uint64_t kOldCycleListed = uint64_t{4} << kVisitShift;
inline constexpr uint64_t kRememberedFlags = kVisitMask << kVisitShift;

inline uint64_t* header_address(void* object) {
  return static_cast<uint64_t*>(object) - 1;
}
inline uint64_t header_of(const void* object) {
  return static_cast<const uint64_t*>(object)[-1];
}
// The header of an object another goroutine may have allocated or published, reached by a path
// no C++ atomic orders (compiled code's plain loads of a shared field, which ThreadSanitizer does
// not see). Acquire: pairs with the shared allocation's and the publication's release stores of
// the header, so what was written before them is seen (on x86-64 the same mov as header_of).
inline uint64_t header_of_acquire(const void* object) {
  return __atomic_load_n(static_cast<const uint64_t*>(object) - 1, __ATOMIC_ACQUIRE);
}
inline Ownership class_of(uint64_t header) {
  return static_cast<Ownership>(header & kClassMask);
}
inline uint32_t type_of(uint64_t header) {
  return static_cast<uint32_t>((header >> kTypeShift) & kTypeMask);
}
inline uint64_t owner_of(uint64_t header) {
  return header >> kOwnerShift;
}
inline bool is_array(uint64_t header) {
  return (header & kArrayFlag) != 0;
}
inline bool is_stack_substitute(uint64_t header) {
  return (header & kStackSubstituteFlag) != 0;
}
inline bool is_shared_class(uint64_t header) {
  Ownership c = class_of(header);
  return c == Ownership::kShared || c == Ownership::kGlobal;
}

inline constexpr uint64_t make_header(Ownership ownership, uint32_t type, bool array,
                                      uint64_t owner_heap_id) {
  return static_cast<uint64_t>(ownership) | (array ? kArrayFlag : 0) |
         (uint64_t{type} << kTypeShift) | (owner_heap_id << kOwnerShift);
}

}  // namespace usgc::gc
