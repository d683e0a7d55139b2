# bench/bench_common.sh — what the benchmark drivers share; sourced by bench/run_*.sh, not run.
#   bench_cpu_model     the CPU's model name (the MACHINE line's cpu=)
#   bench_commit        the short commit, with "+uncommitted" when the tree differs from it
#   bench_prepare_go B  puts Debian's Go on PATH when it is installed but not on it, and makes
#                       GOCACHE writable (B/go-cache when the default is not); status 1 without go
#   bench_binary_trees_check N
#                       the check every binary-trees program (C++, Go, .usir) reports at depth N:
#                       the sum of the node counts of every tree of the run
#   bench_medians [M]   reads "case impl metric value unit" sample lines on stdin; prints one such
#                       line per (case, impl, metric), in the order first seen, whose value is the
#                       median of its samples (printed %.0f, or %.1f for metric M)
#   bench_median_of F C I M
#                       the value of the (case C, impl I, metric M) line of bench_medians output F
#   bench_ratio A B [D] A / B with D decimals (default three); nan when B is not positive
#   bench_median_of_numbers
#                       the median of the numbers on stdin, one per line
#   bench_callgrind_instructions DIR SUITE CASE IMPL ENV... -- COMMAND...
#                       runs COMMAND in DIR under callgrind (children traced, output discarded)
#                       with `env ENV...`; prints the program's instruction total (the last
#                       "Collected" line: env's exec keeps one process), or an ERROR line on stderr
#                       and status 1 when the program failed

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

bench_binary_trees_check() {
  local n=$1 d sum
  sum=$(((1 << (n + 2)) - 1 + (1 << (n + 1)) - 1))
  for ((d = 4; d <= n; d += 2)); do sum=$((sum + (1 << (n - d + 4)) * ((1 << (d + 1)) - 1))); done
  echo "$sum"
}

bench_medians() {
  awk -v one_decimal="${1:-}" '
    { key = $1 SUBSEP $2 SUBSEP $3; if (!(key in n)) { order[++keys] = key; unit[key] = $5 }
      v[key, ++n[key]] = $4 }
    END { for (k = 1; k <= keys; k++) { key = order[k]; m = n[key]
            for (i = 1; i <= m; i++) s[i] = v[key, i]
            for (i = 2; i <= m; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
            med = (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
            split(key, f, SUBSEP)
            printf (f[3] == one_decimal ? "%s %s %s %.1f %s\n" : "%s %s %s %.0f %s\n"), f[1], f[2], f[3], med, unit[key] } }'
}

bench_median_of() {
  awk -v c="$2" -v i="$3" -v m="$4" '$1 == c && $2 == i && $3 == m {print $4}' "$1"
}

bench_ratio() {
  awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { if (b > 0) printf "%." d "f", a / b; else print "nan" }'
}

bench_median_of_numbers() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bench_callgrind_instructions() {
  local dir=$1 suite=$2 case=$3 impl=$4
  shift 4
  local env_args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do env_args+=("$1"); shift; done
  shift
  (cd "$dir" && valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null \
     env "${env_args[@]}" "$@" >"$dir/out" 2>"$dir/err")
  local code=$?
  if [ $code != 0 ]; then
    echo "ERROR suite=$suite case=$case impl=$impl exit=$code: $(grep -v '^==' "$dir/err" | head -c 200)" >&2
    return 1
  fi
  grep -E '^==[0-9]+== Collected : [0-9]+' "$dir/err" | tail -1 | awk '{print $NF}'
}
