#!/usr/bin/python3
"""format_table.py: turns the lines of a saved bench/run_all.sh log into markdown tables.

Reads the MACHINE, NOTE, ERROR and RESULT lines (other lines are ignored) from the files given,
or stdin, and prints to stdout, for docs/benchmarks.md:
  - one line naming the machine, date, repetitions and load;
  - a table of median wall time per workload and allocator, with the ratio to jemalloc;
  - the same for median peak RSS and for median CPU time (user + system, which other load on the
    machine disturbs less than wall time);
  - usgc's malloc-mode targets per workload (wall time below jemalloc's and at most the better of
    mimalloc's and tcmalloc's, peak RSS at most jemalloc's): "met" or "not met", for a person to
    explain.
An allocator absent from the run is shown as "pending (run `make bench`)" for usgc and "not
installed" for the others; a run whose output differed from glibc's, or crashed, as "error".

Usage: /usr/bin/python3 bench/format_table.py build/bench/malloc.log > table.md
"""
import re
import shlex
import sys

IMPLS = ["glibc", "jemalloc", "mimalloc", "tcmalloc", "usgc"]
CASES = ["churn_1t", "churn_2t", "producer_consumer", "realloc_growth", "mt_program",
         "python_churn", "sqlite", "gxx_templates"]


def fields(line):
    """'KIND a=1 b="x y"' -> {'a': '1', 'b': 'x y'}. A line that shlex cannot split (a NOTE's free
    text with an apostrophe: "the claim's high end") is read token by token: key=value and
    key="quoted value" pairs, the rest ignored."""
    out = {}
    try:
        tokens = shlex.split(line)[1:]
    except ValueError:
        tokens = [key + "=" + (quoted if quoted else plain)
                  for key, quoted, plain in re.findall(r'(?:^|\s)(\w+)=(?:"([^"]*)"|(\S*))', line)]
    for token in tokens:
        if "=" in token:
            key, value = token.split("=", 1)
            out[key] = value
    return out


def read(lines):
    machine, results, errors = {}, {}, {}
    for line in lines:
        line = line.strip()
        kind = line.split(" ", 1)[0]
        if kind == "MACHINE":
            f = fields(line)
            if f.get("suite", "malloc") == "malloc":  # bench/run_runtime.sh's logs have their own
                machine = f
        elif kind == "RESULT":
            f = fields(line)
            if f.get("suite", "malloc") != "malloc":
                continue  # gc/safepoint results: bench/plot_results.py plots them
            try:
                results[(f["case"], f["impl"], f["metric"])] = float(f["value"])
            except (KeyError, ValueError):
                print(f"format_table.py: ignoring malformed line: {line}", file=sys.stderr)
        elif kind == "ERROR":
            f = fields(line)
            errors[(f["case"], f["impl"])] = f.get("reason", "")
    return machine, results, errors


# A figure for a table: "-" for none, three significant digits or so, thousands separated
# (shared by format_runtime_table.py and format_gc_table.py).
def num(value, digits=None):
    if value is None:
        return "-"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def fmt_time(seconds):
    return f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"


def fmt_rss(kib):
    return f"{kib / 1024:.1f} MiB"


def cell(case, impl, metric, ratio_metric, fmt, ran_impls, results, errors):
    if impl not in ran_impls:
        return "pending (run `make bench`)" if impl == "usgc" else "not run"
    if (case, impl) in errors:
        reason = errors[(case, impl)]
        kind = "wrong result" if "differs" in reason else "crashed" if "signal" in reason else "failed"
        return f"**error**: {kind}"
    value = results.get((case, impl, metric))
    if value is None:
        return "-"
    ratio = results.get((case, impl, ratio_metric))
    return fmt(value) + (f" ({ratio:.2f}x)" if ratio is not None and impl != "jemalloc" else "")


def table(title, metric, ratio_metric, fmt, cases, ran_impls, results, errors):
    rows = [f"**{title}** (median; in brackets the ratio to jemalloc, lower is better)", "",
            "| workload | " + " | ".join(IMPLS) + " |",
            "| --- | " + " | ".join("---:" for _ in IMPLS) + " |"]
    for case in cases:
        cells = [cell(case, impl, metric, ratio_metric, fmt, ran_impls, results, errors) for impl in IMPLS]
        rows.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def targets(cases, ran_impls, results, errors):
    rows = ["**usgc against the malloc-mode targets**", "",
            "| workload | wall < jemalloc | wall <= min(mimalloc, tcmalloc) | peak RSS <= jemalloc |",
            "| --- | --- | --- | --- |"]
    for case in cases:
        if "usgc" not in ran_impls:
            rows.append(f"| {case} | pending | pending | pending |")
            continue
        if (case, "usgc") in errors:
            rows.append(f"| {case} | not met (error) | not met (error) | not met (error) |")
            continue
        get = lambda impl, metric: results.get((case, impl, metric))
        wall, rss = get("usgc", "wall_time"), get("usgc", "peak_rss")
        je_wall, je_rss = get("jemalloc", "wall_time"), get("jemalloc", "peak_rss")
        peers = [w for w in (get("mimalloc", "wall_time"), get("tcmalloc", "wall_time")) if w is not None]

        def verdict(ok, ours, theirs):
            if ours is None or theirs is None:
                return "n/a"
            return f"{'met' if ok else 'not met'} ({ours / theirs:.2f}x)"

        rows.append(f"| {case} | {verdict(wall is not None and je_wall is not None and wall < je_wall, wall, je_wall)}"
                    f" | {verdict(wall is not None and peers and wall <= min(peers), wall, min(peers) if peers else None)}"
                    f" | {verdict(rss is not None and je_rss is not None and rss <= je_rss, rss, je_rss)} |")
    return "\n".join(rows)


def log_lines(paths):
    """The lines of the files named, or of stdin if none (shared with format_runtime_table.py)."""
    lines = []
    if paths:
        for path in paths:
            with open(path) as f:
                lines.extend(f)
    else:
        lines = sys.stdin.readlines()
    return lines


def read_logs(paths):
    """The (machine, results, errors) of read() over the files named, or stdin if none."""
    return read(log_lines(paths))


def main():
    machine, results, errors = read_logs(sys.argv[1:])
    if not machine:
        sys.exit("format_table.py: no MACHINE line: is this a bench/run_all.sh log?")
    ran_impls = set(machine.get("impls", "").split())
    seen = {case for (case, _, _) in results} | {case for (case, _) in errors}
    cases = [c for c in CASES if c in seen] + sorted(seen - set(CASES))
    print(f"Measured {machine.get('date', '?')} on {machine.get('cpu', '?')} ({machine.get('nproc', '?')} CPUs), "
          f"Linux {machine.get('kernel', '?')}; {machine.get('reps', '?')} repetition(s) per allocator"
          f"{' (quick mode)' if machine.get('quick') == '1' else ''}; load average at start {machine.get('load', '?')}; "
          f"commit {machine.get('commit', '?')}"
          f"{', usgc library built ' + machine['usgc_library_built'] if 'usgc_library_built' in machine else ''}.")
    print()
    print(table("Wall time", "wall_time", "wall_ratio_vs_jemalloc", fmt_time, cases, ran_impls, results, errors))
    print()
    print(table("Peak RSS", "peak_rss", "rss_ratio_vs_jemalloc", fmt_rss, cases, ran_impls, results, errors))
    print()
    if any(metric == "cpu_time" for (_, _, metric) in results):
        print(table("CPU time, user + system", "cpu_time", "cpu_ratio_vs_jemalloc", fmt_time, cases, ran_impls,
                    results, errors))
        print()
    print(targets(cases, ran_impls, results, errors))
    spreads = [(value, case, impl) for (case, impl, metric), value in results.items() if metric == "wall_spread"]
    if spreads:
        value, case, impl = max(spreads)
        median_spread = sorted(v for v, _, _ in spreads)[len(spreads) // 2]
        print(f"\nWall-time spread over the repetitions, (max - min) / median: median {median_spread:.0%}, "
              f"largest {value:.0%} ({case} under {impl}).")
    for (case, impl), reason in sorted(errors.items()):
        print(f"\n- error, {case} under {impl}: {reason}")


if __name__ == "__main__":
    main()
