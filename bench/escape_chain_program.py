#!/usr/bin/env python3
"""bench/escape_chain_program.py — writes a call chain of N functions, as .usir or as Go, for the
escape analysis' scaling (bench/escape_scaling.sh) and its test (tests/jitgen/usgc_escape_bounds.test.sh).

  escape_chain_program.py N usir|go

f0 .. f(N-1): each allocates a node, links its parameter into it, and calls the next with it;
the last spawns a goroutine with its parameter, so every node is shared, and the analysis must
carry that fact back through all N summaries. main calls f0 and returns its result (N).
"""
import sys


def usir(n):
    out = ["type Node { next: *Node, value: int }", "",
           "func sink(%o: *Node) {", "entry:", "  ret", "}", ""]
    for i in range(n):
        out += [f"func f{i}(%p: *Node) -> int {{", "  var %n: *Node", "  var %v: int", "entry:",
                "  %n = new Node", "  store %n.next, %p"]
        if i + 1 < n:
            out += [f"  %v = call f{i + 1}(%n)", "  %v = add %v, 1"]
        else:
            out += ["  go sink(%n)", "  %v = 1"]
        out += ["  ret %v", "}", ""]
    out += ["func main() -> int {", "  var %v: int", "  var %p: *Node", "entry:", "  %p = null",
            "  %v = call f0(%p)", "  ret %v", "}"]
    return "\n".join(out) + "\n"


def go(n):
    out = ["package main", "", "type Node struct {", "\tnext  *Node", "\tvalue int", "}", "",
           "//go:noinline", "func sink(o *Node) {}", ""]
    for i in range(n):
        out += ["//go:noinline", f"func f{i}(p *Node) int {{", "\tn := &Node{next: p}"]
        if i + 1 < n:
            out += [f"\treturn f{i + 1}(n) + 1"]
        else:
            out += ["\tgo sink(n)", "\treturn 1"]
        out += ["}", ""]
    out += ["func main() {", "\tprintln(f0(nil))", "}"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    count, kind = int(sys.argv[1]), sys.argv[2]
    sys.stdout.write(usir(count) if kind == "usir" else go(count))
