// fan_in: the Go equivalent of tests/escape/fan_in.usir (see arrays.go for the conventions).
package main

type Message struct {
	sender  int
	payload []int
}

func producer(id int, out chan *Message) {
	payload := make([]int, 8) // usir 8:3
	payload[0] = id
	message := &Message{} // usir 10:3
	message.sender = id
	message.payload = payload
	out <- message
}

//go:noinline
func fanIn(producers int) int {
	merged := make(chan *Message, 0) // usir 25:3
	for i := 0; i < producers; i++ {
		go producer(i, merged)
	}
	sum := 0
	for i := 0; i < producers; i++ {
		message := <-merged
		sender := message.sender
		sum += sender
	}
	return sum
}

func main() {
	println(fanIn(4))
}
