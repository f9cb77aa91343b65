#!/usr/bin/env bash
# it_policies.sh -- the bundled policies (policies/*.lua) pass their own
# tests (policies/tests/*_test.lua) under `mxroute test`: offline, with
# zone data inline and scripted SMTP outcomes.
#
# Environment: MXROUTE (the binary; default $MXR_BUILD_DIR/mxroute or
# build/mxroute), MXR_SOURCE_DIR (default: the script's parent directory).
# Exits with the status of `mxroute test` (0 all passed, 1 a test failed).
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

timeout 300 "$MXROUTE" test "${tests[@]}"
