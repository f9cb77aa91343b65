#!/usr/bin/env bash
# broken_binaries.sh -- a test of the tests: every integration suite
# (tests/it_*.sh, found by name, so a new suite is covered the day it is
# added) must FAIL against deliberately broken mxroute binaries. A suite
# that passes against one of them has a check that passes on broken
# output, and this script fails, naming the suite and the fake.
#
# The fakes are shell scripts written into a temporary directory, each
# named mxroute with the real binary beside it as mxroute.real:
#   mute    runs the real binary, drops its stdout, keeps its exit code
#           (prints nothing, yet exits as a working binary would)
#   braces  the same, but prints {} in place of the real stdout
#   true    does nothing and exits 0, whatever it is asked
#   crash   kills itself with SIGSEGV
# mute and braces keep the real exit code and stderr on purpose: a suite
# that looks only at exit codes, or lets an empty or empty-object answer
# through, passes against them.
#
# Each suite runs with MXROUTE=<fake> and MXR_FAIL_FAST=1 (the harness
# stops at its first FAIL), bounded by BROKEN_SUITE_LIMIT seconds (60): a
# suite that does not stop in time counts as a failure of this script, so
# the whole run stays short.
#
# it_embed.sh never runs $MXROUTE: it builds the embedding examples
# against the installed library and runs them. For it, a broken binary is
# a broken example program: MXR_BROKEN_EXAMPLE names the fake, and the
# suite puts it in place of each example program it built (the real one
# beside it as PROG.real, which is what the fakes run).
#
# Environment: MXROUTE (the real binary; default $MXR_BUILD_DIR/mxroute or
# build/mxroute), MXR_SOURCE_DIR, BROKEN_ONLY=SUBSTRING (only the suites
# whose name contains it), BROKEN_FAKES="mute crash" (a subset of fakes).
# Ends with "N passed, N failed"; exits 1 if any suite passed against a
# fake.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}
LIMIT=${BROKEN_SUITE_LIMIT:-60}
FAKES=(${BROKEN_FAKES:-mute braces true crash})

# Suites allowed to pass against a fake, each with the reason. Keep it
# empty unless a suite truly cannot see the binary: "it_name:fake" (one
# fake) or "it_name:*" (every fake).
EXEMPT=(
)

if [ ! -x "$MXROUTE" ]; then
  echo "broken_binaries: no mxroute binary at $MXROUTE (set MXROUTE)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
MXROUTE=$(cd "$(dirname "$MXROUTE")" && pwd)/$(basename "$MXROUTE")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mxr-broken.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# make_fake NAME BODY: $TMP/NAME/mxroute runs BODY; mxroute.real beside it.
make_fake() {
  mkdir -p "$TMP/$1"
  printf '#!/bin/sh\n# broken mxroute (tests/broken_binaries.sh): %s\n%s\n' "$1" "$2" \
    >"$TMP/$1/mxroute"
  chmod +x "$TMP/$1/mxroute"
  ln -s "$MXROUTE" "$TMP/$1/mxroute.real"
}
make_fake mute '"$0.real" "$@" >/dev/null'
make_fake braces '"$0.real" "$@" >/dev/null; rc=$?; echo "{}"; exit $rc'
make_fake true 'exit 0'
make_fake crash 'kill -SEGV $$'

exempt() { # SUITE FAKE: listed in EXEMPT?
  local e
  for e in ${EXEMPT[@]+"${EXEMPT[@]}"}; do
    [ "$e" = "$1:$2" ] || [ "$e" = "$1:*" ] && return 0
  done
  return 1
}

passed=0
failed=0
for suite in "$SRC"/tests/it_*.sh; do
  name=$(basename "$suite" .sh)
  case $name in *"${BROKEN_ONLY:-}"*) ;; *) continue ;; esac
  for fake in "${FAKES[@]}"; do
    [ -x "$TMP/$fake/mxroute" ] || { echo "broken_binaries: no fake '$fake'" >&2; exit 64; }
    log=$TMP/$name.$fake.log
    start=$SECONDS
    MXROUTE=$TMP/$fake/mxroute MXR_BROKEN_EXAMPLE=$TMP/$fake/mxroute \
      MXR_FAIL_FAST=1 MXR_SOURCE_DIR=$SRC MXR_BUILD_DIR=$BUILD \
      timeout "$LIMIT" bash "$suite" >"$log" 2>&1 </dev/null
    rc=$?
    took=$((SECONDS - start))
    first=$(grep -m1 -E '^(FAIL|SKIP) ' "$log")
    if [ "$rc" = 124 ]; then
      failed=$((failed + 1))
      echo "FAIL $name against $fake: did not stop within $LIMIT s (MXR_FAIL_FAST ignored?)"
      tail -n 5 "$log" | sed 's/^/     /'
    elif [ "$rc" != 0 ]; then
      passed=$((passed + 1))
      echo "PASS $name fails against $fake (exit $rc, ${took} s): ${first:-$(tail -n 1 "$log")}"
    elif exempt "$name" "$fake"; then
      passed=$((passed + 1))
      echo "PASS $name passes against $fake: exempt (see EXEMPT)"
    else
      failed=$((failed + 1))
      echo "FAIL $name passes against the broken binary '$fake' (exit 0 in ${took} s)"
      echo "     a check lets broken output through; the suite's last lines:"
      tail -n 5 "$log" | sed 's/^/     /'
    fi
  done
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
