// arrays: the Go equivalent of tests/escape/arrays.usir, for bench/escape_vs_go.sh, which builds
// it with `go build -gcflags=-m` and compares Go's decisions with usgc-escape's. Each allocation
// is marked with the .usir position of its site (`usir line:col`); functions that no other
// function of the .usir calls are entry points, kept out of main by //go:noinline (the .usir has
// no caller for them).
package main

type Cell struct{ value int }

//go:noinline
func fixedBuffer() int {
	buffer := new([16]int) // usir 10:3
	buffer[0] = 7
	first := buffer[0]
	count := len(buffer)
	first += count
	return first
}

//go:noinline
func dynamicBuffer(n int) int {
	buffer := make([]int, n) // usir 22:3
	count := len(buffer)
	return count
}

//go:noinline
func cells(n int) []*Cell {
	table := make([]*Cell, n) // usir 33:3
	for i := 0; i < n; i++ {
		cell := &Cell{} // usir 40:3
		cell.value = i
		table[i] = cell
	}
	return table
}

func main() {
	println(fixedBuffer(), dynamicBuffer(4), len(cells(4)))
}
