// benchutil.go: what the Go peers of bench/goroutines.cpp share (built into each program:
// `go build spawn.go benchutil.go`, `go build pingpong.go benchutil.go`).
package main

import (
	"fmt"
	"runtime"
	"sort"
)

// median of the repetitions' figures.
func median(values []float64) float64 {
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// useProcs sets GOMAXPROCS when procs > 0 and returns the case-name suffix "-procsP" (or "").
func useProcs(procs int) string {
	if procs <= 0 {
		return ""
	}
	runtime.GOMAXPROCS(procs)
	return fmt.Sprintf("-procs%d", procs)
}
