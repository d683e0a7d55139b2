#!/usr/bin/python3
"""format_runtime_table.py: markdown tables of a saved bench/run_runtime.sh log.

Reads the MACHINE (suite=runtime), NOTE, ERROR and RESULT lines of suite=goroutines and
suite=safepoint from the files given, or stdin, and prints, for docs/benchmarks.md:
  - one line naming the machine, date, repetitions, load and Go version;
  - goroutines: ns per goroutine (spawn) and per round trip (ping-pongs), usgc and Go, and the
    ratio usgc / Go (lower is better for usgc), per case and number of Ps;
  - time to safepoint: p50 / p99 / max per goroutine count and arming mode, with the seed's
    claim and the issue's target beside it, and the handshake;
  - the machine floor (futex wake-up, vCPU availability, mprotect);
  - poll overhead: ns per iteration and overhead per variant and kernel.
A (case, impl) with an ERROR line is shown as "**error**" with the reason below the tables.

Usage: /usr/bin/python3 bench/format_runtime_table.py build/bench/runtime.log > tables.md
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from format_table import fields, log_lines, num  # noqa: E402

SUITES = ("goroutines", "safepoint")


def read(lines):
    machine, results, errors, notes = {}, {}, {}, []
    for line in lines:
        line = line.strip()
        kind = line.split(" ", 1)[0]
        if kind == "MACHINE":
            f = fields(line)
            if f.get("suite") == "runtime":
                machine = f
        elif kind in ("RESULT", "ERROR", "NOTE"):
            f = fields(line)
            if f.get("suite") not in SUITES:
                continue
            if kind == "RESULT":
                try:
                    results[(f["suite"], f["case"], f["impl"], f["metric"])] = float(f["value"])
                except (KeyError, ValueError):
                    print(f"format_runtime_table.py: ignoring malformed line: {line}", file=sys.stderr)
            elif kind == "ERROR":
                errors[(f.get("suite"), f.get("case", "*"), f.get("impl", "?"))] = f.get("reason", "")
            else:
                notes.append(line)
    return machine, results, errors, notes


def goroutine_table(results, errors):
    rows = ["| case | Ps | usgc | Go | usgc / Go |", "| --- | ---: | ---: | ---: | ---: |"]
    cases = []
    for (suite, case, _, _) in results:
        if suite == "goroutines" and case not in cases:
            cases.append(case)
    for (suite, case, _) in errors:
        if suite == "goroutines" and case != "*" and case not in cases:
            cases.append(case)
    order = {"spawn": 0, "pingpong": 1, "pingpong-buffered": 2}

    def split(case):
        base, _, procs = case.partition("-procs")
        return base, procs or "default"

    for case in sorted(cases, key=lambda c: (order.get(split(c)[0], 9), split(c)[1] != "default", split(c)[1])):
        base, procs = split(case)
        metric = "ns_per_goroutine" if base == "spawn" else "ns_per_round_trip"
        unit = "ns/goroutine" if base == "spawn" else "ns/round trip"
        cells = []
        for impl in ("usgc", "go"):
            if ("goroutines", case, impl) in errors:
                cells.append("**error**")
            else:
                value = results.get(("goroutines", case, impl, metric))
                cells.append(f"{num(value)} {unit}" if value is not None else "-")
        ratio = results.get(("goroutines", case, "usgc", "ratio_vs_go"))
        rows.append(f"| {base} | {procs} | {cells[0]} | {cells[1]} | {num(ratio, 2) + 'x' if ratio is not None else '-'} |")
    return "\n".join(rows)


def ttsp_table(results):
    counts = sorted({int(c.split("-")[1]) for (s, c, _, _) in results if s == "safepoint" and c.startswith("ttsp-")
                     and c.split("-")[1].isdigit()})
    if not counts:
        return ""
    rows = ["| goroutines polling | mprotect p50 | p99 | max | swap p50 | p99 | max |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n in counts:
        case = f"ttsp-{n}"
        cells = [num(results.get(("safepoint", case, impl, m))) for impl in ("mprotect", "swap") for m in ("p50", "p99", "max")]
        rows.append(f"| {n:,} | " + " | ".join(cells) + " |")
    hs = [results.get(("safepoint", "handshake", "usgc", m)) for m in ("p50", "p99", "max")]
    if any(v is not None for v in hs):
        rows.append(f"| handshake (one P; swap) | - | - | - | {num(hs[0])} | {num(hs[1])} | {num(hs[2])} |")
    wake_rows = []
    for n in counts:
        cells = [num(results.get(("safepoint", f"ttsp-{n}", impl, "wake_" + m))) for impl in ("mprotect", "swap")
                 for m in ("p50", "p99", "max")]
        if any(c != "-" for c in cells):
            wake_rows.append(f"| {n:,} | " + " | ".join(cells) + " |")
    hw = [results.get(("safepoint", "handshake", "usgc", "wake_" + m)) for m in ("p50", "p99", "max")]
    if any(v is not None for v in hw):
        wake_rows.append(f"| handshake (one P; swap) | - | - | - | {num(hw[0])} | {num(hw[1])} | {num(hw[2])} |")
    low = results.get(("safepoint", f"ttsp-{counts[-1]}", "seed", "claim_low"))
    high = results.get(("safepoint", f"ttsp-{counts[-1]}", "seed", "claim_high"))
    target = results.get(("safepoint", f"ttsp-{counts[-1]}", "target", "p99_target"))
    rows.append("")
    rows.append("All in microseconds: time from the stop request to the last P's acknowledgement.")
    if low is not None:
        rows.append(f"The seed claims {num(low)}-{num(high)} us; the issue's target is p99 < {num(target)} us at "
                    f"{counts[-1]:,} goroutines.")
    if wake_rows:
        rows += ["", "Then the requester's own wake-up (it sleeps in futex_wait after a 5 us spin; not part of "
                 "the time to safepoint), in microseconds:", "",
                 "| goroutines polling | mprotect wake p50 | p99 | max | swap wake p50 | p99 | max |",
                 "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"] + wake_rows
    return "\n".join(rows)


def floor_table(results):
    get = lambda m: results.get(("safepoint", "machine-floor", "threads", m))
    if get("futex_wake_p50") is None and get("heartbeat_gap_p99") is None:
        return ""
    rows = ["| machine floor (plain threads) | p50 | p99 | max |", "| --- | ---: | ---: | ---: |",
            f"| futex wake-up, one way (us) | {num(get('futex_wake_p50'))} | {num(get('futex_wake_p99'))} | - |",
            f"| heartbeat gap: how long the other spinning thread was off its vCPU (us) | {num(get('heartbeat_gap_p50'))} "
            f"| {num(get('heartbeat_gap_p99'))} | {num(get('heartbeat_gap_max'))} |",
            f"| mprotect(PROT_NONE) of a touched page, another thread running (us) | {num(get('mprotect_p50'))} "
            f"| {num(get('mprotect_p99'))} | - |",
            f"| SIGSEGV delivery: a running thread's load from a PROT_NONE page to its handler's entry (us) "
            f"| {num(get('fault_delivery_p50'))} | {num(get('fault_delivery_p99'))} | - |"]
    both = get("both_running_percent")
    if both is not None:
        rows += ["", f"Two spinning threads ran at the same time during {num(both, 0)} % of the reader's samples."]
    return "\n".join(rows)


def poll_table(results):
    kernels = [("poll-overhead-array", "array (1M uint32, 200 passes)"),
               ("poll-overhead-dependent", "dependent chain (100M steps)")]
    impls = ["none", "barrier", "poll", "barrier64", "poll64", "flag"]
    what = {"none": "no poll", "barrier": "empty asm, \"memory\" clobber, every iteration",
            "poll": "usgc_safepoint_poll() every iteration", "barrier64": "empty asm every 64 iterations",
            "poll64": "usgc_safepoint_poll() every 64 iterations", "flag": "usgc_safepoint_poll_flag() every iteration"}
    present = [k for k in kernels if ("safepoint", k[0], "none", "ns_per_iteration") in results]
    if not present:
        return ""
    head = "| variant | " + " | ".join(f"{title}: ns/iter | vs none | vs barrier" for _, title in present) + " |"
    rows = [head, "| --- | " + " | ".join("---: | ---: | ---:" for _ in present) + " |"]
    for impl in impls:
        cells = []
        for case, _ in present:
            ns = results.get(("safepoint", case, impl, "ns_per_iteration"))
            over = results.get(("safepoint", case, impl, "overhead_percent"))
            vs_barrier = results.get(("safepoint", case, impl, "overhead_vs_barrier_percent"))
            cells += [num(ns, 3), f"{over:+.1f} %" if over is not None else "-",
                      f"{vs_barrier:+.1f} %" if vs_barrier is not None else "-"]
        rows.append(f"| {impl} ({what[impl]}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def read_logs(paths):
    return read(log_lines(paths))


def main():
    machine, results, errors, notes = read_logs(sys.argv[1:])
    if not machine:
        sys.exit("format_runtime_table.py: no MACHINE suite=runtime line: is this a bench/run_runtime.sh log?")
    print(f"Measured {machine.get('date', '?')} on {machine.get('cpu', '?')} ({machine.get('nproc', '?')} CPUs), "
          f"Linux {machine.get('kernel', '?')}, clocksource {machine.get('clocksource', '?')}; "
          f"{machine.get('reps', '?')} repetition(s){' (quick mode)' if machine.get('quick') == '1' else ''}; "
          f"load average at start {machine.get('load', '?')}; {machine.get('go', 'no Go')}; commit {machine.get('commit', '?')}.")
    print()
    if any(s == "goroutines" for (s, _, _, _) in results) or any(s == "goroutines" for (s, _, _) in errors):
        print("**Goroutines** (median; lower is better)")
        print()
        print(goroutine_table(results, errors))
        print()
    for title, table in (("Time to safepoint", ttsp_table(results)), ("Machine floor", floor_table(results)),
                         ("Poll overhead", poll_table(results))):
        if table:
            print(f"**{title}**")
            print()
            print(table)
            print()
    for note in notes:
        if "go not installed" in note or "go build failed" in note:
            print(f"- {note}")
    for (suite, case, impl), reason in sorted(errors.items()):
        print(f"- error, suite={suite} case={case} impl={impl}: {reason}")


if __name__ == "__main__":
    main()
