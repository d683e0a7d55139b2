// recursion: the Go equivalent of tests/escape/recursion.usir (see arrays.go for the
// conventions).
package main

type Counter struct{ value int }

func countDown(c *Counter, n int) {
	if n <= 0 {
		return
	}
	c.value = n
	next := n - 1
	countDown(c, next)
}

func isEven(n int, c *Counter) bool {
	if n == 0 {
		return true
	}
	next := n - 1
	return isOdd(next, c)
}

func isOdd(n int, c *Counter) bool {
	if n == 0 {
		return false
	}
	next := n - 1
	return isEven(next, c)
}

//go:noinline
func makeCounter(n int) *Counter {
	c := &Counter{} // usir 53:3
	countDown(c, n)
	even := isEven(n, c)
	_ = even
	return c
}

func main() {
	println(makeCounter(5).value)
}
