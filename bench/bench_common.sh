# bench/bench_common.sh — what the benchmark drivers share; sourced by bench/run_*.sh, not run.
#   bench_cpu_model     the CPU's model name (the MACHINE line's cpu=)
#   bench_commit        the short commit, with "+uncommitted" when the tree differs from it
#   bench_prepare_go B  puts Debian's Go on PATH when it is installed but not on it, and makes
#                       GOCACHE writable (B/go-cache when the default is not); status 1 without go

bench_cpu_model() {
  grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//'
}

bench_commit() {
  local commit
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
  [ -n "$(git status --porcelain 2>/dev/null | head -n 1)" ] && commit="$commit+uncommitted"
  echo "$commit"
}

bench_prepare_go() {
  if ! command -v go >/dev/null && [ -x /usr/lib/go/bin/go ]; then PATH=/usr/lib/go/bin:$PATH; fi
  command -v go >/dev/null || return 1
  export GOCACHE=${GOCACHE:-$(go env GOCACHE 2>/dev/null)}
  if ! { mkdir -p "$GOCACHE" 2>/dev/null && [ -w "$GOCACHE" ]; }; then export GOCACHE=$PWD/$1/go-cache; fi
  return 0
}
