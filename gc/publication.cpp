// gc/publication.cpp — publication (publication.hpp) and the write barrier's slow path.
//
// The barrier's fast path is inline in usgc/gc.h: when the target object belongs to the running
// goroutine (private or stack-local: the header's owner half equals abi.heap_id) and the value
// is null or not stack-local, the store is a plain store — no other goroutine can see the target
// (the private-heap invariant). Everything else comes here:
//   value STACK_LOCAL, target the goroutine's own stack-local object   plain store (allowed)
//   value STACK_LOCAL, target the goroutine's own stack substitute       plain store (allowed: the
//                                     private object made when the arena was full, usgc/object.h)
//   value STACK_LOCAL, any heap target                                   fatal: names the store
//   target another goroutine's private or stack-local object             fatal: API misuse
//   target my old private object (owner = old id: the fast path's compare fails)   plain store,
//                                     then remember it (gc/private_generations.hpp)
//   target SHARED/GLOBAL                                                 publish the value if it
//                                     is private; then, while a shared mark runs, shade the value
//                                     overwritten (the deletion barrier, gc/concurrent_mark.hpp),
//                                     with nothing between the shade and the release store; then
//                                     dirty the card if the value is a young shared object
#include "gc/publication.hpp"

#include <cerrno>

#include "gc/block.hpp"
#include "gc/concurrent_mark.hpp"
#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/object_graph.hpp"
#include "gc/private_generations.hpp"
#include "gc/private_old_cycle.hpp"
#include "gc/roots.hpp"
#include "gc/shared_heap.hpp"
#include "gc/verify_log.hpp"
#include "kernel_iface/fatal.hpp"
#include "safepoint/fork_child.hpp"

namespace usgc::gc {
namespace {

// A shared or global object that no collection has marked yet (allocated since the last one):
// an old object's reference to it must be on a dirty card. Null, private and old values need none.
inline bool is_young_shared(void* value) {
  if (!is_object_pointer(value) || !is_shared_class(header_of(value))) return false;
  Block* block = block_of(value);
  return !block->shared_marked(block->slot_index_of(static_cast<char*>(value) - kHeaderBytes));
}

const char* type_name_of(uint64_t header) {
  const TypeDescriptor* type = find_type(type_of(header));
  return type != nullptr ? type->name : "?";
}

[[noreturn, gnu::cold]] void stack_local_escape(const void* value, const void* target,
                                                const void* field, const char* operation) {
  uint64_t value_header = header_of(value);
  if (target != nullptr) {
    uint64_t target_header = header_of(target);
    kernel::fatal(
        "%s: STACK_LOCAL object %p (type %s) stored into heap object %p (type %s, field +%ld): a "
        "stack object "
        "must not escape its frame (escape analysis or code generator bug)",
        operation, value, type_name_of(value_header), target, type_name_of(target_header),
        static_cast<long>(static_cast<const char*>(field) - static_cast<const char*>(target)));
  }
  kernel::fatal(
      "%s: STACK_LOCAL object %p (type %s) published: a stack object must not escape its frame "
      "(escape analysis or code generator bug)",
      operation, value, type_name_of(value_header));
}

// API misuse on the out-of-line barrier entries (usgc_write_slow, usgc_write_bulk,
// usgc_array_write, usgc_write_checked): a NULL target, a pointer that is no GC object (misaligned,
// or a header naming no registered type, array-ness or class), a field outside the object. Cheap
// enough for every slow-path call (a few loads, one table lookup); the inline fast path of
// usgc/gc.h stays as it is, so a NULL target compiled inline faults on its header read unless
// the embedder builds with USGC_CHECKED (usgc_write then calls usgc_write_checked).
// `fields` reference fields from `field` on must lie inside the object (none checked for nullptr).
void check_store_target(const void* object, const void* field, const char* operation,
                        size_t fields = 1) {
  USGC_CHECK(object != nullptr,
             "%s: the target object is NULL (field %p): stores go into fields of a GC object",
             operation, field);
  USGC_CHECK((reinterpret_cast<uintptr_t>(object) & 7) == 0,
             "%s: %p is not a GC object (misaligned): pass what usgc_alloc returned", operation,
             object);
  uint64_t header = header_of(object);
  const TypeDescriptor* type = find_type(type_of(header));
  USGC_CHECK(type != nullptr && is_array(header) == (type->kind != USGC_KIND_OBJECT),
             "%s: %p is not a GC object (header %lx names no registered type): pass what "
             "usgc_alloc returned",
             operation, object, static_cast<unsigned long>(header));
  if (field == nullptr) return;
  auto begin = reinterpret_cast<uintptr_t>(object);
  auto at = reinterpret_cast<uintptr_t>(field);
  size_t payload = object_extent_bytes(object, header) - kHeaderBytes;
  // Subtractions only after the comparisons that keep them from wrapping.
  USGC_CHECK(
      at >= begin && at - begin < payload && (payload - (at - begin)) / sizeof(void*) >= fields,
      "%s: %zu field(s) from %p are not inside object %p (type %s, %zu bytes)", operation, fields,
      field, object, type->name, payload);
}

// Flips `root` and every private object of `m` reachable from it.
void publish_closure(Mutator& m, void* root, Ownership target, const char* operation) {
  if (__builtin_expect(g_config.verify, 0) && g_publication_test_hook != nullptr)
    g_publication_test_hook();
  const uint64_t heap_id = m.abi.heap_id;
  const uint64_t new_class = static_cast<uint64_t>(target);
  MarkStack& stack = m.mark_stack;
  size_t published = 0;
  size_t published_bytes = 0;
  const uint64_t old_id = old_id_of(heap_id);
  auto consider = [&](void* object) {
    uint64_t* header = header_address(object);
    uint64_t value = *header;
    // Shared or global already (others' are impossible).
    if (!same_goroutine(owner_of(value), heap_id)) return;
    if (class_of(value) == Ownership::kStackLocal)
      stack_local_escape(object, nullptr, nullptr, operation);
    // PRIVATE -> target, owner 0, published; the shared bit first, then the header. The object is
    // born old (bit set); its card is dirtied below only if it refers to a young shared object.
    // An old one may have old referrers the barrier never saw: published_old keeps it a root of
    // shared collections until the next full private collection (gc/private_generations.hpp).
    // Nothing but inline stores lies between the bit and the header (the log push, which may
    // grow the log through libc, comes first): a stop between them would leave the bit in the
    // epoch before a full mark's and the header flipped after the mark's scan of this goroutine,
    // an object shared and unmarked.
    Block* block = block_of(object);
    block->holds_published = true;  // the owner's bitmap sweep must read this block
    if (owner_of(value) == old_id) m.published_old.push(object);
    verify_log(VerifyEvent::kPublish, object, block, m.goroutine_id,
               block->mark_epoch.load(std::memory_order_relaxed) |
                   (shared_mark_in_progress() ? uint64_t{1} << 31 : 0));
    block->set_shared_mark(block->slot_index_of(static_cast<char*>(object) - kHeaderBytes));
    // Release: pairs with the minor mark's card scan, which reads the header of a slot whose bit
    // is set (acquire) and then the object's fields, written by this goroutine before.
    __atomic_store_n(header,
                     (value & ~(kClassMask | kPrivateMark | kStackSubstituteFlag |
                                kRememberedFlags | (~uint64_t{0} << kOwnerShift))) |
                         new_class | kPublishedFlag,
                     __ATOMIC_RELEASE);
    ++published;
    published_bytes += block->kind == BlockKind::kLarge ? block->mapping_bytes : block->slot_bytes;
    stack.push(object);
  };
  consider(root);
  while (!stack.empty()) {
    void* object = stack.pop();
    // Fields the fast path stored without a card: only those that refer to young shared objects
    // (already shared before this publication, mark bit clear) need one for minor collections;
    // what this publication makes shared is born old. Publishing scalars dirties nothing.
    bool needs_card = false;
    for_each_reference_field(object, header_of(object), [&](void** field) {
      void* value = *field;
      if (!is_object_pointer(value)) return;
      if (!needs_card && is_young_shared(value)) needs_card = true;
      consider(value);
    });
    if (needs_card) block_of(object)->dirty_card(object);
  }
  shared_heap_count_published(published_bytes);
  count_add(g_counters.publications, 1);
  count_add(g_counters.objects_published, published);
  count_sub(g_counters.bytes_in_use[USGC_GOROUTINE_PRIVATE], published_bytes);
  count_add(g_counters.bytes_in_use[target == Ownership::kGlobal ? USGC_GLOBAL_SHARED
                                                                 : USGC_GOROUTINE_SHARED],
            published_bytes);
}

}  // namespace

void (*g_publication_test_hook)() = nullptr;

void publish_for_store(void* value, Ownership target, const char* operation) {
  uint64_t header = header_of(value);
  Ownership ownership = class_of(header);
  if (ownership == Ownership::kShared || ownership == Ownership::kGlobal) return;
  if (ownership == Ownership::kStackLocal) stack_local_escape(value, nullptr, nullptr, operation);
  Mutator* m = current_mutator();
  USGC_CHECK(m != nullptr && same_goroutine(owner_of(header), m->abi.heap_id),
             "%s: private-heap invariant: object %p (type %s) is private to another goroutine and "
             "cannot be "
             "published by %s (it was leaked without a write barrier)",
             operation, value, type_name_of(header),
             m != nullptr ? "this goroutine" : "a thread that is not a goroutine");
  publish_closure(*m, value, target, operation);
}

}  // namespace usgc::gc

using namespace usgc::gc;

extern "C" {

USGC_GC_API void usgc_write_slow(void* object, void** field, void* value) {
  check_store_target(object, field, "usgc_write");
  // A fork() child never collects (safepoint/fork_child.hpp): the store needs no barrier there.
  if (usgc::safepoint::in_fork_child()) {
    __atomic_store_n(field, value, __ATOMIC_RELEASE);
    return;
  }
  count_add(g_counters.barrier_slow_paths, 1);
  uint64_t target = header_of_acquire(object);
  Ownership target_class = class_of(target);
  Mutator* m = current_mutator();
  uint64_t self = m != nullptr ? m->abi.heap_id : 0;
  // An old private object of mine: while its old-generation cycle marks, the reference this
  // store overwrites is shaded first (the snapshot's deletion barrier, gc/private_old_cycle.hpp).
  if (target_class == Ownership::kPrivate && m != nullptr && owner_of(target) == old_id_of(self))
    old_cycle_shade(*m, *field);
  if (is_object_pointer(value) && class_of(header_of_acquire(value)) == Ownership::kStackLocal) {
    if ((target_class == Ownership::kStackLocal || is_stack_substitute(target)) &&
        same_goroutine(owner_of(target), self)) {
      *field = value;
      return;
    }
    stack_local_escape(value, object, field, "usgc_write");
  }
  if (target_class == Ownership::kPrivate || target_class == Ownership::kStackLocal) {
    USGC_CHECK(same_goroutine(owner_of(target), self),
               "usgc_write: private-heap invariant: goroutine %lu wrote into object %p (type %s) "
               "private to another goroutine",
               static_cast<unsigned long>(m != nullptr ? m->goroutine_id : 0), object,
               type_name_of(target));
    *field = value;
    // An old object of mine (the fast path's compare sends those here): remember the store.
    if (owner_of(target) == old_id_of(self) && target_class == Ownership::kPrivate &&
        is_object_pointer(value))
      remember_old_store(*m, object, value);
    return;
  }
  // Publication first, then the deletion barrier, then the store: the shade and the store it
  // protects are adjacent (inline code, no call that could be a safepoint), so a shared mark that
  // starts while the publication runs (it calls into libc to grow its stack) still has the
  // overwritten reference shaded (docs/gc.md, "A stop inside the barrier").
  if (is_object_pointer(value)) publish_for_store(value, target_class, "usgc_write");
  verify_log(VerifyEvent::kSharedStore, value, load_reference(field),
             m != nullptr ? m->goroutine_id : 0, shared_mark_in_progress());
  if (__builtin_expect(shared_mark_in_progress(), 0) && g_config.verify && m != nullptr)
    check_running_mutator_scanned(*m);
  // The deletion barrier while a shared mark runs: the reference overwritten is shaded.
  shade_if_marking(load_reference(field));
  // Release: the publication's header flips (and the value's contents) happen-before a reader
  // in another goroutine that loads this reference (usgc_read is an acquire load).
  __atomic_store_n(field, value, __ATOMIC_RELEASE);
  // Only a reference to a young shared object needs a card (what was just published is old).
  if (is_young_shared(value)) block_of(object)->dirty_card(field);
}

USGC_GC_API void usgc_array_write(void* array, size_t index, void* value) {
  check_store_target(array, nullptr, "usgc_array_write");
  uint64_t header = header_of(array);
  USGC_CHECK(is_array(header) && type_at(type_of(header)).kind == USGC_KIND_POINTER_ARRAY,
             "usgc_array_write: %p is not an array of references", array);
  size_t length = *static_cast<uint64_t*>(array);
  USGC_CHECK(index < length, "usgc_array_write: index %zu out of bounds of array %p of length %zu",
             index, array, length);
  usgc_write(array, static_cast<void**>(usgc_array_data(array)) + index, value);
}

USGC_GC_API void usgc_write_bulk(void* object, void** first, void* const* values, size_t count) {
  if (count == 0) return;
  check_store_target(object, first, "usgc_write_bulk", count);
  USGC_CHECK(values != nullptr, "usgc_write_bulk: values is NULL with count %zu", count);
  if (usgc::safepoint::in_fork_child()) {  // no barrier needed: as usgc_write_slow
    for (size_t i = 0; i < count; ++i) __atomic_store_n(&first[i], values[i], __ATOMIC_RELEASE);
    return;
  }
  uint64_t target = header_of(object);
  Mutator* m = current_mutator();
  bool own = m != nullptr && owner_of(target) == m->abi.heap_id;
  if (own && class_of(target) == Ownership::kPrivate) {
    // One check of the target; the values need only the stack-local check.
    for (size_t i = 0; i < count; ++i) {
      void* value = values[i];
      if (is_object_pointer(value) && class_of(header_of(value)) == Ownership::kStackLocal &&
          !is_stack_substitute(target)) {
        stack_local_escape(value, object, &first[i], "usgc_write_bulk");
      }
      first[i] = value;
    }
    return;
  }
  if (!own && is_shared_class(target)) {
    count_add(g_counters.barrier_slow_paths, 1);
    for (size_t i = 0; i < count; ++i) {
      if (is_object_pointer(values[i]))
        publish_for_store(values[i], class_of(target), "usgc_write_bulk");
    }
    Block* block = block_of(object);
    for (size_t i = 0; i < count; ++i) {
      verify_log(VerifyEvent::kSharedStore, values[i], load_reference(&first[i]),
                 m != nullptr ? m->goroutine_id : 0, shared_mark_in_progress());
      shade_if_marking(load_reference(&first[i]));  // the deletion barrier
      // Release: as usgc_write's store (pairs with usgc_read's acquire load).
      __atomic_store_n(&first[i], values[i], __ATOMIC_RELEASE);
      if (is_young_shared(values[i])) block->dirty_card(&first[i]);
    }
    return;
  }
  for (size_t i = 0; i < count; ++i) usgc_write_slow(object, &first[i], values[i]);
}

// The checked store (usgc/gc.h under USGC_CHECKED): the target checked, then the usual barrier.
USGC_GC_API void usgc_write_checked(void* object, void** field, void* value) {
  check_store_target(object, field, "usgc_write");
  Mutator* m = current_mutator();
  USGC_CHECK(m != nullptr, "usgc_write: the calling thread is not a goroutine (object %p)", object);
  uint64_t header = header_of(object);
  if (owner_of(header) == m->abi.heap_id &&
      (value == nullptr || class_of(header_of(value)) != Ownership::kStackLocal)) {
    *field = value;
    return;
  }
  usgc_write_slow(object, field, value);
}

USGC_GC_API void usgc_publish(void* object) {
  if (usgc::safepoint::in_fork_child()) return;  // nothing to publish to: no other goroutine runs
  if (is_object_pointer(object)) publish_for_store(object, Ownership::kShared, "usgc_publish");
}

}  // extern "C"
