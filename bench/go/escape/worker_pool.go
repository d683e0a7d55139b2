// worker_pool: the Go equivalent of tests/escape/worker_pool.usir (see arrays.go for the
// conventions).
package main

type Job struct{ input int }

type Answer struct {
	job    *Job
	output int
}

func worker(jobs chan *Job, answers chan *Answer, count int) {
	for i := 0; i < count; i++ {
		job := <-jobs
		value := job.input
		scratch := &Answer{} // usir 22:3
		scratch.output = value
		value = scratch.output
		value *= value
		answer := &Answer{} // usir 26:3
		answer.job = job
		answer.output = value
		answers <- answer
	}
}

//go:noinline
func runPool(workers, perWorker int) int {
	jobs := make(chan *Job, 16)       // usir 48:3
	answers := make(chan *Answer, 16) // usir 49:3
	for w := 0; w < workers; w++ {
		go worker(jobs, answers, perWorker)
	}
	totalJobs := workers * perWorker
	for i := 0; i < totalJobs; i++ {
		job := &Job{} // usir 67:3
		job.input = i
		jobs <- job
	}
	sum := 0
	for i := 0; i < totalJobs; i++ {
		answer := <-answers
		value := answer.output
		sum += value
	}
	return sum
}

func main() {
	println(runPool(2, 4))
}
