#!/usr/bin/env bash
# secure_environment.test.sh: a setuid program linked with usgc is not steered by its caller's
# USGC_* variables (they are read with secure_getenv, which sees none of them when the kernel sets
# AT_SECURE: real and effective user differ).
#
# Proves, with tests/runtime/programs/environment_probe.c (linked against libusgc.a) made
# setuid-root and run by an unprivileged user (setpriv --reuid=65534, so AT_SECURE is set):
#   - USGC_PROCS=<valid> is ignored (the default procs is printed) and USGC_PROCS=garbage prints no
#     refusal line, while the same runs of the same binary without the setuid bit take it;
#   - USGC_PROF=1 with USGC_PROF_FILE=<a path> writes no heap profile as root (a setuid program
#     writing a file its caller names would be a privilege escalation).
# Needs root (to make the binary setuid-root), setpriv, and a temporary directory on a file system
# mounted without nosuid; each missing condition is a SKIP with its reason.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on a failure.
# Environment: BUILD (default build).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
ulimit -c 0
failures=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }
skip() { echo "SKIP $1: $2"; }

if [ "$(id -u)" -ne 0 ]; then skip secure-environment "needs root to make a setuid-root binary"; exit 0; fi
if ! command -v setpriv >/dev/null; then skip secure-environment "setpriv (util-linux) not installed"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
if ! gcc -std=c11 -Wall -Wextra -Werror -Iinclude tests/runtime/programs/environment_probe.c "$BUILD/libusgc.a" \
     -lstdc++ -luring -lnuma -pthread -ldl -o "$work/probe" 2>"$work/build.err"; then
  fail secure-probe-builds "$(head -c 400 "$work/build.err")"; exit 1
fi
mkdir -m 777 "$work/out"

# as_nobody VAR=VALUE...: runs the probe as uid/gid 65534 in $work/out; stdout+stderr in $work/run.
as_nobody() {
  (cd "$work/out" && timeout 120 env "$@" setpriv --reuid=65534 --regid=65534 --clear-groups \
     "$work/probe" >"$work/run" 2>&1)
}

default_procs=$(getconf _NPROCESSORS_ONLN)
chosen_procs=1
[ "$default_procs" -eq 1 ] && chosen_procs=3

# Without the setuid bit the variables are read: the control that makes the checks below mean
# something.
as_nobody USGC_PROCS=$chosen_procs
if grep -qw "procs=$chosen_procs" "$work/run"; then pass plain-binary-reads-usgc-procs; else fail plain-binary-reads-usgc-procs "$(head -c 300 "$work/run")"; fi
as_nobody USGC_PROCS=garbage
if grep -q '^usgc: USGC_PROCS="garbage" refused' "$work/run"; then pass plain-binary-refuses-garbage; else fail plain-binary-refuses-garbage "$(head -c 300 "$work/run")"; fi

chown root:root "$work/probe" && chmod 4755 "$work/probe"
as_nobody true=1  # a run without any USGC_ variable: is the setuid bit honoured here?
if ! grep -q "^procs=" "$work/run"; then
  skip secure-environment "the setuid probe does not run here: $(head -c 200 "$work/run")"; exit $((failures > 0))
fi
if findmnt -n -o OPTIONS --target "$work" 2>/dev/null | grep -qw nosuid; then
  skip secure-environment "$work is on a nosuid file system"; exit $((failures > 0))
fi

as_nobody USGC_PROCS=$chosen_procs
if grep -qw "procs=$default_procs" "$work/run" && ! grep -q USGC_PROCS "$work/run"; then
  pass setuid-binary-ignores-usgc-procs
else
  fail setuid-binary-ignores-usgc-procs "want procs=$default_procs: $(head -c 300 "$work/run")"
fi
as_nobody USGC_PROCS=garbage USGC_STACK_GUARD=-1 USGC_PROF_SAMPLE=abc
if grep -q "^procs=" "$work/run" && ! grep -q "refused" "$work/run"; then
  pass setuid-binary-prints-no-refusals
else
  fail setuid-binary-prints-no-refusals "$(head -c 300 "$work/run")"
fi
as_nobody USGC_PROF=1 USGC_LEAKS=1 USGC_PROF_FILE="$work/out/root-owned.pb.gz"
if grep -q "^procs=" "$work/run" && [ -z "$(ls "$work/out")" ] && ! grep -q "leak\|heap profile" "$work/run"; then
  pass setuid-binary-writes-no-heap-profile
else
  fail setuid-binary-writes-no-heap-profile "files: $(ls "$work/out"); $(head -c 300 "$work/run")"
fi
exit $((failures > 0))
