#!/usr/bin/env bash
# serve.sh -- the daemon's benchmark in one command (see bench/README.md,
# "The daemon"): cached socketmap lookups per second through `mxroute serve`
# from 32 connections, against in-process cached decisions (bench_mxroute
# cached) and postfix-mta-sts-resolver answering from its own cache;
# latency percentiles; the daemon's RSS with 1000 idle clients.
#
#   bench/serve.sh          build, generate the zone, start knotd and the
#                           three daemons, measure, stop everything, print
#                           the table with the ratios
#
# Environment (all optional):
#   BENCH_SERVE_KEYS=1000     distinct domains asked (the cached set)
#   BENCH_SERVE_CONNS=32      connections of the load generator
#   BENCH_SERVE_SECONDS=5     length of each socketmap run
#   BENCH_SERVE_ROUNDS=3      interleaved rounds; the median is reported
#   BENCH_SERVE_PIPELINE=16   requests in flight per connection, extra run
#   BENCH_SERVE_IDLE=1000     idle clients for the RSS measure
#   BENCH_SERVE_INPROC=3000000 routes of each in-process cached run
#   BENCH_BUILD=build-bench   build directory (Release)
#
# Needs root (or unprivileged user namespaces) for the resolver's own
# network namespace. Outputs under bench/out/ (git-ignored): serve_raw.log
# (every line the programs printed) and serve_results.txt (the table).
# Exit status 0 when every run validated every reply and every check
# passed, whatever the ratios.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
KEYS_N=${BENCH_SERVE_KEYS:-1000}
CONNS=${BENCH_SERVE_CONNS:-32}
SECS=${BENCH_SERVE_SECONDS:-5}
ROUNDS=${BENCH_SERVE_ROUNDS:-3}
PIPE=${BENCH_SERVE_PIPELINE:-16}
IDLE=${BENCH_SERVE_IDLE:-1000}
INPROC=${BENCH_SERVE_INPROC:-3000000}
BUILD=${BENCH_BUILD:-$SRC/build-bench}
OUT=$HERE/out
LOG=$OUT/serve_raw.log
T=120 # seconds any single measurement may take
PY=/usr/bin/python3 # the system's: postfix-mta-sts-resolver's modules

. "$HERE/lib.sh"
bench_build mxroute_cli
MXROUTE=$BUILD/mxroute
INPROC_BIN=$BUILD/bench/bench_mxroute
LOAD=$BUILD/bench/serve_load
CLIENT=$SRC/tests/lib/serve_client.py
command -v mta-sts-daemon >/dev/null ||
  { echo "serve.sh: mta-sts-daemon not found (scripts/install-deps.sh)" >&2; exit 2; }

# ------------------------------------------------- processes and cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mxr-serve.XXXXXX")
declare -a GROUPS_STARTED=()
# Each daemon leads a process group of its own (setsid): stopping the
# group also stops what a wrapper started. SIGTERM, then SIGKILL after 5 s.
stop_group() {
  local pid=$1
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${GROUPS_STARTED[@]}"; do stop_group "$pid"; done
  knot_stop || true
  rm -rf "$WORK"
}
. "$SRC/tests/lib/knot.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS CMD...: until CMD succeeds (bounded)
wait_for() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# ------------------------------------------------------------- the zone
mkdir -p "$OUT/serve_zone"
rm -f "$OUT/serve_zone"/*.zone
say "generating $KEYS_N domains"
python3 "$HERE/gen_zone.py" -n "$KEYS_N" -o "$OUT/serve_zone" >&2
KEYS=$OUT/serve_zone/domains.txt
say "starting knotd"
KNOT_WAIT_S=30 knot_start "$OUT/serve_zone" ||
  { echo "serve.sh: knotd did not start" >&2; exit 1; }
SERVER=127.0.0.1:$KNOT_PORT
: >"$LOG"

# ------------------------------------------------------ mxroute serve
# 1000 idle clients and the benchmark's own descriptors: raise the limit
# the daemons inherit.
ulimit -n "$((IDLE + 1024))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
SM_PORT=$(python3 "$CLIENT" freeport)
JS_PORT=$(python3 "$CLIENT" freeport)
say "starting mxroute serve (knotd at $SERVER)"
setsid "$MXROUTE" serve --listen "socketmap:unix:$WORK/mxroute.sock" \
  --listen "socketmap:inet:127.0.0.1:$SM_PORT" \
  --listen "json:inet:127.0.0.1:$JS_PORT" \
  --server "$SERVER" --family ipv4 --max-clients "$((IDLE + 100))" \
  --log-level warning 2>>"$LOG" &
MXR_PID=$!
GROUPS_STARTED+=("$MXR_PID")
mxr_stats() { python3 "$CLIENT" json "127.0.0.1:$JS_PORT" '{"op":"stats"}'; }
wait_for 10 mxr_stats || { echo "serve.sh: mxroute serve did not start" >&2; exit 1; }

# -------------------------------------------- postfix-mta-sts-resolver
# Each instance runs in a network namespace of its own where loopback is
# the only interface and /etc/resolv.conf (bind-mounted, in its own mount
# namespace) names 127.0.0.1, where nothing answers: a DNS query could not
# leave the host, and the namespace's UDP and TCP counters
# (/proc/PID/net/snmp) show whether it sent any. It listens on a unix
# socket, which the load generator reaches from outside the namespace.
NETNS=(unshare --net --mount)
"${NETNS[@]}" true 2>/dev/null || NETNS=(unshare --user --map-root-user --net --mount)
"${NETNS[@]}" true 2>/dev/null ||
  { echo "serve.sh: cannot create a network namespace (run as root)" >&2; exit 2; }
echo "nameserver 127.0.0.1" >"$WORK/resolv.conf"

# mta_conf NAME CACHE_YAML: the daemon's config. cache_grace of a year: a
# cached policy is never re-checked during the run.
mta_conf() {
  cat >"$WORK/$1.yml" <<EOF
path: "$WORK/$1.sock"
mode: 0600
shutdown_timeout: 1
cache_grace: 31557600
cache:
$2
default_zone:
  strict_testing: false
  timeout: 4
EOF
}
# mta_start NAME CMD...: start CMD in its namespace; sets MTA_PID.
mta_start() {
  local name=$1
  shift
  # setsid, unshare and sh exec in turn: $! ends up the daemon's pid
  setsid "${NETNS[@]}" sh -c \
    'ip link set lo up && mount --bind "$0" /etc/resolv.conf && exec "$@"' \
    "$WORK/resolv.conf" "$@" 2>>"$LOG" &
  MTA_PID=$!
  GROUPS_STARTED+=("$MTA_PID")
  wait_for 15 "$LOAD" load --connect "unix:$WORK/$name.sock" --keys "$KEYS" \
    --map postfix -c 1 --requests 1 --timeout 5 ||
    { echo "serve.sh: mta-sts-daemon ($name) did not answer" >&2; exit 1; }
}
# net_out PID: UDP datagrams sent and TCP connections opened in the
# daemon's namespace
net_out() {
  awk '$1 == "Udp:" && $2 ~ /^[0-9]/ { u = $5 }
       $1 == "Tcp:" && $2 ~ /^[0-9]/ { t = $6 }
       END { print u + 0, t + 0 }' "/proc/$1/net/snmp"
}

say "starting postfix-mta-sts-resolver: sqlite cache (stock daemon)"
"$PY" "$HERE/mta_sts_cache.py" fill "$WORK/cache.db" "$KEYS" >>"$LOG"
mta_conf sqlite "  type: sqlite
  options:
    filename: \"$WORK/cache.db\""
mta_start sqlite mta-sts-daemon -c "$WORK/sqlite.yml" -v warn
STS_SQL_PID=$MTA_PID
say "starting postfix-mta-sts-resolver: internal cache, filled at start"
mta_conf internal "  type: internal
  options:
    cache_size: $((KEYS_N * 2))"
mta_start internal "$PY" "$HERE/mta_sts_cache.py" internal "$KEYS" \
  -c "$WORK/internal.yml" -v warn
STS_INT_PID=$MTA_PID

# ---------------------------------------------- warm-up and validation
load() { # load NAME PID ADDR MAP [serve_load options]
  local name=$1 pid=$2 addr=$3 map=$4
  shift 4
  run "$name" "$LOAD" load --connect "$addr" --keys "$KEYS" --map "$map" \
    --pid "$pid" --timeout 100 "$@"
}
say "warm-up: every key once (mxroute asks knotd; the resolvers read their cache)"
load warm-mxroute "$MXR_PID" "unix:$WORK/mxroute.sock" transport -c 1 \
  --requests "$KEYS_N" >/dev/null
for n in sqlite internal; do
  pid=$STS_SQL_PID
  [ $n = internal ] && pid=$STS_INT_PID
  load "warm-$n" "$pid" "unix:$WORK/$n.sock" postfix -c 1 \
    --requests "$KEYS_N" >/dev/null
  # The control: a domain it has no policy for makes it look one up. The
  # counters must see that query (and it must answer NOTFOUND).
  echo absent.bench.test >"$WORK/absent.txt"
  before=$(net_out "$pid")
  run "control-$n" "$LOAD" load --connect "unix:$WORK/$n.sock" \
    --keys "$WORK/absent.txt" --map postfix --expect NOTFOUND -c 1 \
    --requests 1 --timeout 30 >/dev/null
  after=$(net_out "$pid")
  [ "${after%% *}" -gt "${before%% *}" ] || {
    echo "serve.sh: $n: the lookup of a domain out of its cache sent no" \
      "DNS query ($before -> $after): the check would prove nothing" >&2
    FAILED=1
  }
done
NET_SQL0=$(net_out "$STS_SQL_PID")
NET_INT0=$(net_out "$STS_INT_PID")
STATS0=$(mxr_stats)

# --------------------------------------------------------------- rounds
declare -a INP MXR MXR_P50 MXR_P99 MXR_CPU SQL SQL_P50 SQL_P99 SQL_CPU \
  INT INT_P50 INT_P99 INT_CPU R_INP R_SQL R_INT
MXR_REQS=0
for ((i = 1; i <= ROUNDS; i++)); do
  say "round $i/$ROUNDS: in-process, mxroute serve, mta-sts sqlite, mta-sts internal"
  l=$(run inproc "$INPROC_BIN" cached --server "$SERVER" --list "$KEYS" \
    --set "$KEYS_N" --rounds "$INPROC" --batch 1)
  INP+=("$(field "$l" decisions_per_s)")
  l=$(load mxroute "$MXR_PID" "unix:$WORK/mxroute.sock" transport \
    -c "$CONNS" --seconds "$SECS")
  MXR+=("$(field "$l" rps)"); MXR_P50+=("$(field "$l" p50_us)")
  MXR_P99+=("$(field "$l" p99_us)"); MXR_CPU+=("$(field "$l" daemon_cpu_us_per_req)")
  MXR_REQS=$((MXR_REQS + $(num "$l" requests)))
  l=$(load sqlite "$STS_SQL_PID" "unix:$WORK/sqlite.sock" postfix \
    -c "$CONNS" --seconds "$SECS")
  SQL+=("$(field "$l" rps)"); SQL_P50+=("$(field "$l" p50_us)")
  SQL_P99+=("$(field "$l" p99_us)"); SQL_CPU+=("$(field "$l" daemon_cpu_us_per_req)")
  l=$(load internal "$STS_INT_PID" "unix:$WORK/internal.sock" postfix \
    -c "$CONNS" --seconds "$SECS")
  INT+=("$(field "$l" rps)"); INT_P50+=("$(field "$l" p50_us)")
  INT_P99+=("$(field "$l" p99_us)"); INT_CPU+=("$(field "$l" daemon_cpu_us_per_req)")
  R_INP+=("$(ratio "${MXR[-1]:-0}" "${INP[-1]:-0}")")
  R_SQL+=("$(ratio "${MXR[-1]:-0}" "${SQL[-1]:-0}")")
  R_INT+=("$(ratio "${MXR[-1]:-0}" "${INT[-1]:-0}")")
  say "  in-process=${INP[-1]} mxroute=${MXR[-1]} sqlite=${SQL[-1]} internal=${INT[-1]} per s"
done

say "mxroute serve over TCP, and pipelined ($PIPE in flight per connection)"
TCP=$(load mxroute-tcp "$MXR_PID" "inet:127.0.0.1:$SM_PORT" transport \
  -c "$CONNS" --seconds "$SECS")
BESIDE=
PIPED=$(load mxroute-pipelined "$MXR_PID" "unix:$WORK/mxroute.sock" transport \
  -c "$CONNS" -d "$PIPE" --seconds "$SECS")
MXR_REQS=$((MXR_REQS + $(num "$TCP" requests) + $(num "$PIPED" requests)))

# The idle clients are held while a busy run goes on beside them: the
# RSS with none and with IDLE, and what IDLE idle clients cost the others.
say "RSS with $IDLE idle clients; the 32-connection run beside them"
"$LOAD" idle --connect "unix:$WORK/mxroute.sock" --keys "$KEYS" -n "$IDLE" \
  --pid "$MXR_PID" --hold "$((SECS + 5))" --timeout 60 >"$WORK/idle.out" 2>&1 &
IDLE_LOADER=$!
if wait_for 60 grep -q '^HELD' "$WORK/idle.out"; then
  BESIDE=$(load mxroute-beside-idle "$MXR_PID" "unix:$WORK/mxroute.sock" \
    transport -c "$CONNS" --seconds "$SECS")
  MXR_REQS=$((MXR_REQS + $(num "$BESIDE" requests)))
else
  echo "serve.sh: the idle clients were not all answered within 60 s" >&2
  echo "RUN FAILED: idle-mxroute (no HELD)" >>"$LOG"
fi
wait "$IDLE_LOADER" || echo "RUN FAILED: idle-mxroute" >>"$WORK/idle.out"
cat "$WORK/idle.out" >>"$LOG"
IDLE_MXR=$(grep '^RESULT' "$WORK/idle.out" || true)
IDLE_INT=$(run idle-internal "$LOAD" idle --connect "unix:$WORK/internal.sock" \
  --keys "$KEYS" --map postfix -n "$IDLE" --pid "$STS_INT_PID" --hold 1 \
  --timeout 60)

# Every lookup measured was a cached decision: as many plan-cache hits as
# requests, no DNS question sent.
STATS1=$(mxr_stats)
delta() { echo $(($(jq -r ".$1" <<<"$STATS1") - $(jq -r ".$1" <<<"$STATS0"))); }
HITS=$(delta plan_hits)
QUERIES=$(delta queries_sent)
if [ "$HITS" != "$((MXR_REQS + IDLE))" ] || [ "$QUERIES" != 0 ]; then
  echo "serve.sh: mxroute serve: $MXR_REQS lookups measured and $IDLE idle" \
    "clients' one each, $HITS plan cache hits, $QUERIES DNS queries" >&2
  FAILED=1
fi
NET_SQL1=$(net_out "$STS_SQL_PID")
NET_INT1=$(net_out "$STS_INT_PID")
if [ "$NET_SQL1" != "$NET_SQL0" ] || [ "$NET_INT1" != "$NET_INT0" ]; then
  echo "serve.sh: mta-sts-daemon sent packets while measured" \
    "(sqlite $NET_SQL0 -> $NET_SQL1, internal $NET_INT0 -> $NET_INT1)" >&2
  FAILED=1
fi

cleanup
trap - EXIT

# ----------------------------------------------------------------- table
M=$(median "${MXR[@]}"); I=$(median "${INP[@]}")
S=$(median "${SQL[@]}"); N=$(median "${INT[@]}")
kb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1024 }'; }
row() { printf '%-40s %10s %9s %9s %9s  %s\n' "$@"; }
{
  echo "mxroute serve benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)"
  echo "source: $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "postfix-mta-sts-resolver $(dpkg-query -W -f='${Version}' postfix-mta-sts-resolver 2>/dev/null), $("$PY" --version), uvloop $("$PY" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo absent)"
  echo "$KEYS_N domains, $CONNS connections x 1 request in flight, ${SECS} s per run, median of $ROUNDS interleaved rounds"
  echo
  row "cached lookups" "per s" "p50 us" "p99 us" "cpu us/rq" "per round"
  row "in-process (bench_mxroute cached)" "$I" "" "" "" "${INP[*]}"
  row "mxroute serve, unix socket" "$M" "$(median "${MXR_P50[@]}")" \
    "$(median "${MXR_P99[@]}")" "$(median "${MXR_CPU[@]}")" "${MXR[*]}"
  row "  same, TCP 127.0.0.1" "$(field "$TCP" rps)" "$(field "$TCP" p50_us)" \
    "$(field "$TCP" p99_us)" "$(field "$TCP" daemon_cpu_us_per_req)" "(one run)"
  row "  same, unix, $PIPE in flight per conn" "$(field "$PIPED" rps)" \
    "$(field "$PIPED" p50_us)" "$(field "$PIPED" p99_us)" \
    "$(field "$PIPED" daemon_cpu_us_per_req)" "(one run)"
  row "  same, unix, beside $IDLE idle clients" "$(field "$BESIDE" rps)" \
    "$(field "$BESIDE" p50_us)" "$(field "$BESIDE" p99_us)" \
    "$(field "$BESIDE" daemon_cpu_us_per_req)" "(one run)"
  row "mta-sts-resolver, sqlite cache" "$S" "$(median "${SQL_P50[@]}")" \
    "$(median "${SQL_P99[@]}")" "$(median "${SQL_CPU[@]}")" "${SQL[*]}"
  row "mta-sts-resolver, internal cache" "$N" "$(median "${INT_P50[@]}")" \
    "$(median "${INT_P99[@]}")" "$(median "${INT_CPU[@]}")" "${INT[*]}"
  echo
  printf '%-40s %10s %8s %8s  %s\n' "ratio" "measured" "goal" "" "per round"
  printf '%-40s %10s %8s %8s  %s\n' "mxroute serve / in-process" \
    "$(ratio "$M" "$I")" "" "(no goal)" "${R_INP[*]}"
  printf '%-40s %10s %8s %8s  %s\n' "mxroute serve / mta-sts sqlite" \
    "$(ratio "$M" "$S")" ">= 10" "$(verdict "$(ratio "$M" "$S")" 10)" "${R_SQL[*]}"
  printf '%-40s %10s %8s %8s  %s\n' "mxroute serve / mta-sts internal" \
    "$(ratio "$M" "$N")" ">= 10" "$(verdict "$(ratio "$M" "$N")" 10)" "${R_INT[*]}"
  cpu() { ratio "$(median "$@")" "$(median "${MXR_CPU[@]}")"; }
  printf '%-40s %10s %8s %8s  %s\n' "  CPU per lookup, sqlite / mxroute" \
    "$(cpu "${SQL_CPU[@]}")" "" "" "(daemons' utime + stime)"
  printf '%-40s %10s %8s %8s  %s\n' "  CPU per lookup, internal / mxroute" \
    "$(cpu "${INT_CPU[@]}")" "" "" ""
  echo
  echo "RSS (KiB)                                no client  $IDLE idle  per client (bytes)"
  for l in "mxroute serve:$IDLE_MXR" "mta-sts-resolver, internal:$IDLE_INT"; do
    v=${l#*:}
    printf '%-40s %10s %10s %10s\n' "${l%%:*}" "$(kb "$(field "$v" rss_before)")" \
      "$(kb "$(field "$v" rss_held)")" "$(field "$v" rss_bytes_per_client)"
  done
  echo
  echo "checks: mxroute serve answered $MXR_REQS measured lookups (and $IDLE idle clients' one each) with $HITS plan-cache hits and $QUERIES DNS queries;"
  echo "  mta-sts-resolver namespaces, UDP datagrams and TCP opens while measured: sqlite $NET_SQL0 -> $NET_SQL1, internal $NET_INT0 -> $NET_INT1"
} | tee "$OUT/serve_results.txt"
bench_exit
