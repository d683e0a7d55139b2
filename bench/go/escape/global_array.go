// global_array: the Go equivalent of tests/escape/global_array.usir (see arrays.go for the
// conventions). The .usir's global @table is the package variable table; init_table's local
// %table is tbl here (a Go local named table would hide the global).
package main

type Entry struct{ key, value int }

var table []*Entry

//go:noinline
func initTable(n int) {
	tbl := make([]*Entry, n) // usir 15:3
	seed := &Entry{}         // usir 16:3
	tbl[0] = seed
	table = tbl
}

//go:noinline
func put(i, key int) {
	scratch := &Entry{} // usir 28:3
	scratch.key = key
	k := scratch.key
	entry := &Entry{} // usir 31:3
	entry.key = k
	t := table
	t[i] = entry
}

func main() {
	initTable(4)
	put(1, 5)
	println(table[1].key)
}
