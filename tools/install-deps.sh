#!/usr/bin/env bash
# Installs the dependencies of usgc on Debian 12, asking apt-get only for what is missing. Safe to
# run again: it checks first and is silent when all is there. Used by make (every build runs
# `install-deps.sh`, `make bench` runs `install-deps.sh bench`); never needed by hand.
#
#   install-deps.sh          the build and test dependencies
#   install-deps.sh bench    the same and the benchmark dependencies
#
# Categories (one list each; add a package to the list it belongs to):
#   build_required  without it `make`/`make test` cannot work: its absence stops with exit 1 and
#                   a message naming the packages to install;
#   bench_required  without it `make bench` cannot build: stops `install-deps.sh bench` only
#                   (a plain build just notes it);
#   optional        tools and peers that improve what is checked or compared (formatting, clang
#                   builds, valgrind counts, Go and allocator peers, plots, tmux UI tests): tried,
#                   and when absent one line says what is skipped; never a failure.
# The package manager may fail (no network, no root, no sudo): only the required packages matter.
set -uo pipefail

mode=${1:-build}
case "$mode" in build | bench) ;; *)
  echo "usage: install-deps.sh [build|bench]" >&2
  exit 2
  ;;
esac

# package -> a file whose presence proves it is installed (dpkg -s is slower and locale-bound)
declare -A build_required=(
  [g++]=/usr/bin/g++
  [make]=/usr/bin/make
  [pkg-config]=/usr/bin/pkg-config
  [libnuma-dev]=/usr/include/numa.h
  [liburing-dev]=/usr/include/liburing.h
  [libncurses-dev]=/usr/include/ncurses.h
  [googletest]=/usr/src/googletest/CMakeLists.txt
  [libgtest-dev]=/usr/include/gtest/gtest.h
  [libgmock-dev]=/usr/include/gmock/gmock.h
  [libseccomp-dev]=/usr/include/seccomp.h
  [python3]=/usr/bin/python3
  # The x86-64 JIT (jitgen/x86_64): xbyak assembles, capstone disassembles (--disasm, tests).
  [libxbyak-dev]=/usr/include/xbyak/xbyak.h
  [libcapstone-dev]=/usr/include/capstone/capstone.h
)
declare -A bench_required=(
  [libbenchmark-dev]=/usr/include/benchmark/benchmark.h
  [libgc-dev]=/usr/include/gc.h # Boehm GC: the peer of bench/binary_trees.cpp, linked in
  [numactl]=/usr/bin/numactl
  [time]=/usr/bin/time
)
# optional: package -> a file or command that proves it, and what is skipped without it.
declare -A optional=(
  [clang]=clang
  [clang-format]=clang-format
  [valgrind]=valgrind
  [golang-go]=go
  [gdb]=gdb
  [linux-perf]=perf
  [tmux]=tmux
  [sqlite3]=sqlite3
  [gnuplot-nox]=gnuplot
  [libjemalloc-dev]=/usr/include/jemalloc/jemalloc.h
  [libmimalloc-dev]=/usr/include/mimalloc.h
  [libgoogle-perftools-dev]=/usr/include/gperftools/tcmalloc.h
  # The WebAssembly target (make wasm, tests/jitgen/wasm_target.test.sh): clang's wasm32 target
  # with lld, wasi-libc and compiler-rt for wasm32 build the runtime; node runs; wabt validates.
  [lld]=wasm-ld
  [wasi-libc]=/usr/lib/wasm32-wasi/libc.a
  [libclang-rt-14-dev-wasm32]=/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a
  # usgc's collector (C++20) in the WebAssembly runtime: libc++ and libc++abi for wasm32.
  [libc++-14-dev-wasm32]=/usr/lib/wasm32-wasi/libc++.a
  [libc++abi-14-dev-wasm32]=/usr/lib/wasm32-wasi/libc++abi.a
  [nodejs]=node
  [wabt]=wasm-validate
  # Goroutines and channels in WebAssembly: binaryen's asyncify (wasm-opt) makes them coroutines.
  [binaryen]=wasm-opt
)
declare -A skipped_without=(
  [clang]="clang builds and clang-only checks are skipped"
  [clang-format]="make format and the formatting check are skipped"
  [valgrind]="callgrind instruction counts (make perfcheck, bench/gc_instructions.sh) are skipped"
  [golang-go]="the Go peers of the runtime, GC and escape benchmarks, and the pprof checks of the heap profile test, are skipped"
  [tmux]="the usgc-top terminal UI tests are skipped"
  [sqlite3]="the sqlite3 run under LD_PRELOAD is skipped"
  [gnuplot-nox]="benchmark plots are skipped"
  [libjemalloc-dev]="the jemalloc peer of the malloc benchmarks is skipped"
  [libmimalloc-dev]="the mimalloc peer of the malloc benchmarks is skipped"
  [libgoogle-perftools-dev]="the tcmalloc peer of the malloc benchmarks is skipped"
  [gdb]="the GDB JIT interface test (tests/jitgen/code_visibility_gdb.test.sh) is skipped"
  [linux-perf]="the perf map test (tests/jitgen/code_visibility_perf.test.sh) is skipped"
  [lld]="the WebAssembly runtime is not built: the wasm target tests are skipped"
  [wasi-libc]="the WebAssembly runtime is not built: the wasm target tests are skipped"
  [libclang-rt-14-dev-wasm32]="the WebAssembly runtime is not built: the wasm target tests are skipped"
  [libc++-14-dev-wasm32]="the WebAssembly runtime is not built: the wasm target tests are skipped"
  [libc++abi-14-dev-wasm32]="the WebAssembly runtime is not built: the wasm target tests are skipped"
  [nodejs]="lowered WebAssembly programs are not run: the wasm target tests are skipped"
  [wabt]="emitted WebAssembly modules are not validated (wasm-validate) nor printed (--emit-wat)"
  [binaryen]="WebAssembly programs with goroutines or channels are refused; their wasm tests are skipped"
)

present() { # probe: an absolute path, or a command (also Debian's Go outside PATH)
  case "$1" in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/lib/go/bin/$1" ] ;;
  esac
}

# missing_of NAME: the packages of associative array NAME whose probe is absent.
missing_of() {
  local -n list=$1
  local pkg
  for pkg in "${!list[@]}"; do
    present "${list[$pkg]}" || echo "$pkg"
  done | sort
}

wanted=($(missing_of build_required) $(missing_of bench_required) $(missing_of optional))
if [ ${#wanted[@]} -eq 0 ]; then exit 0; fi

# Ask apt-get for all of them; if that fails (one unknown package fails the whole call), one by
# one, so every package that can be installed is. Failures are not fatal here: the check below
# decides.
if [ "$(id -u)" -eq 0 ]; then
  SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  SUDO=none
fi
if [ "$SUDO" != none ] && command -v apt-get >/dev/null 2>&1; then
  echo "usgc: installing missing dependencies: ${wanted[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be absent on a fresh machine; refresh them once, quietly.
  $SUDO apt-get update -qq >/dev/null 2>&1 || echo "usgc: apt-get update failed; trying the installed package lists" >&2
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null 2>&1; then
    for pkg in "${wanted[@]}"; do
      $SUDO apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 ||
        echo "usgc: apt-get could not install $pkg" >&2
    done
  fi
else
  echo "usgc: cannot run apt-get as root (no root, no password-less sudo): not installing ${wanted[*]}" >&2
fi

status=0
for pkg in $(missing_of optional); do
  echo "usgc: optional $pkg is not installed: ${skipped_without[$pkg]:-some checks are skipped}" >&2
done
missing_bench=($(missing_of bench_required))
if [ ${#missing_bench[@]} -ne 0 ]; then
  if [ "$mode" = bench ]; then
    echo "usgc: cannot build the benchmarks: missing ${missing_bench[*]} (apt-get install ${missing_bench[*]})" >&2
    status=1
  else
    echo "usgc: benchmark dependencies missing: ${missing_bench[*]} (make bench needs them)" >&2
  fi
fi
missing_build=($(missing_of build_required))
if [ ${#missing_build[@]} -ne 0 ]; then
  echo "usgc: cannot build: missing required packages ${missing_build[*]} (apt-get install ${missing_build[*]})" >&2
  status=1
fi
[ $status -eq 0 ] && [ "$SUDO" != none ] && echo "usgc: dependencies checked" >&2
exit $status
