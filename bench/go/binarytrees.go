// binarytrees: Go's side of suite=binary_trees (bench/binary_trees.cpp does the same work on
// usgc, Boehm GC, std::shared_ptr and malloc/free). For a depth N and G goroutines: a stretch
// tree of depth N+1 is built, checked and dropped; a long-lived tree of depth N is kept for the
// whole run; for d = 4, 6, ..., N, 2^(N-d+4) trees of depth d are built, checked and dropped, the
// iterations of each depth split among G goroutines (goroutine w takes iterations w, w+G, ...);
// then the long-lived tree is checked. A check is a tree's node count, 2^(d+1)-1 for depth d:
// a wrong one is an ERROR line and exit status 1. GOMAXPROCS is the caller's (bench/run_gc.sh
// sets it to G).
//
// Output, as bench/binary_trees.cpp's: the Benchmarks Game's lines, then
//
//	RESULT suite=binary_trees case=depth<N>-g<G> impl=go metric=wall_ms value=<ms> unit=ms
//	RESULT ... metric=peak_rss_kib value=<VmHWM of /proc/self/status> unit=KiB
//	RESULT ... metric=check value=<sum of the checks> unit=count
//	NOTE ... collections=<runtime.MemStats.NumGC> pause_total_ms=... gomaxprocs=...
//
// Build and run (bench/run_gc.sh does):
//
//	go build -o build/bench/go-binarytrees bench/go/binarytrees.go
//	build/bench/go-binarytrees [-depth N] [-goroutines G]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

const minDepth = 4

type Node struct {
	left, right *Node
}

func bottomUpTree(depth int) *Node {
	if depth <= 0 {
		return &Node{}
	}
	return &Node{bottomUpTree(depth - 1), bottomUpTree(depth - 1)}
}

func (n *Node) check() uint64 {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

func nodesOfDepth(depth int) uint64 { return (uint64(2) << uint(depth)) - 1 }

// peakRSSKiB is VmHWM of /proc/self/status (0 when unreadable).
func peakRSSKiB() uint64 {
	file, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasPrefix(line, "VmHWM:") {
			fields := strings.Fields(line[len("VmHWM:"):])
			if len(fields) > 0 {
				kib, _ := strconv.ParseUint(fields[0], 10, 64)
				return kib
			}
		}
	}
	return 0
}

func main() {
	depth := flag.Int("depth", 16, "depth of the long-lived tree (>= 4)")
	workers := flag.Int("goroutines", 1, "goroutines sharing the iterations of each depth")
	flag.Parse()
	if *depth < minDepth || *depth > 30 || *workers < 1 {
		flag.Usage()
		os.Exit(2)
	}
	name := fmt.Sprintf("depth%d-g%d", *depth, *workers)

	var depths []int
	var iterations []uint64
	for d := minDepth; d <= *depth; d += 2 {
		depths = append(depths, d)
		iterations = append(iterations, uint64(1)<<uint(*depth-d+minDepth))
	}
	// sums[w][k]: goroutine w's checks of step k (each goroutine writes only its own row).
	sums := make([][]uint64, *workers)
	for w := range sums {
		sums[w] = make([]uint64, len(depths))
	}

	start := time.Now()
	stretch := bottomUpTree(*depth + 1).check()
	longLived := bottomUpTree(*depth)
	var group sync.WaitGroup
	group.Add(*workers)
	for w := 0; w < *workers; w++ {
		go func(w int) {
			defer group.Done()
			for k, d := range depths {
				var sum uint64
				for i := uint64(w); i < iterations[k]; i += uint64(*workers) {
					sum += bottomUpTree(d).check()
				}
				sums[w][k] = sum
			}
		}(w)
	}
	group.Wait()
	longLivedCheck := longLived.check()
	elapsed := time.Since(start)

	ok := true
	total := stretch + longLivedCheck
	expect := func(what string, got, want uint64) {
		if got != want {
			fmt.Printf("ERROR suite=binary_trees case=%s impl=go reason=\"%s: check %d, expected %d\"\n", name, what, got, want)
			ok = false
		}
	}
	fmt.Printf("stretch tree of depth %d\t check: %d\n", *depth+1, stretch)
	expect("stretch tree", stretch, nodesOfDepth(*depth+1))
	for k, d := range depths {
		var sum uint64
		for w := range sums {
			sum += sums[w][k]
		}
		total += sum
		fmt.Printf("%d\t trees of depth %d\t check: %d\n", iterations[k], d, sum)
		expect(fmt.Sprintf("trees of depth %d", d), sum, iterations[k]*nodesOfDepth(d))
	}
	fmt.Printf("long lived tree of depth %d\t check: %d\n", *depth, longLivedCheck)
	expect("long lived tree", longLivedCheck, nodesOfDepth(*depth))
	if !ok {
		os.Exit(1)
	}

	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	fmt.Printf("NOTE suite=binary_trees case=%s impl=go collections=%d pause_total_ms=%.1f gomaxprocs=%d\n",
		name, stats.NumGC, float64(stats.PauseTotalNs)/1e6, runtime.GOMAXPROCS(0))
	fmt.Printf("RESULT suite=binary_trees case=%s impl=go metric=wall_ms value=%.1f unit=ms\n", name, float64(elapsed.Nanoseconds())/1e6)
	fmt.Printf("RESULT suite=binary_trees case=%s impl=go metric=peak_rss_kib value=%d unit=KiB\n", name, peakRSSKiB())
	fmt.Printf("RESULT suite=binary_trees case=%s impl=go metric=check value=%d unit=count\n", name, total)
}
