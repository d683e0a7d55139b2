// loop_local: the Go equivalent of tests/escape/loop_local.usir (see arrays.go for the
// conventions).
package main

type Vec struct{ x, y int }

func lengthSquared(v *Vec) int {
	x := v.x
	y := v.y
	x *= x
	y *= y
	sum := x + y
	return sum
}

//go:noinline
func sumLengths(n int) int {
	total := 0
	for i := 0; i < n; i++ {
		v := &Vec{} // usir 31:3
		v.x = i
		v.y = 2
		length := lengthSquared(v)
		total += length
	}
	return total
}

func main() {
	println(sumLengths(10))
}
