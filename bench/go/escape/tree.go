// tree: the Go equivalent of tests/escape/tree.usir (see arrays.go for the conventions).
package main

type Tree struct {
	key   int
	left  *Tree
	right *Tree
}

func insert(root *Tree, key int) *Tree {
	if root == nil {
		node := &Tree{} // usir 14:3
		node.key = key
		return node
	}
	here := root.key
	if key < here {
		child := root.left
		child = insert(child, key)
		root.left = child
		return root
	}
	child := root.right
	child = insert(child, key)
	root.right = child
	return root
}

func depth(root *Tree) int {
	if root == nil {
		return 0
	}
	left := depth(root.left)
	right := depth(root.right)
	if left > right {
		return left + 1
	}
	return right + 1
}

//go:noinline
func buildTree() int {
	var root *Tree
	root = insert(root, 5)
	root = insert(root, 3)
	root = insert(root, 8)
	result := depth(root)
	return result
}

func main() {
	println(buildTree())
}
