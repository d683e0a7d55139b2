// return_values: the Go equivalent of tests/escape/return_values.usir (see arrays.go for the
// conventions).
package main

type Pair struct{ first, second int }

func makePair(a, b int) *Pair {
	pair := &Pair{} // usir 8:3
	pair.first = a
	pair.second = b
	return pair
}

func identity(pair *Pair) *Pair {
	return pair
}

//go:noinline
func usePair() int {
	pair := makePair(1, 2)
	same := identity(pair)
	first := same.first
	return first
}

func main() {
	println(usePair())
}
