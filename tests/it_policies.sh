#!/usr/bin/env bash
# it_policies.sh -- the bundled policies (policies/*.lua) pass their own
# tests (policies/tests/*_test.lua) under `mxroute test`: offline, with
# zone data inline and scripted SMTP outcomes.
#
# Environment: MXROUTE (the binary; default $MXR_BUILD_DIR/mxroute or
# build/mxroute), MXR_SOURCE_DIR (default: the script's parent directory).
# Fails when `mxroute test` fails (1: a test failed or a file ran none),
# and when its output does not show every file with a passing test and
# the closing count: an empty or crashed run must not pass.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}

if [ ! -x "$MXROUTE" ]; then
  echo "it_policies: no mxroute binary at $MXROUTE (set MXROUTE)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

shopt -s nullglob
tests=("$SRC"/policies/tests/*_test.lua)
if [ ${#tests[@]} -eq 0 ]; then
  echo "it_policies: no test files in $SRC/policies/tests" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

out=$(timeout 300 "$MXROUTE" test "${tests[@]}" 2>&1)
rc=$?
printf '%s\n' "$out"
problems=()
[ "$rc" = 0 ] || problems+=("mxroute test exited $rc")
grep -Eqx '[1-9][0-9]* passed, 0 failed' <<<"$out" ||
  problems+=("no closing line 'N passed, 0 failed' with N > 0")
# Each file is named, then its results: at least one "ok" line.
for t in "${tests[@]}"; do
  awk -v f="$t" '$0 == f { on = 1; next } on && /^[^ ]/ { on = 0 }
                 on && /^  ok / { n++ } END { exit n == 0 }' <<<"$out" ||
    problems+=("no passing test from $t")
done
if [ ${#problems[@]} -gt 0 ]; then
  printf 'FAIL %s\n' "${problems[@]}"
  echo "0 passed, ${#problems[@]} failed"
  exit 1
fi
