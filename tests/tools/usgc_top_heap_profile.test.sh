#!/usr/bin/env bash
# usgc_top_heap_profile.test.sh: the heap profile on usgc-top's request.
#
# Proves: `usgc-top --heap-profile PID` makes a running process with USGC_PROF=1 (linked:
# usgc-alloc-loop; under LD_PRELOAD: a Python loop) write its heap profile now, under the name the
# process chooses (usgc-<pid>.heap.<n>.pb.gz in its working directory, numbered), and prints the
# file's absolute path; the file is a gzip'd profile pprof reads (when go/pprof is installed); a
# second request makes a second file. A process without USGC_PROF=1 and a pid without a block are
# refused with one line and exit status 1. Hostile blocks: a request number and a path planted in
# the block by someone else never make the process write anywhere but its own name; a block
# whose answer carries terminal escapes is printed escaped (\xNN), never raw.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on a failure.
# Every wait is bounded. Environment: BUILD (default build).
set -uo pipefail
source "$(dirname "$0")/usgc_top_test_setup.sh"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  rm -f "/dev/shm/usgc-$UID_NOW-${fake_pid:-0}"
  rm -rf "$work"
}
trap cleanup EXIT
require_files "$TOP" "$LOOP" "$PRELOAD_LIB"
PPROF=()
GO=$(command -v go || { [ -x /usr/lib/go/bin/go ] && echo /usr/lib/go/bin/go; })
if [ -n "$GO" ] && "$GO" tool pprof -h >/dev/null 2>&1; then PPROF=("$GO" tool pprof)
elif command -v pprof >/dev/null; then PPROF=(pprof); fi

# start NAME ENV... : usgc-alloc-loop in $work/NAME with ENV; sets $started (its pid).
start() {
  local name=$1; shift
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec env "$@" "$LOOP" --seconds 60 --working-set-bytes 4000000 \
     >"$work/$name.out" 2>"$work/$name.err") &
  started=$!
  pids+=("$started")
  local block="/dev/shm/usgc-$UID_NOW-$started"
  wait_for 20 test -f "$block" || { fail "$name-publishes" "no block after 20 s: $(head -c 300 "$work/$name.err")"; return 1; }
}

is_gzip() { [ "$(head -c 2 "$1" | od -An -tx1 | tr -d ' \n')" = 1f8b ]; }

# 1. A linked program with USGC_PROF=1: two requests, two files, paths printed.
if start linked USGC_PROF=1; then
  pid=$started
  out=$(timeout 60 "$TOP" --heap-profile "$pid" --timeout 30 2>"$work/req1.err"); status=$?
  want="$work/linked/usgc-$pid.heap.1.pb.gz"
  if [ $status = 0 ] && [ "$out" = "usgc-top: heap profile of pid $pid written to $want" ] && is_gzip "$want"; then
    pass request-writes-profile
  else fail request-writes-profile "status $status, out '$out', err '$(head -c 300 "$work/req1.err")', files: $(ls "$work/linked")"; fi
  if [ ${#PPROF[@]} -gt 0 ] && [ -f "$want" ]; then
    if "${PPROF[@]}" -raw "$LOOP" "$want" >"$work/raw.txt" 2>&1 && grep -q "Samples:" "$work/raw.txt"; then
      pass request-profile-parses
    else fail request-profile-parses "$(head -c 300 "$work/raw.txt")"; fi
  else skip request-profile-parses "no go tool pprof or pprof"; fi
  # The process answers at most one request a second: the second waits for it, then a new file.
  out=$(timeout 60 "$TOP" --heap-profile "$pid" --timeout 30 2>"$work/req2.err"); status=$?
  want2="$work/linked/usgc-$pid.heap.2.pb.gz"
  if [ $status = 0 ] && [ "$out" = "usgc-top: heap profile of pid $pid written to $want2" ] && is_gzip "$want2"; then
    pass second-request-second-file
  else fail second-request-second-file "status $status, out '$out', err '$(head -c 300 "$work/req2.err")'"; fi

  # Hostile: someone else plants a request number and a path in the block. The process answers with
  # its own next name; nothing appears at the planted path.
  python3 - "/dev/shm/usgc-$UID_NOW-$pid" "$work/planted" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(952); f.write(struct.pack("<I", 0xdeadbeef))
    f.seek(968); f.write(sys.argv[2].encode()[:47].ljust(48, b"\0"))
PY
  answered() {
    python3 - "/dev/shm/usgc-$UID_NOW-$pid" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
sys.exit(0 if struct.unpack_from("<I", b, 956)[0] == 0xdeadbeef else 1)
PY
  }
  files_now=$(cd "$work/linked" && ls | sort | tr '\n' ' ')
  want_files="usgc-$pid.heap.1.pb.gz usgc-$pid.heap.2.pb.gz usgc-$pid.heap.3.pb.gz "
  if wait_for 30 answered && [ ! -e "$work/planted" ] &&
     files_now=$(cd "$work/linked" && ls | sort | tr '\n' ' ') && [ "$files_now" = "$want_files" ]; then
    pass planted-request-own-name-only
  else fail planted-request-own-name-only "planted exists: $([ -e "$work/planted" ] && echo yes || echo no), files: $files_now"; fi
fi

# 1b. The `h` key of the interactive detail view (tmux: a real terminal).
if [ -n "${pid:-}" ] && command -v tmux >/dev/null 2>&1; then
  session="usgc-top-heap-profile-$$"
  tm() { tmux -L "$session" "$@"; }
  pane_has() { tm capture-pane -p -t main >"$work/pane" 2>/dev/null && grep -qF -- "$1" "$work/pane"; }
  if tm new-session -d -s main -x 200 -y 50 "TERM=xterm-256color $TOP -d 0.3 -p $pid; sleep 30"; then
    wait_for 10 pane_has "process $pid (usgc-alloc-loop)"
    sleep 1.1  # the process answers at most one request a second
    tm send-keys -t main h
    if wait_for 30 pane_has "heap profile of pid $pid written to $work/linked/usgc-$pid.heap.4.pb.gz"; then
      pass tmux-h-key
    else fail tmux-h-key "$(head -c 600 "$work/pane")"; fi
  else fail tmux-h-key "tmux new-session failed"; fi
  tm kill-server 2>/dev/null
  rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$UID_NOW/$session"
else
  skip tmux-h-key "tmux is not installed"
fi

# 2. Under LD_PRELOAD (a program that knows nothing of usgc). The interpreter's own path: a pyenv
# shim in front of it would run under usgc first and publish a block of its own, which the
# interpreter's replaces when the shim execs it.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
mkdir -p "$work/preload"
(cd "$work/preload" && exec env USGC_PROF=1 LD_PRELOAD="$PRELOAD_LIB" "$PYTHON" -c '
import time
t = time.time(); l = []
while time.time() - t < 60:
    l.append(bytearray(1000))
    if len(l) > 10000: l = l[5000:]
' >"$work/preload.out" 2>"$work/preload.err") &
ppid=$!
pids+=("$ppid")
if wait_for 20 test -f "/dev/shm/usgc-$UID_NOW-$ppid"; then
  out=$(timeout 60 "$TOP" --heap-profile "$ppid" --timeout 30 2>"$work/req3.err"); status=$?
  want="$work/preload/usgc-$ppid.heap.1.pb.gz"
  if [ $status = 0 ] && [ "$out" = "usgc-top: heap profile of pid $ppid written to $want" ] && is_gzip "$want"; then
    pass preload-request-writes-profile
  else fail preload-request-writes-profile "status $status, out '$out', err '$(head -c 300 "$work/req3.err")'"; fi
else fail preload-publishes "no block: $(head -c 300 "$work/preload.err")"; fi

# 3. Refusals: no USGC_PROF, no block.
if start plain; then
  timeout 30 "$TOP" --heap-profile "$started" >"$work/plain.out" 2>"$work/plain.err"; status=$?
  if [ $status = 1 ] && grep -q "does not profile its heap (start it with USGC_PROF=1" "$work/plain.err"; then
    pass refused-without-prof
  else fail refused-without-prof "status $status: $(head -c 300 "$work/plain.err")"; fi
fi
sleep 60 & nopid=$!; pids+=("$nopid")
timeout 30 "$TOP" --heap-profile "$nopid" >"$work/none.out" 2>"$work/none.err"; status=$?
if [ $status = 1 ] && grep -q "no usgc statistics block for pid $nopid" "$work/none.err"; then
  pass refused-without-block
else fail refused-without-block "status $status: $(head -c 300 "$work/none.err")"; fi
timeout 10 "$TOP" --heap-profile abc >/dev/null 2>"$work/bad.err"; status=$?
if [ $status = 2 ] && grep -q "wants a process id" "$work/bad.err"; then pass bad-pid-refused
else fail bad-pid-refused "status $status: $(head -c 200 "$work/bad.err")"; fi

# 4. A forged block (ours, for a live process that is not usgc) whose answer carries escapes: the
# path is printed escaped.
sleep 60 & fake_pid=$!; pids+=("$fake_pid")
python3 - "/dev/shm/usgc-$UID_NOW-$fake_pid" "$fake_pid" "$UID_NOW" <<'PY'
import os, struct, sys
path, pid, uid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b = bytearray(1024)
struct.pack_into("<QII", b, 0, 0x5441545343475355, 1, 1024)
struct.pack_into("<iI", b, 24, pid, uid)
b[64:68] = b"fake"
struct.pack_into("<I", b, 84, 2)  # USGC_STATS_FLAG_HEAP_PROFILE
fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
os.write(fd, bytes(b)); os.close(fd)
PY
timeout 30 "$TOP" --heap-profile "$fake_pid" --timeout 20 >"$work/fake.out" 2>"$work/fake.err" &
top_pid=$!
python3 - "/dev/shm/usgc-$UID_NOW-$fake_pid" <<'PY'
import struct, sys, time
path = sys.argv[1]
deadline = time.time() + 20
while time.time() < deadline:
    b = open(path, "rb").read()
    request = struct.unpack_from("<I", b, 952)[0]
    if request:
        with open(path, "r+b") as f:
            f.seek(956); f.write(struct.pack("<Ii", request, 0))
            f.seek(968); f.write(b"/x/\x1b]0;PWN\x07\x1b[2J".ljust(48, b"\0"))
        break
    time.sleep(0.05)
PY
wait "$top_pid"; status=$?
if [ $status = 0 ] && grep -qF 'written to /x/\x1b]0;PWN\x07\x1b[2J' "$work/fake.out" &&
   ! grep -q $'\e' "$work/fake.out"; then
  pass forged-answer-escaped
else fail forged-answer-escaped "status $status: $(od -c "$work/fake.out" | head -5) $(head -c 200 "$work/fake.err")"; fi

[ $failures = 0 ] && exit 0 || exit 1
