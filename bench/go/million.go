// million: Go's side of suite=million (bench/million_goroutines.cpp does the same work in usgc).
//
//	parked  N goroutines (default 1 000 000) each blocked on a receive from one unbuffered
//	        channel: ns_per_goroutine (from the first go statement until all N have parked, / N)
//	        and rss_bytes_per_goroutine ((RSS parked - RSS before) / N, /proc/self/statm),
//	        cpu_ns_per_goroutine (user + system CPU time of the process over the spawn, / N).
//	burst   N goroutines (default 500 000) park, the channel closes, all end; 500 ms later:
//	        rss_growth_percent and rss_after_burst_bytes against the RSS before, with
//	        rss_peak_bytes_per_goroutine.
//
// Output: RESULT suite=million case=<case> impl=go metric=<metric> value=<v> unit=<unit>
//
//	go build -o build/bench/go-million bench/go/million.go
//	build/bench/go-million -case parked|burst [-goroutines N]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fmt.Printf("ERROR suite=million impl=go reason=\"read /proc/self/statm: %v\"\n", err)
		os.Exit(1)
	}
	var size, resident int64
	fmt.Sscan(string(data), &size, &resident)
	return resident * 4096
}

// minorFaults: the process's minor page faults so far (getrusage).
func minorFaults() int64 {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return usage.Minflt
}

// cpuNs: the process's user + system CPU time so far (getrusage), in nanoseconds.
func cpuNs() int64 {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return usage.Utime.Nano() + usage.Stime.Nano()
}

// pageTableBytes: VmPTE of /proc/self/status.
func pageTableBytes() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		var kib int64
		if n, _ := fmt.Sscanf(line, "VmPTE: %d kB", &kib); n == 1 {
			return kib * 1024
		}
	}
	return 0
}

func result(caseName, metric string, value float64, unit string) {
	fmt.Printf("RESULT suite=million case=%s impl=go metric=%s value=%.1f unit=%s\n", caseName, metric, value, unit)
}

func main() {
	caseName := flag.String("case", "parked", "parked or burst")
	count := flag.Int("goroutines", 0, "goroutines (0: 1000000 for parked, 500000 for burst)")
	flag.Parse()
	if *caseName != "parked" && *caseName != "burst" {
		flag.Usage()
		os.Exit(2)
	}
	if *count == 0 {
		*count = 1000000
		if *caseName == "burst" {
			*count = 500000
		}
	}
	gate := make(chan int)
	var parked, exited int64
	park := func() {
		atomic.AddInt64(&parked, 1)
		<-gate
		atomic.AddInt64(&exited, 1)
	}
	runtime.GC()
	before := residentBytes()
	faultsBefore := minorFaults()
	pageTablesBefore := pageTableBytes()
	cpuBefore := cpuNs()
	start := time.Now()
	for i := 0; i < *count; i++ {
		go park()
	}
	for atomic.LoadInt64(&parked) < int64(*count) {
		runtime.Gosched()
	}
	elapsed := time.Since(start)
	cpuSpawn := cpuNs() - cpuBefore
	peak := residentBytes()
	n := float64(*count)
	if *caseName == "parked" {
		result("parked", "ns_per_goroutine", float64(elapsed.Nanoseconds())/n, "ns")
		result("parked", "cpu_ns_per_goroutine", float64(cpuSpawn)/n, "ns")
		result("parked", "rss_bytes_per_goroutine", float64(peak-before)/n, "bytes")
		result("parked", "minor_faults_per_goroutine", float64(minorFaults()-faultsBefore)/n, "faults")
		result("parked", "page_table_bytes_per_goroutine", float64(pageTableBytes()-pageTablesBefore)/n, "bytes")
	}
	close(gate)
	for atomic.LoadInt64(&exited) < int64(*count) {
		time.Sleep(time.Millisecond)
	}
	if *caseName == "burst" {
		time.Sleep(500 * time.Millisecond)
		after := residentBytes()
		result("burst", "rss_peak_bytes_per_goroutine", float64(peak-before)/n, "bytes")
		result("burst", "rss_after_burst_bytes", float64(after-before), "bytes")
		result("burst", "rss_growth_percent", 100*float64(after-before)/float64(before), "percent")
	}
}
