#!/usr/bin/env bash
# Installs the build, test and benchmark dependencies of usgc on Debian 12, asking apt-get
# only for what is missing. Safe to run again: it checks first and is silent when all is there.
# Used by `make run`, `make test` and `make bench`; never needed by hand.
set -euo pipefail

# package -> a file whose presence proves it is installed (dpkg -s is slower and locale-bound)
declare -A probe=(
  [g++]=/usr/bin/g++
  [make]=/usr/bin/make
  [pkg-config]=/usr/bin/pkg-config
  [libnuma-dev]=/usr/include/numa.h
  [liburing-dev]=/usr/include/liburing.h
  [libjemalloc-dev]=/usr/include/jemalloc/jemalloc.h
  [libmimalloc-dev]=/usr/include/mimalloc.h
  [libgoogle-perftools-dev]=/usr/include/gperftools/tcmalloc.h
  [googletest]=/usr/src/googletest/CMakeLists.txt
  [libgtest-dev]=/usr/include/gtest/gtest.h
  [libgmock-dev]=/usr/include/gmock/gmock.h
  [libbenchmark-dev]=/usr/include/benchmark/benchmark.h
  [sqlite3]=/usr/bin/sqlite3
  [python3]=/usr/bin/python3
  [time]=/usr/bin/time
  [numactl]=/usr/bin/numactl
  [libseccomp-dev]=/usr/include/seccomp.h
  [libncurses-dev]=/usr/include/ncurses.h
  [tmux]=/usr/bin/tmux
  [gnuplot-nox]=/usr/bin/gnuplot
  [libgc-dev]=/usr/include/gc.h  # Boehm GC: the peer of bench/binary_trees.cpp
  # The x86-64 JIT (jitgen/x86_64): xbyak assembles, capstone disassembles (--disasm, tests).
  [libxbyak-dev]=/usr/include/xbyak/xbyak.h
  [libcapstone-dev]=/usr/include/capstone/capstone.h
)
# optional tools: wanted, but their absence does not stop the build (package -> its command).
# golang-go: the benchmarks compare goroutines with Go's (Debian's Go 1.19) when it is there.
# gdb: tests/jitgen/code_visibility_gdb.test.sh (the GDB JIT interface; SKIP without it).
# linux-perf: tests/jitgen/code_visibility_perf.test.sh (perf report names JIT code; SKIP without).
# valgrind: callgrind instruction counts (make perfcheck, bench/gc_instructions.sh; SKIP without).
declare -A optional=(
  [clang]=clang
  [clang-format]=clang-format
  [valgrind]=valgrind
  [golang-go]=go
  [gdb]=gdb
  [linux-perf]=perf
)

missing=()
for pkg in "${!probe[@]}"; do
  [ -e "${probe[$pkg]}" ] || missing+=("$pkg")
done
for pkg in "${!optional[@]}"; do
  command -v "${optional[$pkg]}" >/dev/null 2>&1 || [ -x "/usr/lib/go/bin/${optional[$pkg]}" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

echo "usgc: installing missing dependencies: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be absent on a fresh machine; refresh them once, quietly.
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "usgc: dependencies installed" >&2
