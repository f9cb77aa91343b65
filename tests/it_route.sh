#!/usr/bin/env bash
# it_route.sh -- every case of tests/cases.tsv through `mxroute route --json`,
# against a real knotd on 127.0.0.1 (tests/zones served by knot) and offline
# (--zone tests/zones/*.zone). Also one --batch run per backend (file and
# stdin) checking status/reason and the order of the output lines.
#
# Environment: MXROUTE (the binary; default $MXR_BUILD_DIR/mxroute or
# build/mxroute), MXR_SOURCE_DIR (default: the script's parent directory).
# ROUTE_ONLY=SUBSTRING runs only the matching cases (no batch run).
# ROUTE_CASES (default tests/cases.tsv) and ROUTE_ZONEDIR (default
# tests/zones) run another table against other zones (tests/it_examples.sh).
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}
PY=python3
command -v "$PY" >/dev/null 2>&1 || PY=/usr/bin/python3

CASES=${ROUTE_CASES:-$SRC/tests/cases.tsv}
ZONEDIR=${ROUTE_ZONEDIR:-$SRC/tests/zones}

if [ ! -x "$MXROUTE" ]; then
  echo "it_route: no mxroute binary at $MXROUTE (set MXROUTE)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

. "$SRC/tests/lib/knot.sh"
. "$SRC/tests/lib/cli_harness.sh" # fail_fast
trap 'knot_stop; silent_udp_stop' EXIT
trap 'exit 130' INT TERM

zones=("$ZONEDIR"/*.zone)
zone_args=()
for z in "${zones[@]}"; do zone_args+=(--zone "$z"); done

passed=0
failed=0
runner_fail() { failed=$((failed + 1)); echo "FAIL $1"; fail_fast "$passed" "$failed"; }
# run_cases LABEL ARGS...: route_cases.py on the table with ARGS; its lines
# echoed, its RESULT added. A runner that dies (a traceback, a SystemExit),
# ends without RESULT or passes no case is a failure: a broken binary must
# never add up to "0 failed".
run_cases() {
  local label=$1 line res= rc= p=0 f=0
  shift
  while IFS= read -r line; do
    case $line in
      "RESULT "*) res=$line ;;
      "EXIT "*) rc=${line#EXIT } ;;
      *) printf '%s\n' "$line" ;;
    esac
  done < <(timeout 600 "$PY" "$SRC/tests/lib/route_cases.py" \
    --mxroute "$MXROUTE" --cases "$CASES" "$@" 2>&1; echo "EXIT $?")
  [ -n "$res" ] && read -r _ p f <<<"$res"
  passed=$((passed + p))
  failed=$((failed + f))
  if [ -z "$res" ]; then runner_fail "$label: the runner printed no RESULT line (exit $rc)"
  elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then runner_fail "$label: the runner exited $rc, no failure counted"
  elif [ "$p" = 0 ]; then runner_fail "$label: no case passed"
  elif [ "$f" != 0 ]; then fail_fast "$passed" "$failed"
  fi
}

batch=(--batch)
[ -n "${ROUTE_ONLY:-}" ] && batch=(--only "$ROUTE_ONLY")

# ---- offline: zone backend
echo "== zone backend: ${#zones[@]} zone files"
run_cases "zone backend" --backend zone "${zone_args[@]}" "${batch[@]}"

# ---- network: knotd on loopback, a silent port, a closed port
echo "== knot backend"
if knot_start "$ZONEDIR" && silent_udp_start; then
  closed=$(closed_udp_port)
  echo "   knotd on 127.0.0.1:$KNOT_PORT, silent UDP port $SILENT_PORT, closed UDP port $closed"
  run_cases "knot backend" --backend knot \
    --server "127.0.0.1:$KNOT_PORT" --subst "KNOT=$KNOT_PORT" \
    --subst "SILENT=$SILENT_PORT" --subst "CLOSED=$closed" "${batch[@]}"
else
  runner_fail "knotd or the silent port could not be started"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
