# shellcheck shell=bash
# lib.sh -- what bench/run.sh and bench/serve.sh share: the Release build,
# running one measurement with a time bound, reading RESULT lines, medians
# and ratios. Source it after setting SRC, HERE, BUILD, LOG and T.
#
#   bench_build [TARGET...]   libmxroute_static (and the targets named) in
#                             $BUILD, then the programs of bench/
#   run NAME CMD...           CMD bounded by $T seconds; its output goes to
#                             $LOG, its last RESULT line to stdout; a
#                             failure is reported and marked in $LOG
#   run_lossy NAME CMD...     the same, but a run that printed its RESULT
#                             line and exited 1 (it lost domains: its
#                             RESULT counts them) is not a failure
#   bench_exit                exit 1 when a run failed or FAILED is not 0
#   field LINE KEY            the value of KEY=... in a RESULT line
#   num LINE KEY              the same, 0 when missing (for arithmetic)
#   median V...  best V...  ratio A B  verdict VALUE GOAL (met | MISSED)
#   verdict_at_most VALUE CEILING

say() { printf '== %s\n' "$*" >&2; }

bench_build() {
  say "building (Release) in $BUILD"
  # No -Werror here: a new compiler warning must not stop a measurement.
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMXR_TESTS=OFF \
    -DMXR_WERROR=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target mxroute_static "$@" >/dev/null
  cmake -S "$HERE" -B "$BUILD/bench" -DCMAKE_BUILD_TYPE=Release \
    -DMXROUTE_BUILD_DIR="$BUILD" >/dev/null
  cmake --build "$BUILD/bench" -j2 >/dev/null
}

FAILED=0
run() {
  local name=$1 out
  shift
  if ! out=$(timeout "$T" "$@" 2>&1); then
    echo "${0##*/}: $name failed:" >&2
    printf '%s\n' "$out" >&2
    out+=$'\n'"RUN FAILED: $name" # $(run ...) is a subshell: FAILED=1 would be lost
  fi
  printf '%s\n' "$out" >>"$LOG"
  # a crashed run has no RESULT line: report it empty, keep going
  printf '%s\n' "$out" | { grep '^RESULT' || true; } | tail -1
}
run_lossy() {
  local name=$1 out rc=0
  shift
  out=$(timeout "$T" "$@" 2>&1) || rc=$?
  if [ "$rc" != 0 ] && { [ "$rc" != 1 ] || ! grep -q '^RESULT' <<<"$out"; }; then
    echo "${0##*/}: $name failed:" >&2
    printf '%s\n' "$out" >&2
    out+=$'\n'"RUN FAILED: $name"
  fi
  printf '%s\n' "$out" >>"$LOG"
  printf '%s\n' "$out" | { grep '^RESULT' || true; } | tail -1
}
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
best() { printf '%s\n' "$@" | sort -g | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
num() { local v; v=$(field "$1" "$2"); echo "${v:-0}"; }
verdict() { awk -v v="$1" -v g="$2" 'BEGIN { print (v + 0 >= g + 0 ? "met" : "MISSED") }'; }
# the same for a goal that is a ceiling; an empty value (a crashed run) misses
verdict_at_most() { awk -v v="$1" -v g="$2" 'BEGIN { print (v != "" && v + 0 <= g + 0 ? "met" : "MISSED") }'; }
bench_exit() {
  if [ "$FAILED" = 0 ] && ! grep -q '^RUN FAILED: ' "$LOG"; then exit 0; fi
  echo "${0##*/}: some runs failed, see $LOG" >&2
  exit 1
}
