// kernel_iface/intrusive_list.hpp — the doubly linked intrusive list, written once.
//
// IntrusiveList<T, &T::next, &T::prev> is the list discipline over two link fields that T
// already has: it owns no storage. The elements keep their layout (Page's fields are placed for
// the free fast path and its size is asserted; a Segment is on two lists at once through two
// pairs of links), and the list's ends stay where their owner keeps them (a PageQueue's
// first/last, a heap's or a registry's head pointer), passed by reference. Two shapes:
//   head only     first                push_front, remove, is_linked (a registry, a set)
//   head and tail first, last          push_front, push_back, pop_front, remove (a FIFO, a queue)
//
// Invariants (every operation keeps them; nothing else may write the links):
//   - first->prev == nullptr and, with a tail, last->next == nullptr; an empty list has
//     first == nullptr (and last == nullptr);
//   - a node off the list has both links nullptr (remove and pop_front clear them). The only node
//     of a list has both links nullptr too, so "is it on the list" needs the head: is_linked.
// Concurrency: none of its own. Every call on a list is made under the lock that guards that list
// (or by its single owner); the element's documentation names it.
// Hot path: the allocator's page queues use it on page state changes (a page fills up, empties,
// moves to the front): each operation is a few loads and stores, inline, no lock, no syscall.
#pragma once

namespace usgc::kernel {

template <typename T, T* T::*kNext, T* T::*kPrev>
struct IntrusiveList {
  // ---- head only ----

  // Links node (off every list of this kind) in front of first.
  static void push_front(T*& first, T* node) {
    node->*kPrev = nullptr;
    node->*kNext = first;
    if (first != nullptr) first->*kPrev = node;
    first = node;
  }

  // Unlinks node (on the list that starts at first) and clears its links.
  static void remove(T*& first, T* node) {
    T* previous = node->*kPrev;
    T* next = node->*kNext;
    if (previous != nullptr)
      previous->*kNext = next;
    else
      first = next;
    if (next != nullptr) next->*kPrev = previous;
    node->*kNext = nullptr;
    node->*kPrev = nullptr;
  }

  // Whether node is on the list that starts at first (by the invariants: one or two loads).
  static bool is_linked(const T* first, const T* node) {
    return node->*kPrev != nullptr || first == node;
  }

  // ---- head and tail ----

  static void push_front(T*& first, T*& last, T* node) {
    if (first == nullptr) last = node;
    push_front(first, node);
  }

  static void push_back(T*& first, T*& last, T* node) {
    if (last == nullptr) {
      push_front(first, last, node);
      return;
    }
    node->*kNext = nullptr;
    node->*kPrev = last;
    last->*kNext = node;
    last = node;
  }

  // Unlinks node (on the list first..last) and clears its links.
  static void remove(T*& first, T*& last, T* node) {
    if (node->*kNext == nullptr) last = node->*kPrev;
    remove(first, node);
  }

  // Unlinks and returns the first node (links cleared); nullptr when the list is empty.
  static T* pop_front(T*& first, T*& last) {
    T* node = first;
    if (node != nullptr) remove(first, last, node);
    return node;
  }
};

}  // namespace usgc::kernel
