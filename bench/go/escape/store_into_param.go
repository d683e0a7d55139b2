// store_into_param: the Go equivalent of tests/escape/store_into_param.usir (see arrays.go for the
// conventions). fill stores its own allocation into the caller's object; attach links its second
// parameter into its first, which make_pair returns.
package main

type Item struct{ value int }

type Holder struct {
	item *Item
	next *Holder
}

func fill(box *Holder) {
	item := &Item{} // usir 12:3
	box.item = item
}

func attach(a, b *Holder) {
	a.next = b
}

//go:noinline
func useFill() int {
	box := &Holder{} // usir 28:3
	fill(box)
	it := box.item
	v := it.value
	return v
}

//go:noinline
func makePair() *Holder {
	head := &Holder{} // usir 39:3
	tail := &Holder{} // usir 40:3
	attach(head, tail)
	return head
}

func main() {
	println(useFill(), makePair().next != nil)
}
