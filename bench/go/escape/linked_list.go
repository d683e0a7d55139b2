// linked_list: the Go equivalent of tests/escape/linked_list.usir (see arrays.go for the
// conventions).
package main

type Node struct {
	value int
	next  *Node
}

func build(n int) *Node {
	var head *Node
	for i := 0; i < n; i++ {
		node := &Node{} // usir 18:3
		node.value = i
		node.next = head
		head = node
	}
	return head
}

func sum(list *Node) int {
	total := 0
	for list != nil {
		value := list.value
		total += value
		list = list.next
	}
	return total
}

//go:noinline
func buildAndSum(n int) int {
	list := build(n)
	total := sum(list)
	return total
}

func main() {
	println(buildAndSum(10))
}
