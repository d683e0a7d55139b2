#!/bin/bash
# tools/usgc-private-code-symbols.sh OBJECT — prints "symbol symbol.usgc" lines for objcopy
# --redefine-syms: the out-of-line copies of inline and template functions a library object
# defines (weak functions, and the signatures of the COMDAT groups that hold code, such as the
# C5/D5 groups of constructors and destructors). Renamed, they stay usgc's own: the linker never
# trades them for a program's copy of the same function outside usgc_text (Makefile,
# move_code_to_usgc_text). Groups of data only (inline variables, vtables, typeinfo, a function's
# static locals) keep their names, so there is still one instance of each.
set -euo pipefail
object="$1"
READELF="${READELF:-readelf}"
{
  "$READELF" -gW "$object" | awk '
    /^COMDAT group section/ {
      signature = $0
      sub(/^[^]]*\] `[^'"'"']*'"'"' \[/, "", signature)
      sub(/\] contains.*$/, "", signature)
      next
    }
    /^ *\[ *[0-9]+\] +(\.text|usgc_text)/ { if (signature != "") print signature }
    /^$/ { signature = "" }'
  "$READELF" -Ws "$object" | awk '$4 == "FUNC" && $5 == "WEAK" && $7 != "UND" {print $8}'
} | sort -u | awk '{print $1, $1 ".usgc"}'
