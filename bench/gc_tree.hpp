// bench/gc_tree.hpp — the binary tree of two-reference nodes that the GC benchmarks build
// (gc_pauses, gc_costs): building one through a program's own allocation function, and counting
// its nodes through the read barrier. Header-only: every bench/*.cpp is its own program.
// Invariants: a node's children are both null (a leaf) or both set; build_tree roots each
// finished subtree (USGC_ROOTS) while it allocates the next, so a collection in between keeps it.
#pragma once

#include <cstdint>

#include "usgc/gc.h"

namespace usgc::bench {

struct TreeNode {
  void* left;
  void* right;
};

// A complete tree of `depth` (2^(depth+1) - 1 nodes); new_node(ownership) allocates one node.
template <typename NewNode>
void* build_tree(int depth, usgc_ownership ownership, NewNode new_node) {
  if (depth == 0) return new_node(ownership);
  USGC_ROOTS(children, 2);
  children[0] = build_tree(depth - 1, ownership, new_node);
  children[1] = build_tree(depth - 1, ownership, new_node);
  auto* node = static_cast<TreeNode*>(new_node(ownership));
  usgc_write(node, &node->left, children[0]);
  usgc_write(node, &node->right, children[1]);
  return node;
}

// The nodes of a tree; a node with one child only (a broken tree) counts 2^40, failing any check.
inline uint64_t count_tree(const void* tree) {
  const auto* node = static_cast<const TreeNode*>(tree);
  const void* left = usgc_read(node, &node->left);
  const void* right = usgc_read(node, &node->right);
  if ((left == nullptr) != (right == nullptr)) return uint64_t{1} << 40;
  if (left == nullptr) return 1;
  return 1 + count_tree(left) + count_tree(right);
}

}  // namespace usgc::bench
