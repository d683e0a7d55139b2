// tests/support/gc_node.hpp — the node the GC tests build lists, chains and trees of: two
// references (left, right) and a value, registered once per process as the type "Node", with
// the helpers every such test wrote for itself.
//
// Conventions (the rules of usgc/gc.h): a node is allocated through the public API only; every
// reference store into a node goes through write() (the barrier); a test roots what it holds
// before any usgc call that may collect.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "usgc/usgc.h"

namespace usgc::testing {

struct Node {
  Node* left;
  Node* right;
  int64_t value;
};

// Registered on first use, then the same id for the whole process (the type registry outlives
// usgc_shutdown).
inline usgc_type_id node_type() {
  static usgc_type_id type = [] {
    size_t offsets[] = {offsetof(Node, left), offsetof(Node, right)};
    usgc_type_info info = {"Node", USGC_KIND_OBJECT, sizeof(Node), offsets, 2};
    return usgc_register_type(&info);
  }();
  return type;
}

// A node of `ownership` holding `value`, or nullptr when usgc_alloc refused (its error is set).
inline Node* try_new_node(usgc_ownership ownership, int64_t value) {
  auto* node = static_cast<Node*>(usgc_alloc(node_type(), ownership));
  if (node != nullptr) node->value = value;
  return node;
}

// As try_new_node, for tests that cannot go on without it: aborts when the allocation fails.
inline Node* new_node(usgc_ownership ownership, int64_t value) {
  Node* node = try_new_node(ownership, value);
  if (node == nullptr) std::abort();
  return node;
}

// A reference store through the write barrier.
inline void write(Node* target, Node** field, Node* value) {
  usgc_write(target, reinterpret_cast<void**>(field), value);
}

// A tree of `depth` private nodes (2^(depth+1) - 1, each holding its depth), built bottom-up with
// every partial result rooted (a collection may run inside any allocation).
inline Node* build_tree(int depth) {
  USGC_ROOTS(roots, 2);
  roots[0] = new_node(USGC_GOROUTINE_PRIVATE, depth);
  if (depth > 0) {
    roots[1] = build_tree(depth - 1);
    write(static_cast<Node*>(roots[0]), &static_cast<Node*>(roots[0])->left,
          static_cast<Node*>(roots[1]));
    roots[1] = build_tree(depth - 1);
    write(static_cast<Node*>(roots[0]), &static_cast<Node*>(roots[0])->right,
          static_cast<Node*>(roots[1]));
  }
  return static_cast<Node*>(roots[0]);
}

// A list of `count` private nodes (values 0..count-1) through `left`, rooted in *root, then one
// full private collection that makes every node old. Returns that collection's result (0).
inline int build_old_list(void** root, int count) {
  USGC_ROOTS(roots, 1);
  *root = nullptr;
  for (int i = count - 1; i >= 0; --i) {
    roots[0] = new_node(USGC_GOROUTINE_PRIVATE, i);
    write(static_cast<Node*>(roots[0]), &static_cast<Node*>(roots[0])->left,
          static_cast<Node*>(*root));
    *root = roots[0];
  }
  return usgc_gc_collect(USGC_GC_PRIVATE);
}

// Drops every other node of a build_old_list list (the odd values): every block keeps survivors
// and free slots.
inline void drop_odd_nodes(Node* list) {
  for (Node* node = list; node != nullptr && node->left != nullptr; node = node->left)
    write(node, &node->left, node->left->left);
}

// The list's length if its values are 0, 2, 4, ... in order (what drop_odd_nodes leaves), else -1.
inline int64_t list_length_checking_even_values(const Node* list) {
  int64_t length = 0;
  for (const Node* node = list; node != nullptr; node = node->left, ++length)
    if (node->value != 2 * length) return -1;
  return length;
}

// The sum of the values of a list linked through `right`, and its length in *length.
inline int64_t list_sum(const void* head, int* length) {
  int64_t sum = 0;
  *length = 0;
  for (auto* node = static_cast<const Node*>(head); node != nullptr; node = node->right) {
    sum += node->value;
    ++*length;
  }
  return sum;
}

}  // namespace usgc::testing
