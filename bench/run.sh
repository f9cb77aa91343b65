#!/usr/bin/env bash
# run.sh -- the whole benchmark in one command (see bench/README.md).
#
#   bench/run.sh            build, generate the zone, start knotd, measure,
#                           stop knotd, print the table with the ratios
#
# Environment (all optional):
#   BENCH_N=50000        domains in the zone, routed cold
#   BENCH_W=100          DNS queries in flight (every client)
#   BENCH_ROUNDS=3       throughput rounds; the median is reported
#   BENCH_CACHED=5000000 routes in the cached benchmark without a policy
#   BENCH_POLICY_CACHED=$BENCH_CACHED routes in each cached benchmark with
#                        a policy (no-op route hook, rewriting route hook)
#   BENCH_CACHED_SET=1000 distinct domains in the cached benchmark
#   BENCH_MEM_N=20000    domains in the memory benchmark
#   BENCH_EXTRA=1        also run the diagnostics (AAAA on, allocation counts)
#   BENCH_SWEEP="10 100 500 2000"  the concurrency sweep's windows ("" skips it)
#   BENCH_SWEEP_N=20000  domains per sweep run (at most BENCH_N)
#   BENCH_SWEEP_ROUNDS=3  rounds of the sweep (every W each round; medians)
#   BENCH_BUILD=build-bench  build directory (Release)
#
# Outputs under bench/out/ (git-ignored): the zone, raw.log (every RESULT
# line) and results.txt (the table). Exit status 0 when every run routed
# every domain, whatever the ratios.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
N=${BENCH_N:-50000}
W=${BENCH_W:-100}
ROUNDS=${BENCH_ROUNDS:-3}
CACHED=${BENCH_CACHED:-5000000}
PCACHED=${BENCH_POLICY_CACHED:-$CACHED}
CACHED_SET=${BENCH_CACHED_SET:-1000}
MEM_N=${BENCH_MEM_N:-20000}
EXTRA=${BENCH_EXTRA:-1}
SWEEP=${BENCH_SWEEP-10 100 500 2000}
SWEEP_N=${BENCH_SWEEP_N:-20000}
SWEEP_ROUNDS=${BENCH_SWEEP_ROUNDS:-3}
((SWEEP_N > N)) && SWEEP_N=$N
BUILD=${BENCH_BUILD:-$SRC/build-bench}
OUT=$HERE/out
LOG=$OUT/raw.log
T=120 # seconds any single measurement may take

. "$HERE/lib.sh"
bench_build
RAW=$BUILD/bench/raw_cares
MXR=$BUILD/bench/bench_mxroute
command -v node >/dev/null || { echo "run.sh: node not found" >&2; exit 2; }

# ------------------------------------------------------------ zone, knotd
mkdir -p "$OUT/zone"
rm -f "$OUT/zone"/*.zone
say "generating $N domains"
python3 "$HERE/gen_zone.py" -n "$N" -o "$OUT/zone" >&2
LIST=$OUT/zone/domains.txt

. "$SRC/tests/lib/knot.sh"
# knot.sh is written for scripts without set -e: call it in a tested context.
trap 'knot_stop || true' EXIT
trap 'exit 130' INT TERM
say "starting knotd"
KNOT_WAIT_S=${KNOT_WAIT_S:-60} knot_start "$OUT/zone" ||
  { echo "run.sh: knotd did not start" >&2; exit 1; }
SERVER=127.0.0.1:$KNOT_PORT
kdig @127.0.0.1 -p "$KNOT_PORT" +short MX "d$((N - 1)).bench.test" \
  | grep -q "mx1.d$((N - 1))" || { echo "run.sh: zone not served" >&2; exit 1; }
say "knotd pid $KNOT_PID on $SERVER ($(nproc) CPUs)"

: >"$LOG"

# -------------------------------------------------------------- cold runs
# Interleaved rounds: a noisy moment hits all three clients alike.
declare -a R_DPS M_DPS N_DPS R_CPU M_CPU N_CPU RATIO_RAW RATIO_NODE
for ((i = 1; i <= ROUNDS; i++)); do
  say "round $i/$ROUNDS: raw c-ares, mxroute cold, node ($N domains, W=$W)"
  l=$(run raw "$RAW" --server "$SERVER" --list "$LIST" -w "$W")
  R_DPS+=("$(field "$l" dps)"); R_CPU+=("$(field "$l" cpu_us_per_domain)")
  l=$(run mxroute "$MXR" cold --server "$SERVER" --list "$LIST" -w "$W")
  M_DPS+=("$(field "$l" dps)"); M_CPU+=("$(field "$l" cpu_us_per_domain)")
  l=$(run node node "$HERE/node_resolve.js" --server "$SERVER" --list "$LIST" -w "$W")
  N_DPS+=("$(field "$l" dps)"); N_CPU+=("$(field "$l" cpu_us_per_domain)")
  RATIO_RAW+=("$(ratio "${M_DPS[-1]:-0}" "${R_DPS[-1]:-0}")")
  RATIO_NODE+=("$(ratio "${M_DPS[-1]:-0}" "${N_DPS[-1]:-0}")")
  say "  dps raw=${R_DPS[-1]} mxroute=${M_DPS[-1]} node=${N_DPS[-1]}"
done

# ------------------------------------------------------ concurrency sweep
# Cold runs per client and window W, on the first SWEEP_N domains: does
# a client keep its rate when the caller asks for many queries in flight?
# Every round runs every W (so a noisy moment hits them all); the table
# shows the median of the rounds, and the worst round's "ok" count.
# raw c-ares and Node may lose domains at large W (timeouts): that is what
# the sweep shows, not a failed run (their "ok" column counts them);
# mxroute must route every domain.
declare -a S_W S_R S_RC S_RO S_M S_MC S_N S_NC S_NO
declare -A A_R A_RC A_RO A_M A_MC A_N A_NC A_NO
for ((r = 1; r <= SWEEP_ROUNDS; r++)); do
  for w in $SWEEP; do
    say "sweep round $r/$SWEEP_ROUNDS, W=$w: raw c-ares, mxroute cold, node ($SWEEP_N domains)"
    l=$(run_lossy sweep-raw "$RAW" --server "$SERVER" --list "$LIST" -n "$SWEEP_N" -w "$w")
    A_R[$w]+=" $(num "$l" dps)"; A_RC[$w]+=" $(field "$l" cpu_us_per_domain)"; A_RO[$w]+=" $(num "$l" ok)"
    l=$(run sweep-mxroute "$MXR" cold --server "$SERVER" --list "$LIST" -n "$SWEEP_N" -w "$w")
    A_M[$w]+=" $(num "$l" dps)"; A_MC[$w]+=" $(field "$l" cpu_us_per_domain)"
    l=$(run_lossy sweep-node node "$HERE/node_resolve.js" --server "$SERVER" --list "$LIST" -n "$SWEEP_N" -w "$w")
    A_N[$w]+=" $(num "$l" dps)"; A_NC[$w]+=" $(field "$l" cpu_us_per_domain)"; A_NO[$w]+=" $(num "$l" ok)"
  done
done
worst_of() { printf '%s\n' "$@" | sort -g | head -1; }
for w in $SWEEP; do
  # shellcheck disable=SC2086 # the lists are space-separated numbers
  {
    S_W+=("$w")
    S_R+=("$(median ${A_R[$w]})"); S_RC+=("$(median ${A_RC[$w]})"); S_RO+=("$(worst_of ${A_RO[$w]})")
    S_M+=("$(median ${A_M[$w]})"); S_MC+=("$(median ${A_MC[$w]})")
    S_N+=("$(median ${A_N[$w]})"); S_NC+=("$(median ${A_NC[$w]})"); S_NO+=("$(worst_of ${A_NO[$w]})")
  }
  say "  W=$w dps raw=${A_R[$w]} mxroute=${A_M[$w]} node=${A_N[$w]}"
done

# ------------------------------------------------------------ cached runs
# Interleaved like the cold rounds: no policy, a no-op route hook, a hook
# that rewrites the candidate list (built into bench_mxroute).
declare -a C_DPS C_NS P_NOOP P_REWRITE RATIO_NOOP RATIO_REWRITE P_NOOP_GROWTH P_REWRITE_GROWTH
for ((i = 1; i <= ROUNDS; i++)); do
  say "cached $i/$ROUNDS: $CACHED_SET domains; no policy ($CACHED routes), noop and rewrite hooks ($PCACHED routes)"
  l=$(run cached "$MXR" cached --server "$SERVER" --list "$LIST" -w "$W" \
        --set "$CACHED_SET" --rounds "$CACHED" --batch 1 --policy none)
  C_DPS+=("$(field "$l" decisions_per_s)"); C_NS+=("$(field "$l" ns_per_decision)")
  l=$(run cached-noop "$MXR" cached --server "$SERVER" --list "$LIST" -w "$W" \
        --set "$CACHED_SET" --rounds "$PCACHED" --batch 1 --policy noop)
  P_NOOP+=("$(field "$l" decisions_per_s)"); P_NOOP_GROWTH+=("$(field "$l" bytes_allocated_growth)")
  l=$(run cached-rewrite "$MXR" cached --server "$SERVER" --list "$LIST" -w "$W" \
        --set "$CACHED_SET" --rounds "$PCACHED" --batch 1 --policy rewrite)
  P_REWRITE+=("$(field "$l" decisions_per_s)"); P_REWRITE_GROWTH+=("$(field "$l" bytes_allocated_growth)")
  RATIO_NOOP+=("$(ratio "${P_NOOP[-1]:-0}" "${C_DPS[-1]:-0}")")
  RATIO_REWRITE+=("$(ratio "${P_REWRITE[-1]:-0}" "${C_DPS[-1]:-0}")")
  say "  decisions/s none=${C_DPS[-1]} noop=${P_NOOP[-1]} rewrite=${P_REWRITE[-1]}"
done
say "cached, 64 routes per process call"
l=$(run cached64 "$MXR" cached --server "$SERVER" --list "$LIST" -w "$W" \
      --set "$CACHED_SET" --rounds "$CACHED" --batch 64)
C64=$(field "$l" decisions_per_s)

# ---------------------------------------------------------------- memory
say "memory: $MEM_N domains"
MEM=$(run memory "$MXR" memory --server "$SERVER" --list "$LIST" -w "$W" -n "$MEM_N")
# Allocations per cold domain have a goal: measured in every run, on its
# own (the counting hook costs a little time), not only with the diagnostics.
say "allocations: mxroute cold with the counting allocator"
X_ALLOC=$(run allocs "$MXR" cold --server "$SERVER" --list "$LIST" -w "$W" --count-allocs)

# ----------------------------------------------------------- diagnostics
if [ "$EXTRA" = 1 ]; then
  say "diagnostics: mxroute cold with AAAA (family any), allocation counts"
  X_ANY=$(run any "$MXR" cold --server "$SERVER" --list "$LIST" -w "$W" --family any)
  X_CALLOC=$(run callocs "$MXR" cached --server "$SERVER" --list "$LIST" -w "$W" \
               --set "$CACHED_SET" --rounds 1000000 --count-allocs)
  X_PALLOC=$(run pallocs "$MXR" cached --server "$SERVER" --list "$LIST" -w "$W" \
               --set "$CACHED_SET" --rounds 1000000 --count-allocs --policy noop)
  X_NODEP=$(run nodep node "$HERE/node_resolve.js" --server "$SERVER" --list "$LIST" \
              -w "$W" --parallel-targets)
fi

knot_stop || true
trap - EXIT

# ----------------------------------------------------------------- table
R=$(median "${R_DPS[@]}"); M=$(median "${M_DPS[@]}"); NO=$(median "${N_DPS[@]}")
C=$(median "${C_DPS[@]}"); PN=$(median "${P_NOOP[@]}"); PR=$(median "${P_REWRITE[@]}")
RR=$(ratio "$M" "$R"); RN=$(ratio "$M" "$NO")
{
  echo "mxroute benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)"
  echo "source: $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "knotd $(knotd --version 2>/dev/null | awk '{print $NF}'), c-ares $(pkg-config --modversion libcares), node $(node --version)"
  echo "cold: $N distinct domains (MX + A of 2 targets = 3 queries each), W=$W in flight, median of $ROUNDS interleaved rounds"
  echo
  printf '%-34s %12s %12s %12s\n' "cold routing" "domains/s" "cpu us/dom" "per round"
  printf '%-34s %12s %12s %12s\n' "raw c-ares loop" "$R" "$(median "${R_CPU[@]}")" "${R_DPS[*]}"
  printf '%-34s %12s %12s %12s\n' "mxroute (libmxroute, cold)" "$M" "$(median "${M_CPU[@]}")" "${M_DPS[*]}"
  printf '%-34s %12s %12s %12s\n' "node resolveMx + resolve4" "$NO" "$(median "${N_CPU[@]}")" "${N_DPS[*]}"
  echo
  printf '%-34s %12s %8s %8s  %s\n' "ratio" "measured" "goal" "" "per round"
  printf '%-34s %12s %8s %8s  %s\n' "mxroute / raw c-ares" "$RR" ">= 0.7" "$(verdict "$RR" 0.7)" "${RATIO_RAW[*]}"
  printf '%-34s %12s %8s %8s  %s\n' "mxroute / node" "$RN" ">= 3" "$(verdict "$RN" 3)" "${RATIO_NODE[*]}"
  printf '%-34s %12s %8s %8s  %s\n' "cached decisions/s (1 core)" "$C" ">= 1e6" "$(verdict "$C" 1000000)" "${C_DPS[*]}"
  printf '%-34s %12s\n' "  ns per cached decision" "$(median "${C_NS[@]}")"
  printf '%-34s %12s\n' "  same, 64 routes per process()" "$C64"
  printf '%-34s %12s %8s %8s  %s\n' "cached, no-op route hook" "$PN" "" "" "${P_NOOP[*]}"
  printf '%-34s %12s %8s %8s  %s\n' "cached, hook rewriting the list" "$PR" "" "" "${P_REWRITE[*]}"
  printf '%-34s %12s %8s %8s  %s\n' "no-op hook / no policy" "$(ratio "$PN" "$C")" ">= 0.6" "$(verdict "$(ratio "$PN" "$C")" 0.6)" "${RATIO_NOOP[*]}"
  printf '%-34s %12s %8s %8s  %s\n' "rewrite hook / no policy" "$(ratio "$PR" "$C")" "" "(no goal)" "${RATIO_REWRITE[*]}"
  printf '%-34s %12s %8s %8s  %s\n' "  engine growth, noop run (bytes)" "$(median "${P_NOOP_GROWTH[@]}")" "" "" "${P_NOOP_GROWTH[*]}"
  printf '%-34s %12s %8s %8s  %s\n' "  engine growth, rewrite run" "$(median "${P_REWRITE_GROWTH[@]}")" "" "" "${P_REWRITE_GROWTH[*]}"
  printf '%-34s %12s %8s %8s\n' "bytes per cached domain (cache)" "$(field "$MEM" cache_bytes_per_domain)" "<= 512" "$(verdict_at_most "$(field "$MEM" cache_bytes_per_domain)" 512)"
  printf '%-34s %12s\n' "  engine bytes_allocated / domain" "$(field "$MEM" allocated_bytes_per_domain)"
  printf '%-34s %12s\n' "  allocator hook live / domain" "$(field "$MEM" hook_bytes_per_domain)"
  printf '%-34s %12s %8s %8s\n' "allocator hook, marginal / domain" "$(field "$MEM" marginal_hook_bytes_per_domain)" "<= 512" "$(verdict_at_most "$(field "$MEM" marginal_hook_bytes_per_domain)" 512)"
  printf '%-34s %12s\n' "  cache count, marginal / domain" "$(field "$MEM" marginal_cache_bytes_per_domain)"
  printf '%-34s %12s\n' "  VmRSS delta / domain" "$(field "$MEM" rss_bytes_per_domain)"
  printf '%-34s %12s\n' "  cache entries / domain" "$(field "$MEM" entries_per_domain)"
  grep '^LIVE' "$LOG" | tail -1 | sed 's/^LIVE /  /'
  printf '%-34s %12s %8s %8s\n' "allocations per cold domain" "$(field "$X_ALLOC" allocs_per_domain)" "<= 8" "$(verdict_at_most "$(field "$X_ALLOC" allocs_per_domain)" 8)"
  grep '^ALLOCS' "$LOG" | tail -1 | sed 's/^ALLOCS /  /'
  if [ -n "${S_W[*]-}" ]; then # S_W is unset when the sweep is skipped
    # each rate against the best rate of the same client over the sweep
    BR=$(best "${S_R[@]}"); BM=$(best "${S_M[@]}"); BN=$(best "${S_N[@]}")
    echo
    echo "concurrency sweep: $SWEEP_N domains cold, median of $SWEEP_ROUNDS rounds per W; \"/best\" is the rate over the same client's best W"
    printf '%-6s %9s %7s %6s %6s  %9s %7s %6s  %9s %7s %6s %6s\n' "W" "raw dps" "cpu us" "/best" "ok" \
      "mxroute" "cpu us" "/best" "node" "cpu us" "/best" "ok"
    declare -a S_MB=()
    for i in "${!S_W[@]}"; do
      S_MB+=("$(ratio "${S_M[$i]}" "$BM")")
      printf '%-6s %9s %7s %6s %6s  %9s %7s %6s  %9s %7s %6s %6s\n' "${S_W[$i]}" \
        "${S_R[$i]}" "${S_RC[$i]}" "$(ratio "${S_R[$i]}" "$BR")" "${S_RO[$i]}" \
        "${S_M[$i]}" "${S_MC[$i]}" "${S_MB[$i]}" \
        "${S_N[$i]}" "${S_NC[$i]}" "$(ratio "${S_N[$i]}" "$BN")" "${S_NO[$i]}"
    done
    worst=$(printf '%s\n' "${S_MB[@]}" | sort -g | head -1)
    printf '%-34s %12s %8s %8s\n' "mxroute, worst W / best W" "$worst" ">= 0.8" "$(verdict "$worst" 0.8)"
    for w in $SWEEP; do
      printf '  mxroute W=%-5s rounds:%s\n' "$w" "${A_M[$w]}"
    done
  fi
  if [ "$EXTRA" = 1 ]; then
    echo
    echo "diagnostics (single runs):"
    printf '%-34s %12s %s\n' "mxroute cold, family any (+AAAA)" "$(field "$X_ANY" dps)" "domains/s, $(field "$X_ANY" queries) queries"
    printf '%-34s %12s\n' "allocations per cached decision" "$(field "$X_CALLOC" allocs_per_decision)"
    printf '%-34s %12s\n' "  same, no-op route hook" "$(field "$X_PALLOC" allocs_per_decision)"
    printf '%-34s %12s %s\n' "node, targets in parallel" "$(field "$X_NODEP" dps)" "domains/s (up to 2W in flight)"
  fi
} | tee "$OUT/results.txt"
bench_exit
