// publish_after_spawn: the Go equivalent of tests/escape/publish_after_spawn.usir (see arrays.go
// for the conventions).
package main

type Slot struct{ item *Item }

type Item struct{ value int }

func reader(slot *Slot, done chan bool) {
	item := slot.item
	_ = item
	done <- true
}

//go:noinline
func publish() {
	slot := &Slot{}            // usir 20:3
	done := make(chan bool, 1) // usir 21:3
	go reader(slot, done)
	item := &Item{} // usir 23:3
	slot.item = item
	finished := <-done
	_ = finished
}

func main() {
	publish()
}
