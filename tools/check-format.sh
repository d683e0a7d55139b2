#!/usr/bin/env bash
# make check-format: every tracked C/C++ source is as clang-format (the root .clang-format) would
# write it. `make format` rewrites them. Without clang-format the check says it is skipped and
# passes: formatting is a review aid, not a build requirement.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
  echo "check-format: SKIP: clang-format is not installed (apt-get install clang-format)"
  exit 0
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files -- '*.cpp' '*.hpp' '*.h' '*.c')
else
  mapfile -t files < <(find . -path ./build\* -prune -o -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.c' \) -print)
fi
bad=()
for file in "${files[@]}"; do
  [ -f "$file" ] || continue
  clang-format --dry-run -Werror "$file" >/dev/null 2>&1 || bad+=("$file")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf 'check-format: not clang-format clean (run make format): %s\n' "${bad[@]}"
  exit 1
fi
echo "check-format: ${#files[@]} files clang-format clean ($(clang-format --version | head -1))"
