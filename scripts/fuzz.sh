#!/usr/bin/env bash
# fuzz.sh -- build the fuzz targets with clang, libFuzzer, ASan and UBSan,
# and run each one for a bounded time.
#
#   scripts/fuzz.sh [--build-dir DIR] [--short] [SECONDS] [TARGET...]
#
# SECONDS is the time per target (default 60; --short: the CI run,
# $MXR_FUZZ_SHORT_SECONDS or 15). TARGET is a name such as name, answer,
# answer_diff, zone, policy, smtp_reply or serve (default: every
# tests/fuzz/fuzz_*.c). DIR defaults to build-fuzz.
#
# Each run starts from the seeds (tests/fuzz/corpus/<target>) and the
# regression inputs (tests/fuzz/regress/<target>) and keeps what it finds
# in DIR/corpus/<target>, so longer runs build on earlier ones. Inputs that
# crash, leak or hang land in DIR/crashes/<target>/. After a crash:
#   DIR/fuzz_<target> FILE               reproduces it (build/tests/fuzz/
#                                        replay_<target> FILE with gcc)
#   fix it, then copy FILE to tests/fuzz/regress/<target>/<what-it-was>
# To keep new seeds:
#   DIR/fuzz_<target> -merge=1 tests/fuzz/corpus/<target> DIR/corpus/<target>
#
# Exits 0 when no target crashed, 1 when one did, 77 when clang with
# libFuzzer is missing (ctest counts that as skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
FUZZ_SRC=$SRC/tests/fuzz

dir=build-fuzz
secs=60
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) dir=$2; shift 2 ;;
    --short) secs=${MXR_FUZZ_SHORT_SECONDS:-15}; shift ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) secs=$1; shift ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$FUZZ_SRC"/fuzz_*.c; do
    t=$(basename "$f" .c)
    targets+=("${t#fuzz_}")
  done
fi
for t in "${targets[@]}"; do
  [ -f "$FUZZ_SRC/fuzz_$t.c" ] || { echo "fuzz.sh: no target '$t' (tests/fuzz/fuzz_$t.c)" >&2; exit 64; }
done

# ---- clang with libFuzzer?
probe=$(mktemp -d "${TMPDIR:-/tmp}/mxr-fuzzprobe.XXXXXX")
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ return 0; }\n' >"$probe/p.c"
if ! command -v clang >/dev/null 2>&1 ||
   ! clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
  echo "fuzz.sh: clang with libFuzzer is not available; nothing fuzzed"
  cat "$probe/err" 2>/dev/null | head -5
  exit 77
fi

# ---- build
echo "== fuzz build in $dir (clang, libFuzzer, ASan, UBSan)"
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMXR_FUZZ=ON -DMXR_TESTS=OFF >/dev/null || exit 1
cmake --build "$dir" -j"$(nproc 2>/dev/null || echo 2)" \
  --target "${targets[@]/#/fuzz_}" >"$dir/build.log" 2>&1 ||
  { tail -40 "$dir/build.log"; exit 1; }

# A smaller quarantine than ASan's 256 MB: the policy target makes and
# frees Lua states on every input, and a long run would otherwise grow
# towards -rss_limit_mb with memory that is only waiting to be reused.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=64}
export LSAN_OPTIONS=suppressions=$SRC/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# stat NAME LOG: one value of libFuzzer's -print_final_stats
stat() { awk -v k="stat::$1:" '$1 == k { print $2 }' "$2" | tail -1; }

# ---- run
crashed=0
summary=()
for t in "${targets[@]}"; do
  work=$dir/corpus/$t crashes=$dir/crashes/$t log=$dir/fuzz_$t.log
  mkdir -p "$work" "$crashes"
  dirs=("$work")
  for d in "$FUZZ_SRC/corpus/$t" "$FUZZ_SRC/regress/$t"; do
    [ -d "$d" ] && dirs+=("$d")
  done
  opts=()
  [ -f "$FUZZ_SRC/$t.options" ] && mapfile -t opts < <(grep -v '^\s*\(#\|$\)' "$FUZZ_SRC/$t.options")
  [ -f "$FUZZ_SRC/$t.dict" ] && opts+=("-dict=$FUZZ_SRC/$t.dict")
  echo "== fuzz_$t for ${secs}s"
  "$dir/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "${opts[@]}" \
    "${dirs[@]}" >"$log" 2>&1
  rc=$?
  runs=$(stat number_of_executed_units "$log")
  rate=$(stat average_exec_per_sec "$log")
  if [ $rc -ne 0 ]; then
    crashed=1
    echo "FAIL fuzz_$t (exit $rc): input saved in $crashes/"
    grep -m1 -B2 -A30 'ERROR: \|runtime error\|invariant broken' "$log" | head -60
    summary+=("$(printf '%-12s %10s runs %8s/s   CRASH (%s)' "$t" "${runs:-?}" "${rate:-?}" "$log")")
  else
    summary+=("$(printf '%-12s %10s runs %8s/s   ok, corpus %s' "$t" "${runs:-?}" "${rate:-?}" "$(ls "$work" | wc -l)")")
  fi
done

echo "== summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
exit $crashed
