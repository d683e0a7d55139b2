#!/usr/bin/python3
"""plot_results.py: PNG plots of a saved bench/run_all.sh log, drawn with gnuplot.

Reads the log with bench/format_table.py's parser and writes into OUTDIR (default docs/plots):
  - wall_ratio.png, rss_ratio.png, cpu_ratio.png: per workload, one bar per allocator, the median
    wall time, peak RSS and CPU time divided by jemalloc's in the same run (log scale, bars grow
    from the 1.0 line: up is worse than jemalloc, down is better);
  - gc.png, safepoint.png, only if the logs have RESULT lines of suite=gc or suite=safepoint
    (metric=p50/p99/max): those figures against the goroutine count (a goroutines=N field, or the
    last number in the case name), one line per metric and impl (for time to safepoint: the
    arming modes mprotect and swap, cases ttsp-N only), with the seed's claim (metric=claim_low
    / claim_high) and the target (metric=p99_target) drawn as horizontal lines;
  - goroutines.png, only if the logs have suite=goroutines results: ns per goroutine (spawn) and
    per round trip (ping-pongs) per case, one bar per impl (usgc, go; log scale).
Prints to stdout the markdown that shows them (image paths relative to REPORT_DIR), stating
"no GC/safepoint results yet" when the logs have none. gnuplot's data and scripts go to a
temporary directory; the pngcairo terminal is used when gnuplot has it, else png.
--runtime-log names a bench/run_runtime.sh log (suite=goroutines and suite=safepoint) read
beside LOG; LOG may also be such a log alone.

Usage: /usr/bin/python3 bench/plot_results.py LOG [OUTDIR [REPORT_DIR]] [--runtime-log RUNTIME_LOG]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from format_table import CASES, IMPLS, fields, read_logs  # noqa: E402

GNUPLOT = "/usr/bin/gnuplot"
COLORS = {"glibc": "#7f7f7f", "jemalloc": "#000000", "mimalloc": "#1f77b4", "tcmalloc": "#2ca02c",
          "usgc": "#d62728", "go": "#17becf", "mprotect": "#d62728", "swap": "#1f77b4"}
PAUSE_METRICS = ("p50", "p99", "max")
REFERENCE_METRICS = {"claim_low": "seed's claim, low", "claim_high": "seed's claim, high", "p99_target": "target: p99"}
RATIO_PLOTS = [  # file, metric, what
    ("wall_ratio.png", "wall_ratio_vs_jemalloc", "Wall time"),
    ("rss_ratio.png", "rss_ratio_vs_jemalloc", "Peak RSS"),
    ("cpu_ratio.png", "cpu_ratio_vs_jemalloc", "CPU time (user + system)"),
]
PAUSE_SUITES = [  # suite, file, what
    ("gc", "gc.png", "GC pause"),
    ("safepoint", "safepoint.png", "Time to safepoint"),
]
GOROUTINES_PNG = "goroutines.png"
ALL_PNGS = [p[0] for p in RATIO_PLOTS] + [p[1] for p in PAUSE_SUITES] + [GOROUTINES_PNG]


def terminal():
    probe = subprocess.run([GNUPLOT, "-e", "set terminal"], capture_output=True, text=True)
    has_cairo = "pngcairo" in probe.stdout + probe.stderr
    return ("pngcairo size 1000,480 font 'Sans,10'" if has_cairo else "png size 1000,480 font 'Sans,8'"), has_cairo


def subtitle(machine, medians=True, per="allocator"):
    """per=None: no repetition count (the time-to-safepoint figures are percentiles of one run)."""
    date = machine.get("date", "?").replace("T", " ").replace("Z", " UTC")
    quick = ", quick mode" if machine.get("quick") == "1" else ""
    runs = f"; {machine.get('reps', '?')} run(s) per {per}{', medians' if medians else ''}" if per else ""
    return (f"{date}; {machine.get('cpu', '?')}, {machine.get('nproc', '?')} CPUs, Linux "
            f"{machine.get('kernel', '?')}{runs}{quick}; commit {machine.get('commit', '?')}")


def gp_str(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("_", "\\_") + '"'


def ratio_plot(tmp, outdir, png, metric, what, machine, results, errors, term):
    cases = [c for c in CASES if any((c, i, metric) in results for i in IMPLS)]
    cases += sorted({c for (c, _, m) in results if m == metric} - set(cases))
    impls = [i for i in IMPLS if i != "jemalloc" and any((c, i, metric) in results for c in cases)]
    if not cases or not impls:
        return False
    width = 0.8 / len(impls)
    values = [results[k] for k in results if k[2] == metric and k[0] in cases and k[1] in impls]
    lo = min(min(values), 1.0) / 1.4
    hi = max(max(values), 1.0) * 1.4
    plots, up, down = [], [], []  # up/down: the value at each bar's tip, away from the 1.0 line
    for j, impl in enumerate(impls):
        path = os.path.join(tmp, f"{metric}.{impl}.dat")
        with open(path, "w") as f:
            f.write("# x ratio xlow xhigh ylow yhigh\n")
            for i, case in enumerate(cases):
                x = i + (j - (len(impls) - 1) / 2) * width
                v = results.get((case, impl, metric))
                if v is not None and v > 0:
                    f.write(f"{x:.4f} {v:.4f} {x - width * 0.45:.4f} {x + width * 0.45:.4f} "
                            f"{min(v, 1.0):.4f} {max(v, 1.0):.4f}\n")
                    (up if v >= 1 else down).append(f"{x:.4f} {v * 1.015 if v >= 1 else v / 1.015:.4f} {v:.2f}\n")
        plots.append(f"'{path}' using 1:2:3:4:5:6 with boxxyerror fillstyle solid 0.85 noborder "
                     f"lc rgb '{COLORS.get(impl, '#9467bd')}' title '{impl}'")
    # (gnuplot 5.4.4 crashes on a labels plot whose points are all undefined: no NaN filtering)
    for rows, justify in ((up, "left"), (down, "right")):
        if rows:
            path = os.path.join(tmp, f"{metric}.labels.{justify}.dat")
            with open(path, "w") as f:
                f.writelines(rows)
            plots.append(f"'{path}' using 1:2:3 with labels {justify} rotate by 90 font ',7' "
                         f"tc rgb '#333333' notitle")
    plots.append("NaN with lines lw 1.5 lc rgb '#000000' title 'jemalloc = 1.0'")
    err_labels = []
    for i, case in enumerate(cases):
        for j, impl in enumerate(impls):
            if (case, impl) in errors:
                x = i + (j - (len(impls) - 1) / 2) * width
                err_labels.append(f"set label 'error' at {x:.4f},1.02 left rotate by 90 font ',8' tc rgb 'red'")
    xtics = ", ".join(f'"{c}" {i}' for i, c in enumerate(cases))
    ytics = ", ".join(str(t) for t in (0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 10)
                      if lo <= t <= hi)
    script = f"""set terminal {term}
set output '{os.path.join(outdir, png)}'
set title "{{/:Bold {what} relative to jemalloc, per workload (lower is better)}}\\n{{/*0.8 {gp_str(subtitle(machine))[1:-1]}}}" enhanced
set ylabel "{what} / jemalloc's (log scale)"
set logscale y
set yrange [{lo:.3f}:{hi:.3f}]
set ytics ({ytics})
set xrange [-0.6:{len(cases) - 0.4}]
set xtics ({xtics}) noenhanced rotate by 20 right
set grid ytics lc rgb '#dddddd'
set key outside right top title 'allocator' box
{chr(10).join(err_labels)}
set arrow from graph 0, first 1.0 to graph 1, first 1.0 nohead lw 1.5 lc rgb '#000000' front
plot {', '.join(plots)}
"""
    return run_gnuplot(tmp, png, script)


def goroutines_of(f):
    if "goroutines" in f:
        try:
            return float(f["goroutines"])
        except ValueError:
            return None
    numbers = re.findall(r"\d+", f.get("case", ""))
    return float(numbers[-1]) if numbers else None


def read_lines(paths):
    lines = []
    for path in paths:
        with open(path) as f:
            lines.extend(f)
    return lines


def runtime_machine(paths):
    """The fields of the last MACHINE line of suite=runtime (bench/run_runtime.sh), or {}."""
    machine = {}
    for line in read_lines(paths):
        if line.startswith("MACHINE"):
            f = fields(line.strip())
            if f.get("suite") == "runtime":
                machine = f
    return machine


def pause_results(paths):
    """{suite: [(fields, value)]} of the RESULT lines of suite gc or safepoint that plot against a
    goroutine count: metric p50/p99/max, and the reference lines (claims, targets). For
    safepoint only the time-to-safepoint cases (ttsp-N): the handshake, the machine floor and the
    poll overhead are tables, not curves."""
    out = defaultdict(list)
    for line in read_lines(paths):
        if not line.startswith("RESULT"):
            continue
        f = fields(line.strip())
        if f.get("suite") not in dict((s, 1) for s, _, _ in PAUSE_SUITES):
            continue
        if f.get("metric") not in PAUSE_METRICS and f.get("metric") not in REFERENCE_METRICS:
            continue
        if f["suite"] == "safepoint" and not re.fullmatch(r"ttsp-\d+", f.get("case", "")):
            continue
        try:
            out[f["suite"]].append((f, float(f["value"])))
        except (KeyError, ValueError):
            print(f"plot_results.py: ignoring malformed line: {line.strip()}", file=sys.stderr)
    return out


def pause_plot(tmp, outdir, png, suite, what, rows, machine, term):
    references = [(f, v) for f, v in rows if f.get("metric") in REFERENCE_METRICS]
    rows = [(f, v) for f, v in rows if f.get("metric") in PAUSE_METRICS]
    if not rows:
        return False
    units = {f.get("unit", "") for f, _ in rows}
    unit = units.pop() if len(units) == 1 else "mixed units"
    numeric = all(goroutines_of(f) is not None for f, _ in rows)
    categories = sorted({f.get("case", "?") for f, _ in rows})
    series = defaultdict(list)  # (impl, metric) -> [(x, value)]
    for f, v in rows:
        x = goroutines_of(f) if numeric else categories.index(f.get("case", "?"))
        series[(f.get("impl", "usgc"), f.get("metric", "?"))].append((x, v))
    order = {"p50": 0, "p99": 1, "max": 2}
    plots = []
    for n, key in enumerate(sorted(series, key=lambda k: (k[0], order.get(k[1], 9), k[1]))):
        impl, metric = key
        path = os.path.join(tmp, f"{suite}.{n}.dat")
        with open(path, "w") as f:
            for x, v in sorted(series[key]):
                f.write(f"{x} {v}\n")
        dash = {"p50": 1, "p99": 2, "max": 3}.get(metric, 4)
        point = {"p50": 7, "p99": 5, "max": 9}.get(metric, 13)
        style = f"linespoints lw 2 pt {point}" if numeric else f"points pt {point} ps 1.5"
        plots.append(f"'{path}' using 1:2 with {style} dt {dash} "
                     f"lc rgb '{COLORS.get(impl, '#9467bd')}' title '{impl} {metric}'")
    arrows = []
    for f, v in references:
        label = f"{REFERENCE_METRICS[f['metric']]} {v:g} {f.get('unit', '')}"
        arrows.append(f"set arrow from graph 0, first {v} to graph 1, first {v} nohead dt 4 lw 1.5 lc rgb '#555555' back")
        arrows.append(f"set label {gp_str(label)} at graph 0.01, first {v * 1.18} left font ',8' tc rgb '#555555'")
    values = [v for _, v in rows + references if v > 0] or [1.0]
    against = "against goroutine count" if numeric else "per case (no goroutine count in the results)"
    per_what = None if machine.get("suite") == "runtime" else "allocator"
    xsetup = ("set xlabel 'goroutines (log scale)'\nset logscale x" if numeric else
              "set xlabel 'case'\nset xtics (" + ", ".join(f'"{c}" {i}' for i, c in enumerate(categories))
              + ") noenhanced\nset xrange [-0.5:" + str(len(categories) - 0.5) + "]")
    script = f"""set terminal {term}
set output '{os.path.join(outdir, png)}'
set title "{{/:Bold {what}: p50, p99 and max {against}}}\\n{{/*0.8 {gp_str(subtitle(machine, False, per_what))[1:-1]}}}" enhanced
set ylabel "{what} ({unit}, log scale)"
set logscale y
set yrange [{min(values) / 1.5:g}:{max(values) * 1.5:g}]
{xsetup}
set grid lc rgb '#dddddd'
set key outside right top box Left reverse
{chr(10).join(arrows)}
plot {', '.join(plots)}
"""
    return run_gnuplot(tmp, png, script)


def goroutine_results(paths):
    """{(case, impl): (value, metric)} of the suite=goroutines RESULT lines with an ns metric, and
    {(case, impl): None} for their ERROR lines (drawn as "error")."""
    out = {}
    for line in read_lines(paths):
        if line.startswith("ERROR"):
            f = fields(line.strip())
            if f.get("suite") == "goroutines" and "case" in f and "impl" in f:
                out.setdefault((f["case"], f["impl"]), None)
            continue
        if not line.startswith("RESULT"):
            continue
        f = fields(line.strip())
        if f.get("suite") != "goroutines" or f.get("metric") not in ("ns_per_goroutine", "ns_per_round_trip"):
            continue
        try:
            out[(f["case"], f["impl"])] = (float(f["value"]), f["metric"])
        except (KeyError, ValueError):
            print(f"plot_results.py: ignoring malformed line: {line.strip()}", file=sys.stderr)
    return out


def goroutines_plot(tmp, outdir, results, machine, term):
    """Bars per case (spawn, ping-pongs, at each number of Ps), one per impl, log scale."""
    order = {"spawn": 0, "pingpong": 1, "pingpong-buffered": 2}

    def key(case):
        base, _, procs = case.partition("-procs")
        return (order.get(base, 9), base, procs != "", procs)

    cases = sorted({c for c, _ in results}, key=key)
    impls = [i for i in ("usgc", "go") if any((c, i) in results for c in cases)]
    if not cases or not impls:
        return False
    width = 0.8 / len(impls)
    values = [r[0] for r in results.values() if r is not None and r[0] > 0] or [1.0]
    bottom = min(values) / 3
    plots, labels, error_labels = [], [], []
    for j, impl in enumerate(impls):
        path = os.path.join(tmp, f"goroutines.{impl}.dat")
        with open(path, "w") as f:
            for i, case in enumerate(cases):
                x = i + (j - (len(impls) - 1) / 2) * width
                if (case, impl) in results and results[(case, impl)] is None:
                    error_labels.append(f"set label 'error' at {x:.4f},{bottom * 1.1:g} left rotate by 90 font ',9' tc rgb 'red'")
                elif (case, impl) in results:
                    v = results[(case, impl)][0]
                    f.write(f"{x:.4f} {v:.4f} {x - width * 0.45:.4f} {x + width * 0.45:.4f} {bottom:g} {v:.4f}\n")
                    labels.append(f"{x:.4f} {v * 1.06:.4f} {v:.0f}\n")
        plots.append(f"'{path}' using 1:2:3:4:5:6 with boxxyerror fillstyle solid 0.85 noborder "
                     f"lc rgb '{COLORS.get(impl, '#9467bd')}' title '{impl}'")
    if labels:  # (gnuplot 5.4.4 crashes on a labels plot without points)
        label_path = os.path.join(tmp, "goroutines.labels.dat")
        with open(label_path, "w") as f:
            f.writelines(labels)
        plots.append(f"'{label_path}' using 1:2:3 with labels left rotate by 90 font ',7' tc rgb '#333333' notitle")

    def name(case):
        base, _, procs = case.partition("-procs")
        return f"{base}, {procs + ' P' if procs else 'default Ps'}"

    xtics = ", ".join(f'"{name(c)}" {i}' for i, c in enumerate(cases))
    script = f"""set terminal {term}
set output '{os.path.join(outdir, GOROUTINES_PNG)}'
set title "{{/:Bold Goroutines: spawn-to-finish and channel ping-pong, usgc and Go (lower is better)}}\\n{{/*0.8 {gp_str(subtitle(machine, True, "runtime"))[1:-1]}}}" enhanced
set ylabel "ns per goroutine (spawn) or per round trip (log scale)"
set logscale y
set yrange [{bottom:g}:{max(values) * 4:g}]
set xrange [-0.6:{len(cases) - 0.4}]
set xtics ({xtics}) noenhanced rotate by 20 right
set grid ytics lc rgb '#dddddd'
set key outside right top title 'runtime' box
{chr(10).join(error_labels)}
plot {', '.join(plots)}
"""
    return run_gnuplot(tmp, GOROUTINES_PNG, script)


def run_gnuplot(tmp, png, script):
    path = os.path.join(tmp, png.replace(".png", ".gp"))
    with open(path, "w") as f:
        f.write(script)
    done = subprocess.run([GNUPLOT, path], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"plot_results.py: gnuplot failed on {png} (status {done.returncode}):\n{done.stderr}", file=sys.stderr)
        return False
    return True


def parse_arguments(argv):
    positional, runtime_logs = [], []
    i = 0
    while i < len(argv):
        if argv[i] == "--runtime-log" and i + 1 < len(argv):
            runtime_logs.append(argv[i + 1])
            i += 2
        elif argv[i].startswith("--"):
            sys.exit(__doc__.strip().splitlines()[-1])
        else:
            positional.append(argv[i])
            i += 1
    if not 1 <= len(positional) <= 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    return positional, runtime_logs


def main():
    positional, runtime_logs = parse_arguments(sys.argv[1:])
    log = positional[0]
    outdir = positional[1] if len(positional) > 1 else "docs/plots"
    report_dir = positional[2] if len(positional) > 2 else "docs"
    if not os.access(GNUPLOT, os.X_OK):
        sys.exit("plot_results.py: /usr/bin/gnuplot not found (apt-get install gnuplot-nox, or bash tools/install-deps.sh)")
    all_logs = [log] + runtime_logs
    machine, results, errors = read_logs([log])
    rt_machine = runtime_machine(all_logs)
    if not machine and not rt_machine:
        sys.exit("plot_results.py: no MACHINE line: is this a bench/run_all.sh or bench/run_runtime.sh log?")
    os.makedirs(outdir, exist_ok=True)
    for png in ALL_PNGS:  # no stale plot of an earlier run may survive
        if os.path.exists(os.path.join(outdir, png)):
            os.remove(os.path.join(outdir, png))
    term, _ = terminal()
    rel = os.path.relpath(outdir, report_dir)
    out, failed = ["## Plots", ""], False
    tmp = tempfile.mkdtemp(prefix="usgc-plots-")
    try:
        if machine:
            for png, metric, what in RATIO_PLOTS:
                if not any(m == metric for (_, _, m) in results):
                    out += [f"No {what.lower()} plot: the run has no ratios to jemalloc (was jemalloc run?).", ""]
                    continue
                if ratio_plot(tmp, outdir, png, metric, what, machine, results, errors, term):
                    out += [f"![{what} relative to jemalloc]({rel}/{png})", ""]
                else:
                    failed = True
        pause_machine = rt_machine or machine
        pauses = pause_results(all_logs)
        if not pauses:
            out += ["### GC pauses and time to safepoint", "",
                    "No GC/safepoint results yet: the log has no `suite=gc` or `suite=safepoint` RESULT lines.", ""]
        else:
            out += ["### GC pauses and time to safepoint", ""]
            for suite, png, what in PAUSE_SUITES:
                if suite not in pauses:
                    out += [f"No `suite={suite}` results in this run.", ""]
                elif pause_plot(tmp, outdir, png, suite, what, pauses[suite], pause_machine, term):
                    out += [f"![{what} against goroutine count]({rel}/{png})", ""]
                else:
                    failed = True
        goroutines = goroutine_results(all_logs)
        if goroutines:
            out += ["### Goroutines", ""]
            if goroutines_plot(tmp, outdir, goroutines, rt_machine or machine, term):
                out += [f"![Goroutine spawn and channel ping-pong, usgc and Go]({rel}/{GOROUTINES_PNG})", ""]
            else:
                failed = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(out).rstrip())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
