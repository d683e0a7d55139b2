// channel_pipeline: the Go equivalent of tests/escape/channel_pipeline.usir (see arrays.go for
// the conventions: `usir line:col` marks each site, entry points are //go:noinline).
package main

type Item struct{ value int }

func produce(out chan *Item, n int) {
	for i := 0; i < n; i++ {
		item := &Item{} // usir 15:3
		item.value = i
		out <- item
	}
	close(out)
}

func double(in chan *Item, out chan *Item, n int) {
	for i := 0; i < n; i++ {
		item := <-in
		value := item.value
		value *= 2
		item.value = value
		out <- item
	}
	close(out)
}

//go:noinline
func pipeline(n int) int {
	first := make(chan *Item, 4)  // usir 58:3
	second := make(chan *Item, 0) // usir 59:3
	go produce(first, n)
	go double(first, second, n)
	total := 0
	for i := 0; i < n; i++ {
		item := <-second
		value := item.value
		total += value
	}
	return total
}

func main() {
	println(pipeline(8))
}
