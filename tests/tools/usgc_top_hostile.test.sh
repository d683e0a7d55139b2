#!/usr/bin/env bash
# usgc_top_hostile.test.sh: usgc-top never prints a byte that someone else chose raw.
#
# Proves: a file in /dev/shm named "usgc-<uid>-" + terminal escape sequences (anyone may create
# one) and a process whose command name (prctl PR_SET_NAME, tests/tools/programs/hostile_name.c,
# under LD_PRELOAD) holds ESC [2J, ESC ]0;PWN BEL and a UTF-8 CSI are shown escaped as \xNN:
# - in --once (table and the stderr note), --once -p PID (detail view) and --json, whose output is
#   printable ASCII only, and whose JSON parses and carries the escaped text;
# - in tmux (a real terminal): --once and the interactive list and detail views leave the pane's
#   title unchanged (an OSC 0 sequence printed raw would set it to PWN) and show the escaped text.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>" per case; exits non-zero if
# any case failed. Every wait is bounded. Environment: BUILD (default build).
set -uo pipefail
source "$(dirname "$0")/usgc_top_test_setup.sh"
session="usgc-top-hostile-$$"
tm() { tmux -L "$session" "$@"; }
hostile_file="/dev/shm/usgc-$UID_NOW-"$'\e]0;PWN\a\e[2J'
hostile_pid=0
cleanup() {
  [ "$hostile_pid" != 0 ] && kill "$hostile_pid" 2>/dev/null
  command -v tmux >/dev/null 2>&1 && tm kill-server 2>/dev/null
  rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$UID_NOW/$session" "$hostile_file"
  [ "$hostile_pid" != 0 ] && rm -f "/dev/shm/usgc-$UID_NOW-$hostile_pid"
  rm -rf "$work"
}
trap cleanup EXIT

require_files "$TOP" "$PRELOAD_LIB"

# The escaped forms usgc-top must print.
want_command='\x1b[2J\x1b]0;PWN\x07\xc2\x9b'
want_file="usgc-$UID_NOW-"'\x1b]0;PWN\x07\x1b[2J'

# only_printable FILE: every byte is printable ASCII or a newline.
only_printable() {
  python3 - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
bad = [(i, b) for i, b in enumerate(data) if not (0x20 <= b < 0x7f or b == 0x0a)]
if bad:
    print(f"raw byte 0x{bad[0][1]:02x} at offset {bad[0][0]} ({len(bad)} in all)")
    sys.exit(1)
PY
}

printf 'not a block' >"$hostile_file"
chmod 600 "$hostile_file"

if ! gcc -std=c11 -Wall -Wextra -Werror -O1 tests/tools/programs/hostile_name.c -o "$work/hostile-name" 2>"$work/build.err"; then
  fail hostile-program-builds "$(head -c 400 "$work/build.err")"
  exit 1
fi
LD_PRELOAD="$PRELOAD_LIB" "$work/hostile-name" 60 >"$work/hostile.out" 2>"$work/hostile.err" &
hostile_pid=$!
block_of() { [ -f "/dev/shm/usgc-$UID_NOW-$hostile_pid" ]; }
if wait_for 10 block_of; then pass hostile-program-publishes
else fail hostile-program-publishes "no block after 10 s: $(head -c 300 "$work/hostile.err")"; exit 1; fi

# --once: the table and the note, printable only, with the escaped names.
timeout 20 "$TOP" --once -d 0.2 >"$work/once.out" 2>"$work/once.err"
status=$?
if [ $status -ne 0 ]; then fail once-escaped "exit $status: $(head -c 300 "$work/once.err" | cat -v)"
elif ! why=$(only_printable "$work/once.out"); then fail once-escaped "table: $why"
elif ! awk -v p="$hostile_pid" '$1 == p' "$work/once.out" | grep -qF -- "$want_command"; then
  fail once-escaped "no row '$hostile_pid ... $want_command': $(cat -v "$work/once.out")"
else pass once-escaped; fi
if ! why=$(only_printable "$work/once.err"); then fail once-note-escaped "stderr: $why"
elif ! grep -qF -- "skipped /dev/shm/$want_file: bad name" "$work/once.err"; then
  fail once-note-escaped "no escaped note: $(cat -v "$work/once.err")"
else pass once-note-escaped; fi

# --once -p: the detail view.
timeout 20 "$TOP" --once -d 0.2 -p "$hostile_pid" >"$work/detail.out" 2>"$work/detail.err"
if ! why=$(only_printable "$work/detail.out"); then fail detail-escaped "$why"
elif ! grep -qF -- "process $hostile_pid ($want_command)" "$work/detail.out"; then
  fail detail-escaped "$(head -n 2 "$work/detail.out" | cat -v)"
else pass detail-escaped; fi

# --json: valid JSON, ASCII only, the escaped command as the value.
timeout 20 "$TOP" --json -d 0.2 >"$work/top.json" 2>"$work/json.err"
if ! why=$(only_printable "$work/top.json"); then fail json-escaped "$why"
elif ! python3 - "$work/top.json" "$hostile_pid" "$want_command" >"$work/json.check" 2>&1 <<'PY'
import json, sys
procs = {p["pid"]: p for p in json.load(open(sys.argv[1]))}
p = procs.get(int(sys.argv[2]))
assert p is not None, f"pid {sys.argv[2]} missing"
assert p["command"] == sys.argv[3], f"command {p['command']!r}, want {sys.argv[3]!r}"
PY
then fail json-escaped "$(tail -n 1 "$work/json.check")"
elif ! why=$(only_printable "$work/json.err"); then fail json-escaped "stderr: $why"
else pass json-escaped; fi

# tmux: a terminal that acts on escape sequences. The pane's title stays what tmux set.
if ! command -v tmux >/dev/null 2>&1; then
  skip tmux-hostile "tmux is not installed (tools/install-deps.sh installs it)"
else
  capture() { tm capture-pane -p -t "$current" >"$work/pane" 2>/dev/null; }
  pane_has() { capture && grep -qF -- "$1" "$work/pane"; }
  title_of() { tm display-message -p -t "$current" '#{pane_title}'; }
  # tmux_case NAME WANT COMMAND: runs COMMAND in a new session and waits for WANT on the pane.
  tmux_case() {
    local name=$1 want=$2 command=$3
    current="$session-$name"
    if ! tm new-session -d -s "$current" -x 200 -y 50 "TERM=xterm-256color $command; echo exited-\$?; sleep 30"; then
      fail "$name" "tmux new-session failed"; return
    fi
    tm set-option -t "$current" allow-rename on >/dev/null 2>&1
    tm select-pane -t "$current" -T usgc-test-title
    if ! wait_for 10 pane_has "$want"; then fail "$name" "no '$want' on the pane: $(head -c 600 "$work/pane" | cat -v)"
    elif [ "$(title_of)" != usgc-test-title ]; then fail "$name" "the pane's title became '$(title_of | cat -v)'"
    elif grep -q "PWN" <<<"$(title_of)"; then fail "$name" "title $(title_of)"
    else pass "$name"; fi
  }
  # Started after the title is set: the command waits for it.
  tmux_case tmux-once "$want_command" "sleep 1; $TOP --once -d 0.2; sleep 1"
  tmux_case tmux-list "$want_command" "sleep 1; $TOP -d 0.3"
  tm send-keys -t "$current" q
  tmux_case tmux-detail "process $hostile_pid ($want_command)" "sleep 1; $TOP -d 0.3 -p $hostile_pid"
  tm send-keys -t "$current" q
  tm kill-server 2>/dev/null
fi

[ "$failures" -eq 0 ]
