#!/usr/bin/python3
"""plot_results.py: PNG plots of saved benchmark logs, drawn with gnuplot.

Reads the logs with bench/format_table.py's parser and writes into OUTDIR (default docs/plots):
  - wall_ratio.png, rss_ratio.png, cpu_ratio.png, from a bench/run_all.sh log: per workload, one
    bar per allocator, the median wall time, peak RSS and CPU time divided by jemalloc's in the
    same run (log scale, bars grow from the 1.0 line: up is worse than jemalloc, down is better);
  - safepoint.png, only if the logs have suite=safepoint RESULT lines of cases ttsp-N
    (metric=p50/p99/max): time to safepoint against the goroutine count (a goroutines=N field, or
    the number in the case name), one line per metric and arming mode (mprotect, swap), the
    seed's claim (metric=claim_low..claim_high) a band and the target (metric=p99_target) a line;
  - goroutines.png, only if the logs have suite=goroutines results: ns per goroutine (spawn) and
    per round trip (ping-pongs) per case, one bar per impl (usgc, go; log scale);
  - gc-binary-trees.png, only if the logs have suite=binary_trees results (bench/run_gc.sh): the
    median wall time per case, one bar per implementation (log scale);
  - gc-pauses.png, only if the logs have suite=gc_pauses results of cases private-liveNmib and
    shared-liveNmib (bench/gc_pauses.cpp, run by bench/run_gc_costs.sh; the default configuration,
    impl=usgc): the pauses as the collector paces itself, p50/p99/max against the live heap size,
    private, shared (full) and shared minor, with the seed's claims and the targets of each
    (metric=claim_low, claim_high, p99_target of gc_costs' pause-private|shared-liveNmib cases;
    log-log). gc_costs' own pause cases time explicit full collections: tables, not curves.
Prints to stdout the markdown that shows them (image paths relative to REPORT_DIR), saying which
results the logs lack. gnuplot's data and scripts go to a temporary directory; the pngcairo
terminal is used when gnuplot has it, else png. --runtime-log names a bench/run_runtime.sh log
(suite=goroutines and suite=safepoint), --gc-log a bench/run_gc.sh or bench/run_gc_costs.sh log
(each may be given more than once), read beside LOG; LOG may also be such a log alone.

Usage: /usr/bin/python3 bench/plot_results.py LOG [OUTDIR [REPORT_DIR]] [--runtime-log RUNTIME_LOG] [--gc-log GC_LOG]...
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from typing import Callable, NamedTuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from format_table import CASES, IMPLS, fields, read_logs  # noqa: E402

GNUPLOT = "/usr/bin/gnuplot"
COLORS = {"glibc": "#7f7f7f", "jemalloc": "#000000", "mimalloc": "#1f77b4", "tcmalloc": "#2ca02c",
          "usgc": "#d62728", "go": "#17becf", "mprotect": "#d62728", "swap": "#1f77b4",
          "usgc-inline": "#ff7f0e", "boehm": "#2ca02c", "shared_ptr": "#9467bd", "malloc": "#7f7f7f",
          "private": "#d62728", "shared": "#1f77b4", "shared minor": "#2ca02c"}
PAUSE_METRICS = ("p50", "p99", "max")
REFERENCE_METRICS = ("claim_low", "claim_high", "p99_target")
GC_REFERENCE_CASE = re.compile(r"pause-(private|shared)-live\d+mib")
RATIO_PLOTS = [  # file, metric, what
    ("wall_ratio.png", "wall_ratio_vs_jemalloc", "Wall time"),
    ("rss_ratio.png", "rss_ratio_vs_jemalloc", "Peak RSS"),
    ("cpu_ratio.png", "cpu_ratio_vs_jemalloc", "CPU time (user + system)"),
]


class PauseSpec(NamedTuple):
    """A distribution plot: p50/p99/max of the RESULT lines of `suite` whose case matches `case`,
    against x_of(fields, match), one curve per series_of(fields, match) and metric. A reference
    line (claim, target) whose series_of names a curve spans the x values of the cases that carry
    it; any other spans the whole graph."""
    suite: str
    case: "re.Pattern"
    png: str
    what: str
    against: str
    xlabel: str
    x_of: Callable
    series_of: Callable


PAUSE_PLOTS = {
    "safepoint": PauseSpec("safepoint", re.compile(r"ttsp-(\d+)"), "safepoint.png", "Time to safepoint",
                           "against goroutine count", "goroutines (log scale)",
                           lambda f, m: goroutines_of(f), lambda f, m: f.get("impl", "usgc")),
    "gc": PauseSpec("gc_pauses", re.compile(r"(private|shared)-live(\d+)mib"), "gc-pauses.png", "GC pause",
                    "against live heap size, private and shared", "live heap (MiB, log scale)",
                    lambda f, m: float(m.group(2)), lambda f, m: m.group(1)),
}
GOROUTINES_PNG = "goroutines.png"
BINARY_TREES_PNG = "gc-binary-trees.png"
BT_IMPLS = ["usgc", "usgc-inline", "boehm", "shared_ptr", "malloc", "go"]
ALL_PNGS = ([p[0] for p in RATIO_PLOTS] + [p.png for p in PAUSE_PLOTS.values()]
            + [GOROUTINES_PNG, BINARY_TREES_PNG])


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


def suite_machine(paths, suite):
    """The fields of the last MACHINE line of `suite` (runtime: bench/run_runtime.sh; gc:
    bench/run_gc.sh; gc_costs: bench/run_gc_costs.sh), or {}."""
    machine = {}
    for line in read_lines(paths):
        if line.startswith("MACHINE"):
            f = fields(line.strip())
            if f.get("suite") == suite:
                machine = f
    return machine


def pause_results(paths):
    """{plot name: [(fields, value, x, series)]} of the RESULT lines that PAUSE_PLOTS draw: metric
    p50/p99/max and the reference lines (claims, targets) of the cases each one matches (for
    safepoint only ttsp-N: the handshake, the machine floor and the poll overhead are tables, not
    curves; for the GC gc_pauses' *-liveNmib cases with gc_costs' references)."""
    out = defaultdict(list)
    for line in read_lines(paths):
        if not line.startswith("RESULT"):
            continue
        f = fields(line.strip())
        if f.get("suite") == "gc_costs" and GC_REFERENCE_CASE.fullmatch(f.get("case", "")):
            # the claims and targets of the GC plot: gc_costs states them per kind and live size
            f = dict(f, suite="gc_pauses", case=f["case"][len("pause-"):])
            if f.get("metric") not in REFERENCE_METRICS:
                continue
        elif f.get("suite") == "gc_pauses":
            if f.get("impl") != "usgc":
                continue  # the designs before, run beside the default: tables only
            f = dict(f, metric=f.get("metric", "").replace("full_pause_", "").replace("pause_", ""))
        minor = f.get("metric", "").startswith("minor_")  # the same heap, minor collections
        if minor:
            f = dict(f, metric=f["metric"][len("minor_"):])
        if f.get("metric") not in PAUSE_METRICS + (() if minor else REFERENCE_METRICS):
            continue
        for name, spec in PAUSE_PLOTS.items():
            match = spec.case.fullmatch(f.get("case", "")) if f.get("suite") == spec.suite else None
            if not match:
                continue
            try:
                x = spec.x_of(f, match)
                if x is None:
                    raise ValueError("no x")
                series = spec.series_of(f, match)
                out[name].append((f, float(f["value"]), x, f"{series} minor" if minor else series))
            except (KeyError, ValueError):
                print(f"plot_results.py: ignoring malformed line: {line.strip()}", file=sys.stderr)
    return out


def pause_plot(tmp, outdir, spec, rows, machine, term):
    """Log-log curves of p50/p99/max per series; the seed's claim (claim_low..claim_high) as a
    band and the target (p99_target) as a dashed line, per series where the reference belongs to
    one (see PauseSpec)."""
    references = [r for r in rows if r[0].get("metric") in REFERENCE_METRICS]
    rows = [r for r in rows if r[0].get("metric") in PAUSE_METRICS]
    if not rows:
        return False
    units = {f.get("unit", "") for f, _, _, _ in rows}
    unit = units.pop() if len(units) == 1 else "mixed units"
    series = defaultdict(list)  # (series, metric) -> [(x, value)]
    for f, v, x, name in rows:
        series[(name, f.get("metric", "?"))].append((x, v))
    names = {name for name, _ in series}
    order = {"p50": 0, "p99": 1, "max": 2}
    plots = []
    for n, key in enumerate(sorted(series, key=lambda k: (k[0], order.get(k[1], 9), k[1]))):
        name, metric = key
        path = os.path.join(tmp, f"{spec.suite}.{n}.dat")
        with open(path, "w") as f:
            for x, v in sorted(series[key]):
                f.write(f"{x} {v}\n")
        dash = {"p50": 1, "p99": 2, "max": 3}.get(metric, 4)
        point = {"p50": 7, "p99": 5, "max": 9}.get(metric, 13)
        plots.append(f"'{path}' using 1:2 with linespoints lw 2 pt {point} dt {dash} "
                     f"lc rgb '{COLORS.get(name, '#9467bd')}' title '{name} {metric}'")
    xs = sorted({x for _, _, x, _ in rows})
    # references per (series or None: the whole graph): {metric: value}, and the x values carrying them
    refs, ref_xs, ref_units = defaultdict(dict), defaultdict(set), {}
    for f, v, x, name in references:
        group = name if name in names else None
        refs[group][f["metric"]] = v
        ref_xs[group].add(x)
        ref_units[group] = f.get("unit", "")
    objects = []
    for group, metrics in sorted(refs.items(), key=lambda g: str(g[0])):
        color = COLORS.get(group, "#555555") if group else "#555555"
        if group:
            x_from, x_to = f"first {min(ref_xs[group]) / 1.25:g}", f"first {max(ref_xs[group]) * 1.25:g}"
            x_label = x_from
        else:
            x_from, x_to, x_label = "graph 0", "graph 1", "graph 0.01"
        prefix = f"{group}: " if group else ""
        u = ref_units[group]
        low, high = metrics.get("claim_low"), metrics.get("claim_high")
        if low is not None and high is not None:
            objects.append(f"set object rect from {x_from}, first {low:g} to {x_to}, first {high:g} "
                           f"fc rgb '{color}' fillstyle solid 0.12 noborder behind")
            objects.append(f"set label {gp_str(f'{prefix}seed claims {low:g}-{high:g} {u}')} at {x_label}, "
                           f"first {high / 1.12:g} left font ',8' tc rgb '{color}' front")
        else:
            for metric, v in ((m, metrics.get(m)) for m in ("claim_low", "claim_high")):
                if v is not None:
                    objects.append(f"set arrow from {x_from}, first {v:g} to {x_to}, first {v:g} nohead dt 4 "
                                   f"lw 1.5 lc rgb '{color}' back")
                    objects.append(f"set label {gp_str(f'{prefix}seed claims {v:g} {u}')} at {x_label}, "
                                   f"first {v * 1.12:g} left font ',8' tc rgb '{color}'")
        target = metrics.get("p99_target")
        if target is not None:
            objects.append(f"set arrow from {x_from}, first {target:g} to {x_to}, first {target:g} nohead dt 2 "
                           f"lw 2 lc rgb '{color}' front")
            objects.append(f"set label {gp_str(f'{prefix}target p99 < {target:g} {u}')} at {x_label}, "
                           f"first {target / 1.25:g} left font ',8' tc rgb '{color}' front")
    values = [v for _, v, _, _ in rows + references if v > 0] or [1.0]
    per_what = None if machine.get("suite") in ("runtime", "gc_costs") else "allocator"
    script = f"""set terminal {term}
set output '{os.path.join(outdir, spec.png)}'
set title "{{/:Bold {spec.what}: p50, p99 and max {spec.against}}}\\n{{/*0.8 {gp_str(subtitle(machine, False, per_what))[1:-1]}}}" enhanced
set ylabel "{spec.what} ({unit}, log scale)"
set logscale y
set yrange [{min(values) / 1.5:g}:{max(values) * 1.5:g}]
set xlabel '{spec.xlabel}'
set logscale x
set xrange [{xs[0] / 1.6:g}:{xs[-1] * 1.6:g}]
set xtics ({", ".join(f"{x:g}" for x in xs)})
set grid lc rgb '#dddddd'
set key outside right top box Left reverse
{chr(10).join(objects)}
plot {', '.join(plots)}
"""
    return run_gnuplot(tmp, spec.png, script)


def bar_results(paths, suite, metrics):
    """{(case, impl): (value, metric)} of the RESULT lines of `suite` with a metric in `metrics`, and
    {(case, impl): None} for the suite's ERROR lines (drawn as "error")."""
    out = {}
    for line in read_lines(paths):
        if line.startswith("ERROR"):
            f = fields(line.strip())
            if f.get("suite") == suite and "case" in f and "impl" in f:
                out.setdefault((f["case"], f["impl"]), None)
            continue
        if not line.startswith("RESULT"):
            continue
        f = fields(line.strip())
        if f.get("suite") != suite or f.get("metric") not in metrics:
            continue
        try:
            out[(f["case"], f["impl"])] = (float(f["value"]), f["metric"])
        except (KeyError, ValueError):
            print(f"plot_results.py: ignoring malformed line: {line.strip()}", file=sys.stderr)
    return out


def bar_plot(tmp, outdir, png, cases, impls, results, term, title, ylabel, key_title, case_name, label):
    """Bars per case, one per impl, growing from below the smallest value (log scale); each bar's
    value printed above it by label(value); an ERROR is an "error" label in the bar's place."""
    impls = [i for i in impls if any((c, i) in results for c in cases)]
    if not cases or not impls:
        return False
    width = 0.8 / len(impls)
    values = [r[0] for r in results.values() if r is not None and r[0] > 0] or [1.0]
    bottom = min(values) / 3
    plots, labels, error_labels = [], [], []
    for j, impl in enumerate(impls):
        path = os.path.join(tmp, f"{png}.{impl}.dat")
        with open(path, "w") as f:
            for i, case in enumerate(cases):
                x = i + (j - (len(impls) - 1) / 2) * width
                if (case, impl) in results and results[(case, impl)] is None:
                    error_labels.append(f"set label 'error' at {x:.4f},{bottom * 1.1:g} left rotate by 90 font ',9' tc rgb 'red'")
                elif (case, impl) in results:
                    v = results[(case, impl)][0]
                    f.write(f"{x:.4f} {v:.4f} {x - width * 0.45:.4f} {x + width * 0.45:.4f} {bottom:g} {v:.4f}\n")
                    labels.append(f"{x:.4f} {v * 1.06:.4f} \"{label(v)}\"\n")
        plots.append(f"'{path}' using 1:2:3:4:5:6 with boxxyerror fillstyle solid 0.85 noborder "
                     f"lc rgb '{COLORS.get(impl, '#9467bd')}' title '{impl}' noenhanced")
    if labels:  # (gnuplot 5.4.4 crashes on a labels plot without points)
        label_path = os.path.join(tmp, f"{png}.labels.dat")
        with open(label_path, "w") as f:
            f.writelines(labels)
        plots.append(f"'{label_path}' using 1:2:3 with labels left rotate by 90 font ',7' tc rgb '#333333' notitle")
    xtics = ", ".join(f'"{case_name(c)}" {i}' for i, c in enumerate(cases))
    script = f"""set terminal {term}
set output '{os.path.join(outdir, png)}'
set title "{title}" enhanced
set ylabel "{ylabel}"
set logscale y
set yrange [{bottom:g}:{max(values) * 4:g}]
set xrange [-0.6:{len(cases) - 0.4}]
set xtics ({xtics}) noenhanced rotate by 20 right
set grid ytics lc rgb '#dddddd'
set key outside right top title '{key_title}' box
{chr(10).join(error_labels)}
plot {', '.join(plots)}
"""
    return run_gnuplot(tmp, png, script)


def goroutines_plot(tmp, outdir, results, machine, term):
    """Bars per case (spawn, ping-pongs, at each number of Ps), one per impl, log scale."""
    order = {"spawn": 0, "pingpong": 1, "pingpong-buffered": 2}

    def key(case):
        base, _, procs = case.partition("-procs")
        return (order.get(base, 9), base, procs != "", procs)

    def name(case):
        base, _, procs = case.partition("-procs")
        return f"{base}, {procs + ' P' if procs else 'default Ps'}"

    cases = sorted({c for c, _ in results}, key=key)
    title = (f"{{/:Bold Goroutines: spawn-to-finish and channel ping-pong, usgc and Go (lower is better)}}\\n"
             f"{{/*0.8 {gp_str(subtitle(machine, True, 'runtime'))[1:-1]}}}")
    return bar_plot(tmp, outdir, GOROUTINES_PNG, cases, ["usgc", "go"], results, term, title,
                    "ns per goroutine (spawn) or per round trip (log scale)", "runtime", name, lambda v: f"{v:.0f}")


def binary_trees_plot(tmp, outdir, results, machine, term):
    """Bars per case (depth, goroutines), one per implementation: median wall time in seconds."""
    def key(case):
        m = re.fullmatch(r"depth(\d+)-g(\d+)", case)
        return (0, int(m.group(1)), int(m.group(2))) if m else (1, 0, 0)

    def name(case):
        m = re.fullmatch(r"depth(\d+)-g(\d+)", case)
        return f"depth {m.group(1)}, {m.group(2)} goroutine{'s' if m.group(2) != '1' else ''}" if m else case

    cases = sorted({c for c, _ in results}, key=lambda c: (key(c), c))
    seconds = {k: (v[0] / 1000, v[1]) if v is not None else None for k, v in results.items()}
    impls = BT_IMPLS + sorted({i for _, i in results} - set(BT_IMPLS))
    title = (f"{{/:Bold Binary-trees: wall time per implementation (median; lower is better)}}\\n"
             f"{{/*0.8 {gp_str(subtitle(machine, True, 'implementation'))[1:-1]}}}")
    return bar_plot(tmp, outdir, BINARY_TREES_PNG, cases, impls, seconds, term, title,
                    "wall time (s, log scale)", "implementation", name, lambda v: f"{v:.2f}")


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
    positional, extra_logs = [], []
    i = 0
    while i < len(argv):
        if argv[i] in ("--runtime-log", "--gc-log") and i + 1 < len(argv):
            extra_logs.append(argv[i + 1])
            i += 2
        elif argv[i].startswith("--"):
            sys.exit(__doc__.strip().splitlines()[-1])
        else:
            positional.append(argv[i])
            i += 1
    if not 1 <= len(positional) <= 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    return positional, extra_logs


def main():
    positional, extra_logs = parse_arguments(sys.argv[1:])
    log = positional[0]
    outdir = positional[1] if len(positional) > 1 else "docs/plots"
    report_dir = positional[2] if len(positional) > 2 else "docs"
    if not os.access(GNUPLOT, os.X_OK):
        sys.exit("plot_results.py: /usr/bin/gnuplot not found (apt-get install gnuplot-nox, or bash tools/install-deps.sh)")
    all_logs = [log] + extra_logs
    machine, results, errors = read_logs([log])
    rt_machine = suite_machine(all_logs, "runtime")
    gc_machine, costs_machine = suite_machine(all_logs, "gc"), suite_machine(all_logs, "gc_costs")
    if not (machine or rt_machine or gc_machine or costs_machine):
        sys.exit("plot_results.py: no MACHINE line: is this a bench/run_all.sh, run_runtime.sh, run_gc.sh or "
                 "run_gc_costs.sh log?")
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
        pauses = pause_results(all_logs)
        if rt_machine or "safepoint" in pauses:
            out += ["### Time to safepoint", ""]
            if "safepoint" not in pauses:
                out += ["No time-to-safepoint results: the logs have no `suite=safepoint` RESULT lines of cases ttsp-N.", ""]
            elif pause_plot(tmp, outdir, PAUSE_PLOTS["safepoint"], pauses["safepoint"], rt_machine or machine, term):
                out += [f"![Time to safepoint against goroutine count]({rel}/{PAUSE_PLOTS['safepoint'].png})", ""]
            else:
                failed = True
        goroutines = bar_results(all_logs, "goroutines", ("ns_per_goroutine", "ns_per_round_trip"))
        if goroutines:
            out += ["### Goroutines", ""]
            if goroutines_plot(tmp, outdir, goroutines, rt_machine or machine, term):
                out += [f"![Goroutine spawn and channel ping-pong, usgc and Go]({rel}/{GOROUTINES_PNG})", ""]
            else:
                failed = True
        binary_trees = bar_results(all_logs, "binary_trees", ("wall_ms",))
        out += ["### Garbage collection", ""]
        if not binary_trees and "gc" not in pauses:
            out += ["No GC results: the logs have no `suite=binary_trees` (bench/run_gc.sh) or `suite=gc_costs` "
                    "pause (bench/run_gc_costs.sh) RESULT lines.", ""]
        if binary_trees:
            if binary_trees_plot(tmp, outdir, binary_trees, gc_machine or machine, term):
                out += [f"![Binary-trees wall time per implementation]({rel}/{BINARY_TREES_PNG})", ""]
            else:
                failed = True
        if "gc" in pauses:
            if pause_plot(tmp, outdir, PAUSE_PLOTS["gc"], pauses["gc"], costs_machine or machine, term):
                out += [f"![GC pause p50, p99 and max against live heap size]({rel}/{PAUSE_PLOTS['gc'].png})", ""]
            else:
                failed = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(out).rstrip())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
