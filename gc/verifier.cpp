// gc/verifier.cpp — see verifier.hpp.
#include "gc/verifier.hpp"

#include <cstring>

#include "gc/block.hpp"
#include "gc/object_graph.hpp"
#include "gc/private_generations.hpp"
#include "gc/private_old_cycle.hpp"
#include "gc/roots.hpp"
#include "kernel_iface/fatal.hpp"
#include "usgc/usgc.h"

namespace usgc::gc {
namespace {

// An open-addressing set of object pointers (the verifier's own "visited" marks, so it never
// touches the collectors' mark state).
class VisitedSet {
 public:
  ~VisitedSet() { usgc_free(slots_); }
  bool contains(const void* object) const {
    if (capacity_ == 0) return false;
    size_t mask = capacity_ - 1;
    for (size_t i = hash(object) & mask;; i = (i + 1) & mask) {
      if (slots_[i] == object) return true;
      if (slots_[i] == nullptr) return false;
    }
  }
  // True when `object` was not in the set.
  bool insert(void* object) {
    if ((size_ + 1) * 2 > capacity_) grow();
    size_t mask = capacity_ - 1;
    for (size_t i = hash(object) & mask;; i = (i + 1) & mask) {
      if (slots_[i] == object) return false;
      if (slots_[i] == nullptr) {
        slots_[i] = object;
        ++size_;
        return true;
      }
    }
  }

 private:
  static size_t hash(const void* p) {
    return (reinterpret_cast<uintptr_t>(p) >> 3) * 0x9E3779B97F4A7C15ull >> 20;
  }
  void grow() {
    size_t old_capacity = capacity_;
    void** old = slots_;
    capacity_ = capacity_ == 0 ? 4096 : capacity_ * 2;
    slots_ = static_cast<void**>(usgc_calloc(capacity_, sizeof(void*)));
    USGC_CHECK(slots_ != nullptr, "gc verifier: out of memory");
    size_ = 0;
    for (size_t i = 0; i < old_capacity; ++i) {
      if (old[i] != nullptr) insert(old[i]);
    }
    usgc_free(old);
  }
  void** slots_ = nullptr;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

[[noreturn]] void violation(const char* what, const void* object, uint64_t header,
                            const void* referrer) {
  kernel::fatal("USGC_VERIFY: %s: object %p (header 0x%lx, type %u) referenced from %p", what,
                object, static_cast<unsigned long>(header), type_of(header), referrer);
}

// Checks the header of a reachable object; `owner` is the heap id private objects must have
// (0: any private object is a violation, as when reached from a shared object).
// marking_allowed: the owner is inside its private marking (it polled, and a shared collection
// verifies meanwhile), or its incremental old-generation cycle is active: its private marks are
// legitimately set.
void check_object(const void* object, const void* referrer, bool check_shared_mark,
                  bool marking_allowed = false) {
  uint64_t header = header_of(object);
  if (header == 0) violation("a reachable object was freed", object, header, referrer);
  if ((header & ~kKnownBits) != 0 || (header & USGC_HEADER_PINNED))
    violation("unknown header bits", object, header, referrer);
  if (find_type(type_of(header)) == nullptr)
    violation("unregistered type", object, header, referrer);
  if ((header & kPrivateMark) && !marking_allowed)
    violation("a private mark survived its collection", object, header, referrer);
  if (is_shared_class(header) && (header & kRememberedFlags))
    violation("a shared object carries remembered-set flags", object, header, referrer);
  Ownership ownership = class_of(header);
  bool owned = ownership == Ownership::kPrivate || ownership == Ownership::kStackLocal;
  if (owned != (owner_of(header) != 0))
    violation("owner field disagrees with the class", object, header, referrer);
  if (ownership == Ownership::kStackLocal) return;
  Block* block = block_of(object);
  if (block->kind != BlockKind::kSmall && block->kind != BlockKind::kLarge)
    violation("object outside any block", object, header, referrer);
  char* slot = static_cast<char*>(const_cast<void*>(object)) - kHeaderBytes;
  uint32_t index = block->slot_index_of(slot);
  if (block->kind == BlockKind::kSmall && block->slot_at(index) != slot)
    violation("object not at a slot boundary", object, header, referrer);
  if (ownership == Ownership::kPrivate && !same_goroutine(block->owner_heap_id, owner_of(header))) {
    violation("private object in a block its goroutine does not own", object, header, referrer);
  }
  if (check_shared_mark && !block->shared_marked(index))
    violation("reachable object left unmarked by the shared mark", object, header, referrer);
}

// Walks the private (and stack-local) objects reachable from m's roots; shared objects found are
// handed to `on_shared` (not traversed here).
template <typename OnShared>
void walk_private(Mutator& m, VisitedSet& visited, MarkStack& stack, bool check_shared_mark,
                  VerifyCounts& counts, OnShared&& on_shared) {
  const uint64_t heap_id = m.abi.heap_id;
  ++counts.goroutines;
  VisitedSet published_old;
  for (size_t i = 0; i < m.published_old.size(); ++i) published_old.insert(m.published_old.at(i));
  // A stack substitute (usgc/object.h) may refer to STACK_LOCAL objects; other private objects may
  // not.
  auto consider = [&](void* value, const void* referrer, bool referrer_is_private) {
    check_object(value, referrer, check_shared_mark && is_shared_class(header_of(value)),
                 m.collecting || old_cycle_active(m));
    ++counts.references;
    uint64_t header = header_of(value);
    Ownership ownership = class_of(header);
    if (ownership == Ownership::kPrivate || ownership == Ownership::kStackLocal) {
      if (!same_goroutine(owner_of(header), heap_id))
        violation(
            "private-heap invariant: another goroutine's object is reachable from this goroutine's "
            "roots",
            value, header, referrer);
      if (ownership == Ownership::kStackLocal && referrer_is_private)
        violation("a private object refers to a STACK_LOCAL object", value, header, referrer);
      if (ownership == Ownership::kPrivate && visited.insert(value)) {
        ++counts.objects;
        counts.bytes += object_extent_bytes(value, header);
        stack.push(value);
      }
    } else {
      on_shared(value, referrer);
    }
  };
  for_each_mutator_root(m, [&](void** slot) {
    ++counts.roots;
    consider(*slot, slot, false);
  });
  while (!stack.empty()) {
    void* object = stack.pop();
    uint64_t object_header = header_of(object);
    bool old = owner_of(object_header) == old_id_of(heap_id);
    for_each_reference_field(object, object_header, [&](void** field) {
      if (!is_object_pointer(*field)) return;
      // The remembered-set invariant (gc/private_generations.hpp): an old object's reference to a
      // shared object is known to shared collections without tracing the private heap.
      if (old && is_shared_class(header_of(*field)) &&
          (object_header & (kRememberedShared | kRememberedYoung)) == 0 &&
          !published_old.contains(*field))
        violation(
            "remembered-set invariant: an old private object refers to a shared object but is in "
            "no remembered set",
            *field, header_of(*field), object);
      consider(*field, object, !is_stack_substitute(object_header));
    });
  }
}

}  // namespace

VerifyCounts verify_private_heap(Mutator& m) {
  VisitedSet visited;
  MarkStack stack;
  VerifyCounts counts;
  walk_private(m, visited, stack, false, counts, [](void*, const void*) {});
  return counts;
}

VerifyCounts verify_shared_heap(Mutator* const* mutators, size_t count) {
  VisitedSet visited;
  MarkStack private_stack;
  MarkStack shared_stack;
  VerifyCounts counts;
  auto on_shared = [&](void* object, const void* referrer) {
    check_object(object, referrer, true);
    if (visited.insert(object)) {
      ++counts.objects;
      counts.bytes += object_extent_bytes(object, header_of(object));
      shared_stack.push(object);
    }
  };
  for (size_t i = 0; i < count; ++i)
    walk_private(*mutators[i], visited, private_stack, true, counts, on_shared);
  for_each_global_root([&](void** slot) {
    ++counts.roots;
    ++counts.references;
    void* value = *slot;
    uint64_t header = header_of(value);
    if (!is_shared_class(header))
      violation("private-heap invariant: a global root or handle holds a non-shared object", value,
                header, slot);
    on_shared(value, slot);
  });
  while (!shared_stack.empty()) {
    void* object = shared_stack.pop();
    for_each_reference_field(object, header_of(object), [&](void** field) {
      void* value = *field;
      if (!is_object_pointer(value)) return;
      ++counts.references;
      uint64_t header = header_of(value);
      if (!is_shared_class(header))
        violation(
            "private-heap invariant: a shared object refers to a private or stack-local object",
            value, header, object);
      on_shared(value, object);
    });
  }
  return counts;
}

}  // namespace usgc::gc
