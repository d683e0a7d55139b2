// unknown_call: the Go equivalent of tests/escape/unknown_call.usir (see arrays.go for the
// conventions). The .usir's `unknown` callee, a function the analysis cannot see, is a call
// through a package-level function variable: Go's analysis cannot see its target either.
package main

type Buffer struct{ size int }

var (
	unknownUse func(buffer *Buffer, size int)
	unknownGet func() *Buffer
	unknownRun func(buffer *Buffer)
)

//go:noinline
func logBuffer() {
	kept := &Buffer{} // usir 11:3
	size := kept.size
	passed := &Buffer{} // usir 13:3
	unknownUse(passed, size)
	returned := unknownGet()
	returned.size = 1
}

//go:noinline
func spawnUnknown() {
	data := &Buffer{} // usir 23:3
	go unknownRun(data)
}

func main() {
	unknownUse = func(*Buffer, int) {}
	unknownRun = func(*Buffer) {}
	unknownGet = func() *Buffer { return new(Buffer) }
	logBuffer()
	spawnUnknown()
}
