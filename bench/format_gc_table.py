#!/usr/bin/python3
"""format_gc_table.py: markdown tables of saved bench/run_gc.sh and bench/run_gc_costs.sh logs.

Reads the MACHINE (suite=gc, suite=gc_costs), NOTE, ERROR and RESULT lines of suite=binary_trees
and suite=gc_costs from the files given (either log or both, in any order), or stdin, and prints,
for docs/benchmarks-report.md:
  - binary-trees: one line naming the machine, then the median wall time and peak RSS per case
    and implementation; usgc's (and usgc-inline's) wall time over Boehm's, Go's, malloc's and
    shared_ptr's, and its peak RSS over Boehm's, each against the issue's target; the seed's
    claim beside the measured shared_ptr/usgc (the script's NOTE lines); the collectors' own
    figures of the last repetition (collections, pauses);
  - costs: one line naming the machine and the TSC rate, then allocation per ownership class (ns,
    TSC cycles and callgrind instructions per object) beside the seed's cycle claims; the write
    barrier against a plain store; explicit collections (`usgc_gc_collect`) p50 / p99 / max per
    live size, private and shared, with the seed's claim and, for the shared stops, the target;
    the pauses as the collector paces itself (suite=gc_pauses, bench/gc_pauses.cpp: what the
    issue's private and shared pause targets are about) with the targets; 2P/1P scaling beside the
    malloc/free floor of the same run.
A (case, impl) with an ERROR line is shown as "**error**", with the reason below the tables.

Usage: /usr/bin/python3 bench/format_gc_table.py build/bench/gc.log build/bench/gc_costs.log > tables.md
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from format_table import fields, log_lines, num  # noqa: E402

MACHINE_SUITES = ("gc", "gc_costs")
SUITES = ("binary_trees", "gc_costs", "gc_pauses")
BT_IMPLS = ["usgc", "usgc-inline", "boehm", "shared_ptr", "malloc", "go"]
BT_USGC = ["usgc", "usgc-inline"]
# (peer, what the issue asks of usgc's wall time over the peer's: a bound and whether it is strict)
BT_TARGETS = [("boehm", 0.5, False), ("go", 1.0, True), ("malloc", 1.0, True), ("shared_ptr", None, False)]
ALLOC_CASES = [  # case, impl, what
    ("alloc-stack", "usgc", "stack (`STACK_LOCAL`, freed by the frame's pop)"),
    ("alloc-private", "usgc", "private (`GOROUTINE_PRIVATE`)"),
    ("alloc-private-inline", "usgc", "private, inline fast path (`usgc_alloc_private_fast`)"),
    ("alloc-shared", "usgc", "shared (`GOROUTINE_SHARED`)"),
    ("alloc-global", "usgc", "global (`GLOBAL_SHARED`)"),
    ("alloc-malloc", "glibc", "glibc `malloc(16)` + `free` (the peer)"),
    ("alloc-malloc-batch64", "glibc", "glibc: 64 `malloc`s, then their 64 `free`s"),
]
BARRIER_CASES = [  # case, impl, what
    ("barrier-plain", "plain", "plain store (the floor)"),
    ("barrier-same", "usgc", "`usgc_write`, target and value private (fast path)"),
    ("barrier-cross", "usgc", "`usgc_write`, shared target and value (slow path)"),
]
PAUSE_CASE = re.compile(r"pause-(private|shared)-live(\d+)mib")
PACED_TARGET_MS = 1.0  # the issue: private pause p99 < 1 ms at every live size; shared minor < 1 ms
PACED_IMPLS = [  # impl, what
    ("usgc", "default"),
    ("usgc-onepause", "`USGC_GC_INCREMENTAL=0`: old cycles in one pause"),
    ("usgc-stw", "`USGC_GC_CONCURRENT=0`: the whole mark in the stop"),
    ("usgc-sleep", "`USGC_SAFEPOINT_WAIT=sleep`"),
    ("usgc-trampoline", "`USGC_SAFEPOINT_ACK=trampoline`"),
    ("usgc-noclaim", "`USGC_SAFEPOINT_CLAIM=0`"),
]


def read(lines):
    """(machines {suite: fields}, results {(suite, case, impl, metric): (value, unit)},
    errors {(suite, case, impl): reason}, notes [fields with 'text': the line after its fields])"""
    machines, results, errors, notes = {}, {}, {}, []
    for line in lines:
        line = line.strip()
        kind = line.split(" ", 1)[0]
        if kind not in ("MACHINE", "RESULT", "ERROR", "NOTE"):
            continue
        f = fields(line)
        if kind == "MACHINE":
            if f.get("suite") in MACHINE_SUITES:
                machines[f["suite"]] = f
        elif f.get("suite") not in SUITES + MACHINE_SUITES and not (kind == "NOTE" and "suite" not in f):
            continue  # (a NOTE without a suite: "NOTE go not installed: ...")
        elif kind == "RESULT":
            try:
                results[(f["suite"], f["case"], f["impl"], f["metric"])] = (float(f["value"]), f.get("unit", ""))
            except (KeyError, ValueError):
                print(f"format_gc_table.py: ignoring malformed line: {line}", file=sys.stderr)
        elif kind == "ERROR":
            errors[(f["suite"], f.get("case", "*"), f.get("impl", "?"))] = f.get("reason", "")
        else:
            # the free text of a NOTE: what follows its leading key=value fields
            words = line.split(" ")[1:]
            while words and re.fullmatch(r"(suite|case|impl)=\S+", words[0]):
                words.pop(0)
            f["text"] = " ".join(words)
            notes.append(f)
    return machines, results, errors, notes


def machine_line(what, m):
    extra = []
    if m.get("boehm"):
        extra.append(f"Boehm GC {m['boehm']}")
    if m.get("go"):
        extra.append(m["go"])
    if m.get("clocksource"):
        extra.append(f"clocksource {m['clocksource']}")
    return (f"{what} measured {m.get('date', '?')} on {m.get('cpu', '?')} ({m.get('nproc', '?')} CPUs), "
            f"Linux {m.get('kernel', '?')}; {m.get('reps', '?')} repetition(s)"
            f"{' (quick mode)' if m.get('quick') == '1' else ''}; load average at start {m.get('load', '?')}"
            f"{'; ' + ', '.join(extra) if extra else ''}; commit {m.get('commit', '?')}.")


# ---- binary-trees ---------------------------------------------------------------------------------

def bt_cases(results, errors):
    seen = []
    for key in list(results) + list(errors):
        if key[0] == "binary_trees" and key[1] != "*" and key[1] not in seen:
            seen.append(key[1])

    def order(case):
        m = re.fullmatch(r"depth(\d+)-g(\d+)", case)
        return (0, int(m.group(1)), int(m.group(2)), case) if m else (1, 0, 0, case)

    return sorted(seen, key=order)


def bt_impls(machine, results, errors):
    ran = machine.get("impls", "").split()
    present = {k[2] for k in list(results) + list(errors) if k[0] == "binary_trees"}
    return [i for i in BT_IMPLS if i in ran or i in present] + sorted(present - set(BT_IMPLS) - {"*", "?"})


def bt_value_table(cases, impls, metric, fmt, results, errors):
    rows = ["| case | " + " | ".join(impls) + " |", "| --- | " + " | ".join("---:" for _ in impls) + " |"]
    for case in cases:
        cells = []
        for impl in impls:
            if ("binary_trees", case, impl) in errors:
                cells.append("**error**")
            else:
                value = results.get(("binary_trees", case, impl, metric))
                cells.append(fmt(value[0]) if value else "-")
        rows.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def verdict(ratio, bound, strict):
    if ratio is None:
        return "-"
    if bound is None:
        return f"{ratio:.2f}x"
    ok = ratio < bound if strict else ratio <= bound
    return f"{ratio:.2f}x {'met' if ok else '**not met**'}"


def bt_ratio_table(cases, results):
    def bound(b, strict):
        return "" if b is None else f" (target {'<' if strict else '<='} {b:g})"

    rows = ["| case | impl | " + " | ".join(f"/ {peer}{bound(b, s)}" for peer, b, s in BT_TARGETS)
            + " | peak RSS / boehm (target <= 1) |",
            "| --- | --- | " + " | ".join("---:" for _ in BT_TARGETS) + " | ---: |"]
    for case in cases:
        for impl in BT_USGC:
            get = lambda metric: (results.get(("binary_trees", case, impl, metric)) or (None,))[0]
            cells = [verdict(get(f"ratio_vs_{peer}"), b, s) for peer, b, s in BT_TARGETS]
            cells.append(verdict(get("peak_rss_ratio_vs_boehm"), 1.0, False))
            if all(c == "-" for c in cells):
                continue
            rows.append(f"| {case} | {impl} | " + " | ".join(cells) + " |")
    return "\n".join(rows) if len(rows) > 2 else ""


def bt_collector_table(cases, notes):
    """The collectors' own figures of the last repetition: the programs' NOTE lines with impl=."""
    by_key = {(n.get("case"), n.get("impl")): n for n in notes if n.get("suite") == "binary_trees" and "impl" in n}
    rows = ["| case | impl | collections | pause total | pause max | other |", "| --- | --- | ---: | ---: | ---: | --- |"]
    for case in cases:
        for impl in BT_IMPLS:
            n = by_key.get((case, impl))
            if n is None:
                continue
            if impl.startswith("usgc"):
                collections = f"{n.get('private_collections', '?')} private, {n.get('shared_collections', '?')} shared"
                total = sum(float(n.get(k, 0)) for k in ("private_pause_total_ms", "shared_pause_total_ms"))
                worst = max(float(n.get(k, 0)) for k in ("private_pause_max_us", "shared_pause_max_us")) / 1000
                other = f"objects published {n.get('objects_published', '?')}, barrier slow paths {n.get('barrier_slow_paths', '?')}"
                rows.append(f"| {case} | {impl} | {collections} | {num(total)} ms | {num(worst)} ms | {other} |")
            else:
                total = f"{num(float(n['pause_total_ms']))} ms" if "pause_total_ms" in n else "-"
                other = ", ".join(f"heap {int(v) / 2**20:.1f} MiB" if k == "heap_bytes" else f"{k} {v}"
                                  for k, v in n.items()
                                  if k not in ("suite", "case", "impl", "collections", "pause_total_ms", "text"))
                rows.append(f"| {case} | {impl} | {n.get('collections', '?')} | {total} | - | {other} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def binary_trees_section(machine, results, errors, notes):
    out = []
    if machine:
        out += [machine_line("Binary-trees", machine), ""]
    cases = bt_cases(results, errors)
    if not cases:
        return out + ["No binary-trees results in this log.", ""]
    impls = bt_impls(machine, results, errors)
    out += ["**Binary-trees wall time** (median; from the stretch tree to the last check; lower is better)", "",
            bt_value_table(cases, impls, "wall_ms", lambda v: f"{v / 1000:.2f} s", results, errors), "",
            "**Binary-trees peak RSS** (median VmHWM of each process; lower is better)", "",
            bt_value_table(cases, impls, "peak_rss_kib", lambda v: f"{v / 1024:.1f} MiB", results, errors), ""]
    ratios = bt_ratio_table(cases, results)
    if ratios:
        out += ["**usgc's wall time over each peer's**, and its peak RSS over Boehm's (below 1 is better for "
                "usgc), against the issue's targets", "", ratios, ""]
    claims = [n for n in notes if n.get("suite") == "binary_trees" and "impl" not in n and "seed claims" in n["text"]]
    for n in claims:
        out.append(f"- {n.get('case', '?')}: {n['text']}")
    if claims:
        out.append("")
    collectors = bt_collector_table(cases, notes)
    if collectors:
        out += ["**The collectors' own figures** (last repetition; usgc's pause figures are per collection, "
                "Go's `pause_total_ms` its stop-the-world time)", "", collectors, ""]
    return out


# ---- costs ----------------------------------------------------------------------------------------

def claim(results, case, unit_digits=0):
    low = results.get(("gc_costs", case, "seed", "claim_low"))
    high = results.get(("gc_costs", case, "seed", "claim_high"))
    if low is None and high is None:
        return "-", None
    return f"{num(low[0] if low else None, unit_digits)}-{num(high[0] if high else None, unit_digits)}", \
        (high[0] if high else None)


def cost_cell(results, errors, case, impl, metric, digits=None):
    if ("gc_costs", case, impl) in errors:
        return "**error**"
    value = results.get(("gc_costs", case, impl, metric))
    return num(value[0], digits) if value else "-"


def alloc_table(results, errors):
    rows = ["| class | ns/object | TSC cycles/object | seed claims (cycles) | measured / claim's high end "
            "| / malloc | instructions/object | instructions, collector off |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case, impl, what in ALLOC_CASES:
        if not any(k[:3] == ("gc_costs", case, impl) for k in results) and ("gc_costs", case, impl) not in errors:
            continue
        claimed, high = claim(results, case)
        cycles = results.get(("gc_costs", case, impl, "tsc_cycles_per_object"))
        over = f"{cycles[0] / high:.1f}x" if cycles and high else "-"
        ratio = results.get(("gc_costs", case, impl, "ratio_vs_malloc"))
        rows.append(f"| {what} | {cost_cell(results, errors, case, impl, 'ns_per_object', 1)} "
                    f"| {cost_cell(results, errors, case, impl, 'tsc_cycles_per_object', 1)} | {claimed} | {over} "
                    f"| {f'{ratio[0]:.2f}x' if ratio else '-'} "
                    f"| {cost_cell(results, errors, case, impl, 'instructions_per_object', 1)} "
                    f"| {cost_cell(results, errors, case, impl, 'instructions_per_object_gc_off', 1)} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def barrier_table(results, errors):
    rows = ["| store | ns/store | TSC cycles/store | seed claims (cycles) | measured / claim's high end "
            "| / plain store | instructions/store | instructions beyond a plain store |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case, impl, what in BARRIER_CASES:
        if not any(k[:3] == ("gc_costs", case, impl) for k in results) and ("gc_costs", case, impl) not in errors:
            continue
        claimed, high = claim(results, case)
        cycles = results.get(("gc_costs", case, impl, "tsc_cycles_per_store"))
        over = f"{cycles[0] / high:.1f}x" if cycles and high else "-"
        ratio = results.get(("gc_costs", case, impl, "ratio_vs_plain_store"))
        rows.append(f"| {what} | {cost_cell(results, errors, case, impl, 'ns_per_store', 2)} "
                    f"| {cost_cell(results, errors, case, impl, 'tsc_cycles_per_store', 1)} | {claimed} | {over} "
                    f"| {f'{ratio[0]:.2f}x' if ratio else '-'} "
                    f"| {cost_cell(results, errors, case, impl, 'instructions_per_store', 1)} "
                    f"| {cost_cell(results, errors, case, impl, 'instructions_beyond_plain_store', 1)} |")
    get = lambda case, metric: results.get(("gc_costs", case, "usgc", metric))
    publish = get("barrier-publish", "ns_per_publish")
    if publish:
        cycles = get("barrier-publish", "tsc_cycles_per_publish")
        instr = get("barrier-publish", "instructions_per_publish")
        rows.append(f"| publishing store (a private object made shared) | {num(publish[0], 1)} "
                    f"| {num(cycles[0] if cycles else None, 1)} | - | - | - | {num(instr[0] if instr else None, 1)} | - |")
    text = "\n".join(rows) if len(rows) > 2 else ""
    both = get("barrier-publish", "ns_per_alloc_and_publishing_store")
    alone = get("barrier-publish", "ns_per_alloc_only")
    if text and both and alone:
        both_i = get("barrier-publish", "instructions_per_alloc_and_publishing_store")
        alone_i = results.get(("gc_costs", "barrier-publish-alloc-only", "usgc", "instructions_per_object"))
        text += (f"\n\nThe publishing store is the difference between a private allocation followed by a store "
                 f"that publishes it ({num(both[0], 1)} ns, {num(both_i[0] if both_i else None, 1)} instructions) "
                 f"and the allocation alone ({num(alone[0], 1)} ns, {num(alone_i[0] if alone_i else None, 1)} instructions).")
    return text


def pause_table(results, errors):
    cases = sorted({k[1] for k in results if k[0] == "gc_costs" and PAUSE_CASE.fullmatch(k[1])}
                   | {k[1] for k in errors if k[0] == "gc_costs" and PAUSE_CASE.fullmatch(k[1])},
                   key=lambda c: (PAUSE_CASE.fullmatch(c).group(1), int(PAUSE_CASE.fullmatch(c).group(2))))
    if not cases:
        return ""
    rows = ["| heap | live | p50 | p99 | max | seed claims | target | time to safepoint p50 / p99 / max "
            "| `usgc_gc_collect` call p99 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for case in cases:
        kind, live = PAUSE_CASE.fullmatch(case).groups()
        if ("gc_costs", case, "usgc") in errors:
            rows.append(f"| {kind} | {live} MiB | **error** | **error** | **error** | - | - | - | - |")
            continue
        get = lambda metric, impl="usgc": (results.get(("gc_costs", case, impl, metric)) or (None, ""))
        p50, p99, worst = get("p50"), get("p99"), get("max")
        unit = p99[1] or p50[1] or "ms"
        claimed, _ = claim(results, case, 0)
        target = get("p99_target", "target")
        goal = "-"
        if kind == "private":
            goal = "- (a full collection on request: see the paced pauses)"
        elif target[0] is not None and p99[0] is not None:
            goal = f"p99 < {num(target[0], 0)} {target[1]}: {'met' if p99[0] < target[0] else '**not met**'}"
        ttsp = [get(f"ttsp_{m}") for m in ("p50", "p99", "max")]
        ttsp_cell = (" / ".join(num(v[0]) for v in ttsp) + f" {ttsp[1][1]}") if ttsp[1][0] is not None else "-"
        call = get("collect_call_p99")
        rows.append(f"| {kind} | {live} MiB | {num(p50[0])} | {num(p99[0])} | {num(worst[0])} "
                    f"| {claimed + ' ' + unit if claimed != '-' else '-'} | {goal} | {ttsp_cell} "
                    f"| {num(call[0]) + ' ' + call[1] if call[0] is not None else '-'} |")
        minor = [get(f"minor_{m}") for m in ("p50", "p99", "max")]
        if minor[1][0] is not None:  # the same heap collected by minor (generational) collections
            minor_goal = "-"
            if target[0] is not None:
                minor_goal = f"p99 < {num(target[0], 0)} {target[1]}: {'met' if minor[1][0] < target[0] else '**not met**'}"
            rows.append(f"| {kind}, minor | {live} MiB | {num(minor[0][0])} | {num(minor[1][0])} | {num(minor[2][0])} "
                        f"| {claimed + ' ' + unit if claimed != '-' else '-'} | {minor_goal} | - | - |")
    return "\n".join(rows) + f"\n\np50, p99 and max in {unit}; the targets are the issue's."


def paced_case_order(case):
    m = re.fullmatch(r"(private-live|shared-with-private-live|shared-parked|shared-live)(\d+)(mib|k)", case)
    kinds = ["private-live", "shared-with-private-live", "shared-parked", "shared-live"]
    return (kinds.index(m.group(1)), int(m.group(2))) if m else (len(kinds), case)


def paced_pause_table(results, errors):
    """The pauses of bench/gc_pauses.cpp: private ones (each loop iteration's paused time) and
    shared stops (the stopped world, minor and full), per case and configuration."""
    keys = {(k[1], k[2]) for k in results if k[0] == "gc_pauses"}
    keys |= {(k[1], k[2]) for k in errors if k[0] == "gc_pauses"}
    if not keys:
        return ""
    impl_rank = {impl: i for i, (impl, _) in enumerate(PACED_IMPLS)}
    rows = ["| case | configuration | kind | p50 | p99 | max | target |",
            "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    for case, impl in sorted(keys, key=lambda k: (paced_case_order(k[0]), impl_rank.get(k[1], 99), k[1])):
        what = dict(PACED_IMPLS).get(impl, impl)
        if ("gc_pauses", case, impl) in errors:
            rows.append(f"| {case} | {what} | - | **error** | **error** | **error** | - |")
            continue
        get = lambda metric: (results.get(("gc_pauses", case, impl, metric)) or (None, ""))[0]
        for kind, prefix in (("private", "pause_"), ("shared minor", "minor_pause_"), ("shared full", "full_pause_")):
            p50, p99, worst = get(prefix + "p50"), get(prefix + "p99"), get(prefix + "max")
            if p99 is None:
                continue
            goal = "-"
            if impl == "usgc" and kind in ("private", "shared minor"):
                goal = f"p99 < {num(PACED_TARGET_MS, 0)} ms: {'met' if p99 < PACED_TARGET_MS else '**not met**'}"
            rows.append(f"| {case} | {what} | {kind} | {num(p50)} | {num(p99)} | {num(worst)} | {goal} |")
    return "\n".join(rows) + ("\n\np50, p99 and max in ms (one run each); a private sample is one loop "
                              "iteration's paused time, a shared one a stopped world. The targets are the "
                              "issue's, for the default configuration; the others are the designs before, "
                              "run beside it.")


def scaling_table(results):
    get = lambda case, impl, metric: (results.get(("gc_costs", case, impl, metric)) or (None,))[0]
    one, two = get("scaling-procs1", "usgc", "mobjects_per_s"), get("scaling-procs2", "usgc", "mobjects_per_s")
    f1, f2 = (get("scaling-floor-threads1", "glibc", "mobjects_per_s"),
              get("scaling-floor-threads2", "glibc", "mobjects_per_s"))
    if one is None and f1 is None:
        return ""
    ratio, target = get("scaling", "usgc", "ratio_2p_vs_1p"), get("scaling", "target", "ratio_target")
    floor = get("scaling-floor", "glibc", "ratio_2_threads_vs_1")
    goal = "-"
    if ratio is not None and target is not None:
        goal = f">= {target:g}x: {'met' if ratio >= target else '**not met**'}"
    rows = ["| churn (8 goroutines) | 1 P / 1 thread (Mobj/s) | 2 P / 2 threads (Mobj/s) | 2 / 1 | target |",
            "| --- | ---: | ---: | ---: | --- |",
            f"| usgc, private allocation and collection | {num(one)} | {num(two)} "
            f"| {f'{ratio:.2f}x' if ratio is not None else '-'} | {goal} |",
            f"| the machine's floor: glibc malloc/free | {num(f1)} | {num(f2)} "
            f"| {f'{floor:.2f}x' if floor is not None else '-'} | - |"]
    vs_malloc = get("scaling-procs1", "usgc", "ratio_vs_malloc_1thread")
    if vs_malloc is not None:
        rows += ["", f"usgc at 1 P against malloc/free in 1 thread: {vs_malloc:.2f}x the objects per second. "
                 "Read 2 P beside the floor: when malloc/free does not scale either, the machine's second vCPU "
                 "was not there to use."]
    return "\n".join(rows)


def costs_section(machine, results, errors, notes):
    out = []
    if machine:
        out += [machine_line("Collector costs", machine)]
        tsc = results.get(("gc_costs", "tsc", "machine", "tsc_ghz"))
        if tsc:
            out[-1] += (f" Cycle figures are TSC reference cycles at {tsc[0]:.3f} GHz (`rdtsc` against "
                        "CLOCK_MONOTONIC), not core cycles; instruction counts are callgrind's.")
        out.append("")
    for title, table in (("Allocation per ownership class** (median per object, a private collection's cost "
                          "included where one ran; instructions: callgrind's counts, when bench/gc_instructions.sh ran)", alloc_table(results, errors)),
                         ("Write barrier** (per store)", barrier_table(results, errors)),
                         ("Explicit collections** (`usgc_gc_collect`) per live heap size (private: one "
                          "goroutine's heap, a full collection; shared: the world stopped)",
                          pause_table(results, errors)),
                         ("Pauses as the collector paces itself** (`bench/gc_pauses`: budget-triggered "
                          "private collections and requested shared ones, beside live data)",
                          paced_pause_table(results, errors)),
                         ("Scaling**, 1 P against 2 P (medians)", scaling_table(results))):
        if table:
            out += [f"**{title}", "", table, ""]
    if len(out) <= 2:
        out += ["No collector-cost results in this log.", ""]
    return out


def main():
    machines, results, errors, notes = read(log_lines(sys.argv[1:]))
    if not machines:
        sys.exit("format_gc_table.py: no MACHINE suite=gc or suite=gc_costs line: "
                 "is this a bench/run_gc.sh or bench/run_gc_costs.sh log?")
    out = []
    if "gc" in machines or any(k[0] == "binary_trees" for k in results):
        out += ["### Binary-trees", ""] + binary_trees_section(machines.get("gc", {}), results, errors, notes)
    if "gc_costs" in machines or any(k[0] == "gc_costs" for k in results):
        out += ["### Collector costs", ""] + costs_section(machines.get("gc_costs", {}), results, errors, notes)
    for n in notes:
        if "go not installed" in n["text"] or "go build failed" in n["text"] or "valgrind" in n["text"] and "skipp" in n["text"]:
            out.append(f"- {n['text']}")
    for (suite, case, impl), reason in sorted(errors.items()):
        out.append(f"- error, suite={suite} case={case} impl={impl}: {reason}")
    print("\n".join(out).rstrip())


if __name__ == "__main__":
    main()
