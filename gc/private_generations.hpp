// gc/private_generations.hpp — generational private heaps, and the remembered sets through which
// a private heap takes part in shared collections without being traced.
//
// Young and old. A goroutine's private objects are *young* from their allocation (the inline
// fast path writes the goroutine's heap id into the owner field) until they survive a private
// collection, which *promotes* them in place: the owner field becomes the goroutine's old id,
// heap_id | 1 (heap ids are even; gc/object_header.hpp). Nothing moves (gc.h promises it); the
// owner field is the sticky "old" mark. The inline barrier (usgc/gc.h, unchanged) compares the
// target's owner with heap_id: a store into a young object of mine stays a plain store; a store
// into an old one fails the one compare, and the barrier's second path (usgc_write_old_or_slow,
// inline) stores null or an old private value of mine at once outside an old cycle's mark
// (usgc_mutator.old_private_key); anything else takes the slow path, which records it. So the
// old-to-young card mark is folded into the barrier's existing compare, at no cost to the fast
// path (stores of young or shared values into old objects pay a call).
//
// The nursery is the runs taken since the last private collection (young_runs: for every run, in
// the order taken, its begin, the end of the objects made in it — the run's end until it is
// retired — and its end) plus young_large; it is bounded by collection_budget_bytes
// (minimum_private_budget, 1 MiB by default): a minor collection runs when it is used up.
//
// Remembered sets (logs of old objects, deduplicated by two header flags in the visit field,
// written only by the owner):
//   remembered_young   old objects given a reference to a young private object of mine (slow
//                      path). A minor collection traces them as roots, then forgets them.
//   remembered_shared  old objects that may hold a reference to a shared or global object: those
//                      promoted holding one (the collector sees their fields as it marks them),
//                      and those given one later (slow path). Entries stay until a full private
//                      collection rebuilds the set from what it traced (dead or published
//                      entries are skipped by readers: the header must still be mine, old, and
//                      flagged).
//   published_old      objects of mine published while old: old objects may have referred to
//                      them before publication without any store the barrier saw. Shared
//                      collections treat them as roots until my next full private collection,
//                      which traces my whole heap and records every old referrer precisely.
// Why logs of objects and not a card table: the owner's flag bit deduplicates without a lookup,
// an entry costs 8 bytes once per object (not per store), readers need no card-to-object walk,
// and a shared collection visits exactly the recorded objects (cards would make it scan 512 B
// around each). A young object published keeps its old referrers findable: they were recorded
// in remembered_young when they were given the reference, and shared collections scan that log.
//
// The shared collection's view of goroutine G (for_each_private_to_shared_field, in the stopped
// world; G is at a safepoint, possibly inside its own private marking, which polls and keeps all
// of these intact until its sweep): G's roots (shared values only), the fields of G's young
// objects (the fast path records nothing for them; bounded by the nursery), the fields of G's
// remembered objects, and published_old. A shared marker never follows a private reference, and
// never writes a private header. The shared-liveness rule (gc/block.hpp) is unchanged.
//
// The remembered-set invariant, checked by the verifier (USGC_VERIFY): every old private object
// reachable from G's roots that refers to a shared object is flagged (remembered_shared or
// remembered_young), or the shared object is on published_old. Every young object lies in a
// logged run (all private allocation takes its slots from a run that take_run logged).
#pragma once

#include "gc/mutator.hpp"
#include "gc/object_header.hpp"
#include "gc/roots.hpp"

namespace usgc::gc {

// The write barrier's slow path, for a store of `value` into `target`, an old private object of
// `m`: records the target in the remembered set the value calls for.
inline void remember_old_store(Mutator& m, void* target, const void* value) {
  uint64_t* header = header_address(target);
  uint64_t value_header = header_of(value);
  if (is_shared_class(value_header)) {
    if (*header & kRememberedShared) return;
    *header |= kRememberedShared;
    m.remembered_shared.push(target);
  } else if (class_of(value_header) == Ownership::kPrivate &&
             owner_of(value_header) == m.abi.heap_id) {
    if (*header & kRememberedYoung) return;
    *header |= kRememberedYoung;
    m.remembered_young.push(target);
  }
}

// Calls visit(object) for every young private object of m (in the logged runs and young_large).
template <typename Visit>
void for_each_young_object(Mutator& m, Visit&& visit) {
  const uint64_t young = m.abi.heap_id;
  for (size_t i = 0; i + 2 < m.young_runs.size(); i += 3) {
    char* begin = static_cast<char*>(m.young_runs.at(i));
    char* end = static_cast<char*>(m.young_runs.at(i + 1));  // the objects' end
    const uint32_t slot_bytes = block_of(begin)->slot_bytes;
    for (char* slot = begin; slot < end; slot += slot_bytes) {
      uint64_t header = *reinterpret_cast<uint64_t*>(slot);
      if (header != 0 && class_of(header) == Ownership::kPrivate && owner_of(header) == young)
        visit(static_cast<void*>(slot + kHeaderBytes));
    }
  }
  for (Block* b = m.young_large; b != nullptr; b = b->next_in_heap) {
    char* slot = b->slots_begin();
    uint64_t header = *reinterpret_cast<uint64_t*>(slot);
    if (class_of(header) == Ownership::kPrivate && owner_of(header) == young)
      visit(static_cast<void*>(slot + kHeaderBytes));
  }
}

// Calls visit(object) for every valid entry of a remembered log: an old private object of m
// that still carries `flag`.
template <typename Visit>
void for_each_remembered(Mutator& m, const MarkStack& log, uint64_t flag, Visit&& visit) {
  const uint64_t old = old_id_of(m.abi.heap_id);
  for (size_t i = 0; i < log.size(); ++i) {
    void* object = log.at(i);
    uint64_t header = header_of(object);
    if (class_of(header) == Ownership::kPrivate && owner_of(header) == old && (header & flag))
      visit(object);
  }
}

// What a shared collection sees of m besides its roots: visit(void** field) for every reference
// field of m's young and remembered objects, and visit_object(void* shared) for published_old.
// Fields may hold private references: the visitor skips them. Stopped world.
template <typename VisitField, typename VisitObject>
void for_each_private_to_shared_field(Mutator& m, VisitField&& visit, VisitObject&& visit_object) {
  auto fields = [&](void* object) {
    for_each_reference_field(object, header_of(object), [&](void** field) {
      if (is_object_pointer(*field)) visit(field);
    });
  };
  for_each_young_object(m, fields);
  for_each_remembered(m, m.remembered_young, kRememberedYoung, fields);
  for_each_remembered(m, m.remembered_shared, kRememberedShared, fields);
  for (size_t i = 0; i < m.published_old.size(); ++i) {
    void* object = m.published_old.at(i);
    if (is_shared_class(header_of(object))) visit_object(object);
  }
}

}  // namespace usgc::gc
