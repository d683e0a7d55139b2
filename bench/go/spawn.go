// spawn: Go's side of suite=goroutines case=spawn (bench/goroutines.cpp does the same work in
// usgc). The main goroutine adds N to a sync.WaitGroup, starts N goroutines that each only call
// Done, and waits: spawn-to-finish time / N, in ns per goroutine. Cases at the default
// GOMAXPROCS (the online cores) and at 1 and 2 (case names spawn, spawn-procs1, spawn-procs2).
// Each measurement follows an unrecorded warm-up of N / 10 and a runtime.GC().
//
// Output, as bench/goroutines.cpp's: one SAMPLE line per measurement, then the median as
//
//	RESULT suite=goroutines case=<case> impl=go metric=ns_per_goroutine value=<ns> unit=ns
//
// Build and run (bench/run_runtime.sh does): go build -o build/bench/go-spawn bench/go/spawn.go
//
//	build/bench/go-spawn [-reps R] [-spawn N] [-procs "default 1 2"] [-quick]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
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

func median(values []float64) float64 {
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func main() {
	reps := flag.Int("reps", 5, "repetitions")
	count := flag.Int("spawn", 100000, "goroutines per measurement")
	procsList := flag.String("procs", "default 1 2", "GOMAXPROCS values (default = the online cores)")
	quick := flag.Bool("quick", false, "1 repetition of 10000 goroutines")
	flag.Parse()
	if *quick {
		*reps, *count = 1, 10000
	}
	defaultProcs := runtime.GOMAXPROCS(0)
	var order []string
	samples := map[string][]float64{}
	for rep := 0; rep < *reps; rep++ {
		for _, word := range strings.Fields(*procsList) {
			procs, name := defaultProcs, "spawn"
			if word != "default" {
				n, err := strconv.Atoi(word)
				if err != nil || n < 1 {
					fmt.Fprintf(os.Stderr, "spawn: bad -procs value %q\n", word)
					os.Exit(2)
				}
				procs, name = n, "spawn-procs"+word
			}
			runtime.GOMAXPROCS(procs)
			spawnOnce(*count / 10)
			runtime.GC()
			value := float64(spawnOnce(*count).Nanoseconds()) / float64(*count)
			if _, seen := samples[name]; !seen {
				order = append(order, name)
			}
			samples[name] = append(samples[name], value)
			fmt.Printf("SAMPLE suite=goroutines case=%s impl=go metric=ns_per_goroutine value=%.1f unit=ns\n", name, value)
		}
	}
	for _, name := range order {
		fmt.Printf("RESULT suite=goroutines case=%s impl=go metric=ns_per_goroutine value=%.1f unit=ns\n", name, median(samples[name]))
	}
}
