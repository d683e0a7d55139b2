#!/usr/bin/env bash
# make check-layers: the layering of DESIGN (docs/design.md, "Layers") checked, not hoped for.
#
#   1. Includes point down. The library layers, lowest first:
#        kernel_iface < numa < alloc < safepoint < gc < runtime < jitgen < tools
#      A file in one layer includes project headers of its own layer or of a lower one, and the
#      public headers (usgc/...). Public headers (include/usgc/) include only each other.
#   2. The OS stays in kernel_iface/. No layer above it calls the raw system interfaces listed
#      below. numa/ is the one other layer that talks to the kernel, and only through libnuma's
#      policy calls (mbind, move_pages, get_mempolicy): those three are allowed there and nowhere
#      else.
# Prints one line per violation ("file:line: what") and exits 1 when there is any.
set -uo pipefail
cd "$(dirname "$0")/.."

layers=(kernel_iface numa alloc safepoint gc runtime jitgen tools)
rank_of() {
  local i
  for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done
  echo -1
}

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  list_sources() { git ls-files -- "$1" | grep -E '\.(cpp|hpp|h|c|S)$'; }
else
  list_sources() { find "$1" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.c' -o -name '*.S' \); }
fi

violations=0
report() { echo "$1"; violations=$((violations + 1)); }

# 1. Includes.
for layer in "${layers[@]}"; do
  own=$(rank_of "$layer")
  while IFS= read -r file; do
    [ -n "$file" ] || continue
    while IFS=: read -r line text; do
      target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^/"]+)\/.*/\1/' <<<"$text")
      [ "$target" = "usgc" ] && continue
      r=$(rank_of "$target")
      [ "$r" -lt 0 ] && continue  # not a layer (a system or third-party header)
      if [ "$r" -gt "$own" ]; then
        report "$file:$line: $layer/ includes \"$target/...\", a higher layer (order: ${layers[*]})"
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^/"]+/' "$file")
  done < <(list_sources "$layer/")
done
while IFS= read -r file; do
  while IFS=: read -r line text; do
    report "$file:$line: a public header includes a private one: $text"
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" | grep -vE '"usgc/')
done < <(list_sources include/usgc/)

# 2. Raw system interfaces outside kernel_iface/.
raw='\b(mmap|mmap64|munmap|mprotect|madvise|mremap|process_madvise|sigaction|sigaltstack|'
raw+='perf_event_open|io_uring_[a-z_]+|syscall|sched_yield|sysconf|shm_open|shm_unlink|'
raw+='memfd_create|mbind|move_pages|get_mempolicy|set_mempolicy)[[:space:]]*\('
numa_allowed='\b(mbind|move_pages|get_mempolicy)[[:space:]]*\('
for layer in "${layers[@]:1}"; do
  while IFS= read -r file; do
    [ -n "$file" ] || continue
    # Drop // comments and string literals before looking (a comment may name a system call).
    while IFS=: read -r line text; do
      if [ "$layer" = numa ] && grep -qE "$numa_allowed" <<<"$text" &&
        ! grep -qE "$(sed -E 's/mbind\|move_pages\|get_mempolicy\|//' <<<"$raw")" <<<"$text"; then
        continue
      fi
      report "$file:$line: raw system interface outside kernel_iface/: $(sed -E 's/^[[:space:]]+//' <<<"$text")"
    done < <(sed -E 's://.*$::; s/"([^"\\]|\\.)*"/""/g' "$file" | grep -nE "$raw" |
      grep -vE '^[0-9]+:[[:space:]]*\*')
  done < <(list_sources "$layer/")
done

if [ "$violations" -gt 0 ]; then
  echo "check-layers: $violations violation(s)"
  exit 1
fi
echo "check-layers: includes point down (${layers[*]}); no raw system interface outside kernel_iface/ (numa/: libnuma policy calls only)"
