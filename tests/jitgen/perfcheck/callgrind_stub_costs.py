#!/usr/bin/env python3
"""callgrind_stub_costs.py: instructions executed by JIT code, per stub and per function.

Reads a callgrind output file made with --dump-instr=yes (every cost line carries the address of
the instruction it counts) and the ranges usgc-jit-stubs printed in the same process ("function
START END NAME", "stub START END NAME"; hex, absolute: compiled code lives in an anonymous
mapping, which callgrind reports by absolute address). Prints, one fact a line:

  jit_instructions <Ir executed inside every compiled function>
  function <name> <Ir>
  stub <name> executions=<n> completed=<n> instructions=<Ir> per_execution=<x.xx>
       memory_accesses_per_execution=<x.xx>

executions is the count of the stub's first instruction; completed the count of its last (lower
when the fast path left early for its slow path); per_execution = instructions / executions, the
instructions of the fast path per operation, counted as the CPU ran them. With the "insn ADDRESS
STUB MNEMONIC OPERANDS" lines of usgc-jit-stubs, memory_accesses_per_execution counts the executed
instructions that address memory other than through FS (thread-local storage): for the poll, the
instructions that touch the poll page.

The callgrind format (valgrind's docs, "Callgrind Format Specification"): "fn=" starts a
function's cost lines "<position> <line> <Ir>", positions absolute (0x...) or relative to the
previous one (+n, -n, * for the same); the line after "calls=" is the inclusive cost of a call
made at that position, not an instruction's own cost, so it moves the position but is not
counted. Names may be compressed as "(id) name" then "(id)"; only positions matter here.
"""
import bisect
import sys


def parse_ranges(path):
    functions, stubs, memory_instructions = [], [], set()
    with open(path) as ranges:
        for line in ranges:
            if line.startswith("insn "):
                fields = line.split(maxsplit=4)
                operands = fields[4] if len(fields) > 4 else ""
                if "[" in operands and "fs:" not in operands:
                    memory_instructions.add(int(fields[1], 16))
                continue
            fields = line.split(maxsplit=3)
            if len(fields) == 4 and fields[0] in ("function", "stub"):
                entry = (int(fields[1], 16), int(fields[2], 16), fields[3].strip())
                (functions if fields[0] == "function" else stubs).append(entry)
    return functions, stubs, memory_instructions


def instruction_costs(path):
    """Ir per instruction address (self cost only), over every function and thread."""
    costs = {}
    position = 0
    skip_next = False
    with open(path) as profile:
        for line in profile:
            if not line or line[0] not in "0123456789+-*":
                if line.startswith("calls="):
                    skip_next = True
                continue
            fields = line.split()
            token = fields[0]
            if token == "*":
                pass
            elif token[0] == "+":
                position += int(token[1:], 0)
            elif token[0] == "-":
                position -= int(token[1:], 0)
            else:
                position = int(token, 0)
            if skip_next:
                skip_next = False
                continue
            if len(fields) >= 3:
                costs[position] = costs.get(position, 0) + int(fields[2])
    return costs


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: callgrind_stub_costs.py CALLGRIND_OUT RANGES")
    functions, stubs, memory_instructions = parse_ranges(sys.argv[2])
    if not functions:
        sys.exit("callgrind_stub_costs.py: no 'function' ranges in " + sys.argv[2])
    costs = instruction_costs(sys.argv[1])
    addresses = sorted(costs)

    def cost_in(start, end):
        low = bisect.bisect_left(addresses, start)
        high = bisect.bisect_left(addresses, end)
        return sum(costs[a] for a in addresses[low:high]), addresses[low:high]

    total = 0
    for start, end, name in functions:
        cost, _ = cost_in(start, end)
        total += cost
        print(f"function {name} {cost}")
    print(f"jit_instructions {total}")
    per_name = {}
    for start, end, name in stubs:
        cost, inside = cost_in(start, end)
        entry = per_name.setdefault(name, [0, 0, 0, 0])
        if inside:
            entry[0] += costs[inside[0]] if inside[0] == start else 0
            entry[1] += costs[inside[-1]]
        entry[2] += cost
        entry[3] += sum(costs[a] for a in inside if a in memory_instructions)
    for name, (executions, completed, cost, memory) in sorted(per_name.items()):
        per = cost / executions if executions else 0.0
        memory_per = memory / executions if executions else 0.0
        print(f"stub {name} executions={executions} completed={completed} "
              f"instructions={cost} per_execution={per:.2f} "
              f"memory_accesses_per_execution={memory_per:.2f}")


if __name__ == "__main__":
    main()
