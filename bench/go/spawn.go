// spawn: Go's side of suite=goroutines case=spawn (bench/goroutines.cpp does the same work in
// usgc). The main goroutine adds N to a sync.WaitGroup, starts N goroutines that each only call
// Done, and waits: spawn-to-finish time / N, in ns per goroutine. At the default GOMAXPROCS (the
// online cores), or with -procs P at P (the case is then named spawn-procsP). Each measurement
// follows an unrecorded warm-up of N / 10 and a runtime.GC().
//
// Output, as bench/goroutines.cpp's: one SAMPLE line per measurement, then the median as
//
//	RESULT suite=goroutines case=<case> impl=go metric=ns_per_goroutine value=<ns> unit=ns
//
// Build and run (bench/run_runtime.sh does):
//
//	go build -o build/bench/go-spawn bench/go/spawn.go
//	build/bench/go-spawn [-reps R] [-spawn N] [-procs P] [-quick]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func done(group *sync.WaitGroup) { group.Done() }

func spawnOnce(count int) time.Duration {
	var group sync.WaitGroup
	start := time.Now()
	group.Add(count)
	for i := 0; i < count; i++ {
		go done(&group)
	}
	group.Wait()
	return time.Since(start)
}

func main() {
	reps := flag.Int("reps", 5, "repetitions")
	count := flag.Int("spawn", 100000, "goroutines per measurement")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: the default, the online cores); the case is named spawn-procsP")
	quick := flag.Bool("quick", false, "1 repetition of 10000 goroutines")
	flag.Parse()
	if *quick {
		*reps, *count = 1, 10000
	}
	if *reps < 1 || *count < 1 || *procs < 0 {
		flag.Usage()
		os.Exit(2)
	}
	name := "spawn" + useProcs(*procs)
	var samples []float64
	for rep := 0; rep < *reps; rep++ {
		spawnOnce(*count/10 + 1)
		runtime.GC()
		value := float64(spawnOnce(*count).Nanoseconds()) / float64(*count)
		samples = append(samples, value)
		fmt.Printf("SAMPLE suite=goroutines case=%s impl=go metric=ns_per_goroutine value=%.1f unit=ns\n", name, value)
	}
	fmt.Printf("RESULT suite=goroutines case=%s impl=go metric=ns_per_goroutine value=%.1f unit=ns\n", name, median(samples))
}
