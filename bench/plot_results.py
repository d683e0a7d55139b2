#!/usr/bin/python3
"""plot_results.py: PNG plots of a saved bench/run_all.sh log, drawn with gnuplot.

Reads the log with bench/format_table.py's parser and writes into OUTDIR (default docs/plots):
  - wall_ratio.png, rss_ratio.png, cpu_ratio.png: per workload, one bar per allocator, the median
    wall time, peak RSS and CPU time divided by jemalloc's in the same run (log scale, bars grow
    from the 1.0 line: up is worse than jemalloc, down is better);
  - gc.png, safepoint.png, only if the log has RESULT lines of suite=gc or suite=safepoint
    (metric=p50/p99/max): those figures against the goroutine count (a goroutines=N field, or the
    last number in the case name), one line per metric and allocator.
Prints to stdout the markdown that shows them (image paths relative to REPORT_DIR), stating
"no GC/safepoint results yet" when the log has none. gnuplot's data and scripts go to a
temporary directory; the pngcairo terminal is used when gnuplot has it, else png.

Usage: /usr/bin/python3 bench/plot_results.py LOG [OUTDIR [REPORT_DIR]]
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
          "usgc": "#d62728"}
RATIO_PLOTS = [  # file, metric, what
    ("wall_ratio.png", "wall_ratio_vs_jemalloc", "Wall time"),
    ("rss_ratio.png", "rss_ratio_vs_jemalloc", "Peak RSS"),
    ("cpu_ratio.png", "cpu_ratio_vs_jemalloc", "CPU time (user + system)"),
]
PAUSE_SUITES = [  # suite, file, what
    ("gc", "gc.png", "GC pause"),
    ("safepoint", "safepoint.png", "Time to safepoint"),
]
ALL_PNGS = [p[0] for p in RATIO_PLOTS] + [p[1] for p in PAUSE_SUITES]


def terminal():
    probe = subprocess.run([GNUPLOT, "-e", "set terminal"], capture_output=True, text=True)
    has_cairo = "pngcairo" in probe.stdout + probe.stderr
    return ("pngcairo size 1000,480 font 'Sans,10'" if has_cairo else "png size 1000,480 font 'Sans,8'"), has_cairo


def subtitle(machine, medians=True):
    date = machine.get("date", "?").replace("T", " ").replace("Z", " UTC")
    quick = ", quick mode" if machine.get("quick") == "1" else ""
    return (f"{date}; {machine.get('cpu', '?')}, {machine.get('nproc', '?')} CPUs, Linux "
            f"{machine.get('kernel', '?')}; {machine.get('reps', '?')} run(s) per allocator{', medians' if medians else ''}{quick}; "
            f"commit {machine.get('commit', '?')}")


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


def pause_results(paths):
    """{suite: [(fields, value)]} of the RESULT lines of suite gc or safepoint."""
    out = defaultdict(list)
    lines = []
    for path in paths:
        with open(path) as f:
            lines.extend(f)
    for line in lines:
        if not line.startswith("RESULT"):
            continue
        f = fields(line.strip())
        if f.get("suite") in dict((s, 1) for s, _, _ in PAUSE_SUITES):
            try:
                out[f["suite"]].append((f, float(f["value"])))
            except (KeyError, ValueError):
                print(f"plot_results.py: ignoring malformed line: {line.strip()}", file=sys.stderr)
    return out


def pause_plot(tmp, outdir, png, suite, what, rows, machine, term):
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
    values = [v for _, v in rows if v > 0] or [1.0]
    against = "against goroutine count" if numeric else "per case (no goroutine count in the results)"
    xsetup = ("set xlabel 'goroutines (log scale)'\nset logscale x" if numeric else
              "set xlabel 'case'\nset xtics (" + ", ".join(f'"{c}" {i}' for i, c in enumerate(categories))
              + ") noenhanced\nset xrange [-0.5:" + str(len(categories) - 0.5) + "]")
    script = f"""set terminal {term}
set output '{os.path.join(outdir, png)}'
set title "{{/:Bold {what}: p50, p99 and max {against}}}\\n{{/*0.8 {gp_str(subtitle(machine, False))[1:-1]}}}" enhanced
set ylabel "{what} ({unit}, log scale)"
set logscale y
set yrange [{min(values) / 1.5:g}:{max(values) * 1.5:g}]
{xsetup}
set grid lc rgb '#dddddd'
set key outside right top box Left reverse
plot {', '.join(plots)}
"""
    return run_gnuplot(tmp, png, script)


def run_gnuplot(tmp, png, script):
    path = os.path.join(tmp, png.replace(".png", ".gp"))
    with open(path, "w") as f:
        f.write(script)
    done = subprocess.run([GNUPLOT, path], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"plot_results.py: gnuplot failed on {png} (status {done.returncode}):\n{done.stderr}", file=sys.stderr)
        return False
    return True


def main():
    if not 2 <= len(sys.argv) <= 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    log = sys.argv[1]
    outdir = sys.argv[2] if len(sys.argv) > 2 else "docs/plots"
    report_dir = sys.argv[3] if len(sys.argv) > 3 else "docs"
    if not os.access(GNUPLOT, os.X_OK):
        sys.exit("plot_results.py: /usr/bin/gnuplot not found (apt-get install gnuplot-nox, or bash tools/install-deps.sh)")
    machine, results, errors = read_logs([log])
    if not machine:
        sys.exit("plot_results.py: no MACHINE line: is this a bench/run_all.sh log?")
    os.makedirs(outdir, exist_ok=True)
    for png in ALL_PNGS:  # no stale plot of an earlier run may survive
        if os.path.exists(os.path.join(outdir, png)):
            os.remove(os.path.join(outdir, png))
    term, _ = terminal()
    rel = os.path.relpath(outdir, report_dir)
    out, failed = ["## Plots", ""], False
    tmp = tempfile.mkdtemp(prefix="usgc-plots-")
    try:
        for png, metric, what in RATIO_PLOTS:
            if not any(m == metric for (_, _, m) in results):
                out += [f"No {what.lower()} plot: the run has no ratios to jemalloc (was jemalloc run?).", ""]
                continue
            if ratio_plot(tmp, outdir, png, metric, what, machine, results, errors, term):
                out += [f"![{what} relative to jemalloc]({rel}/{png})", ""]
            else:
                failed = True
        pauses = pause_results([log])
        if not pauses:
            out += ["### GC pauses and time to safepoint", "",
                    "No GC/safepoint results yet: the log has no `suite=gc` or `suite=safepoint` RESULT lines.", ""]
        else:
            out += ["### GC pauses and time to safepoint", ""]
            for suite, png, what in PAUSE_SUITES:
                if suite not in pauses:
                    out += [f"No `suite={suite}` results in this run.", ""]
                elif pause_plot(tmp, outdir, png, suite, what, pauses[suite], machine, term):
                    out += [f"![{what} against goroutine count]({rel}/{png})", ""]
                else:
                    failed = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(out).rstrip())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
