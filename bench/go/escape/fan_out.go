// fan_out: the Go equivalent of tests/escape/fan_out.usir (see arrays.go for the conventions).
// One producer, two consumers draining one channel: each consumer's tally stays in its frame (only
// ints go into it and out of it), the task is sent, both channels are go arguments.
package main

type Task struct{ weight int }

type Tally struct{ sum int }

func consumer(tasks chan *Task, done chan int, count int) {
	tally := &Tally{} // usir 17:3
	for i := 0; i < count; i++ {
		task := <-tasks
		w := task.weight
		s := tally.sum
		s += w
		tally.sum = s
	}
	s := tally.sum
	done <- s
}

//go:noinline
func fanOut(n int) {
	tasks := make(chan *Task, 8) // usir 42:3
	done := make(chan int, 2)    // usir 43:3
	go consumer(tasks, done, n)
	go consumer(tasks, done, n)
	task := &Task{} // usir 46:3
	task.weight = n
	tasks <- task
}

func main() {
	// As the .usir's main: 20 rounds, each spawning two consumers and feeding both, then joining.
	sum := 0
	for round := 0; round < 20; round++ {
		n := round%6 + 5
		tasks := make(chan *Task, 8) // usir 79:3
		done := make(chan int, 2)    // usir 80:3
		go consumer(tasks, done, n)
		go consumer(tasks, done, n)
		for j := 0; j < n*2; j++ {
			task := &Task{} // usir 90:3
			task.weight = j
			tasks <- task
		}
		sum += <-done
		sum += <-done
	}
	if sum < 0 {
		fanOut(1)
	}
	println(sum)
}
