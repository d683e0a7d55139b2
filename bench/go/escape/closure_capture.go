// closure_capture: the Go equivalent of tests/escape/closure_capture.usir (see arrays.go for the
// conventions). The .usir's add_to, a closure body with one capture, is a func literal here, once
// called at once with localBox captured and once spawned with sharedBox captured.
package main

type Box struct{ value int }

//go:noinline
func closures() int {
	localBox := &Box{} // usir 3:16
	func(amount int) { // add_to(1) captures(localBox)
		old := localBox.value
		old += amount
		localBox.value = old
	}(1)
	sharedBox := &Box{}   // usir 5:17
	go func(amount int) { // go add_to(2) captures(sharedBox)
		old := sharedBox.value
		old += amount
		sharedBox.value = old
	}(2)
	result := localBox.value
	return result
}

func main() {
	println(closures())
}
