#!/usr/bin/python3
"""escape_vs_go.py: usgc's escape analysis against Go's, site by site ("precision against
Go"); run by bench/escape_vs_go.sh, which puts Go on PATH and saves the lines.

For each bench/go/escape/<name>.go that has a tests/escape/<name>.usir:
  - the Go program marks each allocation with the .usir site it stands for, a `// usir line:col`
    comment on the allocation's line (one allocation per marked line);
  - `go build -gcflags=-m` gives Go's decisions: "<expr> does not escape" (stack), "<expr> escapes
    to heap" / "moved to heap: x" (heap) at file:line:col. A site that Go inlines into a caller
    gets one more line per inlined copy, at the call's position, with the same expression: it is
    attributed through the "inlining call to f" lines at that position to the marked allocation
    of f with that expression. `make(chan ...)` has no line: Go always heap-allocates channels;
  - a site counts as a Go stack site when at least one compiled copy of it stays on the stack
    ("does not escape"): the reading most favourable to Go, so the target is checked against
    Go's best. `go build -gcflags='-m -l'` (no inlining: one decision per site, as usgc makes)
    gives metric=stack_sites_noinline;
  - `usgc-escape --json` on the .usir gives usgc's class per site; every .usir site must have
    its Go allocation and every marked Go allocation its .usir site, else an ERROR line;
  - the same reading for usgc: a site counts as a usgc stack site (metric=stack_anywhere_sites,
    the one the target compares) when it is STACK_LOCAL or, private, is allocated in its
    caller's frame at some calls (`caller_frame_calls`, jitgen/escape/caller_frame.hpp), the
    counterpart of Go's inlined copy that stays on the stack; metric=stack_sites counts the
    STACK_LOCAL class alone, and the four class metrics add up to the sites.

Output (stdout):
  RESULT suite=escape case=<name> impl=go metric=stack_sites|stack_sites_noinline|sites ...
  RESULT suite=escape case=<name> impl=usgc metric=stack_sites|private_sites|shared_sites|global_sites|
                                               caller_frame_sites|stack_anywhere_sites|sites ...
  CHECK suite=escape case=<name> target="usgc stack sites >= go stack sites" usgc=N go=M result=pass|FAIL
  NOTE ... one per site where the two differ on the stack (either way), naming both decisions
  and the same RESULT and CHECK lines for case=total. ERROR lines for broken mappings or builds.
Progress and the per-site table go to stderr. Exit status 1 when there is an ERROR line, else 0
(a missed target is a CHECK ... result=FAIL line, not a failure of the benchmark).

Usage: escape_vs_go.py --usgc-escape BUILD/usgc-escape [--go-dir bench/go/escape]
                       [--corpus tests/escape] [name ...]
"""
import argparse
import json
import os
import re
import subprocess
import sys

MARK = re.compile(r"//\s*usir (\d+):(\d+)\b")
FUNC = re.compile(r"^func (?:\([^)]*\)\s*)?(\w+)")
DIAG = re.compile(r"^(?:\./)?(?P<file>[^:\s]+\.go):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")
ALLOC_EXPR = re.compile(r"^(&|new\(|make\(|func literal|\[|map\[|\w+\{)")
USGC_CLASSES = [("STACK_LOCAL", "stack"), ("GOROUTINE_PRIVATE", "private"),
                ("GOROUTINE_SHARED", "shared"), ("GLOBAL_SHARED", "global")]
SHORT = dict(USGC_CLASSES)


def say(line):
    print(line, flush=True)


def progress(line):
    print(line, file=sys.stderr, flush=True)


def quote(text):
    return '"' + text.replace('"', "'") + '"'


def expr_head(expr):
    """What identifies an allocation expression in the source: '&Pair{' for '&Pair{...}',
    'new([16]int)', 'make([]int,' for 'make([]int, n)'."""
    if expr.startswith("&") or re.match(r"^\w+\{", expr):
        return expr.split("{", 1)[0] + "{"
    if expr.startswith("make("):
        return expr.split(",", 1)[0] + ("," if "," in expr else "")
    return expr


class GoSite:
    def __init__(self, go_line, usir_pos, text, function):
        self.go_line = go_line
        self.usir_pos = usir_pos   # (line, col) in the .usir
        self.text = text           # the Go source line
        self.function = function   # the enclosing top-level Go function
        self.own = None            # (decision, expr, col) of the out-of-line copy
        self.inlined = []          # [(decision, expr, "line:col")] of copies inlined into callers
        self.noinline = None       # decision under -m -l
        self.reason = ""

    def decisions(self):
        out = []
        if self.own:
            out.append(self.own[0])
        out.extend(d for d, _, _ in self.inlined)
        return out

    def go_decision(self):
        """'stack', 'heap', or 'mixed' (some inlined copy stays on the stack, the out-of-line
        copy escapes)."""
        d = set(self.decisions())
        if not d:
            return "heap" if "make(chan" in self.text else None
        if d == {"stack"}:
            return "stack"
        if "stack" in d:
            return "mixed"
        return "heap"

    def describe_go(self):
        dec = self.go_decision()
        if dec == "mixed":
            where = ", ".join(pos for d, _, pos in self.inlined if d == "stack")
            return f"stack when inlined (at {where}), heap out of line"
        if not self.decisions():
            return "heap (channels are always heap-allocated: no -m line)"
        return dec


def parse_go_source(path):
    sites = {}
    errors = []
    function = None
    with open(path) as f:
        lines = f.read().split("\n")
    for number, text in enumerate(lines, 1):
        m = FUNC.match(text)
        if m:
            function = m.group(1)
        marks = MARK.findall(text)
        if len(marks) > 1:
            errors.append(f"{os.path.basename(path)}:{number}: more than one usir mark on a line")
        if marks:
            pos = (int(marks[0][0]), int(marks[0][1]))
            if any(s.usir_pos == pos for s in sites.values()):
                errors.append(f"{os.path.basename(path)}:{number}: usir {pos[0]}:{pos[1]} marked twice")
            sites[number] = GoSite(number, pos, text, function)
    return sites, lines, errors


def go_build(path, flags):
    """Runs `go build -gcflags=FLAGS` on one file (in its directory): (status, diagnostics)."""
    directory, name = os.path.split(os.path.abspath(path))
    proc = subprocess.run(["go", "build", "-gcflags=" + flags, "-o", os.devnull, name],
                          cwd=directory, capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def parse_diagnostics(output, name):
    """([(line, col, decision, expr)] allocation lines, {(line, col): [inlined functions]})."""
    allocs = []
    inlined = {}
    for raw in output.splitlines():
        m = DIAG.match(raw.strip())
        if not m or os.path.basename(m.group("file")) != name:
            continue
        line, col, msg = int(m.group("line")), int(m.group("col")), m.group("msg")
        if msg.startswith("inlining call to "):
            inlined.setdefault((line, col), []).append(msg[len("inlining call to "):].strip())
            continue
        if msg.startswith("moved to heap: "):
            allocs.append((line, col, "heap", msg))
            continue
        for suffix, decision in ((" does not escape", "stack"), (" escapes to heap", "heap")):
            if msg.endswith(suffix):
                expr = msg[: -len(suffix)]
                if ALLOC_EXPR.match(expr):
                    allocs.append((line, col, decision, expr))
    return allocs, inlined


def attribute(sites, allocs, inlined, notes, program):
    """Gives each allocation line of a -m build to its site: the own copy (on the marked line)
    or an inlined copy (at a call position, through the functions inlined there). Returns the
    number of Go allocations that stand for no .usir site (closures, main's helpers)."""
    unmapped = 0
    for line, col, decision, expr in allocs:
        site = sites.get(line)
        if site is not None:
            if site.own is not None and site.own[2] != col:
                notes.append(f"NOTE suite=escape case={program} go line {line} has two allocations"
                             f" ({site.own[1]}, {expr}): only the first is the site")
                continue
            site.own = (decision, expr, col)
            continue
        callees = {f.split(".")[0] for f in inlined.get((line, col), [])}
        head = expr_head(expr)
        candidates = [s for s in sites.values() if s.function in callees and head in s.text]
        if len(candidates) == 1:
            candidates[0].inlined.append((decision, expr, f"{line}:{col}"))
        else:
            unmapped += 1
            if callees and head != "func literal":
                notes.append(f"NOTE suite=escape case={program} go {line}:{col} {expr} ({decision}):"
                             f" inlined copy matching {len(candidates)} marked sites, not counted")
    return unmapped


def run_usgc(tool, usir):
    proc = subprocess.run([tool, "--json", usir], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} --json {usir}: status {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip().splitlines()[:1]}")
    data = json.loads(proc.stdout)
    return {(s["line"], s["column"]): s for s in data["sites"]}


def compare(program, go_file, usir, tool):
    """One program: (counts dict, result lines, error lines)."""
    out, errors, notes = [], [], []
    sites, _, source_errors = parse_go_source(go_file)
    errors += [f"ERROR suite=escape case={program} reason={quote(e)}" for e in source_errors]
    name = os.path.basename(go_file)

    status, output = go_build(go_file, "-m")
    if status != 0:
        errors.append(f"ERROR suite=escape case={program} reason={quote('go build -gcflags=-m failed: ' + output.strip()[:200])}")
        return None, out, errors
    allocs, inlined = parse_diagnostics(output, name)
    unmapped = attribute(sites, allocs, inlined, notes, program)

    status, output = go_build(go_file, "-m -l")
    if status != 0:
        errors.append(f"ERROR suite=escape case={program} reason={quote('go build -gcflags=-m -l failed: ' + output.strip()[:200])}")
        return None, out, errors
    for line, _col, decision, _expr in parse_diagnostics(output, name)[0]:
        if line in sites and sites[line].noinline is None:
            sites[line].noinline = decision

    try:
        usgc = run_usgc(tool, usir)
    except (RuntimeError, ValueError, KeyError) as e:
        errors.append(f"ERROR suite=escape case={program} reason={quote(str(e))}")
        return None, out, errors

    by_usir = {s.usir_pos: s for s in sites.values()}
    for pos in sorted(usgc):
        if pos not in by_usir:
            what = f"usir site {pos[0]}:{pos[1]} ({usgc[pos]['allocation']}) has no marked Go allocation"
            errors.append(f"ERROR suite=escape case={program} reason={quote(what)}")
    for pos, site in sorted(by_usir.items()):
        if pos not in usgc:
            errors.append(f"ERROR suite=escape case={program} reason={quote(f'{name}:{site.go_line} marks usir {pos[0]}:{pos[1]}, which is no allocation site')}")
        elif site.go_decision() is None:
            errors.append(f"ERROR suite=escape case={program} reason={quote(f'{name}:{site.go_line} (usir {pos[0]}:{pos[1]}): no -m line for this allocation')}")
        elif site.noinline is None:
            site.noinline = "heap" if "make(chan" in site.text else None
    if errors:
        return None, out, errors

    counts = {"go_stack": 0, "go_stack_noinline": 0, "sites": len(usgc), "caller_frame": 0,
              "stack_anywhere": 0}
    for cls, short in USGC_CLASSES:
        counts[short] = 0
    progress(f"escape: {program}")
    progress(f"  {'usir site':<10} {'allocation':<18} {'usgc':<8} {'go -m':<42} go -m -l")
    for pos in sorted(usgc):
        s, site = usgc[pos], by_usir[pos]
        cls = SHORT[s["class"]]
        counts[cls] += 1
        caller_frame = bool(s.get("caller_frame_calls"))
        counts["caller_frame"] += caller_frame
        usgc_stack = cls == "stack" or caller_frame
        counts["stack_anywhere"] += usgc_stack
        if caller_frame:
            calls = ", ".join(f"{c['line']}:{c['column']}" for c in s["caller_frame_calls"])
            cls += f" (stack at {calls})"
        go_dec = site.go_decision()
        go_stack = go_dec in ("stack", "mixed")
        counts["go_stack"] += go_stack
        counts["go_stack_noinline"] += site.noinline == "stack"
        where = f"{program}.usir:{pos[0]}:{pos[1]}"
        progress(f"  {str(pos[0]) + ':' + str(pos[1]):<10} {s['allocation']:<18} {cls:<8} {site.describe_go():<42} {site.noinline}")
        if go_stack and not usgc_stack:
            notes.append(f"NOTE suite=escape case={program} usgc fewer: {where} {s['allocation']}"
                         f" ({name}:{site.go_line}): usgc {cls} ({s['reason']}), go {site.describe_go()}")
        elif usgc_stack and not go_stack:
            notes.append(f"NOTE suite=escape case={program} usgc more: {where} {s['allocation']}"
                         f" ({name}:{site.go_line}): usgc {cls} ({s['reason']}), go {site.describe_go()}")
    if unmapped:
        notes.append(f"NOTE suite=escape case={program} {unmapped} Go allocation line(s) stand for"
                     " no .usir site (func literals, main's set-up): not counted")
    out += result_lines(program, counts)
    out += notes
    return counts, out, errors


def result_lines(case, c):
    lines = [
        f"RESULT suite=escape case={case} impl=go metric=sites value={c['sites']} unit=sites",
        f"RESULT suite=escape case={case} impl=go metric=stack_sites value={c['go_stack']} unit=sites",
        f"RESULT suite=escape case={case} impl=go metric=stack_sites_noinline value={c['go_stack_noinline']} unit=sites",
        f"RESULT suite=escape case={case} impl=usgc metric=sites value={c['sites']} unit=sites",
    ]
    for _, short in USGC_CLASSES:
        lines.append(f"RESULT suite=escape case={case} impl=usgc metric={short}_sites value={c[short]} unit=sites")
    lines.append(f"RESULT suite=escape case={case} impl=usgc metric=caller_frame_sites value={c['caller_frame']} unit=sites")
    lines.append(f"RESULT suite=escape case={case} impl=usgc metric=stack_anywhere_sites value={c['stack_anywhere']} unit=sites")
    ok = c["stack_anywhere"] >= c["go_stack"]
    lines.append(f"CHECK suite=escape case={case} target=\"usgc stack sites >= go stack sites\""
                 f" usgc={c['stack_anywhere']} usgc_stack_class={c['stack']} go={c['go_stack']} go_noinline={c['go_stack_noinline']}"
                 f" result={'pass' if ok else 'FAIL'}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--usgc-escape", required=True)
    parser.add_argument("--go-dir", default="bench/go/escape")
    parser.add_argument("--corpus", default="tests/escape")
    parser.add_argument("programs", nargs="*")
    args = parser.parse_args()

    programs = args.programs or sorted(
        f[:-3] for f in os.listdir(args.go_dir)
        if f.endswith(".go") and os.path.exists(os.path.join(args.corpus, f[:-3] + ".usir")))
    total = None
    errors = 0
    compared = []
    for program in programs:
        go_file = os.path.join(args.go_dir, program + ".go")
        usir = os.path.join(args.corpus, program + ".usir")
        if not (os.path.exists(go_file) and os.path.exists(usir)):
            say(f"ERROR suite=escape case={program} reason={quote('missing ' + (go_file if not os.path.exists(go_file) else usir))}")
            errors += 1
            continue
        counts, lines, errs = compare(program, go_file, usir, args.usgc_escape)
        for line in errs:
            say(line)
        errors += len(errs)
        for line in lines:
            say(line)
        if counts is None:
            continue
        compared.append(program)
        total = dict(counts) if total is None else {k: total[k] + counts[k] for k in total}
    if total is not None:
        for line in result_lines("total", total):
            say(line)
        say(f"NOTE suite=escape case=total programs={len(compared)} usgc stack {total['stack_anywhere']}"
            f" of {total['sites']} sites ({100.0 * total['stack_anywhere'] / total['sites']:.1f}%;"
            f" {total['stack']} STACK_LOCAL, {total['caller_frame']} in the caller's frame at some calls),"
            f" go {total['go_stack']} ({100.0 * total['go_stack'] / total['sites']:.1f}%),"
            f" go without inlining {total['go_stack_noinline']}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
