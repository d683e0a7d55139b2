// gc/verifier.cpp — see verifier.hpp.
#include "gc/verifier.hpp"

#include <cstring>

#include "gc/block.hpp"
#include "gc/concurrent_mark.hpp"
#include "gc/object_graph.hpp"
#include "gc/private_generations.hpp"
#include "gc/private_old_cycle.hpp"
#include "gc/roots.hpp"
#include "gc/verify_log.hpp"
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

// The goroutine whose roots and private heap verify_shared_heap walks now (nullptr: the global
// roots and the shared heap). Written and read only by the verifying thread, in the stopped world.
const Mutator* g_walked_mutator = nullptr;

// A reachable shared object without its mark: says which path should have marked it (the block's
// epoch against the current one, what refers to it, the goroutine whose roots hold it, and the
// history of the object and its block from the verify log), then aborts.
[[noreturn, gnu::cold]] void unmarked_violation(const void* object, uint64_t header,
                                                const void* referrer) {
  const Block* block = block_of(object);
  const char* slot = static_cast<const char*>(object) - kHeaderBytes;
  kernel::print_message(
      "USGC_VERIFY: unmarked object %p: block %p (kind %u, owner heap %lu, class %u, slot %u of "
      "%u, live %u, holds published %d), block mark epoch %u, current epoch %u, marking %d",
      object, static_cast<const void*>(block), static_cast<unsigned>(block->kind),
      static_cast<unsigned long>(block->owner_heap_id), block->size_class,
      block->slot_index_of(slot), block->slot_count, block->live_slots,
      block->holds_published ? 1 : 0, block->mark_epoch.load(std::memory_order_relaxed),
      g_shared_mark_epoch.load(std::memory_order_relaxed), shared_mark_in_progress() ? 1 : 0);
  uint64_t goroutine_id = 0;
  if (g_walked_mutator != nullptr) {
    goroutine_id = g_walked_mutator->goroutine_id;
    kernel::print_message(
        "USGC_VERIFY: reached through goroutine %lu (heap %lu, root scan state %u, epoch state "
        "%u)",
        static_cast<unsigned long>(goroutine_id),
        static_cast<unsigned long>(g_walked_mutator->abi.heap_id),
        g_walked_mutator->root_scan_state.load(std::memory_order_relaxed),
        current_scan_done_state());
  }
  const Block* referrer_block = block_of(referrer);
  const char* at = static_cast<const char*>(referrer);
  bool in_slots =
      (referrer_block->kind == BlockKind::kSmall || referrer_block->kind == BlockKind::kLarge) &&
      at >= const_cast<Block*>(referrer_block)->slots_begin();
  if (in_slots) {
    uint32_t index = referrer_block->slot_index_of(at);
    const char* referrer_slot = const_cast<Block*>(referrer_block)->slot_at(index);
    uint64_t referrer_header = *reinterpret_cast<const uint64_t*>(referrer_slot);
    kernel::print_message(
        "USGC_VERIFY: referrer %p is object %p (header 0x%lx), block owner heap %lu, its shared "
        "mark %d",
        referrer, static_cast<const void*>(referrer_slot + kHeaderBytes),
        static_cast<unsigned long>(referrer_header),
        static_cast<unsigned long>(referrer_block->owner_heap_id),
        referrer_block->shared_marked(index) ? 1 : 0);
  } else {
    kernel::print_message(
        "USGC_VERIFY: referrer %p is a root slot (a frame, handle or global root)", referrer);
  }
  print_verify_history(object, goroutine_id);
  violation("reachable object left unmarked by the shared mark", object, header, referrer);
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
    unmarked_violation(object, header, referrer);
}

// The STACK_LOCAL objects live in m's arena (from its base up to arena_top), gathered on the
// first reference into the arena. A reference into the arena that is none of them is to an
// object of a popped frame, whose memory the arena may have given to newer objects since: its
// "header" is then a word of one of those (zero, a field, a check word), which check_object would
// report as a freed or malformed object, blaming the collector. The collectors never read
// through such a reference (shared marking skips arena blocks, private marking takes only
// PRIVATE headers, the arena itself is walked from its base), so it is a mutator's bug: a
// STACK_LOCAL decision that was wrong, or a C frame's root that outlived its scope.
class LiveArenaObjects {
 public:
  explicit LiveArenaObjects(const Mutator& m) : m_(m) {}
  bool in_arena(const void* value) const {
    return m_.arena != nullptr && block_of(value) == m_.arena;
  }
  bool live(void* object) {
    if (!gathered_) gather();
    return objects_.contains(object);
  }

 private:
  void gather() {
    gathered_ = true;
    if (m_.abi.arena_top == nullptr) return;
    for (char* record = m_.arena->slots_begin(); record < m_.abi.arena_top;) {
      uint64_t header = *reinterpret_cast<uint64_t*>(record);
      if (header == 0) break;  // as for_each_mutator_root
      void* object = record + kHeaderBytes;
      objects_.insert(object);
      record += (object_extent_bytes(object, header) + 7) & ~size_t{7};
    }
  }
  const Mutator& m_;
  bool gathered_ = false;
  VisitedSet objects_;
};

[[noreturn, gnu::cold]] void popped_stack_object_violation(const Mutator& m, const void* object,
                                                           const void* referrer) {
  kernel::fatal(
      "USGC_VERIFY: a STACK_LOCAL object is referenced after its frame was popped: object %p "
      "(arena %p..%p, the arena's top now %p; the word before it reads 0x%lx) referenced from %p "
      "(goroutine %lu): a wrong STACK_LOCAL decision, or a root that outlived its frame",
      object, static_cast<const void*>(m.arena), static_cast<const void*>(m.abi.arena_limit),
      static_cast<const void*>(m.abi.arena_top), static_cast<unsigned long>(header_of(object)),
      referrer, static_cast<unsigned long>(m.goroutine_id));
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
  LiveArenaObjects arena_objects(m);
  auto consider = [&](void* value, const void* referrer, bool referrer_is_private) {
    if (arena_objects.in_arena(value) && !arena_objects.live(value))
      popped_stack_object_violation(m, value, referrer);
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
  for (size_t i = 0; i < count; ++i) {
    g_walked_mutator = mutators[i];
    walk_private(*mutators[i], visited, private_stack, true, counts, on_shared);
  }
  g_walked_mutator = nullptr;
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
