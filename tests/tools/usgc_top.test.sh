#!/usr/bin/env bash
# usgc_top.test.sh: usgc-top against real running usgc programs.
#
# Proves: a linked program (build/usgc-alloc-loop) and a program under LD_PRELOAD (python3 with
# libusgc_preload.so) both publish statistics blocks; `usgc-top --once` and `--json` list both
# pids with plausible figures; a malformed block is skipped with a note and a dead process's
# block is removed; and the ncurses UI, driven in tmux (send-keys, capture-pane), lists both,
# reorders on sort keys, opens the detail view on Enter and quits on q.
# GC figures: a third program, tests/tools/programs/gc_loop.c (built here against libusgc.a, run as
# usgc-gc-loop), runs goroutines that allocate private and shared GC objects and collect; its row
# (--once, tmux list) shows a GC heap, GC/s and pauses, and its detail view (tmux, -p) and --json
# show collections of both kinds, private and shared pause maxima and private bytes, read back
# and checked for plausibility; it exits cleanly with its long-lived trees intact.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>" per case; exits non-zero if
# any case failed. Every wait is bounded. Environment: BUILD (default build).
set -uo pipefail
source "$(dirname "$0")/usgc_top_test_setup.sh"
GC_LOOP_SRC=tests/tools/programs/gc_loop.c
session="usgc-top-test-$$"
current="$session"  # the tmux session the pane helpers below talk to
# A private tmux server (-L): the test touches no other tmux sessions, and each phase gets a new
# session on it while the previous one is still alive (killing a server's last session and
# starting a new one at once races with the server's exit).
tm() { tmux -L "$session" "$@"; }
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  command -v tmux >/dev/null 2>&1 && tm kill-server 2>/dev/null
  rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$UID_NOW/$session"  # the private server's socket
  rm -f "/dev/shm/usgc-$UID_NOW-999991" "/dev/shm/usgc-$UID_NOW-$dead_pid" 2>/dev/null
  for pid in "${pids[@]}"; do rm -f "/dev/shm/usgc-$UID_NOW-$pid"; done  # killed mid-test
  rm -rf "$work"
}
dead_pid=0
trap cleanup EXIT

require_files "$TOP" "$LOOP" "$PRELOAD_LIB" "$BUILD/libusgc.a"

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

# The GC program, built the way a C user builds against usgc (its command name is usgc-gc-loop).
gc_pid=0
if gcc -std=c11 -Wall -Wextra -Werror -O1 -Iinclude "$GC_LOOP_SRC" "$BUILD/libusgc.a" -lstdc++ -luring -lnuma \
     -pthread -ldl -o "$work/usgc-gc-loop" 2>"$work/gc-build.err"; then
  pass gc-program-builds
  "$work/usgc-gc-loop" 60 >"$work/gc.out" 2>"$work/gc.err" &
  gc_pid=$!
  pids+=("$gc_pid")
else
  fail gc-program-builds "$(head -c 400 "$work/gc-build.err")"
fi

block_of() { [ -f "/dev/shm/usgc-$UID_NOW-$1" ]; }
if ! wait_for 10 block_of "$linked_pid"; then
  fail linked-publishes "no /dev/shm/usgc-$UID_NOW-$linked_pid after 10 s ($(head -c 200 "$work/loop.err"))"
else
  mode=$(stat -c %a "/dev/shm/usgc-$UID_NOW-$linked_pid")
  if [ "$mode" = 600 ]; then pass linked-publishes; else fail linked-publishes "mode $mode, want 600"; fi
fi
if wait_for 10 block_of "$preload_pid"; then pass preload-publishes
else fail preload-publishes "no /dev/shm/usgc-$UID_NOW-$preload_pid after 10 s ($(head -c 200 "$work/python.err"))"; fi
if [ "$gc_pid" != 0 ]; then
  if wait_for 10 block_of "$gc_pid"; then pass gc-program-publishes
  else fail gc-program-publishes "no /dev/shm/usgc-$UID_NOW-$gc_pid after 10 s ($(head -c 200 "$work/gc.err"))"; fi
fi

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
# The GC program's row: PID COMMAND IN-USE GC-HEAP COMMITTED RSS ALLOC/s THREADS DECOMMITS GC/s PAUSE MAXPAUSE.
if [ "$gc_pid" != 0 ]; then
  row_gc=$(awk -v p="$gc_pid" '$1 == p' "$work/once.out")
  gc_row_ok() {  # GC heap in bytes, a positive GC/s, and both pauses known
    awk '$2 == "usgc-gc-loop" && $4 ~ /^[0-9.]+[BKMG]$/ && $10 ~ /^[0-9.]+k?$/ && $10 + 0 > 0 &&
         $11 ~ /s$/ && $12 ~ /s$/ { ok = 1 } END { exit !ok }' <<<"$1"
  }
  if gc_row_ok "$row_gc"; then pass once-gc-columns
  else fail once-gc-columns "row '$row_gc' (header: $(head -n 1 "$work/once.out"))"; fi
  if awk -v l="$linked_pid" '$1 == l && $4 == "-" && $10 == "-" && $12 == "-" { ok = 1 } END { exit !ok }' "$work/once.out"
  then pass once-no-gc-columns; else fail once-no-gc-columns "the non-GC row shows GC figures: '$row_linked'"; fi
fi

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
python = procs[int(sys.argv[3])]
assert python["gc_heap_bytes_in_use"] == 0 and python["collections_by_kind"] is None, f"python has GC figures: {python}"
assert python["heap_bytes_in_use"] == python["bytes_in_use"], "heap_bytes_in_use must be malloc + GC"
PY
then pass json; else fail json "$(tail -n 1 "$work/json.check")"; fi

# --json of the GC program: its GC figures, plausible and consistent. Retried for a few seconds
# (the first shared collection and the rates need a moment).
check_gc_json() {
  timeout 20 "$TOP" --json -p "$gc_pid" >"$work/gc.json" 2>"$work/gc-json.err" &&
  python3 - "$work/gc.json" "$gc_pid" >"$work/gc-json.check" 2>&1 <<'PY'
import json, sys
[p] = json.load(open(sys.argv[1]))
assert p["pid"] == int(sys.argv[2]) and p["command"] == "usgc-gc-loop", f"wrong process {p['pid']} {p['command']}"
kinds = p["collections_by_kind"]
assert kinds is not None, "collections_by_kind is null"
assert kinds["private"] > 0 and kinds["shared"] > 0, f"collections {kinds}"
assert kinds["explicit"] > 0 and kinds["explicit"] <= kinds["private"] + kinds["shared"], f"explicit {kinds}"
assert p["collections"] == [kinds["private"], kinds["shared"], kinds["shared_minor"], kinds["explicit"]], "collections array"
assert p["collections_per_s"] is not None and p["collections_per_s"] > 0, f"collections_per_s {p['collections_per_s']}"
assert p["max_pause_ns"] > 0 and p["private_max_pause_ns"] > 0, f"pause maxima {p['max_pause_ns']} {p['private_max_pause_ns']}"
assert p["worst_pause_ns"] == max(p["max_pause_ns"], p["private_max_pause_ns"]), "worst pause"
assert 0 < p["last_pause_ns"] <= p["worst_pause_ns"], f"last pause {p['last_pause_ns']}"
assert p["gc_time_ns"] >= p["worst_pause_ns"], "time in GC below the worst pause"
assert sum(p["private_pause_histogram_us"]) > 0 and sum(p["pause_histogram_us"]) > 0, "empty pause histograms"
for kind in ("private", "shared"):
    p50, p99 = p[f"{kind}_pause_p50_ns"], p[f"{kind}_pause_p99_ns"]
    assert p50 is not None and 1000 <= p50 <= p99, f"{kind} p50 {p50} p99 {p99}"
    # the bound of a bucket: a power of two microseconds
    assert (p50 // 1000) & (p50 // 1000 - 1) == 0 and p50 % 1000 == 0, f"{kind} p50 {p50} is no bucket bound"
used = p["gc_bytes_in_use"]
assert used["private"] > 0, f"no private GC bytes: {used}"
assert used["shared"] > 0, f"no shared GC bytes: {used}"
assert p["gc_heap_bytes_in_use"] == sum(used.values()), "gc_heap_bytes_in_use is not the sum of the classes"
assert p["heap_bytes_in_use"] == p["bytes_in_use"] + p["gc_heap_bytes_in_use"], "heap_bytes_in_use is not malloc + GC"
assert p["gc_bytes_committed"] >= p["gc_heap_bytes_in_use"] - used["stack_local"], "GC committed below in use"
assert p["barrier_slow_paths"] > 0 and p["publications"] > 0, f"barrier {p['barrier_slow_paths']} publications {p['publications']}"
assert p["objects_published"] >= p["publications"], "fewer objects published than publications"
assert p["barrier_slow_paths_per_s"] > 0 and p["publications_per_s"] > 0, "barrier/publication rates"
assert p["goroutines"] >= 4, f"goroutines {p['goroutines']}"
PY
}
if [ "$gc_pid" != 0 ]; then
  if wait_for 15 check_gc_json; then pass json-gc-figures
  else fail json-gc-figures "$(tail -n 1 "$work/gc-json.check" 2>/dev/null) $(head -c 200 "$work/gc-json.err")"; fi
fi

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
  capture() { tm capture-pane -p -t "$current" >"$work/pane" 2>/dev/null; }
  pane_has() { capture && grep -q -- "$1" "$work/pane"; }
  # Order of the two pids in the list, e.g. "L P" (linked first) or "P L".
  order() {
    capture
    awk -v l="$linked_pid" -v p="$preload_pid" '$1 == l { printf "L" } $1 == p { printf "P" }' "$work/pane"
  }
  order_is() { [ "$(order)" = "$1" ]; }
  if ! tm new-session -d -s "$current" -x 160 -y 60 "TERM=xterm-256color $TOP -d 0.3; echo top-exited-\$?; sleep 30"; then
    fail tmux-ui "tmux new-session failed"
  else
    if wait_for 10 pane_has "^ *$linked_pid .*usgc-alloc-loop" && pane_has "^ *$preload_pid .*python3"; then
      pass tmux-list; else fail tmux-list "both pids not shown: $(head -c 600 "$work/pane")"; fi
    if [ "$gc_pid" != 0 ]; then
      # The GC program's row, once a second sample gives its GC/s (see once-gc-columns).
      gc_row_shown() { capture && gc_row_ok "$(awk -v p="$gc_pid" '$1 == p' "$work/pane")"; }
      if wait_for 10 gc_row_shown; then pass tmux-list-gc-columns
      else fail tmux-list-gc-columns "row '$(awk -v p="$gc_pid" '$1 == p' "$work/pane")'"; fi
    fi
    # p: by pid ascending; c: by command (python3 < usgc-alloc-loop).
    if [ "$linked_pid" -lt "$preload_pid" ]; then by_pid=LP; else by_pid=PL; fi
    tm send-keys -t "$current" p
    ok=1
    wait_for 5 order_is "$by_pid" || { ok=0; why="p: order $(order), want $by_pid"; }
    if [ $ok = 1 ]; then
      tm send-keys -t "$current" c
      wait_for 5 order_is PL || { ok=0; why="c: order $(order), want PL"; }
    fi
    if [ $ok = 1 ]; then
      tm send-keys -t "$current" m  # heap in use: the 32 MiB working set first
      wait_for 5 order_is LP || { ok=0; why="m: order $(order), want LP"; }
    fi
    if [ $ok = 1 ] && pane_has "sorted by memory"; then pass tmux-sort-keys; else fail tmux-sort-keys "${why:-header does not say memory}"; fi
    cp "$work/pane" "$work/pane.list"
    # Enter on the linked program's row: the detail view. It is the first row unless other usgc
    # processes of this user (another test run on the machine) hold more memory: move down to it.
    rows_above=$(awk -v l="$linked_pid" '$1 == l { print n; exit } $1 ~ /^[0-9]+$/ { n++ }' "$work/pane.list")
    for ((row = 0; row < ${rows_above:-0}; ++row)); do tm send-keys -t "$current" Down; done
    tm send-keys -t "$current" Enter
    if wait_for 5 pane_has "process $linked_pid (usgc-alloc-loop)" && pane_has "node 0 reserved" && pane_has "bytes committed" &&
       pane_has "time to safepoint p50/p99 *< "; then
      pass tmux-detail; else fail tmux-detail "$(head -c 600 "$work/pane")"; fi
    cp "$work/pane" "$work/pane.detail"
    tm send-keys -t "$current" Escape
    tm send-keys -t "$current" Down
    wait_for 5 pane_has "COMMITTED" || true
    tm send-keys -t "$current" q
    # After q the pane's shell prints the exit status of usgc-top.
    if wait_for 5 pane_has "top-exited-0"; then pass tmux-quit
    else fail tmux-quit "no exit 0 after q: $(tail -n 3 "$work/pane")"; fi
    echo "--- tmux list view (sorted by memory):"; sed -n '1,8p' "$work/pane.list"
    echo "--- tmux detail view:"; cat "$work/pane.detail"
  fi
fi

# The detail view of the GC program (-p, in tmux): its GC figures, read back from the pane.
if command -v tmux >/dev/null 2>&1 && [ "$gc_pid" != 0 ]; then
  previous="$current"; current="$session-gc"
  tm new-session -d -s "$current" -x 160 -y 60 "TERM=xterm-256color $TOP -d 0.3 -p $gc_pid; echo top-exited-\$?; sleep 30" ||
    fail tmux-gc-detail "tmux new-session failed"
  tm kill-session -t "$previous" 2>/dev/null
  # Plausible: collections of both kinds, a GC rate, private and shared pause maxima, private bytes.
  gc_detail_plausible() {
    capture && python3 - "$work/pane" "$gc_pid" >"$work/gc-detail.check" 2>&1 <<'PY'
import re, sys
pane = open(sys.argv[1]).read()
def field(label):
    m = re.search(r"^ +" + re.escape(label) + r" +(.*\S)\s*$", pane, re.M)
    assert m, f"no line '{label}'"
    return m.group(1)
UNITS = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
def size_bytes(text):
    m = re.fullmatch(r"([0-9.]+)([BKMG])", text)
    assert m, f"not a size: {text}"
    return float(m.group(1)) * UNITS[m.group(2)]
def duration_ns(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    assert m, f"not a duration: {text}"
    return float(m.group(1)) * {"us": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)]
assert f"process {sys.argv[2]} (usgc-gc-loop)" in pane, "not the GC program's detail view"
m = re.fullmatch(r"(\d+) private, (\d+) shared, (\d+) shared minor; (\d+) of them explicit", field("collections"))
assert m, f"collections: {field('collections')}"
private, shared, minor, explicit = map(int, m.groups())
assert private > 0 and shared > 0 and 0 < explicit <= private + shared, f"collections {m.groups()}"
rate = re.fullmatch(r"([0-9.]+)(k?)/s", field("collections per second"))
assert rate and float(rate.group(1)) > 0, f"collections per second: {field('collections per second')}"
for label, count in (("private pauses p50/p99/max", private), ("shared pauses p50/p99/max", shared)):
    m = re.fullmatch(r"((?:<|>=) [^/]+) / ((?:<|>=) [^/]+) / (\S+) \((\d+) pauses\)", field(label))
    assert m, f"{label}: {field(label)}"
    assert duration_ns(m.group(3)) > 0, f"{label}: max {m.group(3)}"
    assert int(m.group(4)) > 0, f"{label}: no pauses"
assert size_bytes(field("goroutine-private")) > 0, f"goroutine-private: {field('goroutine-private')}"
assert size_bytes(field("goroutine-shared")) > 0, f"goroutine-shared: {field('goroutine-shared')}"
gc_in_use = re.search(r"^GC heap\n  bytes in use +\S+ \((\d+)\)", pane, re.M)  # not the malloc heap's
assert gc_in_use and int(gc_in_use.group(1)) > 0, "GC heap bytes in use missing or 0"
committed = re.fullmatch(r"\S+ \((\d+)\)", field("GC bytes committed"))
assert committed and int(committed.group(1)) > 0, f"GC bytes committed: {field('GC bytes committed')}"
node = re.fullmatch(r"(\S+) / (\S+)", field("GC node 0 committed/in use"))
assert node and size_bytes(node.group(1)) >= size_bytes(node.group(2)) > 0, f"GC node 0: {field('GC node 0 committed/in use')}"
assert re.fullmatch(r"[1-9]\d* \(.*/s\)", field("barrier slow paths")), f"barrier slow paths: {field('barrier slow paths')}"
assert re.fullmatch(r"[1-9]\d* \(.*/s\), [1-9]\d* objects published", field("publications")), f"publications: {field('publications')}"
PY
  }
  if wait_for 15 gc_detail_plausible; then pass tmux-gc-detail
  else fail tmux-gc-detail "$(tail -n 1 "$work/gc-detail.check"): $(head -c 1500 "$work/pane")"; fi
  cp "$work/pane" "$work/pane.gc-detail"
  tm send-keys -t "$current" q
  wait_for 5 pane_has "top-exited-0" || fail tmux-gc-detail-quit "no exit 0 after q"
  echo "--- tmux detail view of the GC program:"; cat "$work/pane.gc-detail"
fi

# -n: stops by itself after N refreshes (in tmux, a terminal).
if command -v tmux >/dev/null 2>&1; then
  previous="$current"; current="$session-n"
  tm new-session -d -s "$current" -x 160 -y 40 "TERM=xterm-256color $TOP -d 0.2 -n 3 -p $linked_pid; echo exited-\$?; sleep 30"
  tm kill-session -t "$previous" 2>/dev/null
  if wait_for 10 pane_has "exited-0"; then pass tmux-iterations-and-pid; else fail tmux-iterations-and-pid "$(head -c 300 "$work/pane")"; fi
  tm kill-server 2>/dev/null
fi

# At exit, each program removes its own block (SIGTERM: usgc-alloc-loop and usgc-gc-loop return
# from main; SIGINT: python3 raises KeyboardInterrupt and exits normally; all run the exit
# destructors).
kill -TERM "$linked_pid" 2>/dev/null
kill -INT "$preload_pid" 2>/dev/null
[ "$gc_pid" != 0 ] && kill -TERM "$gc_pid" 2>/dev/null
wait "$linked_pid" "$preload_pid" 2>/dev/null
gone() {
  [ ! -e "/dev/shm/usgc-$UID_NOW-$linked_pid" ] && [ ! -e "/dev/shm/usgc-$UID_NOW-$preload_pid" ] &&
    [ ! -e "/dev/shm/usgc-$UID_NOW-$gc_pid" ]
}
if wait_for 5 gone; then pass exit-removes-block
else fail exit-removes-block "left after exit: $(ls /dev/shm | grep -E "usgc-$UID_NOW-($linked_pid|$preload_pid|$gc_pid)\$" | tr '\n' ' ')"; fi
if [ "$gc_pid" != 0 ]; then
  wait "$gc_pid"
  gc_status=$?
  if [ $gc_status -eq 0 ] && grep -q "^usgc-gc-loop: [0-9]* rounds, trees intact$" "$work/gc.out"; then pass gc-program-exits-intact
  else fail gc-program-exits-intact "exit $gc_status: $(cat "$work/gc.out") $(head -c 300 "$work/gc.err")"; fi
fi

[ "$failures" -eq 0 ]
