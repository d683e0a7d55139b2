#!/usr/bin/python3
"""escape_dynamic.py: the share of dynamic allocations per ownership class over the escape corpus
("the seed claims 60-80% stack-allocated"); run by bench/escape_dynamic.sh.

Every tests/escape/<name>.usir ends with a `main` that drives its functions; `usgc-escape --json
--run` runs it in checked mode (every allocation in the class its site was given, every store
through the write barrier) and counts the allocations per class. A run that does not complete is
an ERROR line (a trap is a wrong decision: the figures of a run that trapped mean nothing).

Output (stdout):
  RESULT suite=escape_dynamic case=<name>|total impl=usgc metric=allocations value=N unit=allocations
  RESULT suite=escape_dynamic case=<name>|total impl=usgc metric=<class>_share value=P unit=percent
      for class in stack (of which caller_frame: allocated in a caller's frame), private, shared, global
  RESULT suite=escape_dynamic case=total impl=usgc metric=stack_share_sites value=P unit=percent
      (the static share: stack sites over all sites, for contrast)
  RESULT suite=escape_dynamic case=total_mean impl=usgc metric=stack_share value=P unit=percent
      (the mean of the per-program shares: every program weighs the same)
  CHECK suite=escape_dynamic case=total target="seed claim: 60-80% stack" value=P result=pass|FAIL
The total is allocation-weighted: programs that allocate more weigh more. Exit status 1 on an
ERROR line, else 0 (a missed claim is a CHECK ... result=FAIL line, not a failure).

Usage: escape_dynamic.py --usgc-escape BUILD/usgc-escape [--corpus tests/escape] [name ...]
"""
import argparse
import json
import os
import subprocess
import sys

CLASSES = [("STACK_LOCAL", "stack"), ("GOROUTINE_PRIVATE", "private"),
           ("GOROUTINE_SHARED", "shared"), ("GLOBAL_SHARED", "global")]


def run(tool, usir):
    proc = subprocess.run([tool, "--json", "--run", "--time-limit-ms", "60000", usir],
                          capture_output=True, text=True)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError(f"status {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:200]}")
    status = data["run"]["status"]
    if status != "completed":
        raise RuntimeError(f"{status}: {data['run']['message']}")
    return data


def share(part, whole):
    return 100.0 * part / whole if whole else 0.0


def lines_for(case, counts):
    total = counts["total"]
    out = [f"RESULT suite=escape_dynamic case={case} impl=usgc metric=allocations value={total} unit=allocations"]
    for _, short in CLASSES:
        out.append(f"RESULT suite=escape_dynamic case={case} impl=usgc metric={short}_share"
                   f" value={share(counts[short], total):.1f} unit=percent")
    out.append(f"RESULT suite=escape_dynamic case={case} impl=usgc metric=caller_frame_share"
               f" value={share(counts['caller_frame'], total):.1f} unit=percent")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--usgc-escape", required=True)
    parser.add_argument("--corpus", default="tests/escape")
    parser.add_argument("programs", nargs="*")
    args = parser.parse_args()
    programs = args.programs or sorted(f[:-5] for f in os.listdir(args.corpus) if f.endswith(".usir"))

    keys = ["total", "caller_frame"] + [short for _, short in CLASSES]
    total = dict.fromkeys(keys, 0)
    sites = stack_sites = 0
    shares = []
    errors = 0
    for program in programs:
        try:
            data = run(args.usgc_escape, os.path.join(args.corpus, program + ".usir"))
        except RuntimeError as error:
            print(f"ERROR suite=escape_dynamic case={program} reason=\"{error}\"")
            errors += 1
            continue
        allocations = data["run"]["allocations"]
        counts = {"total": allocations["total"], "caller_frame": data["run"]["caller_frame_allocations"]}
        for name, short in CLASSES:
            counts[short] = allocations[name]["count"]
        for line in lines_for(program, counts):
            print(line)
        for key in keys:
            total[key] += counts[key]
        sites += data["summary"]["total"]
        stack_sites += data["summary"]["STACK_LOCAL"]["count"]
        shares.append(share(counts["stack"], counts["total"]))
        print(f"  {program:<28} {counts['total']:>7} allocations, stack {shares[-1]:5.1f}%", file=sys.stderr)
    if shares:
        for line in lines_for("total", total):
            print(line)
        print(f"RESULT suite=escape_dynamic case=total impl=usgc metric=stack_share_sites"
              f" value={share(stack_sites, sites):.1f} unit=percent")
        print(f"RESULT suite=escape_dynamic case=total_mean impl=usgc metric=stack_share"
              f" value={sum(shares) / len(shares):.1f} unit=percent")
        stack = share(total["stack"], total["total"])
        print(f"CHECK suite=escape_dynamic case=total target=\"seed claim: 60-80% stack\" programs={len(shares)}"
              f" value={stack:.1f} result={'pass' if 60.0 <= stack <= 80.0 else 'FAIL'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
