#!/usr/bin/env bash
# public_headers.sh -- the public headers keep the promises of mxroute.h:
#   - every include/mxroute/*.h compiles alone (a .c holding only that
#     #include, twice: the include guard), as C11 with -Wall -Wextra
#     -Wpedantic -Werror, and as C++ when a C++ compiler is installed;
#   - include/mxroute.h includes every one of them, except those that say
#     "Not included by mxroute.h" (mxroute/lua.h: it needs <lua.h>, and is
#     compiled alone with the Lua headers' flags from pkg-config); they are
#     all installed (CMakeLists.txt installs include/ as a directory);
#   - no public enum has a count value (no identifier ending in _COUNT or
#     _COUNT_, no MXR_*_N), and every public enum says it is append-only
#     in the comment just above it.
#
# Environment: MXR_SOURCE_DIR (default: the script's parent directory), CC
# (default cc), CXX (default c++; skipped when missing).
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
CC=${CC:-cc}
CXX=${CXX:-c++}
INC=$SRC/include

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL $1"
  [ -n "${2:-}" ] && echo "     $2"
  return 0
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mxr-headers.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

shopt -s nullglob
headers=("$INC"/mxroute/*.h)
if [ ${#headers[@]} -lt 7 ]; then
  fail "include/mxroute/ holds the focused headers" "found ${#headers[@]}, want at least 7"
fi

have_cxx=0
command -v "$CXX" >/dev/null 2>&1 && have_cxx=1
LUA_CFLAGS=$(pkg-config --cflags lua5.4 2>/dev/null)

for h in "${headers[@]}"; do
  name=mxroute/$(basename "$h")
  # Opt-in headers (not included by mxroute.h) bring their own needs.
  optin=0 extra=()
  if grep -q 'Not included by mxroute.h' "$h"; then
    optin=1
    # shellcheck disable=SC2206  # split the flags on purpose
    extra=($LUA_CFLAGS)
  fi
  printf '#include "%s"\n#include "%s"\n' "$name" "$name" >"$TMP/alone.c"
  if "$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only \
      -I"$INC" ${extra[@]+"${extra[@]}"} "$TMP/alone.c" >"$TMP/err" 2>&1; then
    pass "$name compiles alone (C11, twice)"
  else
    fail "$name compiles alone (C11, twice)" "$(head -c 600 "$TMP/err")"
  fi
  if [ "$have_cxx" = 1 ]; then
    if "$CXX" -x c++ -Wall -Wextra -Werror -fsyntax-only -I"$INC" \
        ${extra[@]+"${extra[@]}"} "$TMP/alone.c" >"$TMP/err" 2>&1; then
      pass "$name compiles alone (C++)"
    else
      fail "$name compiles alone (C++)" "$(head -c 600 "$TMP/err")"
    fi
  fi
  if [ "$optin" = 1 ]; then
    if grep -Eq "^#include \"$name\"" "$INC/mxroute.h"; then
      fail "mxroute.h leaves out the opt-in $name"
    else
      pass "mxroute.h leaves out the opt-in $name"
    fi
  elif grep -Eq "^#include \"$name\"" "$INC/mxroute.h"; then
    pass "mxroute.h includes $name"
  else
    fail "mxroute.h includes $name"
  fi
done
[ "$have_cxx" = 1 ] || echo "SKIP C++ compiles: no $CXX"

if grep -q 'install(DIRECTORY include/ ' "$SRC/CMakeLists.txt"; then
  pass "CMakeLists.txt installs include/ as a directory"
else
  fail "CMakeLists.txt installs include/ as a directory"
fi

# Count values: the enums carry none (the library's own bounds live in
# src/base/enums.h).
counts=$(grep -nE '\b[A-Z0-9_]+_COUNT_?\b|\bMXR_[A-Z0-9_]+_N\b' "$INC/mxroute.h" "$INC"/mxroute/*.h)
if [ -z "$counts" ]; then
  pass "no count value in the public headers"
else
  fail "no count value in the public headers" "$counts"
fi

# Every "typedef enum" has "Append-only" in the comment that ends on the
# line just above it.
missing=$(awk '
  FNR == 1 { comment = "" }
  /\/\*/ { comment = "" ; incomment = 1 }
  incomment { comment = comment $0 }
  /\*\// { incomment = 0; last = FNR }
  /^typedef enum/ {
    if (last != FNR - 1 || comment !~ /Append-only/)
      print FILENAME ":" FNR ": " $0
  }' "$INC"/mxroute/*.h)
nenums=$(cat "$INC"/mxroute/*.h | grep -c '^typedef enum')
if [ -z "$missing" ] && [ "$nenums" -gt 0 ]; then
  pass "every public enum ($nenums) is marked append-only"
else
  fail "every public enum is marked append-only" "$missing"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
