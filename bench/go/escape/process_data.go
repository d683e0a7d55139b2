// process_data: the Go equivalent of tests/escape/process_data.usir, the seed's processData (see
// arrays.go for the conventions). The .usir's accumulate, a closure body capturing shared, is a
// func literal spawned with `go`.
package main

type Point struct{ x, y int }

type Result struct {
	sum    int
	count  int
	points []*Point
}

//go:noinline
func processData(n int) *Result {
	points := make([]*Point, n) // usir 2:13
	private := &Result{}        // usir 3:14
	shared := &Result{}         // usir 4:13
	for i := 0; i < n; i++ {
		scratch := &Point{} // usir 7:16
		scratch.x = i
		x := scratch.x
		kept := &Point{} // usir 9:13
		kept.y = x
		points[i] = kept
	}
	private.points = points
	private.count = n
	go func(id int) { // go accumulate(n) captures(shared)
		sum := shared.sum
		sum += id
		shared.sum = sum
	}(n)
	return private
}

func main() {
	println(processData(10).count)
}
