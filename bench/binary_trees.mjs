// bench/binary_trees.mjs — binary-trees (bench/binary_trees_single.usir) written directly in
// JavaScript, run by node: V8's own collector is the peer of the WebAssembly target
// (bench/run_wasm.sh). Same trees, same order, same returned check.
//
//   node bench/binary_trees.mjs N     prints `main returned <check>`
class Node {
  constructor(left, right) {
    this.left = left;
    this.right = right;
  }
}

function bottomUpTree(depth) {
  if (depth <= 0) return new Node(null, null);
  const node = new Node(null, null);
  node.left = bottomUpTree(depth - 1);
  node.right = bottomUpTree(depth - 1);
  return node;
}

function itemCheck(node) {
  if (node.left === null) return 1;
  return itemCheck(node.left) + itemCheck(node.right) + 1;
}

const checkTree = (depth) => itemCheck(bottomUpTree(depth));

function main(maxDepth) {
  let total = checkTree(maxDepth + 1);
  const longLived = bottomUpTree(maxDepth);
  for (let depth = 4; depth <= maxDepth; depth += 2) {
    const iterations = 2 ** (maxDepth - depth + 4);
    for (let i = 0; i < iterations; ++i) total += checkTree(depth);
  }
  return total + itemCheck(longLived);
}

const depth = Number(process.argv[2] ?? 10);
if (!Number.isInteger(depth) || depth < 4) {
  process.stderr.write('usage: node bench/binary_trees.mjs N   (N >= 4)\n');
  process.exit(2);
}
process.stdout.write(`main returned ${main(depth)}\n`);
