# cli_harness.sh -- shared by the command-line integration tests: the
# binary and tool checks, runs of mxroute kept in $OUT / $ERR / $RC, PASS
# and FAIL lines (what was expected, what came, the command and its
# output) and the closing count.
#
#   harness_start NAME   check $MXROUTE and jq, make $TMP, reset counts
#   run ARGS...          mxroute ARGS, bounded by $RUN_TIMEOUT (30) seconds
#   run_stdin FILE ARGS...
#   pass NAME / fail NAME EXPECTED GOT
#   expect_rc NAME WANT / expect_rc_in NAME "A B C"
#   expect_jq NAME FILTER  jq -e FILTER holds on stdout; with JQ_SLURP=1
#                        stdout is read as one array of its JSON lines
#   harness_end          print "N passed, N failed"; status 1 if any failed
#   fail_fast P F        with MXR_FAIL_FAST=1, print the count P/F and exit 1
#   doc_block FILE MARK  the fenced block after the line "<!-- MARK -->"
#                        of FILE (a configuration a document shows as run)
#
# MXR_FAIL_FAST=1 (set by tests/broken_binaries.sh) stops a suite at its
# first FAIL, so a run against a broken binary takes seconds; suites with a
# fail function of their own call fail_fast from it.
# The caller sets its own traps (it may have servers to stop).

harness_start() {
  local name=$1
  if [ ! -x "$MXROUTE" ]; then
    echo "$name: no mxroute binary at $MXROUTE (set MXROUTE)" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  if ! command -v jq >/dev/null 2>&1; then
    echo "$name: jq missing" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/mxr-$name.XXXXXX")
  OUT=$TMP/out
  ERR=$TMP/err
  RC=0
  passed=0
  failed=0
}

run() {
  timeout "${RUN_TIMEOUT:-30}" "$MXROUTE" "$@" >"$OUT" 2>"$ERR"
  RC=$?
  LAST_CMD="mxroute $(printf '%q ' "$@")"
}

run_stdin() { # FILE ARGS...
  local f=$1
  shift
  timeout "${RUN_TIMEOUT:-30}" "$MXROUTE" "$@" <"$f" >"$OUT" 2>"$ERR"
  RC=$?
  LAST_CMD="mxroute $(printf '%q ' "$@") < $f"
}

pass() { passed=$((passed + 1)); echo "PASS $1"; }

fail() {
  failed=$((failed + 1))
  echo "FAIL $1"
  echo "     expected: $2"
  echo "     got:      $3"
  echo "     command:  ${LAST_CMD:-}"
  [ -s "$OUT" ] && echo "     stdout:   $(head -c 1500 "$OUT")"
  [ -s "$ERR" ] && echo "     stderr:   $(head -c 800 "$ERR")"
  fail_fast "$passed" "$failed"
}

fail_fast() { # PASSED FAILED
  [ "${MXR_FAIL_FAST:-0}" = 1 ] || return 0
  echo "MXR_FAIL_FAST=1: stopped at the first failure"
  echo "$1 passed, $2 failed"
  exit 1
}

expect_rc() { # NAME WANT: the last run exited with WANT
  if [ "$RC" = "$2" ]; then pass "$1 (exit $2)"; else fail "$1" "exit $2" "exit $RC"; fi
}

expect_rc_in() { # NAME "A B C": the exit code is one of these
  local c
  for c in $2; do [ "$RC" = "$c" ] && { pass "$1 (exit $RC)"; return; }; done
  fail "$1" "exit in {$2}" "exit $RC"
}

harness_end() {
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}

# jq -e exits 0 on empty input: an empty stdout must fail, not pass.
expect_jq() {
  local got= slurp=()
  [ "${JQ_SLURP:-0}" = 1 ] && slurp=(-s)
  if [ -s "$OUT" ] && got=$(jq -e "${slurp[@]}" "$2" "$OUT" 2>&1); then
    pass "$1"
  else
    fail "$1" "jq: $2" "$(printf '%s' "${got:-empty output}" | head -c 300)"
  fi
}

doc_block() { # FILE MARK
  awk -v m="<!-- $2 -->" '
    $0 == m { s = 1; next }
    s == 1 && /^```/ { s = 2; next }
    s == 2 && /^```/ { exit }
    s == 2 { print }' "$1"
}
