#!/usr/bin/env bash
# c_api.test.sh: the goroutine C API from a C program, as a user builds one.
#
# Proves: include/usgc/usgc.h (with runtime.h and safepoint.h) compiles as C99 and C11 with
# -Wall -Wextra -Werror, the README's example links against libusgc.a and libusgc.so and prints
# the value its goroutine sent.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=tests/runtime/programs/readme_example.c

check() {  # name, command...
  local name=$1; shift
  if out=$("$@" 2>&1); then echo "PASS $name"; else echo "FAIL $name: ${out//$'\n'/ | }"; failures=$((failures + 1)); fi
}

for std in c99 c11; do
  check "headers-compile-as-$std" gcc -std=$std -Wall -Wextra -Werror -Iinclude -c "$src" -o "$work/example-$std.o"
done

if [ -f "$BUILD/libusgc.a" ]; then
  check "links-static" gcc -std=c11 -Iinclude "$src" "$BUILD/libusgc.a" -lstdc++ -luring -lnuma -pthread -ldl -o "$work/static"
  if [ -x "$work/static" ]; then
    out=$(timeout 60 "$work/static" 2>&1)
    if [ "$out" = "received 42 ok=1" ]; then echo "PASS runs-static"; else echo "FAIL runs-static: got '$out'"; failures=$((failures + 1)); fi
  fi
else
  echo "SKIP links-static: $BUILD/libusgc.a not built"
fi
if [ -f "$BUILD/libusgc.so" ]; then
  check "links-shared" gcc -std=c11 -Iinclude "$src" -L"$BUILD" -lusgc -Wl,-rpath,"$PWD/$BUILD" -o "$work/shared"
  if [ -x "$work/shared" ]; then
    out=$(timeout 60 "$work/shared" 2>&1)
    if [ "$out" = "received 42 ok=1" ]; then echo "PASS runs-shared"; else echo "FAIL runs-shared: got '$out'"; failures=$((failures + 1)); fi
  fi
else
  echo "SKIP links-shared: $BUILD/libusgc.so not built"
fi
# Embedding without traps (docs/runtime.md, "Blocked threads and asynchronous safepoints"): each
# program below is built from the public headers against libusgc.a and must pass on its own.
embed_program() {  # name, source, args...
  local name=$1 source=$2; shift 2
  if ! gcc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude "tests/runtime/programs/$source" \
      "$BUILD/libusgc.a" -lstdc++ -luring -lnuma -pthread -ldl -o "$work/$name" 2>"$work/$name.err"; then
    echo "FAIL $name: does not build: $(tr '\n' ' ' < "$work/$name.err")"; failures=$((failures + 1)); return 1
  fi
}
if [ -f "$BUILD/libusgc.a" ]; then
  # A collection requested while the attached main thread waits in a plain pthread_join.
  if embed_program join_collect join_collect.c; then
    out=$(timeout 60 "$work/join_collect" 2>&1); status=$?
    case "$status:$out" in 0:collected\ shared=[1-9]*) echo "PASS join-collect-finishes ($out)";;
      *) echo "FAIL join-collect-finishes: status $status: ${out//$'\n'/ | }"; failures=$((failures + 1));; esac
  fi
  # binary-trees with two attached workers and a plain pthread_join: both workers hold a P at once.
  if embed_program binary_trees_join binary_trees_join.c; then
    out=$(timeout 120 "$work/binary_trees_join" 14 2>&1); status=$?
    if [ $status -eq 0 ]; then echo "PASS binary-trees-plain-join-overlaps ($out)"
    else echo "FAIL binary-trees-plain-join-overlaps: status $status: ${out//$'\n'/ | }"; failures=$((failures + 1)); fi
  fi
  # One P: attached threads blocked in nanosleep and read lose it to the next attached thread.
  if embed_program retake_blocked retake_blocked.c; then
    out=$(timeout 60 "$work/retake_blocked" 2>&1); status=$?
    if [ $status -eq 0 ] && [ "$out" = "retake ok" ]; then echo "PASS blocked-threads-lose-their-p"
    else echo "FAIL blocked-threads-lose-their-p: status $status: ${out//$'\n'/ | }"; failures=$((failures + 1)); fi
  fi
  # Thousands of stops and handshakes while threads block in read, pthread_cond_wait, nanosleep,
  # poll, and spin without polls.
  if embed_program blocked_stops blocked_stops.c; then
    out=$(timeout 180 "$work/blocked_stops" 2>&1); status=$?
    if [ $status -eq 0 ]; then echo "PASS stops-with-blocked-and-spinning-threads ($out)"
    else echo "FAIL stops-with-blocked-and-spinning-threads: status $status: ${out//$'\n'/ | }"; failures=$((failures + 1)); fi
  fi
  # Pointers only in registers and unrooted locals of code stopped by a signal survive shared
  # collections (conservative scan of the interrupted state), attached thread and goroutine.
  if embed_program unrooted_pointers unrooted_pointers.c; then
    out=$(timeout 180 "$work/unrooted_pointers" 2>&1); status=$?
    case "$status:$out" in 0:unrooted\ ok*) echo "PASS unrooted-pointers-survive-async-stops ($out)";;
      *) echo "FAIL unrooted-pointers-survive-async-stops: status $status: ${out//$'\n'/ | }"; failures=$((failures + 1));; esac
  fi
  # Two Ps, five goroutines of usgc_go blocked in read, pthread_cond_wait, a mutex, poll and
  # nanosleep: 400 more goroutines run to completion before any of those calls returns.
  if embed_program goroutine_retake goroutine_retake.c; then
    out=$(timeout 180 "$work/goroutine_retake" 2>&1); status=$?
    case "$status:$out" in 0:goroutine\ retake\ ok*) echo "PASS blocked-goroutines-lose-their-p ($out)";;
      *) echo "FAIL blocked-goroutines-lose-their-p: status $status: ${out//$'\n'/ | }"; failures=$((failures + 1));; esac
  fi
  # Thousands of stops and collections while goroutines block in those calls (results, errno,
  # the thread that ends each call).
  if embed_program goroutine_blocked_stops goroutine_blocked_stops.c; then
    out=$(timeout 180 "$work/goroutine_blocked_stops" 2>&1); status=$?
    if [ $status -eq 0 ]; then echo "PASS stops-with-blocked-goroutines ($out)"
    else echo "FAIL stops-with-blocked-goroutines: status $status: ${out//$'\n'/ | }"; failures=$((failures + 1)); fi
  fi
  # Goroutines spinning in plain C code, preempted asynchronously while stops run: each comes back
  # on the thread it began on with its errno intact (the compiler keeps errno's address in a
  # register there). Before, a preempted goroutine moved threads and read or wrote another's errno.
  if embed_program preempted_goroutine_keeps_thread preempted_goroutine_keeps_thread.c; then
    out=$(timeout 150 "$work/preempted_goroutine_keeps_thread" 2>&1); status=$?
    case "$status:$out" in 0:keeps\ thread\ ok*) echo "PASS preempted-goroutines-keep-their-thread-and-errno ($out)";;
      *) echo "FAIL preempted-goroutines-keep-their-thread-and-errno: status $status: ${out//$'\n'/ | }"; failures=$((failures + 1));; esac
  fi
  # Attached threads that end without usgc_detach_thread (return, pthread_exit, cancelled in a
  # blocked call, bracketed or not) while stops run back to back: each is detached on its way out;
  # before, its P stayed held and the next stop waited forever.
  if embed_program attached_thread_exit attached_thread_exit.c; then
    out=$(timeout 150 "$work/attached_thread_exit" 2>&1); status=$?
    case "$status:$out" in 0:attached\ exit\ ok*) echo "PASS attached-threads-that-end-attached-are-detached ($out)";;
      *) echo "FAIL attached-threads-that-end-attached-are-detached: status $status: ${out//$'\n'/ | }"; failures=$((failures + 1));; esac
  fi
  # A program that blocks every signal before it starts usgc and its threads (a sigwait server):
  # goroutines and attached threads poll, one blocks in read, while stops run. Before usgc
  # unblocked its signals in the threads that run goroutines, the first armed poll killed it.
  if embed_program blocked_signals blocked_signals.c; then
    out=$(timeout -s KILL 150 "$work/blocked_signals" 2>&1); status=$?  # SIGTERM is blocked there
    case "$status:$out" in 0:blocked\ signals\ ok*) echo "PASS programs-that-block-every-signal-still-stop ($out)";;
      *) echo "FAIL programs-that-block-every-signal-still-stop: status $status: ${out//$'\n'/ | }"; failures=$((failures + 1));; esac
  fi
  # fork() while goroutines allocate and stops run back to back: every child gets a refusal
  # (ENOTRECOVERABLE) from each usgc call that needs the runtime's threads, at once, and can still
  # malloc and exec; the parent goes on. A child whose forking goroutine returns ends with the
  # message and SIGABRT. Before usgc handled fork() the children waited forever.
  if embed_program fork_child fork_child.c; then
    out=$(timeout 120 "$work/fork_child" 2>"$work/fork_child.err"); status=$?
    case "$status:$out" in 0:fork\ child\ ok\ forks=18*) echo "PASS fork-children-refuse-instead-of-hanging ($out)";;
      *) echo "FAIL fork-children-refuse-instead-of-hanging: status $status: ${out//$'\n'/ | } $(grep -v 'in a fork() child: usgc' "$work/fork_child.err" | tr '\n' ' ')"; failures=$((failures + 1));; esac
    out=$(timeout 60 "$work/fork_child" returns 2>"$work/fork_child.err"); status=$?
    if [ $status -eq 0 ] && [ "$out" = "child signal 6" ] &&
        grep -q 'called fork() and returned in the child' "$work/fork_child.err"; then
      echo "PASS fork-child-whose-goroutine-returns-ends-with-a-message"
    else
      echo "FAIL fork-child-whose-goroutine-returns-ends-with-a-message: status $status: $out $(tr '\n' ' ' < "$work/fork_child.err")"
      failures=$((failures + 1))
    fi
  fi
  # A thread nothing can stop: the stop warns after one second, naming it, and keeps waiting.
  if embed_program stop_warning stop_warning.c; then
    timeout 60 "$work/stop_warning" >"$work/warning.out" 2>"$work/warning.err"; status=$?
    tid=$(sed -n 's/.*tid=\([0-9]*\).*/\1/p' "$work/warning.out")
    if [ $status -eq 0 ] && [ "$(grep -c 'has waited 1 s for P' "$work/warning.err")" = 1 ] &&
        grep -q "thread $tid (\"stubborn-spin\") is running" "$work/warning.err" && grep -q 'remedy: ' "$work/warning.err"; then
      echo "PASS stop-warns-once-after-one-second"
    else
      echo "FAIL stop-warns-once-after-one-second: status $status: $(cat "$work/warning.out" "$work/warning.err" | tr '\n' ' ')"
      failures=$((failures + 1))
    fi
  fi
fi
exit $((failures > 0))
