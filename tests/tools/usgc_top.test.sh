#!/usr/bin/env bash
# usgc_top.test.sh: usgc-top against real running usgc programs.
#
# Proves: a linked program (build/usgc-alloc-loop) and a program under LD_PRELOAD (python3 with
# libusgc_preload.so) both publish statistics blocks; `usgc-top --once` and `--json` list both
# pids with plausible figures; a malformed block is skipped with a note and a dead process's
# block is removed; and the ncurses UI, driven in tmux (send-keys, capture-pane), lists both,
# reorders on sort keys, opens the detail view on Enter and quits on q.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>" per case; exits non-zero if
# any case failed. Every wait is bounded. Environment: BUILD (default build).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
TOP="$BUILD/usgc-top"
LOOP="$BUILD/usgc-alloc-loop"
PRELOAD_LIB="$PWD/$BUILD/libusgc_preload.so"
UID_NOW=$(id -u)
failures=0
work=$(mktemp -d)
session="usgc-top-test-$$"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  command -v tmux >/dev/null 2>&1 && tmux kill-session -t "$session" 2>/dev/null
  rm -f "/dev/shm/usgc-$UID_NOW-999991" "/dev/shm/usgc-$UID_NOW-$dead_pid" 2>/dev/null
  for pid in "${pids[@]}"; do rm -f "/dev/shm/usgc-$UID_NOW-$pid"; done  # killed mid-test
  rm -rf "$work"
}
dead_pid=0
trap cleanup EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }
skip() { echo "SKIP $1: $2"; }

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds; false on timeout.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.1
  done
}

for binary in "$TOP" "$LOOP" "$PRELOAD_LIB"; do
  if [ ! -e "$binary" ]; then
    echo "FAIL setup: $binary is missing (make $binary)"
    exit 1
  fi
done

# The linked program: larger working set so that "m" sorts it first.
"$LOOP" --seconds 60 --working-set-bytes 33554432 --goroutines 100 >"$work/loop.out" 2>"$work/loop.err" &
linked_pid=$!
pids+=("$linked_pid")
# The preloaded program: python3 allocating through malloc (bytearrays above pymalloc's 512 bytes).
# /usr/bin/python3 itself, not a wrapper (a pyenv shim is a bash script that would publish as
# "bash" under its own pid first), so that $! is the pid that publishes; it stops by itself.
LD_PRELOAD="$PRELOAD_LIB" /usr/bin/python3 -c '
import time
end = time.time() + 60
keep = []
while time.time() < end:
    keep = [bytearray(600 + (i * 37) % 4000) for i in range(500)]
    time.sleep(0.005)
' >"$work/python.out" 2>"$work/python.err" &
preload_pid=$!
pids+=("$preload_pid")

block_of() { [ -f "/dev/shm/usgc-$UID_NOW-$1" ]; }
if ! wait_for 10 block_of "$linked_pid"; then
  fail linked-publishes "no /dev/shm/usgc-$UID_NOW-$linked_pid after 10 s ($(head -c 200 "$work/loop.err"))"
else
  mode=$(stat -c %a "/dev/shm/usgc-$UID_NOW-$linked_pid")
  if [ "$mode" = 600 ]; then pass linked-publishes; else fail linked-publishes "mode $mode, want 600"; fi
fi
if wait_for 10 block_of "$preload_pid"; then pass preload-publishes
else fail preload-publishes "no /dev/shm/usgc-$UID_NOW-$preload_pid after 10 s ($(head -c 200 "$work/python.err"))"; fi

# --once: both pids, with a command and a non-zero heap.
timeout 20 "$TOP" --once >"$work/once.out" 2>"$work/once.err"
status=$?
row_linked=$(awk -v p="$linked_pid" '$1 == p' "$work/once.out")
row_preload=$(awk -v p="$preload_pid" '$1 == p' "$work/once.out")
if [ $status -ne 0 ]; then fail once "exit $status: $(head -c 200 "$work/once.err")"
elif [ -z "$row_linked" ] || [ -z "$row_preload" ]; then fail once "pids $linked_pid/$preload_pid not both listed: $(cat "$work/once.out")"
elif ! grep -q "usgc-alloc-loop" <<<"$row_linked" || ! grep -q "python3" <<<"$row_preload"; then
  fail once "wrong commands: '$row_linked' / '$row_preload'"
else pass once; fi

# Not a terminal: behaves like --once.
timeout 20 "$TOP" </dev/null | cat >"$work/pipe.out"
if grep -q "^ *$linked_pid " "$work/pipe.out" && head -n 1 "$work/pipe.out" | grep -q COMMAND; then pass not-a-terminal-is-once
else fail not-a-terminal-is-once "$(head -c 300 "$work/pipe.out")"; fi

# --json: a JSON array holding both, with plausible figures.
timeout 20 "$TOP" --json >"$work/top.json" 2>"$work/json.err"
if python3 - "$work/top.json" "$linked_pid" "$preload_pid" >"$work/json.check" 2>&1 <<'PY'
import json, sys
procs = {p["pid"]: p for p in json.load(open(sys.argv[1]))}
for pid, command in ((int(sys.argv[2]), "usgc-alloc-loop"), (int(sys.argv[3]), "python3")):
    p = procs.get(pid)
    assert p is not None, f"pid {pid} missing from {sorted(procs)}"
    assert p["command"] == command, f"{pid}: command {p['command']}"
    assert p["bytes_in_use"] > 0 and p["malloc_count"] > 0, f"{pid}: empty figures {p}"
    assert p["bytes_reserved"] >= p["bytes_committed"] > 0, f"{pid}: reserved < committed {p}"
    assert p["rss_bytes"] > 0, f"{pid}: no RSS"
    assert p["free_count"] <= p["malloc_count"] + 1000, f"{pid}: frees exceed mallocs"
    assert p["max_pause_ns"] is None, "GC figures must be null until the GC exists"
linked = procs[int(sys.argv[2])]
assert linked["bytes_in_use"] >= 8 << 20, f"linked working set {linked['bytes_in_use']} < 8 MiB"
assert linked["alloc_rate_per_s"] is not None and linked["alloc_rate_per_s"] > 0, f"no alloc rate: {linked}"
assert linked["goroutines"] == 100, f"goroutines: {linked['goroutines']} (want the loop's 100)"
assert sum(linked["time_to_safepoint_histogram_us"]) > 0, "no stop-the-world in the time-to-safepoint histogram"
assert procs[int(sys.argv[3])]["goroutines"] == 0, "the preloaded python runs no goroutines"
PY
then pass json; else fail json "$(tail -n 1 "$work/json.check")"; fi

# A malformed block is skipped with a note; a dead process's block is removed with a note.
head -c 1024 /dev/urandom >"/dev/shm/usgc-$UID_NOW-999991"
chmod 600 "/dev/shm/usgc-$UID_NOW-999991"
bash -c 'exit 0' & dead_pid=$!; wait $dead_pid
if [ -f "/dev/shm/usgc-$UID_NOW-$linked_pid" ]; then
  cp "/dev/shm/usgc-$UID_NOW-$linked_pid" "$work/block"
  # Rewrite the pid (offset 24, little-endian int32) to the dead one.
  python3 - "$work/block" "$dead_pid" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
data[24:28] = struct.pack("<i", int(sys.argv[2]))
open(sys.argv[1], "wb").write(data)
PY
  cp "$work/block" "/dev/shm/usgc-$UID_NOW-$dead_pid"
fi
timeout 20 "$TOP" --once >"$work/notes.out" 2>"$work/notes.err"
status=$?
if [ $status -ne 0 ]; then fail malformed-skipped "exit $status"
elif ! grep -q "skipped /dev/shm/usgc-$UID_NOW-999991: bad magic" "$work/notes.err"; then
  fail malformed-skipped "no note: $(head -c 300 "$work/notes.err")"
elif ! grep -q "^ *$linked_pid " "$work/notes.out"; then fail malformed-skipped "live processes no longer listed"
else pass malformed-skipped; fi
if [ -f "/dev/shm/usgc-$UID_NOW-$dead_pid" ]; then fail dead-block-removed "still there"
elif ! grep -q "removed stale /dev/shm/usgc-$UID_NOW-$dead_pid (dead)" "$work/notes.err"; then
  fail dead-block-removed "no note: $(head -c 300 "$work/notes.err")"
else pass dead-block-removed; fi
rm -f "/dev/shm/usgc-$UID_NOW-999991"

# The ncurses UI in tmux.
if ! command -v tmux >/dev/null 2>&1; then
  skip tmux-ui "tmux is not installed (tools/install-deps.sh installs it)"
else
  capture() { tmux capture-pane -p -t "$session" >"$work/pane" 2>/dev/null; }
  pane_has() { capture && grep -q -- "$1" "$work/pane"; }
  # Order of the two pids in the list, e.g. "L P" (linked first) or "P L".
  order() {
    capture
    awk -v l="$linked_pid" -v p="$preload_pid" '$1 == l { printf "L" } $1 == p { printf "P" }' "$work/pane"
  }
  order_is() { [ "$(order)" = "$1" ]; }
  tmux kill-session -t "$session" 2>/dev/null
  if ! tmux new-session -d -s "$session" -x 160 -y 60 "TERM=xterm-256color $PWD/$TOP -d 0.3; echo top-exited-\$?; sleep 5"; then
    fail tmux-ui "tmux new-session failed"
  else
    if wait_for 10 pane_has "^ *$linked_pid .*usgc-alloc-loop" && pane_has "^ *$preload_pid .*python3"; then
      pass tmux-list; else fail tmux-list "both pids not shown: $(head -c 600 "$work/pane")"; fi
    # p: by pid ascending; c: by command (python3 < usgc-alloc-loop).
    if [ "$linked_pid" -lt "$preload_pid" ]; then by_pid=LP; else by_pid=PL; fi
    tmux send-keys -t "$session" p
    ok=1
    wait_for 5 order_is "$by_pid" || { ok=0; why="p: order $(order), want $by_pid"; }
    if [ $ok = 1 ]; then
      tmux send-keys -t "$session" c
      wait_for 5 order_is PL || { ok=0; why="c: order $(order), want PL"; }
    fi
    if [ $ok = 1 ]; then
      tmux send-keys -t "$session" m  # heap in use: the 32 MiB working set first
      wait_for 5 order_is LP || { ok=0; why="m: order $(order), want LP"; }
    fi
    if [ $ok = 1 ] && pane_has "sorted by memory"; then pass tmux-sort-keys; else fail tmux-sort-keys "${why:-header does not say memory}"; fi
    cp "$work/pane" "$work/pane.list"
    # Enter on the selected (first) row: the detail view of the linked program.
    tmux send-keys -t "$session" Enter
    if wait_for 5 pane_has "process $linked_pid (usgc-alloc-loop)" && pane_has "node 0 reserved" && pane_has "bytes committed" &&
       pane_has "time to safepoint p50/p99 *< "; then
      pass tmux-detail; else fail tmux-detail "$(head -c 600 "$work/pane")"; fi
    cp "$work/pane" "$work/pane.detail"
    tmux send-keys -t "$session" Escape
    tmux send-keys -t "$session" Down
    wait_for 5 pane_has "COMMITTED" || true
    tmux send-keys -t "$session" q
    # After q the pane's shell prints the exit status of usgc-top.
    if wait_for 5 pane_has "top-exited-0"; then pass tmux-quit
    else fail tmux-quit "no exit 0 after q: $(tail -n 3 "$work/pane")"; fi
    echo "--- tmux list view (sorted by memory):"; sed -n '1,8p' "$work/pane.list"
    echo "--- tmux detail view:"; cat "$work/pane.detail"
  fi
fi

# -n: stops by itself after N refreshes (in tmux, a terminal).
if command -v tmux >/dev/null 2>&1; then
  tmux kill-session -t "$session" 2>/dev/null
  tmux new-session -d -s "$session" -x 160 -y 40 "TERM=xterm-256color $PWD/$TOP -d 0.2 -n 3 -p $linked_pid; echo exited-\$?; sleep 5"
  if wait_for 10 pane_has "exited-0"; then pass tmux-iterations-and-pid; else fail tmux-iterations-and-pid "$(head -c 300 "$work/pane")"; fi
  tmux kill-session -t "$session" 2>/dev/null
fi

# At exit, each program removes its own block (SIGTERM: usgc-alloc-loop returns from main;
# SIGINT: python3 raises KeyboardInterrupt and exits normally; both run the exit destructors).
kill -TERM "$linked_pid" 2>/dev/null
kill -INT "$preload_pid" 2>/dev/null
wait "$linked_pid" "$preload_pid" 2>/dev/null
gone() { [ ! -e "/dev/shm/usgc-$UID_NOW-$linked_pid" ] && [ ! -e "/dev/shm/usgc-$UID_NOW-$preload_pid" ]; }
if wait_for 5 gone; then pass exit-removes-block
else fail exit-removes-block "left after exit: $(ls /dev/shm | grep -E "usgc-$UID_NOW-($linked_pid|$preload_pid)\$" | tr '\n' ' ')"; fi

[ "$failures" -eq 0 ]
