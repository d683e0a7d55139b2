// pingpong: Go's side of suite=goroutines case=pingpong and pingpong-buffered
// (bench/goroutines.cpp does the same work in usgc). Two goroutines bounce a uint64 (the second
// adds one) over two channels R times: time / R, in ns per round trip; unbuffered channels
// (pingpong) and channels of capacity 1 (pingpong-buffered). At the default GOMAXPROCS (the
// online cores), or with -procs P at P (the cases are then named with the suffix -procsP). Each
// measurement follows an unrecorded warm-up of R / 10 and a runtime.GC(). A wrong value is an
// ERROR line and exit status 1.
//
// Output, as bench/goroutines.cpp's: one SAMPLE line per measurement, then the median as
//
//	RESULT suite=goroutines case=<case> impl=go metric=ns_per_round_trip value=<ns> unit=ns
//
// Build and run (bench/run_runtime.sh does):
//
//	go build -o build/bench/go-pingpong bench/go/pingpong.go
//	build/bench/go-pingpong [-reps R] [-round-trips R] [-procs P] [-cases "pingpong pingpong-buffered"] [-quick]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

func echo(ping <-chan uint64, pong chan<- uint64, roundTrips int, finished chan<- struct{}) {
	for i := 0; i < roundTrips; i++ {
		pong <- (<-ping) + 1
	}
	close(finished)
}

// pingPongOnce returns the time of roundTrips round trips and how many came back wrong.
func pingPongOnce(roundTrips, capacity int) (time.Duration, int) {
	ping := make(chan uint64, capacity)
	pong := make(chan uint64, capacity)
	finished := make(chan struct{})
	go echo(ping, pong, roundTrips, finished)
	wrong := 0
	start := time.Now()
	for i := 0; i < roundTrips; i++ {
		ping <- uint64(i)
		if <-pong != uint64(i)+1 {
			wrong++
		}
	}
	elapsed := time.Since(start)
	<-finished
	return elapsed, wrong
}

func main() {
	reps := flag.Int("reps", 5, "repetitions")
	roundTrips := flag.Int("round-trips", 1000000, "round trips per measurement")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: the default, the online cores); cases get the suffix -procsP")
	caseList := flag.String("cases", "pingpong pingpong-buffered", "cases")
	quick := flag.Bool("quick", false, "1 repetition of 20000 round trips")
	flag.Parse()
	if *quick {
		*reps, *roundTrips = 1, 20000
	}
	if *reps < 1 || *roundTrips < 1 || *procs < 0 {
		flag.Usage()
		os.Exit(2)
	}
	suffix := useProcs(*procs)
	var order []string
	samples := map[string][]float64{}
	for rep := 0; rep < *reps; rep++ {
		for _, kind := range strings.Fields(*caseList) {
			capacity := 0
			switch kind {
			case "pingpong":
			case "pingpong-buffered":
				capacity = 1
			default:
				fmt.Fprintf(os.Stderr, "pingpong: unknown case %q\n", kind)
				os.Exit(2)
			}
			name := kind + suffix
			pingPongOnce(*roundTrips/10+1, capacity)
			runtime.GC()
			elapsed, wrong := pingPongOnce(*roundTrips, capacity)
			if wrong != 0 {
				fmt.Printf("ERROR suite=goroutines case=%s impl=go reason=\"%d of %d round trips returned a wrong value\"\n", name, wrong, *roundTrips)
				os.Exit(1)
			}
			value := float64(elapsed.Nanoseconds()) / float64(*roundTrips)
			if _, seen := samples[name]; !seen {
				order = append(order, name)
			}
			samples[name] = append(samples[name], value)
			fmt.Printf("SAMPLE suite=goroutines case=%s impl=go metric=ns_per_round_trip value=%.1f unit=ns\n", name, value)
		}
	}
	for _, name := range order {
		fmt.Printf("RESULT suite=goroutines case=%s impl=go metric=ns_per_round_trip value=%.1f unit=ns\n", name, median(samples[name]))
	}
}
